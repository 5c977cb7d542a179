"""A StandardScaler in front of a tree ensemble, folded into the trees' thresholds.

Why: scikit-learn scales in float64, then a tree compares the scaled value (GradientBoosting and
RandomForest cast it to float32 first) with a float64 threshold. A float32 artifact scales in
float32, and its scaled value may differ from sklearn's by an ulp. Thresholds often lie within
an ulp of a training value (the midpoint of two values one ulp apart), so rows at such a value
take the other branch: a whole tree's leaf off, errors of 0.1-20 where the tolerance is 1e-4.

Scaling is monotone, so "scaled(x) <= t" is "x <= v" for the largest float32 v with
scaled(v) <= t, where scaled() is sklearn's own float64 arithmetic. The folded pipeline's trees
read the raw float32 input and compare it with v exactly: ONNX, TFLite and TF.js then take
sklearn's branch on every input, with no scaling op at all.

Only the plain layout is folded: Pipeline([StandardScaler or a ColumnTransformer of
StandardScalers / passthrough on integer columns, a tree ensemble]). Anything else is exported
as it is.
"""
from __future__ import annotations

import copy

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# (estimator types, whether sklearn casts the scaled values to float32 before comparing)
_TREES_F32 = (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
              RandomForestRegressor)
_TREES_F64 = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)


def _key(x32: np.ndarray) -> np.ndarray:
    """float32 -> int64 in the same order (-0.0 and 0.0 both 0)."""
    i = x32.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(i >= 0, i, -(i & 0x7FFFFFFF))


def _value(key: np.ndarray) -> np.ndarray:
    i = np.where(key >= 0, key, (-key) | 0x80000000).astype(np.uint32)
    return i.view(np.float32)


def raw_thresholds(t: np.ndarray, mean: np.ndarray, scale: np.ndarray, cast32: bool) -> np.ndarray:
    """For each threshold t on a scaled column: the largest float32 v with scaled(v) <= t,
    scaled(x) = (x - mean) / scale in float64 as StandardScaler.transform computes it (then cast
    to float32 when the trees do). +inf stays +inf (a split that only sends NaN right)."""
    t, mean, scale = (np.asarray(a, dtype=np.float64) for a in (t, mean, scale))

    def goes_left(key):
        z = (_value(key).astype(np.float64) - mean) / scale
        return (z.astype(np.float32) if cast32 else z) <= t

    lo = np.full(t.shape, _key(np.array([-np.inf], np.float32))[0])   # goes left, unless t=-inf
    hi = np.full(t.shape, _key(np.array([np.inf], np.float32))[0])
    left_at_hi = goes_left(hi)
    while np.any(hi - lo > 1):                 # invariant: lo goes left, hi does not
        mid = (lo + hi) // 2
        left = goes_left(mid)
        lo, hi = np.where(left, mid, lo), np.where(left, hi, mid)
    return np.where(left_at_hi, np.inf, _value(lo)).astype(np.float64)


def _column_map(step, n_inputs: int) -> list[tuple[int, float, float]] | None:
    """For each output column of the scaling step: (input column, mean, scale); None when the
    step is not a plain StandardScaler layout."""
    def scaler_params(sc: StandardScaler):
        n = sc.n_features_in_
        return (sc.mean_ if sc.with_mean else np.zeros(n), sc.scale_ if sc.with_std else np.ones(n))

    if isinstance(step, StandardScaler):
        mean, scale = scaler_params(step)
        return [(c, mean[c], scale[c]) for c in range(n_inputs)]
    if not isinstance(step, ColumnTransformer):
        return None
    out = []
    for _, trans, cols in step.transformers_:
        idx = np.asarray(cols)
        if trans == "drop" or len(idx) == 0:
            continue
        if idx.dtype.kind not in "iu":
            return None
        if trans == "passthrough":
            out += [(int(c), 0.0, 1.0) for c in idx]
        elif isinstance(trans, StandardScaler):
            mean, scale = scaler_params(trans)
            out += [(int(c), mean[k], scale[k]) for k, c in enumerate(idx)]
        else:
            return None
    return out


def _fold_nodes(feature, threshold, internal, columns, cast32: bool) -> None:
    """Rewrites one tree's (writable) feature and threshold arrays in place."""
    nodes = np.flatnonzero(internal)
    j = feature[nodes].astype(np.int64)
    col = np.array([columns[k][0] for k in j], dtype=np.int64)
    mean = np.array([columns[k][1] for k in j])
    scale = np.array([columns[k][2] for k in j])
    threshold[nodes] = raw_thresholds(threshold[nodes], mean, scale, cast32)
    feature[nodes] = col


def fold_scaler_into_trees(pipeline):
    """The pipeline as float32 artifacts should compute it: Pipeline([scaling, trees]) becomes
    Pipeline([trees on the raw columns]); any other pipeline is returned unchanged."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return pipeline
    (_, scaling), (name, trees) = pipeline.steps
    if not isinstance(trees, _TREES_F32 + _TREES_F64):
        return pipeline
    n_inputs = scaling.n_features_in_
    columns = _column_map(scaling, n_inputs)
    if columns is None:
        return pipeline
    folded = copy.deepcopy(trees)
    cast32 = isinstance(trees, _TREES_F32)
    if isinstance(folded, _TREES_F64):
        for stage in folded._predictors:
            for predictor in stage:
                nodes = predictor.nodes
                _fold_nodes(nodes["feature_idx"], nodes["num_threshold"], ~nodes["is_leaf"].astype(bool),
                            columns, cast32)
    else:
        for est in np.ravel(folded.estimators_):
            tree = est.tree_
            _fold_nodes(tree.feature, tree.threshold, tree.children_left >= 0, columns, cast32)
            est.n_features_in_ = n_inputs
    folded.n_features_in_ = n_inputs
    return Pipeline([(name, folded)])
