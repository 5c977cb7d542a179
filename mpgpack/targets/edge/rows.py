"""Input rows for the edge runner: CSV or JSON lines -> float32 [N, F], every bad row reported.

The rules and their messages are the core's (`mpgpack.core.rows`, reading the manifest's
feature schema; the runner never imports `train`): values breaking a rule are refused, values
outside the training range are only counted and warned about. The records come from
`records.py` (complete CSV records or JSON lines, each with its first line number, and the
ones that could not be read already reported). Parsing is vectorised per chunk (numpy converts
the whole chunk at once); only a chunk that holds a bad value is walked row by row to find and
name it. A category may be written by its label ("Japan", "setosa", any case) or its code:
labels become codes (`mpgpack.core.rows.encode_labels`) before the numbers are read, so a
file with labels takes the general path. Needs the standard library and numpy only: it runs
on the device.
"""
from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, field

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.rows import (NOT_PLAIN, check_rows, encode_labels, outside_training,
                               parse_text_rows, text_cell)
from mpgpack.core.schema import Schema
from mpgpack.targets.edge.records import Records

# '?' with a sign is no missing token (float() would read the "-nan" the fast path makes of it)
SIGNED_MISSING = re.compile(r"[+-]\s*\?")


@dataclass
class Chunk:
    """One parsed chunk: the rows that passed, and one message per row that did not."""
    X: np.ndarray                     # float32 [n_good, F], NaN where missing
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


def count_outside_training(schema: Schema, X: np.ndarray, lines: np.ndarray,
                           counts: WarningCounts) -> None:
    out = outside_training(schema, X)
    for col in np.flatnonzero(out.any(axis=0)):
        counts.add(schema.names[col], lines[out[:, col]])


# -- CSV ------------------------------------------------------------------------------------
class CsvParser:
    """Rows of a CSV file whose header names the features (any order; extra columns kept)."""

    def __init__(self, schema: Schema, header: list[str]):
        self.schema = schema
        self.header = header
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

    def parse(self, records: Records) -> Chunk:
        plain = records.fields is None and self._parse_plain(records)
        return plain or self._parse_general(records)

    def _parse_plain(self, records: Records) -> Chunk | None:
        """The fast path for the common file: the features in order, plain numbers, '?' or
        empty for missing, no quotes, no blank or short lines. Returns None when the chunk is
        not that (category labels, bad values: then the general path reads the labels and
        finds and names each problem)."""
        lines = records.raw
        if not self._identity or not lines:
            return None
        joined = ",".join(lines)
        if NOT_PLAIN.search(joined) or SIGNED_MISSING.search(joined):
            return None                 # letters (labels too), non-ASCII digits; '-?' is no number
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
        return _chunk(X, np.isnan(X), records.nums, lines, list(records.errors), self.schema)

    def _parse_general(self, records: Records) -> Chunk:
        errors = list(records.errors)
        rows, nums, raw = [], [], []
        fields_of = records.fields or [line.split(",") if line else [] for line in records.raw]
        for k, fields in enumerate(fields_of):
            if not fields:                                      # a blank line holds no row
                continue
            n = records.nums[k]
            if len(fields) != self.ncols:
                errors.append((n, f"expected {self.ncols} values (as in the header), "
                                  f"found {len(fields)}" + _span_note(records, k)))
                continue
            rows.append(fields if self._identity else [fields[i] for i in self.index])
            nums.append(n)
            raw.append(records.raw[k])
        coded = encode_labels(self.schema, rows)      # "Japan" -> "3"; unknown text stays
        X, missing, unreadable = parse_text_rows(coded, len(self.schema))
        return _chunk(X, missing, nums, raw, errors, self.schema, unreadable, text_cell(rows))


def _span_note(records: Records, k: int) -> str:
    """Why a count is off when a quoted field ran over line ends (a quote left open)."""
    last = records.spans.get(k)
    return "" if last is None else (f" (this record runs to line {last}: a quoted field "
                                     f"spans line ends; is a '\"' left open?)")


_count_commas = operator.methodcaller("count", ",")


def _chunk(X, missing, nums, raw, errors, schema: Schema, unreadable=None, shown=None,
           missing_as: str = "missing") -> Chunk:
    """Checks the parsed rows with the core's row rules and assembles the chunk."""
    nums = np.asarray(nums, dtype=np.int64)
    check = check_rows(schema, X, missing, unreadable, shown, missing_as)
    errors.extend((int(nums[r]), check.message(r)) for r in check.problems)
    errors.sort()
    keep = np.flatnonzero(check.good)
    return Chunk(X[keep].astype(np.float32), nums[keep], [raw[i] for i in keep], errors)


# -- JSON lines -----------------------------------------------------------------------------
class JsonLinesParser:
    """One row per line: an object with the feature names as keys (null = missing), or an
    array in feature order; a category by its code or its label (any case)."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.ignored_keys: set[str] = set()
        self._labels = {i: f.label_codes() for i, f in enumerate(schema.features) if f.is_category}

    def parse(self, records: Records) -> Chunk:
        width = len(self.schema)
        errors = list(records.errors)
        rows, missing, nums, raw = [], [], [], []
        wrong_type: dict[tuple[int, int], str] = {}     # (row, column) -> the JSON as sent
        for n, line in zip(records.nums, records.raw):
            values = self._values(line, n, errors)
            if values is None:
                continue
            for c, v in enumerate(values):
                if type(v) is str and c in self._labels:
                    v = values[c] = self._labels[c].get(v.strip().casefold(), v)
                # bool is not a number here (nor is other text); NaN/Infinity, which Python's
                # json reads, reach the core's rules and are refused there as not finite.
                if v is not None and type(v) not in (int, float):
                    wrong_type[len(rows), c] = _json_text(v)
            rows.append([None if (len(rows), c) in wrong_type else v for c, v in enumerate(values)])
            missing.append([v is None for v in values])
            nums.append(n)
            raw.append(line)
        try:
            X = np.array(rows, dtype=np.float64).reshape(-1, width)   # None -> NaN
        except OverflowError:       # an integer too big for a float: infinite, as 1e400 reads
            X = np.array([[_as_float(v) for v in row] for row in rows]).reshape(-1, width)
        missing = np.array(missing, dtype=bool).reshape(-1, width)
        unreadable = np.zeros(X.shape, dtype=bool)
        for r, c in wrong_type:
            unreadable[r, c] = True
        return _chunk(X, missing, nums, raw, errors, self.schema, unreadable,
                      lambda r, c: wrong_type.get((r, c)), missing_as="null")

    def _values(self, line: str, n: int, errors: list) -> list | None:
        """The line's values in feature order, or None (and an error) when it is not a row."""
        names, width = self.schema.names, len(self.schema)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append((n, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            return None
        except RecursionError:
            errors.append((n, "not valid JSON here (nested too deep)"))
            return None
        except ValueError:                      # Python's int(): at most 4300 digits
            errors.append((n, "not valid JSON here (a number with over 4300 digits)"))
            return None
        if isinstance(obj, dict):
            self.ignored_keys.update(k for k in obj if k not in names)
            return [obj.get(k) for k in names]
        if isinstance(obj, list):
            if len(obj) == width:
                return obj
            errors.append((n, f"expected {width} values in feature order "
                              f"({', '.join(names)}), found {len(obj)}"))
            return None
        errors.append((n, f"expected a JSON object with the feature names as keys, "
                          f"or an array of {width} values in feature order"))
        return None


def _as_float(value) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _json_text(value) -> str:
    """A JSON value as sent, at most 40 characters, for "… is not a number"."""
    try:
        return json.dumps(value)[:40]
    except (RecursionError, ValueError):
        return type(value).__name__
