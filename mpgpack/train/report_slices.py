"""Where the model is wrong: its error per slice of the data, with counts, and the slices to
worry about. Generic over the schema: one slice per label of every category feature, and bins of
the numeric features (one per value for a whole-number feature with few values, quantile bins
otherwise), plus a "missing" slice for every feature that may be missing.

The error of a slice is the MAE for a regressor and the error rate (1 − accuracy) for a
classifier; the page shows a classifier's accuracy. Two honest sets of predictions are sliced
side by side:
- "cv": the chosen model's out-of-fold predictions on the training split (each row predicted by
  the fold model that did not see it), so slices have the training split's counts;
- "holdout": the fitted model on the hold-out split, which nothing was chosen on, but which is
  small (a slice may hold a handful of rows or none).
A slice is flagged when its error is more than FLAG_RATIO times the overall error of the same
set (and above zero).
"""
from __future__ import annotations

import numpy as np

from mpgpack.core.outputs import class_index
from mpgpack.core.schema import CLASSIFICATION, Feature, show_number

FLAG_RATIO = 1.5
N_BINS = 4              # quantile bins of a numeric feature
MAX_VALUES = 8          # a whole-number feature with at most this many values: one slice each
MAX_BINNED = 8          # numeric features binned: the most related to the target first


def _label(v: float) -> str:
    return show_number(float(f"{v:.4g}"))


def relevance(col: np.ndarray, y: np.ndarray, task: str) -> float:
    """How much a numeric feature says about the target, to pick which ones to slice and
    plot: |Pearson r| for a regressor, the correlation ratio η² across classes for a
    classifier (0 when undefined, e.g. a constant column)."""
    present = ~np.isnan(col)
    x, t = col[present], y[present]
    if len(x) < 3 or np.ptp(x) == 0:
        return 0.0
    if task == CLASSIFICATION:
        total = np.sum((x - x.mean()) ** 2)
        between = sum(np.sum(t == c) * (x[t == c].mean() - x.mean()) ** 2
                      for c in np.unique(t))
        return float(between / total)
    if np.ptp(t) == 0:
        return 0.0
    return float(abs(np.corrcoef(x, t)[0, 1]))


def numeric_ranking(X: np.ndarray, y: np.ndarray, features: tuple[Feature, ...],
                    task: str) -> list[int]:
    """Indices of the numeric features, most related to the target first (ties: file order)."""
    numeric = [i for i, f in enumerate(features) if not f.is_category]
    score = {i: relevance(X[:, i], y, task) for i in numeric}
    return sorted(numeric, key=lambda i: (-score[i], i))


def _bins(col: np.ndarray, integer: bool) -> list[tuple[str, callable]]:
    present = col[~np.isnan(col)]
    if len(present) == 0:
        return []
    values = np.unique(present)
    if integer and len(values) <= MAX_VALUES:
        return [(_label(v), lambda c, v=v: c == v) for v in values]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, N_BINS + 1)))
    if len(edges) == 1:
        return [(_label(edges[0]), lambda c, v=edges[0]: c == v)]
    out = []
    for k in range(len(edges) - 1):
        lo, hi, last = edges[k], edges[k + 1], k == len(edges) - 2
        # [lo, hi) and the last bin closed, so every present value is in exactly one bin
        out.append((f"{_label(lo)}–{_label(hi)}",
                    lambda c, lo=lo, hi=hi, last=last: (c >= lo) & ((c <= hi) if last else (c < hi))))
    return out


def slice_masks(X_all: np.ndarray, features: tuple[Feature, ...], numeric_order: list[int]
                ) -> list[tuple[str, str, callable]]:
    """(feature name, label, row predicate on X) for every slice. Bins and labels come from the
    whole data set, so the cv and hold-out columns list the same slices; within one feature the
    slices (missing included) cover every row once."""
    binned = set(numeric_order[:MAX_BINNED])
    out = []
    for i, f in enumerate(features):
        if f.is_category:
            for code, label in sorted(f.categories.items()):
                out.append((f.name, label, lambda X, i=i, c=code: X[:, i] == c))
        elif i in binned:
            for label, pred in _bins(X_all[:, i], f.integer):
                out.append((f.name, label, lambda X, i=i, p=pred: p(X[:, i])))
        else:
            continue
        if f.nullable:
            out.append((f.name, "missing", lambda X, i=i: np.isnan(X[:, i])))
    return out


def _errors(y: np.ndarray, pred: np.ndarray, task: str) -> np.ndarray:
    """Per row: absolute error, or 1.0 where the predicted class is wrong."""
    if task == CLASSIFICATION:
        return (class_index(pred) != y.astype(int)).astype(float)
    return np.abs(pred - y)


def _cell(err: np.ndarray, overall: float, task: str) -> dict:
    value = float(np.mean(err)) if len(err) else None
    ratio = None if value is None or not overall else value / overall
    flagged = bool(value is not None and value > 0 and value > FLAG_RATIO * overall)
    cell = {"count": int(len(err))}
    if task == CLASSIFICATION:
        cell["accuracy"] = None if value is None else 1.0 - value
    else:
        cell["mae"] = value
    return {**cell, "ratio": ratio, "flagged": flagged}


def slice_errors(X_all: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                 features: tuple[Feature, ...], task: str, numeric_order: list[int]) -> dict:
    """Error per slice for each named set of (X, y_true, prediction); the manifest's
    report.slices. A prediction is values [n] or class probabilities [n, C]."""
    errors = {name: _errors(y, pred, task) for name, (_, y, pred) in sets.items()}
    metric = "accuracy" if task == CLASSIFICATION else "mae"
    overall = {}
    for name, e in errors.items():
        value = float(np.mean(e))
        overall[name] = {"count": int(len(e)),
                         metric: 1.0 - value if task == CLASSIFICATION else value}
    rows = []
    for feature, label, predicate in slice_masks(X_all, features, numeric_order):
        row = {"by": feature, "label": label}
        for name, (X, _, _) in sets.items():
            row[name] = _cell(errors[name][predicate(X)], float(np.mean(errors[name])), task)
        rows.append(row)
    flagged = [f"{r['by']}={r['label']} ({name}, n={r[name]['count']})" for r in rows
               for name in sets if r[name]["flagged"]]
    error = ("error rate (1 − accuracy); the page shows accuracy" if task == CLASSIFICATION
             else "mean absolute error")
    return {"flag_ratio": FLAG_RATIO, "metric": metric, "error": error,
            "overall": overall, "rows": rows, "flagged": flagged}
