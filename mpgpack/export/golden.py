"""The golden set: inputs every artifact must answer like the float64 sklearn pipeline.

Generated from the schema, so any model gets the same kinds of rows: the hold-out rows,
seeded random rows inside the hard limits (some missing where a feature may be), the hold-out
with each nullable feature missing, every category of every category feature, and each
feature at its hard limits and at its training extremes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from mpgpack.core.schema import Schema
from mpgpack.train.fit import TrainedModel
from mpgpack.train.tune import predict_output

TOLERANCE = 1e-4       # max abs error allowed for a float32 artifact (output unit / probability)
# A regressor whose target runs into the hundreds or millions cannot be held to 1e-4 absolute:
# float32 carries 24 bits, so a value of 300 is only stored to ~3e-5, and summing hundreds of
# trees in float32 moves it by a few of those. Its tolerance is 2e-6 of the largest training
# target (about 17 float32 units in the last place) when that is above 1e-4; the MPG model
# (largest 46.6 MPG) keeps 1e-4. Probabilities are bounded by 1: always 1e-4.
RELATIVE_TOLERANCE = 2e-6
N_RANDOM = 1000
MISSING_SHARE = 0.1    # of the random rows' values of a nullable feature


@dataclass
class GoldenSet:
    X: np.ndarray          # float32 [N, F]: exactly what an artifact is fed
    expected: np.ndarray   # float64 [N] values or [N, C] probabilities: the pipeline on X
    groups: list[str]
    actual: np.ndarray     # true value (class index) for hold-out rows, NaN elsewhere
    features: list[str]
    tolerance: float = TOLERANCE

    def to_json(self) -> dict:
        def clean(v):
            return None if np.isnan(v) else float(v)
        return {"format": 1, "tolerance": self.tolerance, "features": self.features,
                "inputs": [[clean(v) for v in row] for row in self.X],
                "expected": self.expected.tolist(),
                "actual": [clean(v) for v in self.actual],
                "groups": self.groups}


def _random_rows(rng: np.random.Generator, schema: Schema, n: int) -> np.ndarray:
    cols = []
    for f in schema:
        if f.is_category:
            col = rng.choice(sorted(f.categories), n).astype(float)
        elif f.integer:
            col = rng.integers(int(f.minimum), int(f.maximum) + 1, n).astype(float)
        else:
            col = np.round(rng.uniform(f.minimum, f.maximum, n), 1)
            col = np.clip(col, f.minimum, f.maximum)
        if f.nullable:
            col[rng.random(n) < MISSING_SHARE] = np.nan
        cols.append(col)
    return np.column_stack(cols)


def _median_row(schema: Schema, X_train: np.ndarray) -> np.ndarray:
    row = np.nanmedian(X_train, axis=0)
    for i, f in enumerate(schema):
        if f.is_category:
            row[i] = sorted(f.categories)[0]
        elif f.integer:
            row[i] = np.round(row[i])
    return row


def _extreme_rows(schema: Schema, median_row: np.ndarray, X_train: np.ndarray) -> np.ndarray:
    rows = []
    for i, f in enumerate(schema):
        if f.is_category:
            continue
        for value in (f.minimum, f.maximum, np.nanmin(X_train[:, i]), np.nanmax(X_train[:, i])):
            row = median_row.copy()
            row[i] = value
            rows.append(row)
    return np.array(rows).reshape(-1, len(schema))


def build_golden(trained: TrainedModel, seed: int) -> GoldenSet:
    schema = trained.spec.schema
    rng = np.random.default_rng(seed)
    median_row = _median_row(schema, trained.X_train)

    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    def add(group, X, actual=None):
        if len(X):
            parts.append((group, X, np.full(len(X), np.nan) if actual is None else actual))

    add("holdout", trained.X_holdout, trained.y_holdout)
    add("random", _random_rows(rng, schema, N_RANDOM))
    for i, f in enumerate(schema):
        if f.nullable:
            missing = trained.X_holdout.copy()
            missing[:, i] = np.nan
            add(f"missing_{f.name}", missing)
    for i, f in enumerate(schema):
        if f.is_category:
            rows = np.repeat(median_row[None, :], len(f.categories), axis=0)
            rows[:, i] = sorted(f.categories)
            add(f.name, rows)
    add("extremes", _extreme_rows(schema, median_row, trained.X_train))

    X = _inside_limits(schema, np.concatenate([p[1] for p in parts]).astype(np.float32))
    groups = [g for g, Xg, _ in parts for _ in range(len(Xg))]
    actual = np.concatenate([p[2] for p in parts])
    return GoldenSet(X, reference_predict(trained.pipeline, X, schema.task), groups, actual,
                     list(schema.names), tolerance_for(trained))


def tolerance_for(trained: TrainedModel) -> float:
    if trained.spec.schema.is_classifier:
        return TOLERANCE
    return max(TOLERANCE, RELATIVE_TOLERANCE * float(np.max(np.abs(trained.y_train))))


def _inside_limits(schema: Schema, X32: np.ndarray) -> np.ndarray:
    """A limit like 4.9 has no float32: its nearest (4.900000095…) lies outside, and every
    target would refuse the row. Values at a limit become the nearest float32 inside it."""
    with np.errstate(invalid="ignore"):
        for i, f in enumerate(schema):
            lo, hi = np.float32(f.minimum), np.float32(f.maximum)
            if float(lo) < f.minimum:
                lo = np.nextafter(lo, np.float32(np.inf))
            if float(hi) > f.maximum:
                hi = np.nextafter(hi, np.float32(-np.inf))
            col = X32[:, i]
            X32[:, i] = np.where(col > hi, hi, np.where(col < lo, lo, col))
    return X32


def reference_predict(pipeline: Pipeline, X32: np.ndarray, task: str) -> np.ndarray:
    """The reference answer: float64 sklearn on exactly the float32 values an artifact sees."""
    return predict_output(pipeline, X32.astype(np.float64), task)


def write_golden(golden: GoldenSet, path: Path) -> Path:
    path.write_text(json.dumps(golden.to_json(), separators=(",", ":")))
    return path

