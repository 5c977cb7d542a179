"""The one row validator: every target checks input rows here, and words problems here.

Callers turn their input (a training file, the edge runner's CSV or JSON lines, a V2 tensor)
into a float matrix in feature order plus a `missing` mask, and `check_rows` applies the
schema's rules to the whole matrix at once with numpy; only rows that broke a rule are walked
to name them. Every message names the feature, what was wrong and what is allowed; the
caller puts the row in front ("line 7: ", "inputs[0].data row 3: ").

Text input (files, CSV cells) goes through one strict number grammar, `parse_text_rows`:
plain ASCII decimal or scientific numbers only (no `٣`, `４`, `1_000`, `nan`, `inf`, NUL
bytes, which Python's float() would take), and `?` or an empty cell for missing.
Standard library + numpy only: this runs on the edge device too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mpgpack.core.schema import Feature, Schema, show_number

MISSING_TOKENS = ("", "?")                # how files write a missing value
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A character no plain number, missing token or comma-separated list of them holds. Text
# without one is safe for float()/numpy, which then accept exactly the NUMBER grammar.
NOT_PLAIN = re.compile(r"[^0-9eE.+\-?, \t\r]")
_WIDEST = 32                              # characters of the longest cell numpy converts at once

# The rules a value can break, in the order one cell is judged (first match is reported).
NOT_A_NUMBER = "not_a_number"           # text outside the grammar
NOT_FINITE = "not_finite"               # NaN / Infinity literal, or 1e999
MISSING = "missing"                     # missing where the feature is required
UNKNOWN_CATEGORY = "unknown_category"
OUTSIDE_LIMITS = "outside_limits"
NOT_WHOLE = "not_whole"
_RULES = (NOT_WHOLE, OUTSIDE_LIMITS, UNKNOWN_CATEGORY, MISSING, NOT_FINITE, NOT_A_NUMBER)
_CODE = {rule: code for code, rule in enumerate(_RULES, start=1)}   # higher code wins a cell


# -- the messages ---------------------------------------------------------------------------
# Each names what was wrong and what is allowed; `message` puts the feature's name in front.
# `missing_as` is how the caller's input writes a missing value ("missing", or "null" in JSON).
def missing_text(schema: Schema) -> str:
    may = schema.nullable_names
    return f"missing (only {', '.join(may)} may be missing)" if may else \
        "missing (every feature is required)"


def allowed_text(feature: Feature, missing_as: str = "missing") -> str:
    return feature.allowed_text() + (f", or {missing_as}" if feature.nullable else "")


def rule_text(rule: str, feature: Feature, value: float, schema: Schema,
              shown: str | None = None, missing_as: str = "missing") -> str:
    """What is wrong with one value, without the feature's name: "900 is outside the hard
    limits 30–400 hp". `shown` is the value as the input wrote it, where that matters."""
    shown = shown if shown is not None else show_number(value)
    if rule == NOT_A_NUMBER:
        # a category takes its labels too, so "not a number" would mislead about a bad label
        what = "neither a label nor a code" if feature.is_category else "not a number"
        return f"{shown} is {what} (allowed: {allowed_text(feature, missing_as)})"
    if rule == NOT_FINITE:
        return f"{shown} is not a finite number (allowed: {allowed_text(feature, missing_as)})"
    if rule == MISSING:
        return missing_text(schema)
    if rule == UNKNOWN_CATEGORY:
        return f"unknown value {show_number(value)} (allowed: {feature.categories_text()})"
    if rule == OUTSIDE_LIMITS:
        return f"{show_number(value)} is outside the hard limits {feature.limits_text()}"
    if rule == NOT_WHOLE:
        return f"must be a whole number, got {show_number(value)}"
    raise ValueError(f"unknown rule {rule!r}")


def message(rule: str, feature: Feature, value: float, schema: Schema,
            shown: str | None = None, missing_as: str = "missing") -> str:
    """"horsepower: 900 is outside the hard limits 30–400 hp"."""
    return f"{feature.name}: {rule_text(rule, feature, value, schema, shown, missing_as)}"


def text_cell(cells) -> Callable[[int, int], str]:
    """`shown` for rows of text cells: the cell as written, quoted, at most 40 characters."""
    return lambda r, c: repr(cells[r][c].strip()[:40])


# -- the check ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    column: int
    rule: str
    message: str


@dataclass
class RowCheck:
    good: np.ndarray                        # bool [N]: the row broke no rule
    problems: dict[int, list[Problem]]      # row index -> its problems, in column order

    def message(self, row: int) -> str:
        return "; ".join(p.message for p in self.problems[row])

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.problems.values())


def rule_codes(schema: Schema, X: np.ndarray, missing: np.ndarray,
               unreadable: np.ndarray) -> np.ndarray:
    """int8 [N, F]: 0 where a cell is fine, else the code of the rule it broke."""
    codes = np.zeros(X.shape, dtype=np.int8)
    present = ~missing & ~unreadable
    with np.errstate(invalid="ignore"):
        not_finite = present & ~np.isfinite(X)
        present &= ~not_finite
        codes[present & schema.integer & (X != np.floor(X))] = _CODE[NOT_WHOLE]
        codes[present & ((X < schema.minimum) | (X > schema.maximum))] = _CODE[OUTSIDE_LIMITS]
    for col, allowed in schema.category_codes.items():   # "unknown origin" beats "outside"
        # == against the few allowed codes: np.isin's set machinery costs more than the rest of
        # the check on an API request's rows (NaN equals nothing, as in isin).
        known = (X[:, col, None] == allowed).any(axis=1)
        codes[present[:, col] & ~known, col] = _CODE[UNKNOWN_CATEGORY]
    codes[missing & ~schema.nullable] = _CODE[MISSING]
    codes[not_finite] = _CODE[NOT_FINITE]
    codes[unreadable] = _CODE[NOT_A_NUMBER]
    return codes


def check_rows(schema: Schema, X: np.ndarray, missing: np.ndarray | None = None,
               unreadable: np.ndarray | None = None,
               shown: Callable[[int, int], str | None] | None = None,
               missing_as: str = "missing") -> RowCheck:
    """Checks a float matrix [N, F] in feature order against the schema.

    `missing`: cells given as missing (default: the NaN cells); `unreadable`: cells that were
    not a number at all (their X value is ignored); `shown(row, column)`: how the input wrote
    a cell, for "not a number" messages (default: the value); `missing_as`: how the input
    writes a missing value, for the messages.
    """
    X = np.asarray(X, dtype=np.float64)
    if missing is None:
        missing = np.isnan(X)
    if unreadable is None:
        unreadable = np.zeros(X.shape, dtype=bool)
    codes = rule_codes(schema, X, missing, unreadable)
    bad = codes.any(axis=1)
    problems = {}
    for r in np.flatnonzero(bad).tolist():
        row = []
        for c in np.flatnonzero(codes[r]).tolist():
            rule = _RULES[codes[r, c] - 1]
            cell = shown(r, c) if shown is not None and rule in (NOT_A_NUMBER, NOT_FINITE) else None
            row.append(Problem(c, rule, message(rule, schema[c], X[r, c], schema, cell,
                                                missing_as)))
        problems[r] = row
    return RowCheck(~bad, problems)


def outside_training(schema: Schema, X: np.ndarray) -> np.ndarray:
    """bool [N, F]: valid values outside the training range (predicted, but worth a warning).
    A missing value (NaN) compares False, so it is never flagged."""
    with np.errstate(invalid="ignore"):
        return (X < schema.training_lo) | (X > schema.training_hi)


# -- text input -----------------------------------------------------------------------------
def parse_number(text: str) -> float:
    """One cell by the strict grammar: NaN for a missing token; ValueError if not a number."""
    cell = text.strip()
    if cell in MISSING_TOKENS:
        return float("nan")
    if not NUMBER.fullmatch(cell):
        raise ValueError(f"not a number: {text!r}")
    return float(cell)


def encode_labels(schema: Schema, rows: list[list[str]]) -> list[list[str]]:
    """Rows of text cells in feature order with each category label ("Japan", "japan ",
    "setosa") replaced by its code, so `parse_text_rows` reads them as numbers; codes, missing
    tokens and unknown text are left as written (unknown text is then "not a number", and the
    message lists the categories). Rows are copied only when a label was found."""
    columns = [(i, f.label_codes()) for i, f in enumerate(schema.features) if f.is_category]
    if not columns:
        return rows
    out = rows
    for r, row in enumerate(rows):
        for i, codes in columns:
            code = codes.get(row[i].strip().casefold())
            if code is not None:
                if out is rows:
                    out = [list(x) for x in rows]
                out[r][i] = str(code)
    return out


def parse_text_rows(rows: list[list[str]], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of text cells (already in feature order) -> (X float64, missing, unreadable).

    Vectorised when the text holds only plain characters (the usual file); otherwise, or
    when numpy refuses a cell, each cell is judged by the grammar."""
    flat = [cell for row in rows for cell in row]
    shape = (len(rows), width)
    # numpy's text array is as wide as its longest cell: one long cell in a big file would
    # cost gigabytes, so only short cells go that way (no plain number needs more)
    if not NOT_PLAIN.search(",".join(flat)) and max(map(len, flat), default=0) <= _WIDEST:
        text = np.char.strip(np.array(flat, dtype=str)).reshape(shape)
        missing = (text == "") | (text == "?")
        try:
            X = np.where(missing, "nan", text).astype(np.float64)
            return X, missing, np.zeros(shape, dtype=bool)
        except ValueError:
            pass                            # "1.2.3", "e5", "--1": find them one by one
    X = np.full(len(flat), np.nan)
    missing = np.zeros(len(flat), dtype=bool)
    unreadable = np.zeros(len(flat), dtype=bool)
    for i, cell in enumerate(flat):        # the Python strings: numpy would drop a NUL
        cell = cell.strip()
        if cell in MISSING_TOKENS:
            missing[i] = True
        elif NUMBER.fullmatch(cell):
            X[i] = float(cell)
        else:
            unreadable[i] = True
    return X.reshape(shape), missing.reshape(shape), unreadable.reshape(shape)
