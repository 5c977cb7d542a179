"""Loading and validating the training data.

Two formats are accepted:
- the original UCI `auto-mpg.data` (white-space separated, `?` for missing, quoted car name last);
- a CSV with a header row naming `mpg` and the seven features (any order, extra columns ignored,
  empty or `?` for a missing horsepower), which is how new data arrives for a retrain.

Every problem names the file and line. Only numpy, no pandas: errors must point at lines.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.train.schema import FEATURES, FEATURE_NAMES, TARGET

UCI_COLUMNS = (TARGET, *FEATURE_NAMES, "car_name")
MPG_LIMITS = (3.0, 150.0)


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


def _number(text: str, where: str, column: str) -> float:
    if text in ("?", ""):
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: column '{column}' is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: column '{column}' is not a finite number: {text!r}")
    return value


def _check_row(values: dict[str, float], where: str) -> str | None:
    """Raises on a missing required value; returns a note if the row is beyond a hard limit."""
    mpg = values[TARGET]
    if math.isnan(mpg):
        raise UserError(f"{where}: column 'mpg' is missing; every training row needs its target")
    for f in FEATURES:
        v = values[f.name]
        if math.isnan(v):
            if not f.nullable:
                raise UserError(f"{where}: column '{f.name}' is missing; only horsepower may be")
            continue
        if not (f.minimum <= v <= f.maximum):
            return f"{where}: {f.name}={v:g} is outside the hard limits [{f.minimum:g}, {f.maximum:g}]; row left out"
        if f.categories and int(v) not in f.categories:
            return f"{where}: {f.name}={v:g} is not one of {sorted(f.categories)}; row left out"
    if not (MPG_LIMITS[0] <= mpg <= MPG_LIMITS[1]):
        return f"{where}: mpg={mpg:g} is outside [{MPG_LIMITS[0]:g}, {MPG_LIMITS[1]:g}]; row left out"
    return None


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
        values = {c: _number(p, where, c) for c, p in zip(UCI_COLUMNS[:-1], parts[:-1])}
        yield where, values, parts[-1]


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
        values = {c: _number(row[i].strip(), where, c) for c, i in index.items()}
        yield where, values, row[name_col] if name_col is not None else ""


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

    X, y, names, notes, seen = [], [], [], [], {}
    for where, values, name in rows:
        note = _check_row(values, where)
        if note:
            notes.append(note)
            continue
        key = tuple(values[c] for c in (TARGET, *FEATURE_NAMES))
        if key in seen:
            notes.append(f"{where}: same values as {seen[key]} (kept: a duplicate is still a real car)")
        seen.setdefault(key, where)
        X.append([values[c] for c in FEATURE_NAMES])
        y.append(values[TARGET])
        names.append(name)
    if len(y) < 50:
        raise UserError(f"{path}: only {len(y)} usable rows; at least 50 are needed to train")
    return Dataset(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64), names,
                   hashlib.sha256(raw).hexdigest(), str(path), notes)
