"""Loading and validating the training data.

Two formats are accepted:
- the original UCI `auto-mpg.data` (white-space separated, `?` for missing, quoted car name last);
- a CSV with a header row naming `mpg` and the seven features (any order, extra columns ignored,
  empty or `?` for a missing horsepower), which is how new data arrives for a retrain.

Values are read and checked by the one row validator (`mpgpack.core.rows`): the same strict
number grammar and the same messages as the edge runner. Every problem names the file and
line. Only numpy, no pandas: errors must point at lines.
"""
from __future__ import annotations

import csv
import hashlib
import io
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.rows import (MISSING, NOT_A_NUMBER, NOT_FINITE, check_rows, parse_text_rows,
                               text_cell)
from mpgpack.core.schema import Schema
from mpgpack.train.schema import FEATURES, FEATURE_NAMES, TARGET, TARGET_FEATURE

UCI_COLUMNS = (TARGET, *FEATURE_NAMES, "car_name")


@dataclass
class Dataset:
    X: np.ndarray            # float64 [N, 7], NaN where missing
    y: np.ndarray            # float64 [N]
    names: list[str]         # car names ("" when the source has none)
    sha256: str              # of the file's bytes
    source: str
    notes: list[str] = field(default_factory=list)  # odd things found, for the report

    def __len__(self) -> int:
        return len(self.y)


# The loader's columns: the target first, then the features; checked by the one row validator.
COLUMNS = Schema((TARGET_FEATURE, *FEATURES))
# Rules that make a file unusable (fix it); a row breaking another rule is left out and noted.
_FATAL = (MISSING, NOT_A_NUMBER, NOT_FINITE)


def _check_rows(rows: list[tuple[str, list[str], str]]) -> tuple[np.ndarray, list, list[str]]:
    """Parses and checks every row (strict number grammar, the schema's rules, the target's
    limits). Raises UserError on the first unusable row; returns (values [N, 8] of the rows
    kept, their (where, name), notes on the rows left out)."""
    cells = [c for _, c, _ in rows]
    X, missing, unreadable = parse_text_rows(cells, len(COLUMNS))
    check = check_rows(COLUMNS, X, missing, unreadable, shown=text_cell(cells))
    notes = []
    for i in sorted(check.problems):
        fatal = [p for p in check.problems[i] if p.rule in _FATAL]
        if fatal:
            raise UserError(f"{rows[i][0]}: {fatal[0].message}")
        notes.append(f"{rows[i][0]}: {check.message(i)}; row left out")
    keep = np.flatnonzero(check.good)
    return X[keep], [(rows[i][0], rows[i][2]) for i in keep], notes


def _uci_rows(text: str, path: str):
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            parts = shlex.split(line)
        except ValueError as exc:
            raise UserError(f"{where}: cannot split the line ({exc})") from None
        if len(parts) != len(UCI_COLUMNS):
            raise UserError(f"{where}: expected {len(UCI_COLUMNS)} fields "
                            f"({', '.join(UCI_COLUMNS)}), found {len(parts)}")
        yield where, parts[:-1], parts[-1]


def _csv_rows(text: str, path: str):
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in (TARGET, *FEATURE_NAMES) if c not in header]
    if missing:
        raise UserError(f"{path}:1: the CSV header lacks column(s) {', '.join(missing)}; "
                        f"needed: {', '.join((TARGET, *FEATURE_NAMES))}")
    index = {c: header.index(c) for c in (TARGET, *FEATURE_NAMES)}
    name_col = header.index("car_name") if "car_name" in header else None
    for lineno, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{lineno}"
        if len(row) != len(header):
            raise UserError(f"{where}: expected {len(header)} fields as in the header, found {len(row)}")
        yield where, [row[i] for i in index.values()], row[name_col] if name_col is not None else ""


def load_dataset(path: str | Path) -> Dataset:
    """Reads and validates a data file; raises UserError naming the line on a malformed one."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read data file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    rows = _csv_rows(text, str(path)) if first.lstrip().startswith(("mpg", '"mpg"')) or "," in first \
        else _uci_rows(text, str(path))

    values, kept, notes = _check_rows(list(rows))
    seen: dict[tuple, str] = {}
    for (where, _), row in zip(kept, values.tolist()):
        key = tuple(None if v != v else v for v in row)      # NaN != NaN: None compares
        if key in seen:
            notes.append(f"{where}: same values as {seen[key]} (kept: a duplicate is still a real car)")
        seen.setdefault(key, where)
    X, y = np.ascontiguousarray(values[:, 1:]), np.ascontiguousarray(values[:, 0])
    names = [name for _, name in kept]
    if len(y) < 50:
        raise UserError(f"{path}: only {len(y)} usable rows; at least 50 are needed to train")
    return Dataset(X, y, names, hashlib.sha256(raw).hexdigest(), str(path), notes)
