"""Tree ensembles (GradientBoosting, RandomForest, HistGradientBoosting) lowered to TensorFlow ops.

The formulation is Hummingbird's GEMM strategy, with two changes that keep it exact and small:

* A and B (feature selection, then `x <= threshold` for every internal node of every tree at
  once) are a GatherV2 and a LessEqual. A one-hot matrix product would compute the same values
  but turns one NaN input into NaN for every node (NaN * 0 is NaN); the gather copies values
  exactly. A NaN input takes the node's `missing_go_to_left` branch, as in scikit-learn.
* C and D (a leaf is reached when its path's decisions all hold, Hummingbird's `T @ C == D`) are
  evaluated along the paths, one depth level at a time over all trees together: the reach of a
  node is its parent's reach times the parent's decision for that side. A dense C holds
  (internal nodes x leaves) per tree: 255 x 256 for a tree of depth 8, 26 MB per 100 trees,
  almost all zeros. Along the paths, the weights are O(nodes) and a deep or lopsided tree
  (HistGradientBoosting grows by leaves, not by depth) costs one more level, not twice the size.
* E (leaf values, with shrinkage and averaging folded in) is one MatMul over all leaves of all
  trees, plus the ensemble's baseline.

Thresholds: scikit-learn decides `x <= t` with x a float32 input (trees cast X to float32; the
targets feed float32) and t a float64. `float32_thresholds` picks for each t the largest float32
v with v <= t; then for every float32 x, x <= t exactly when x <= v.

Ops: GatherV2, LessEqual, NotEqual, SelectV2, Cast, Sub, ConcatV2, Mul, MatMul, AddV2
(and Sigmoid or Softmax for classifiers' probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)

from mpgpack.export.lowering import (TensorFn, UnsupportedStepError, _refuse, binary_probabilities,
                                     register, softmax)


def float32_thresholds(t64: np.ndarray) -> np.ndarray:
    """For each float64 threshold t, the largest float32 v with v <= t (inf stays inf)."""
    t64 = np.asarray(t64, dtype=np.float64)
    with np.errstate(over="ignore"):
        v = t64.astype(np.float32)
    over = v.astype(np.float64) > t64          # rounded up (or overflowed to +inf): step down
    v[over] = np.nextafter(v[over], np.float32(-np.inf))
    return v


@dataclass
class FlatTree:
    """One fitted tree as plain arrays, node 0 the root; `left`/`right` are -1 at leaves."""
    feature: np.ndarray
    threshold: np.ndarray     # float64, as the estimator compares
    missing_left: np.ndarray  # bool: where a NaN input goes
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray         # [nodes, outputs] float64, what a leaf adds to the outputs


def _depths(tree: FlatTree) -> np.ndarray:
    depth = np.zeros(len(tree.left), dtype=np.int64)
    stack = [0]
    while stack:
        node = stack.pop()
        if tree.left[node] >= 0:
            depth[tree.left[node]] = depth[tree.right[node]] = depth[node] + 1
            stack += [tree.left[node], tree.right[node]]
    return depth


@dataclass
class _Level:
    """The nodes at one depth, over all trees: where each one's decision and parent are."""
    decision: np.ndarray      # column of [T, 1 - T] holding "the parent went this way"
    parent_pos: np.ndarray    # the parent's position in the previous level
    leaf_pos: np.ndarray      # positions of this level's leaves


class TreeTensors:
    """The arrays of the level-wise GEMM formulation for a list of trees with a shared output."""

    def __init__(self, trees: list[FlatTree], n_outputs: int):
        self.bias = np.zeros(n_outputs)
        self.n_trees, self.n_constant_trees = len(trees), 0
        internal: dict[tuple[int, int], int] = {}
        feature, threshold, missing_left = [], [], []
        by_level: dict[int, list[tuple[int, int, int, bool]]] = {}  # (tree, node, parent, right)
        for t, tree in enumerate(trees):
            depth = _depths(tree)
            for node in np.flatnonzero(tree.left >= 0):
                internal[t, node] = len(feature)
                feature.append(tree.feature[node])
                threshold.append(tree.threshold[node])
                missing_left.append(bool(tree.missing_left[node]))
                for child, right in ((tree.left[node], False), (tree.right[node], True)):
                    by_level.setdefault(depth[child], []).append((t, child, node, right))
            if tree.left[0] < 0:                 # a single leaf: a constant
                self.bias += tree.value[0]
                self.n_constant_trees += 1
        self.feature = np.asarray(feature, dtype=np.int32)
        self.threshold_f64 = np.asarray(threshold, dtype=np.float64)
        self.threshold = float32_thresholds(self.threshold_f64)
        self.missing_left = np.asarray(missing_left, dtype=bool)
        self.levels, self.leaf_tree, self.leaf_node, values = [], [], [], []
        previous: dict[tuple[int, int], int] = {}
        for k in sorted(by_level):
            nodes = by_level[k]
            n_internal = len(self.feature)
            decision = [internal[t, p] + n_internal * right for t, _, p, right in nodes]
            parent_pos = [previous.get((t, p), 0) for t, _, p, _ in nodes]
            leaf_pos = [i for i, (t, n, _, _) in enumerate(nodes) if trees[t].left[n] < 0]
            for i in leaf_pos:
                t, n = nodes[i][0], nodes[i][1]
                self.leaf_tree.append(t)
                self.leaf_node.append(n)
                values.append(trees[t].value[n])
            self.levels.append(_Level(np.asarray(decision, np.int32), np.asarray(parent_pos, np.int32),
                                      np.asarray(leaf_pos, np.int32)))
            previous = {(t, n): i for i, (t, n, _, _) in enumerate(nodes)}
        self.leaf_values = np.asarray(values, dtype=np.float64).reshape(-1, n_outputs)

    def leaf_indicator(self) -> TensorFn:
        """x [N, F] -> [N, leaves]: 1.0 where the row reaches the leaf (order: leaf_tree/leaf_node)."""
        feature, threshold = tf.constant(self.feature), tf.constant(self.threshold)
        missing_left = tf.constant(self.missing_left[np.newaxis, :].astype(np.float32))
        levels = [tuple(tf.constant(a) for a in (lv.decision, lv.parent_pos, lv.leaf_pos))
                  for lv in self.levels]

        def run(x):
            xs = tf.gather(x, feature, axis=1)                       # A: [N, internal nodes]
            # B: x != x is true exactly for NaN (builtin NotEqual; tf.math.is_nan is not a builtin).
            # Selected as float32, not bool: TF.js's wasm backend reads a bool SelectV2 out of
            # bounds ("memory access out of bounds" at the Cast after it; 4.22).
            t = tf.where(tf.not_equal(xs, xs), missing_left,
                         tf.cast(tf.less_equal(xs, threshold), tf.float32))
            sides = tf.concat([t, 1.0 - t], axis=1)                   # went left | went right
            reach, leaves = None, []
            for decision, parent_pos, leaf_pos in levels:            # C/D along the paths
                step = tf.gather(sides, decision, axis=1)
                reach = step if reach is None else tf.gather(reach, parent_pos, axis=1) * step
                leaves.append(tf.gather(reach, leaf_pos, axis=1))
            return tf.concat(leaves, axis=1) if len(leaves) > 1 else leaves[0]
        return run

    def outputs(self) -> TensorFn:
        """x [N, F] -> [N, outputs]: the sum over trees of the reached leaves' values, plus bias."""
        if not self.levels:                                          # every tree a single leaf
            bias = tf.constant(self.bias.astype(np.float32)[np.newaxis, :])
            return lambda x: tf.zeros_like(x[:, :1]) + bias
        indicator = self.leaf_indicator()
        e = tf.constant(self.leaf_values.astype(np.float32))
        bias = tf.constant(self.bias.astype(np.float32))
        return lambda x: tf.matmul(indicator(x), e) + bias


# --- scikit-learn trees as FlatTree ------------------------------------------------------------

def _sklearn_tree(tree, value: np.ndarray) -> FlatTree:
    """A fitted sklearn Tree (tree_) with the given per-node output values [nodes, outputs]."""
    return FlatTree(tree.feature.astype(np.int64), tree.threshold, tree.missing_go_to_left.astype(bool),
                    tree.children_left, tree.children_right, value)


def _hgb_tree(predictor, column: int, n_outputs: int) -> FlatTree:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    value = np.zeros((len(nodes), n_outputs))
    value[:, column] = nodes["value"]
    return FlatTree(nodes["feature_idx"].astype(np.int64), nodes["num_threshold"],
                    nodes["missing_go_to_left"].astype(bool),
                    np.where(leaf, -1, nodes["left"].astype(np.int64)),
                    np.where(leaf, -1, nodes["right"].astype(np.int64)), value)


def _check_single_output(est):
    if getattr(est, "n_outputs_", 1) != 1:
        _refuse(est, f"n_outputs_={est.n_outputs_} (only one target)")


def _gb_tensors(gb) -> TreeTensors:
    """GradientBoosting's raw scores: init + learning_rate * sum of the trees of each column."""
    if not (gb.init_ == "zero" or isinstance(gb.init_, (DummyRegressor, DummyClassifier))):
        _refuse(gb, f"init={type(gb.init_).__name__} (only the default or 'zero')")
    n_columns = gb.estimators_.shape[1]
    trees = []
    for stage in gb.estimators_:
        for k, est in enumerate(stage):
            value = np.zeros((est.tree_.node_count, n_columns))
            value[:, k] = gb.learning_rate * est.tree_.value[:, 0, 0]
            trees.append(_sklearn_tree(est.tree_, value))
    tensors = TreeTensors(trees, n_columns)
    tensors.bias += np.asarray(gb._raw_predict_init(np.zeros((1, gb.n_features_in_))))[0]
    return tensors


def _forest_tensors(forest, classifier: bool) -> TreeTensors:
    """RandomForest's average over trees, the 1/n_trees folded into the leaf values."""
    _check_single_output(forest)
    n = len(forest.estimators_)
    trees = []
    for est in forest.estimators_:
        value = est.tree_.value[:, 0, :]
        if classifier:                   # a tree's predict_proba: the leaf's class fractions
            value = value / value.sum(axis=1, keepdims=True)
        trees.append(_sklearn_tree(est.tree_, value / n))
    return TreeTensors(trees, trees[0].value.shape[1])


def _hgb_tensors(hgb) -> TreeTensors:
    if hgb.is_categorical_ is not None and np.any(hgb.is_categorical_):
        _refuse(hgb, "categorical_features (categorical splits)")
    k = hgb.n_trees_per_iteration_
    trees = [_hgb_tree(p, col, k) for stage in hgb._predictors for col, p in enumerate(stage)]
    tensors = TreeTensors(trees, k)
    tensors.bias += np.asarray(hgb._baseline_prediction, dtype=np.float64).reshape(-1)
    return tensors


def ensemble_tensors(est) -> TreeTensors:
    """The tensors of a supported ensemble; its raw scores (regressors: the prediction)."""
    if isinstance(est, (GradientBoostingRegressor, GradientBoostingClassifier)):
        return _gb_tensors(est)
    if isinstance(est, (RandomForestRegressor, RandomForestClassifier)):
        return _forest_tensors(est, classifier=isinstance(est, RandomForestClassifier))
    if isinstance(est, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
        return _hgb_tensors(est)
    raise UnsupportedStepError(f"{type(est).__name__} is not a supported tree ensemble")


# --- estimator lowerings -----------------------------------------------------------------------

def _identity_link(est):
    link = type(est._loss.link).__name__
    if link != "IdentityLink":
        _refuse(est, f"loss={est.loss!r} ({link} of the raw score)")


@register(GradientBoostingRegressor)
def lower_gradient_boosting_regressor(gb: GradientBoostingRegressor) -> TensorFn:
    return _gb_tensors(gb).outputs()


@register(RandomForestRegressor)
def lower_random_forest_regressor(forest: RandomForestRegressor) -> TensorFn:
    return _forest_tensors(forest, classifier=False).outputs()


@register(HistGradientBoostingRegressor)
def lower_hist_gradient_boosting_regressor(hgb: HistGradientBoostingRegressor) -> TensorFn:
    _identity_link(hgb)
    return _hgb_tensors(hgb).outputs()


def _probabilities(raw: TensorFn, n_columns: int) -> TensorFn:
    """Class probabilities [N, C] from raw scores: sigmoid of one column, or softmax."""
    if n_columns == 1:
        return lambda x: binary_probabilities(tf.sigmoid(raw(x)))
    return lambda x: softmax(raw(x))


def _check_log_loss(est):
    if est.loss != "log_loss":
        _refuse(est, f"loss={est.loss!r} (only 'log_loss')")


@register(GradientBoostingClassifier)
def lower_gradient_boosting_classifier(gb: GradientBoostingClassifier) -> TensorFn:
    _check_log_loss(gb)
    return _probabilities(_gb_tensors(gb).outputs(), gb.estimators_.shape[1])


@register(HistGradientBoostingClassifier)
def lower_hist_gradient_boosting_classifier(hgb: HistGradientBoostingClassifier) -> TensorFn:
    _check_log_loss(hgb)
    return _probabilities(_hgb_tensors(hgb).outputs(), hgb.n_trees_per_iteration_)


@register(RandomForestClassifier)
def lower_random_forest_classifier(forest: RandomForestClassifier) -> TensorFn:
    return _forest_tensors(forest, classifier=True).outputs()
