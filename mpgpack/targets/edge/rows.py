"""Input rows for the edge runner: CSV or JSON lines -> float32 [N, 7], every bad row reported.

The limits come from the manifest's feature schema (the runner never imports `train`): values
outside the hard limits are refused, values outside the training range are only counted and
warned about. Parsing is vectorised per chunk of lines (numpy converts the whole chunk at
once); only a chunk that holds a bad value is walked row by row to find and name it.
Needs the standard library and numpy only: it runs on the device.
"""
from __future__ import annotations

import csv
import json
import math
import operator
import re
from dataclasses import dataclass, field

import numpy as np

from mpgpack.core.errors import UserError

# How the UCI file and spreadsheets write a missing value (horsepower is the nullable one).
MISSING_TOKENS = ("", "?")


@dataclass
class Chunk:
    """One parsed chunk: the rows that passed, and one message per row that did not."""
    X: np.ndarray                     # float32 [n_good, 7], NaN where missing
    lines: np.ndarray                 # int64 [n_good]: line number of each good row
    raw: list[str]                    # the good rows' text (CSV: echoed in the output)
    errors: list[tuple[int, str]]     # (line number, message), in line order


@dataclass
class WarningCounts:
    """Good rows outside the training range, per feature (predicted, but worth knowing)."""
    counts: dict[str, int] = field(default_factory=dict)
    first_lines: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, lines: np.ndarray) -> None:
        self.counts[name] = self.counts.get(name, 0) + len(lines)
        seen = self.first_lines.setdefault(name, [])
        seen.extend(int(n) for n in lines[: max(0, 5 - len(seen))])


class FeatureSchema:
    """The manifest's feature list, turned into arrays for vectorised checks."""

    def __init__(self, features: list[dict]):
        self.features = features
        self.names = [f["name"] for f in features]
        self.lo = np.array([f["minimum"] for f in features], dtype=np.float64)
        self.hi = np.array([f["maximum"] for f in features], dtype=np.float64)
        self.integer = np.array([bool(f.get("integer")) for f in features])
        self.nullable = np.array([bool(f.get("nullable")) for f in features])
        self.train_lo = np.array([f["training_range"][0] for f in features], dtype=np.float64)
        self.train_hi = np.array([f["training_range"][1] for f in features], dtype=np.float64)
        # category features: the allowed codes, and how to name them in a message
        self.categories = {i: (np.array(sorted(int(k) for k in f["categories"]), dtype=np.float64),
                               ", ".join(f"{k} {v}" for k, v in sorted(f["categories"].items(),
                                                                        key=lambda kv: int(kv[0]))))
                           for i, f in enumerate(features) if f.get("kind") == "category"}

    # -- row checks -------------------------------------------------------------------------
    def check(self, X: np.ndarray, missing: np.ndarray,
              unreadable: np.ndarray) -> tuple[np.ndarray, dict[int, list[str]]]:
        """Checks parsed values against the schema. Returns (row is good, {row: [problems]}).

        `unreadable` cells (not a number) are reported by the parser and skipped here.
        """
        problems = np.zeros(X.shape, dtype=np.int8)        # 0 ok, else a problem code
        present = ~missing & ~unreadable
        problems[missing & ~self.nullable] = 1
        with np.errstate(invalid="ignore"):
            outside = present & ((X < self.lo) | (X > self.hi))
            fraction = present & self.integer & (X != np.round(X))
        problems[outside] = 2
        problems[fraction & ~outside] = 3
        for col, (codes, _) in self.categories.items():
            unknown = present[:, col] & ~np.isin(X[:, col], codes)
            problems[unknown, col] = 4                      # "unknown origin" beats "outside"
        bad_rows = np.flatnonzero(problems.any(axis=1))
        messages = {int(r): [self._message(int(c), int(problems[r, c]), X[r, c])
                             for c in np.flatnonzero(problems[r])] for r in bad_rows}
        return ~problems.any(axis=1), messages

    def _message(self, col: int, code: int, value: float) -> str:
        f = self.features[col]
        name = f["name"]
        if code == 1:
            return f"{name}: missing value (required; only {self._nullable_names()} may be empty)"
        if code == 2:
            return (f"{name}: {value:g} is outside the allowed range "
                    f"{f['minimum']:g} to {f['maximum']:g} {f['unit']}".rstrip())
        if code == 3:
            return f"{name}: {value:g} must be a whole number"
        return f"{name}: unknown value {value:g} (allowed: {self.categories[col][1]})"

    def _nullable_names(self) -> str:
        return ", ".join(n for n, ok in zip(self.names, self.nullable) if ok) or "none"

    def outside_training(self, X: np.ndarray, lines: np.ndarray, counts: WarningCounts) -> None:
        with np.errstate(invalid="ignore"):
            out = (X < self.train_lo) | (X > self.train_hi)   # NaN compares False: not counted
        for col in np.flatnonzero(out.any(axis=0)):
            counts.add(self.names[col], lines[out[:, col]])


# -- CSV ------------------------------------------------------------------------------------
class CsvParser:
    """Rows of a CSV file whose header names the features (any order; extra columns kept)."""

    def __init__(self, schema: FeatureSchema, header_line: str):
        self.schema = schema
        self.header = next(csv.reader([header_line]), [])
        cols = [h.strip() for h in self.header]
        absent = [n for n in schema.names if n not in cols]
        if absent or not cols:
            raise UserError(f"CSV header must name every feature ({', '.join(schema.names)}); "
                            f"missing: {', '.join(absent or schema.names)}")
        twice = sorted({c for c in cols if cols.count(c) > 1 and c in schema.names})
        if twice:
            raise UserError(f"CSV header names {', '.join(twice)} more than once")
        self.index = [cols.index(n) for n in schema.names]
        self.ncols = len(cols)
        self.extra = [c for c in cols if c not in schema.names]
        self._identity = self.index == list(range(len(schema.names))) and self.ncols == len(self.index)

    def parse(self, lines: list[str], first_line: int) -> Chunk:
        return self._parse_plain(lines, first_line) or self._parse_general(lines, first_line)

    def _parse_plain(self, lines: list[str], first_line: int) -> Chunk | None:
        """The fast path for the common file: the 7 features in order, plain numbers, '?' or
        empty for missing, no blank or short lines. Returns None when the chunk is not that
        (then the general path finds and names each problem)."""
        if not self._identity or not lines:
            return None
        joined = ",".join(lines)
        if _NOT_PLAIN.search(joined):        # quotes, letters (nan, inf, words): not plain
            return None
        width = len(self.index)
        if any(c != width - 1 for c in map(_count_commas, lines)):
            return None                          # a blank line or a wrong count somewhere
        # empty fields -> nan (",," twice: the second pass catches ",,," runs), '?' -> nan
        joined = ("," + joined + ",").replace(",,", ",nan,").replace(",,", ",nan,")
        try:
            values = list(map(float, joined[1:-1].replace("?", "nan").split(",")))
        except ValueError:
            return None
        X = np.array(values, dtype=np.float64).reshape(len(lines), width)
        nums = np.arange(first_line, first_line + len(lines))
        return _chunk(X, np.isnan(X), nums, lines, [], self.schema)

    def _parse_general(self, lines: list[str], first_line: int) -> Chunk:
        errors: list[tuple[int, str]] = []
        rows, nums, raw = [], [], []
        for offset, fields in enumerate(csv.reader(lines)):
            if not fields:                                      # a blank line holds no row
                continue
            n = first_line + offset
            if len(fields) != self.ncols:
                errors.append((n, f"expected {self.ncols} values (as in the header), "
                                  f"found {len(fields)}"))
                continue
            rows.append(fields if self._identity else [fields[i] for i in self.index])
            nums.append(n)
            raw.append(lines[offset])
        if not rows:
            width = len(self.schema.names)
            return _chunk(np.zeros((0, width)), np.zeros((0, width), bool), nums, raw, errors,
                          self.schema)
        text = np.char.strip(np.array(rows, dtype=str))
        missing = np.isin(text, MISSING_TOKENS)
        try:
            X = np.where(missing, "nan", text).astype(np.float64)
        except ValueError:                                      # some cell is not a number
            X = _parse_cells(text, missing)
        return _chunk(X, missing, nums, raw, errors, self.schema, text)


_NOT_PLAIN = re.compile(r'[^0-9eE.,?+\- \t]')
_count_commas = operator.methodcaller("count", ",")


def _parse_cells(text: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Cell-by-cell conversion for a chunk that failed the vectorised one; bad cells -> inf."""
    X = np.full(text.shape, np.nan)
    for (r, c), cell in np.ndenumerate(text):
        if not missing[r, c]:
            try:
                X[r, c] = float(cell)
            except ValueError:
                X[r, c] = np.inf            # flagged as "not a number" by _chunk
    return X


def _chunk(X, missing, nums, raw, errors, schema: FeatureSchema, text=None) -> Chunk:
    """Adds the "not a number" and schema checks, and assembles the chunk."""
    nums = np.asarray(nums, dtype=np.int64)
    not_number = ~missing & ~np.isfinite(X)     # unparsable, or a literal nan/inf
    good, messages = schema.check(np.where(not_number, 0.0, X), missing, not_number)
    for r, c in zip(*np.nonzero(not_number)):
        shown = f" {str(text[r, c])[:40]!r}" if text is not None else ""
        messages.setdefault(int(r), []).insert(0, f"{schema.names[c]}:{shown} is not a number")
    good &= ~not_number.any(axis=1)
    errors.extend((int(nums[r]), "; ".join(m)) for r, m in messages.items())
    errors.sort()
    keep = np.flatnonzero(good)
    return Chunk(X[keep].astype(np.float32), nums[keep], [raw[i] for i in keep], errors)


# -- JSON lines -----------------------------------------------------------------------------
class JsonLinesParser:
    """One car per line: {"cylinders": 4, ..., "horsepower": null} or [4, 97, null, ...]."""

    def __init__(self, schema: FeatureSchema):
        self.schema = schema
        self.ignored_keys: set[str] = set()

    def parse(self, lines: list[str], first_line: int) -> Chunk:
        names, width = self.schema.names, len(self.schema.names)
        errors: list[tuple[int, str]] = []
        rows, nums, raw = [], [], []
        for offset, line in enumerate(lines):
            if not line.strip():
                continue
            n = first_line + offset
            try:
                obj = json.loads(line)
            except ValueError as exc:
                errors.append((n, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if isinstance(obj, dict):
                self.ignored_keys.update(k for k in obj if k not in names)
                values = [obj.get(k) for k in names]
            elif isinstance(obj, list):
                if len(obj) != width:
                    errors.append((n, f"expected {width} values in feature order "
                                      f"({', '.join(names)}), found {len(obj)}"))
                    continue
                values = obj
            else:
                errors.append((n, "expected a JSON object with the feature names as keys, "
                                  "or an array of 7 values in feature order"))
                continue
            # bool is not a number here, and Python's json reads NaN/Infinity, which JSON has not
            wrong = [(k, v) for k, v in zip(names, values) if v is not None and
                     (type(v) not in (int, float) or not math.isfinite(v))]
            if wrong:
                errors.append((n, "; ".join(f"{k}: must be a number or null, got {json.dumps(v)}"
                                            for k, v in wrong)))
                continue
            rows.append(values)
            nums.append(n)
            raw.append(line)
        X = np.array(rows, dtype=np.float64).reshape(-1, width)   # None -> NaN
        return _chunk(X, np.isnan(X), nums, raw, errors, self.schema)
