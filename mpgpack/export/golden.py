"""The golden set: inputs every artifact must answer like the float64 sklearn pipeline."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from mpgpack.train.fit import TrainedModel
from mpgpack.train.schema import FEATURES, FEATURE_NAMES, NULLABLE_INDEX, ORIGIN_CATEGORIES, ORIGIN_INDEX

TOLERANCE = 1e-4       # max abs error, MPG, allowed for a float32 artifact
N_RANDOM = 1000


@dataclass
class GoldenSet:
    X: np.ndarray          # float32 [N, 7]: exactly what an artifact is fed
    expected: np.ndarray   # float64 [N]: the pipeline on those float32 values, in float64
    groups: list[str]
    actual: np.ndarray     # true MPG for hold-out rows, NaN elsewhere

    def to_json(self) -> dict:
        def clean(v):
            return None if np.isnan(v) else float(v)
        return {"format": 1, "tolerance": TOLERANCE, "features": list(FEATURE_NAMES),
                "inputs": [[clean(v) for v in row] for row in self.X],
                "expected": [float(v) for v in self.expected],
                "actual": [clean(v) for v in self.actual],
                "groups": self.groups}


def _random_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    cols = []
    for f in FEATURES:
        if f.categories:
            cols.append(rng.choice(sorted(f.categories), n).astype(float))
        elif f.integer:
            cols.append(rng.integers(int(f.minimum), int(f.maximum) + 1, n).astype(float))
        else:
            cols.append(np.round(rng.uniform(f.minimum, f.maximum, n), 1))
    return np.column_stack(cols)


def _extreme_rows(median_row: np.ndarray, X_train: np.ndarray) -> np.ndarray:
    rows = []
    for i, f in enumerate(FEATURES):
        for value in (f.minimum, f.maximum, np.nanmin(X_train[:, i]), np.nanmax(X_train[:, i])):
            row = median_row.copy()
            row[i] = value
            rows.append(row)
    return np.array(rows)


def build_golden(trained: TrainedModel, seed: int) -> GoldenSet:
    rng = np.random.default_rng(seed)
    median_row = np.nanmedian(trained.X_train, axis=0)
    median_row[ORIGIN_INDEX] = ORIGIN_CATEGORIES[0]
    hp = NULLABLE_INDEX[0]

    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    def add(group, X, actual=None):
        parts.append((group, X, np.full(len(X), np.nan) if actual is None else actual))

    add("holdout", trained.X_holdout, trained.y_holdout)
    add("random", _random_rows(rng, N_RANDOM))
    missing = trained.X_holdout.copy()
    missing[:, hp] = np.nan
    add("missing_horsepower", missing)
    per_origin = np.repeat(median_row[None, :], len(ORIGIN_CATEGORIES), axis=0)
    per_origin[:, ORIGIN_INDEX] = ORIGIN_CATEGORIES
    add("origin", per_origin)
    add("extremes", _extreme_rows(median_row, trained.X_train))

    X = np.concatenate([p[1] for p in parts]).astype(np.float32)
    groups = [g for g, Xg, _ in parts for _ in range(len(Xg))]
    actual = np.concatenate([p[2] for p in parts])
    return GoldenSet(X, reference_predict(trained.pipeline, X), groups, actual)


def reference_predict(pipeline: Pipeline, X32: np.ndarray) -> np.ndarray:
    """The reference answer: float64 sklearn on exactly the float32 values an artifact sees."""
    return pipeline.predict(X32.astype(np.float64))


def write_golden(golden: GoldenSet, path: Path) -> Path:
    path.write_text(json.dumps(golden.to_json(), separators=(",", ":")))
    return path
