"""Where the model is wrong: MAE per slice of the data, with counts, and the slices to worry about.

Two honest sets of predictions are sliced side by side:
- "cv": the chosen MLP's out-of-fold predictions on the training split (each row predicted by
  the fold model that did not see it), so slices have the training split's counts;
- "holdout": the fitted model on the hold-out split, which nothing was chosen on, but which
  is small (a slice may hold a handful of cars or none).
A slice is flagged when its MAE is more than FLAG_RATIO times the overall MAE of the same set.
"""
from __future__ import annotations

import numpy as np

from mpgpack.train.schema import FEATURE_NAMES, FEATURES, NULLABLE_INDEX, ORIGIN_INDEX

FLAG_RATIO = 1.5
N_YEAR_RANGES = 4
CYLINDERS = FEATURE_NAMES.index("cylinders")
MODEL_YEAR = FEATURE_NAMES.index("model_year")
HORSEPOWER = NULLABLE_INDEX[0]


def year_ranges(years: np.ndarray, n: int = N_YEAR_RANGES) -> list[tuple[int, int]]:
    """Consecutive model-year ranges of about equal width covering the observed years."""
    present = np.unique(years[~np.isnan(years)]).astype(int)
    span = np.arange(present.min(), present.max() + 1)
    return [(int(part[0]), int(part[-1])) for part in np.array_split(span, min(n, len(span)))]


def slice_masks(X_all: np.ndarray) -> list[tuple[str, str, callable]]:
    """(slice family, label, row predicate) for every slice; labels come from the whole data set
    so the cv and hold-out columns list the same slices."""
    out = []
    for code, name in FEATURES[ORIGIN_INDEX].categories.items():
        out.append(("origin", name, lambda X, c=code: X[:, ORIGIN_INDEX] == c))
    for cyl in np.unique(X_all[:, CYLINDERS]).astype(int):
        out.append(("cylinders", str(cyl), lambda X, c=cyl: X[:, CYLINDERS] == c))
    for lo, hi in year_ranges(X_all[:, MODEL_YEAR]):
        label = f"{lo}–{hi}" if lo != hi else f"{lo}"
        out.append(("model_year", label,
                    lambda X, lo=lo, hi=hi: (X[:, MODEL_YEAR] >= lo) & (X[:, MODEL_YEAR] <= hi)))
    out.append(("horsepower", "missing", lambda X: np.isnan(X[:, HORSEPOWER])))
    out.append(("horsepower", "present", lambda X: ~np.isnan(X[:, HORSEPOWER])))
    return out


def _mae(err: np.ndarray) -> float | None:
    return float(np.mean(np.abs(err))) if len(err) else None


def _cell(err: np.ndarray, overall: float) -> dict:
    mae = _mae(err)
    ratio = None if mae is None else mae / overall
    return {"count": int(len(err)), "mae": mae, "ratio": ratio,
            "flagged": bool(ratio is not None and ratio > FLAG_RATIO)}


def slice_errors(X_all: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
                 ) -> dict:
    """MAE per slice for each named set of (X, y_true, y_pred); the manifest's report.slices."""
    errors = {name: pred - y for name, (X, y, pred) in sets.items()}
    overall = {name: {"count": int(len(e)), "mae": _mae(e)} for name, e in errors.items()}
    rows = []
    for family, label, predicate in slice_masks(X_all):
        row = {"by": family, "label": label}
        for name, (X, _, _) in sets.items():
            row[name] = _cell(errors[name][predicate(X)], overall[name]["mae"])
        rows.append(row)
    flagged = [f"{r['by']}={r['label']} ({name}, n={r[name]['count']})" for r in rows
               for name in sets if r[name]["flagged"]]
    return {"flag_ratio": FLAG_RATIO, "error": "mean absolute error, MPG",
            "overall": overall, "rows": rows, "flagged": flagged}
