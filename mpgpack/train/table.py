"""Any tabular CSV: its schema (inferred, or read back from a file the user edited) and its rows.

`infer_spec` looks at a CSV once and proposes each feature's kind (number, whole number,
category with string labels), whether it may be missing, hard limits (refused when serving:
the observed range widened by its own span, never below 0 for a column that never was) and
the task (classification when the target holds text or few whole values). `write_spec` prints
that proposal as JSON the user can edit and pass back with `--schema`; `load_table` then reads
the rows with the one row validator of the core, so a bad cell gets the file, line and column.
Only the standard library and numpy: errors must point at lines.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.rows import (MISSING_TOKENS, NUMBER, check_rows, encode_labels,
                               parse_text_rows, text_cell)
from mpgpack.core.schema import (CLASSIFICATION, PROBABILITIES, REGRESSION, TASKS, Feature,
                                 Schema, show_number, tensor_name)
from mpgpack.train.data import Dataset

SPEC_FORMAT = 1
MAX_CATEGORIES = 50          # more distinct labels than this: not a category (an id, a name)
MAX_CLASS_VALUES = 10        # a whole-number target with at most this many values: classes
MIN_ROWS = 50


@dataclass(frozen=True)
class TableSpec:
    """What a model is trained on and what it answers: the features, the target, the task."""
    name: str                      # the model's name (V2 model name, page title)
    task: str
    target: Feature                # a regressor's target: its unit and limits (rows outside are left out)
    features: tuple[Feature, ...]
    classes: tuple[str, ...] = ()  # a classifier's labels, in output order

    @property
    def schema(self) -> Schema:
        out = PROBABILITIES if self.task == CLASSIFICATION else tensor_name(self.target.name)
        return Schema(self.features, output_name=out, task=self.task, classes=self.classes,
                      target=self.target.name)

    def manifest_schema(self, training_range: dict[str, tuple[float, float]]) -> dict:
        """The schema block of the manifest: target, features in order, hard limits, and the
        range each feature had in training."""
        features = tuple(replace(f, training_range=tuple(training_range[f.name]))
                         for f in self.features)
        target = {k: v for k, v in self.to_json()["target"].items()}
        return {"target": target,
                "input": {"dtype": "float32", "shape": [None, len(features)],
                          "missing": "NaN (null in JSON)"},
                "features": Schema(features).to_json()}

    def to_json(self) -> dict:
        target = {"name": self.target.name, "unit": self.target.unit,
                  "description": self.target.description}
        if self.task == CLASSIFICATION:
            target["classes"] = list(self.classes)
        else:
            target.update(minimum=self.target.minimum, maximum=self.target.maximum)
        return {"format": SPEC_FORMAT, "name": self.name, "task": self.task, "target": target,
                "features": [{k: v for k, v in f.to_json().items() if k != "training_range"}
                             for f in self.features]}


# -- reading the CSV --------------------------------------------------------------------------
@dataclass
class _Csv:
    header: list[str]
    rows: list[list[str]]
    lines: list[int]               # the line each row starts on
    sha256: str


def _read_csv(path: Path) -> _Csv:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read data file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise UserError(f"{path}:1: the first line must be a header naming the columns")
        seen = set()
        for col, name in enumerate(header, start=1):
            if not name:
                raise UserError(f"{path}:1: column {col} of the header has no name")
            if name in seen:
                raise UserError(f"{path}:1: column {col} repeats the name {name!r}")
            seen.add(name)
        rows, lines = [], []
        start = reader.line_num + 1
        for row in reader:
            if row and any(cell.strip() for cell in row):
                if len(row) != len(header):
                    raise UserError(f"{path}:{start}: expected {len(header)} fields as in the "
                                    f"header, found {len(row)}")
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: not a readable CSV record ({exc})") from None
    return _Csv(header, rows, lines, hashlib.sha256(raw).hexdigest())


def _column(table: _Csv, path: Path, name: str) -> int:
    if name not in table.header:
        raise UserError(f"{path}:1: no column named {name!r}; the header has: "
                        f"{', '.join(table.header)}")
    return table.header.index(name)


# -- inferring the spec -----------------------------------------------------------------------
def _is_missing(cell: str) -> bool:
    return cell.strip() in MISSING_TOKENS


def _numbers(cells: list[str]) -> np.ndarray | None:
    """The present cells as numbers, or None when any is not a plain number."""
    values = []
    for cell in cells:
        text = cell.strip()
        if not NUMBER.fullmatch(text):
            return None
        values.append(float(text))
    values = np.array(values, dtype=np.float64)
    return values if np.all(np.isfinite(values)) else None


def _limits(values: np.ndarray, integer: bool) -> tuple[float, float]:
    """Hard limits: the observed range widened by its span on each side (a value that far out
    is a typo or a unit mix-up, not a new case), not below 0 when nothing observed was."""
    lo, hi = float(values.min()), float(values.max())
    span = (hi - lo) or max(abs(hi), 1.0)
    low, high = lo - span, hi + span
    if lo >= 0:
        low = max(low, 0.0)
    if integer:
        return float(math.floor(low)), float(math.ceil(high))
    return _round(low, math.floor), _round(high, math.ceil)


def _round(x: float, fn) -> float:
    """Two significant digits, rounded outward: 512.37 -> 520 (a limit a person can read)."""
    if x == 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(abs(x))) - 1)
    return float(fn(x / step) * step)


def _infer_feature(name: str, cells: list[str], where: str) -> Feature:
    present = [c for c in cells if not _is_missing(c)]
    nullable = len(present) < len(cells)
    if not present:
        raise UserError(f"{where}: column {name!r} is empty in every row; drop it or fill it")
    values = _numbers(present)
    if values is None:
        labels = sorted({c.strip() for c in present})
        if len(labels) > MAX_CATEGORIES:
            raise UserError(f"{where}: column {name!r} holds {len(labels)} different texts "
                            f"(more than {MAX_CATEGORIES}: an id or a name, not a category); "
                            "drop it or edit the schema")
        return Feature(name, "", "", "category", 0, len(labels) - 1, integer=True,
                       nullable=nullable, categories=dict(enumerate(labels)))
    integer = bool(np.all(values == np.floor(values)))
    lo, hi = _limits(values, integer)
    return Feature(name, "", "", "number", lo, hi, integer=integer, nullable=nullable)


def _infer_task(cells: list[str]) -> str:
    values = _numbers(cells)
    if values is None:
        return CLASSIFICATION
    whole = bool(np.all(values == np.floor(values)))
    return CLASSIFICATION if whole and len(np.unique(values)) <= MAX_CLASS_VALUES else REGRESSION


def _class_label(cell: str) -> str:
    """Labels as text; "1.0" and "1" are one class (a whole number is written without .0)."""
    text = cell.strip()
    if NUMBER.fullmatch(text) and float(text).is_integer():
        return show_number(float(text))
    return text


def infer_spec(path: str | Path, target: str, task: str | None = None) -> TableSpec:
    """Proposes the spec of a CSV: every column but the target is a feature, in file order."""
    path = Path(path)
    table = _read_csv(path)
    t = _column(table, path, target)
    if task is not None and task not in TASKS:
        raise UserError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    targets = [row[t] for row in table.rows]
    missing = [line for line, cell in zip(table.lines, targets) if _is_missing(cell)]
    present = [c for c in targets if not _is_missing(c)]
    if not present:
        raise UserError(f"{path}: the target column {target!r} is empty in every row")
    task = task or _infer_task(present)
    features = tuple(_infer_feature(name, [row[i] for row in table.rows], f"{path}")
                     for i, name in enumerate(table.header) if i != t)
    if task == CLASSIFICATION:
        classes = tuple(sorted({_class_label(c) for c in present}, key=_label_order))
        if len(classes) < 2:
            raise UserError(f"{path}: the target {target!r} holds one class only "
                            f"({classes[0]!r}); a classifier needs two or more")
        target_feature = Feature(target, "", "", "category", 0, len(classes) - 1, integer=True,
                                 categories=dict(enumerate(classes)))
    else:
        values = _numbers(present)
        if values is None:
            bad = next(c for c in present if _numbers([c]) is None)
            raise UserError(f"{path}: the target {target!r} holds text ({bad.strip()[:40]!r}), "
                            "so it cannot be a regression target; use --task classification")
        integer = bool(np.all(values == np.floor(values)))
        lo, hi = _limits(values, integer)
        target_feature, classes = Feature(target, "", "", "number", lo, hi), ()
    del missing      # rows without a target are left out by load_table, with a note each
    return TableSpec(tensor_name(path.stem).lower(), task, target_feature, features, classes)


def _label_order(label: str):
    """Numeric labels in numeric order (2 before 10), then text labels alphabetically."""
    return (0, float(label), "") if NUMBER.fullmatch(label) else (1, 0.0, label)


# -- the schema file --------------------------------------------------------------------------
def write_spec(spec: TableSpec, path: str | Path | None = None) -> str:
    text = json.dumps(spec.to_json(), indent=2, ensure_ascii=False) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def read_spec(path: str | Path) -> TableSpec:
    """A schema file as `write_spec` wrote it (and the user edited); every field is checked."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read schema file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    try:
        return _spec_from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: {_explain(exc)}") from None


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"a required field is missing: {exc.args[0]!r}"
    return str(exc)


def _spec_from_json(data: dict) -> TableSpec:
    if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
        raise ValueError(f"\"format\" must be {SPEC_FORMAT} (a file written by `mpgpack schema`)")
    task = data["task"]
    if task not in TASKS:
        raise ValueError(f"\"task\" is {task!r}; allowed: {', '.join(TASKS)}")
    features = []
    for i, f in enumerate(data["features"]):
        try:
            features.append(_checked_feature(f))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"features[{i}] ({f.get('name', '?') if isinstance(f, dict) else '?'}): "
                             f"{_explain(exc)}") from None
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ValueError("two features have the same name")
    t = data["target"]
    if task == CLASSIFICATION:
        classes = tuple(str(c) for c in t["classes"])
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError("target.classes must list two or more different labels")
        target = Feature(t["name"], t.get("unit", ""), t.get("description", ""), "category", 0,
                         len(classes) - 1, integer=True, categories=dict(enumerate(classes)))
    else:
        classes = ()
        target = Feature(t["name"], t.get("unit", ""), t.get("description", ""), "number",
                         float(t["minimum"]), float(t["maximum"]))
        if target.minimum >= target.maximum:
            raise ValueError("target: minimum must be below maximum")
    if target.name in names:
        raise ValueError(f"the target {target.name!r} is also listed as a feature")
    return TableSpec(tensor_name(str(data["name"])).lower(), task, target, tuple(features), classes)


def _checked_feature(f: dict) -> Feature:
    kind = f.get("kind", "number")
    if kind not in ("number", "category"):
        raise ValueError(f"kind {kind!r}; allowed: number, category")
    feature = Feature.from_json({k: v for k, v in f.items() if k != "training_range"})
    if not isinstance(feature.name, str) or not feature.name:
        raise ValueError("name must be a non-empty text")
    if kind == "category":
        if not feature.categories:
            raise ValueError("a category needs \"categories\": {\"0\": \"label\", ...}")
        labels = [v.strip().casefold() for v in feature.categories.values()]
        if len(set(labels)) != len(labels):
            raise ValueError("two categories have the same label")
        codes = sorted(feature.categories)
        feature = replace(feature, minimum=float(codes[0]), maximum=float(codes[-1]), integer=True)
    elif not (math.isfinite(feature.minimum) and math.isfinite(feature.maximum)
              and feature.minimum < feature.maximum):
        raise ValueError("minimum and maximum must be finite numbers, minimum below maximum")
    return feature


# -- loading the rows -------------------------------------------------------------------------
def load_table(path: str | Path, spec: TableSpec) -> Dataset:
    """Reads a CSV by the spec's column names (any order, extra columns ignored). A cell that is
    not a number where one is needed stops the load naming file, line and column; a row that
    breaks a limit, or has no (known) target, is left out with a note."""
    path = Path(path)
    table = _read_csv(path)
    cols = [_column(table, path, f.name) for f in spec.features]
    t = _column(table, path, spec.target.name)
    schema = spec.schema
    cells = encode_labels(schema, [[row[c] for c in cols] for row in table.rows])
    X, missing, unreadable = parse_text_rows(cells, len(cols))
    if unreadable.any():
        r, c = map(int, np.argwhere(unreadable)[0])
        f = spec.features[c]
        raise UserError(f"{path}:{table.lines[r]}: column {f.name!r} (column {cols[c] + 1}): "
                        f"{cells[r][c].strip()[:40]!r} is not {f.allowed_text()}"
                        + (", or empty for missing" if f.nullable else ""))
    check = check_rows(schema, X, missing, unreadable, shown=text_cell(cells))
    y, y_notes = _targets(spec, [row[t] for row in table.rows], table.lines, str(path))
    notes = [f"{path}:{table.lines[i]}: {check.message(i)}; row left out"
             for i in sorted(check.problems)] + y_notes
    keep = check.good & ~np.isnan(y)
    if keep.sum() < MIN_ROWS:
        raise UserError(f"{path}: only {int(keep.sum())} usable rows; at least {MIN_ROWS} are "
                        "needed to train")
    return Dataset(np.ascontiguousarray(X[keep]), y[keep], [""] * int(keep.sum()),
                   table.sha256, str(path), notes)


def _targets(spec: TableSpec, cells: list[str], lines: list[int], where: str):
    """The target of every row (class index for a classifier), NaN where it is left out."""
    y = np.full(len(cells), np.nan)
    notes = []
    codes = {label.casefold(): code for code, label in spec.target.categories.items()}
    for i, cell in enumerate(cells):
        text = cell.strip()
        if text in MISSING_TOKENS:
            notes.append(f"{where}:{lines[i]}: no {spec.target.name}; row left out")
        elif spec.task == CLASSIFICATION:
            code = codes.get(_class_label(text).casefold())
            if code is None:
                notes.append(f"{where}:{lines[i]}: {spec.target.name} {text[:40]!r} is not one "
                             f"of the classes ({', '.join(spec.classes)}); row left out")
            else:
                y[i] = code
        elif not NUMBER.fullmatch(text):
            raise UserError(f"{where}:{lines[i]}: {spec.target.name}: {text[:40]!r} is not a number")
        elif not spec.target.minimum <= float(text) <= spec.target.maximum:
            notes.append(f"{where}:{lines[i]}: {spec.target.name} {text} is outside "
                         f"{spec.target.limits_text()}; row left out")
        else:
            y[i] = float(text)
    return y, notes
