"""Tree thresholds in the ONNX graph that decide exactly as scikit-learn does.

skl2onnx stores each split threshold t (a float64 in scikit-learn) as the NEAREST float32,
which may lie above t: a float32 input x with t < x <= float32(t) then goes left in ONNX
Runtime and right in scikit-learn. It happens for real: HistGradientBoosting places thresholds
on data values once a feature has more distinct values than bins (4.879 is stored as
4.87900019, and the input 4.879 as float32 is 4.87900019). The fix is the one the TFLite/TF.js
lowering uses: the largest float32 v <= t (lowering_trees.float32_thresholds), for which x <= t
exactly when x <= v.

Each ONNX tree node is matched to its scikit-learn node by (tree id, node id) and checked
(same feature, and the stored value is float32(t)) before it is changed; a graph that does
not match the expected layout is left as it is (the parity gate then judges it).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)

from mpgpack.export.lowering_trees import float32_thresholds

TREE_OPS = ("TreeEnsembleRegressor", "TreeEnsembleClassifier")


def _tree_arrays(est) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """The ensemble's trees as (feature, threshold) arrays by node id, in each tree order
    skl2onnx may use: stage-major and class-major (the same for one tree per stage)."""
    def sk(tree):
        return tree.feature.astype(np.int64), tree.threshold.astype(np.float64)

    def hgb(p):
        return p.nodes["feature_idx"].astype(np.int64), p.nodes["num_threshold"].astype(np.float64)

    if isinstance(est, (RandomForestRegressor, RandomForestClassifier)):
        return [[sk(e.tree_) for e in est.estimators_]]
    if isinstance(est, (GradientBoostingRegressor, GradientBoostingClassifier)):
        grid = [[sk(e.tree_) for e in stage] for stage in est.estimators_]
    elif isinstance(est, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
        grid = [[hgb(p) for p in stage] for stage in est._predictors]
    else:
        return []
    stage_major = [t for stage in grid for t in stage]
    class_major = [grid[s][k] for k in range(len(grid[0])) for s in range(len(grid))]
    return [stage_major, class_major]


def exact_thresholds(onx: onnx.ModelProto, estimator) -> int:
    """Rewrites the thresholds of the graph's tree-ensemble node in place; returns how many
    changed (0 when the node or the layout is not the expected one)."""
    nodes = [n for n in onx.graph.node if n.op_type in TREE_OPS]
    orders = _tree_arrays(estimator)
    if len(nodes) != 1 or not orders:
        return 0
    node = nodes[0]
    attrs = {a.name: a for a in node.attribute}
    get = {k: helper.get_attribute_value(attrs[k]) for k in
           ("nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_values", "nodes_featureids")}
    split = np.array([m == b"BRANCH_LEQ" for m in get["nodes_modes"]])
    if not all(m in (b"BRANCH_LEQ", b"LEAF") for m in get["nodes_modes"]):
        return 0
    tid, nid = np.array(get["nodes_treeids"]), np.array(get["nodes_nodeids"])
    stored = np.array(get["nodes_values"], dtype=np.float32)
    feat = np.array(get["nodes_featureids"])
    for trees in orders:
        if tid.max(initial=0) >= len(trees):
            continue
        t64 = np.array([trees[t][1][n] if s else 0.0 for t, n, s in zip(tid, nid, split)])
        f = np.array([trees[t][0][n] if s else 0 for t, n, s in zip(tid, nid, split)])
        if np.array_equal(t64[split].astype(np.float32), stored[split]) and \
                np.array_equal(f[split], feat[split]):
            exact = stored.copy()
            exact[split] = float32_thresholds(t64[split])
            attrs["nodes_values"].CopyFrom(helper.make_attribute("nodes_values", exact.tolist()))
            return int((exact != stored).sum())
    return 0
