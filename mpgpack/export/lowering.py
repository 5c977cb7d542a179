"""Lowering a fitted sklearn pipeline to TensorFlow ops, one function per supported step.

Like skl2onnx's `operator_converters/`: each lowering is registered by estimator type, takes
the fitted estimator and returns a function from a float32 tensor to a float32 tensor. A step
with no registered lowering (or an option a lowering does not implement) is refused with an
error that names it, instead of producing a graph that silently computes something else.

Only ops that TFLite builtins and TF.js graph models both implement are used: GatherV2,
NotEqual, SelectV2, Sub, Mul, Equal, Cast, ConcatV2, MatMul, AddV2, Relu/Tanh/Sigmoid; the tree
ensembles (lowering_trees.py) add LessEqual and, for multiclass probabilities, Softmax.

A regressor's lowering returns [N, 1]; a classifier's returns its predict_proba, [N, C] with
C >= 2 (a binary model's one score becomes [1 - p, p], as scikit-learn does).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

TensorFn = Callable[[tf.Tensor], tf.Tensor]
LOWERINGS: dict[type, Callable[[object], TensorFn]] = {}


class UnsupportedStepError(ValueError):
    """The pipeline holds a step (or a setting of a step) that has no TensorFlow lowering."""


def register(*types: type):
    def wrap(fn):
        for t in types:
            LOWERINGS[t] = fn
        return fn
    return wrap


def lower(estimator) -> TensorFn:
    """Returns the TensorFlow function computing `estimator`'s transform or prediction."""
    fn = LOWERINGS.get(type(estimator))
    if fn is None:
        supported = ", ".join(sorted(t.__name__ for t in LOWERINGS))
        raise UnsupportedStepError(
            f"no TensorFlow lowering for step {type(estimator).__name__}; supported: {supported}")
    return fn(estimator)


def lower_pipeline(pipeline: Pipeline) -> TensorFn:
    """The whole fitted pipeline as one function: raw features [N, F] -> its output tensor
    (a regressor's predictions [N, 1], a classifier's probabilities [N, C]). A StandardScaler
    in front of a tree ensemble is folded into its thresholds first (fold_scaler.py: exact
    branches where float32 scaling would be an ulp off)."""
    from mpgpack.export.fold_scaler import fold_scaler_into_trees
    return lower(fold_scaler_into_trees(pipeline))


def _f32(a) -> tf.Tensor:
    return tf.constant(np.asarray(a, dtype=np.float32))


def _refuse(estimator, setting: str):
    raise UnsupportedStepError(f"step {type(estimator).__name__}: {setting} has no TensorFlow lowering")


@register(Pipeline)
def lower_sequence(pipe: Pipeline) -> TensorFn:
    steps = [lower(step) for _, step in pipe.steps if step not in (None, "passthrough")]

    def run(x):
        for step in steps:
            x = step(x)
        return x
    return run


@register(ColumnTransformer)
def lower_column_transformer(ct: ColumnTransformer) -> TensorFn:
    parts = []
    for name, trans, cols in ct.transformers_:
        if trans == "drop" or len(cols) == 0:
            continue
        idx = np.asarray(cols)
        if idx.dtype.kind not in "iu":
            _refuse(ct, f"column selector of '{name}' (only integer column indices are lowered)")
        inner = (lambda x: x) if trans == "passthrough" else lower(trans)
        parts.append((tf.constant(idx.astype(np.int32)), inner))

    def run(x):
        return tf.concat([inner(tf.gather(x, idx, axis=1)) for idx, inner in parts], axis=1)
    return run


@register(FunctionTransformer)
def lower_function_transformer(ft: FunctionTransformer) -> TensorFn:
    # A fitted ColumnTransformer holds its "passthrough" columns as FunctionTransformer()
    # (no function): the identity. Any real function has no lowering.
    if ft.func is not None:
        _refuse(ft, f"func={getattr(ft.func, '__name__', ft.func)!r} (only the identity)")
    return lambda x: x


@register(SimpleImputer)
def lower_simple_imputer(imp: SimpleImputer) -> TensorFn:
    if not (isinstance(imp.missing_values, float) and np.isnan(imp.missing_values)):
        _refuse(imp, f"missing_values={imp.missing_values!r} (only NaN)")
    if imp.add_indicator:
        _refuse(imp, "add_indicator=True")
    # statistics_ is the fill value of every strategy (mean, median, most_frequent, constant);
    # most_frequent on a category-code column fills in the most frequent code.
    try:    # strategy 'constant' keeps an object array, even for a numeric fill_value
        stats = np.asarray(imp.statistics_).astype(np.float64)
    except (TypeError, ValueError):
        _refuse(imp, f"fill value {imp.fill_value!r} (only numbers)")
    # A column all NaN at fit time has no statistic: sklearn drops it from the output (unless
    # keep_empty_features, or strategy 'constant', which fills it).
    keep = np.flatnonzero(~np.isnan(stats)) if np.isnan(stats).any() else None
    fill = _f32(stats if keep is None else stats[keep])[tf.newaxis, :]
    kept = None if keep is None else tf.constant(keep.astype(np.int32))

    def run(x):
        if kept is not None:
            x = tf.gather(x, kept, axis=1)
        # x != x is true exactly for NaN; it lowers to builtin NotEqual everywhere, where
        # tf.math.is_nan would need TF Select ops in TFLite.
        return tf.where(tf.not_equal(x, x), fill, x)
    return run


@register(StandardScaler)
def lower_standard_scaler(sc: StandardScaler) -> TensorFn:
    n = sc.n_features_in_
    mean = _f32(sc.mean_ if sc.with_mean else np.zeros(n))
    scale = _f32(sc.scale_ if sc.with_std else np.ones(n))
    inv = 1.0 / scale

    def run(x):
        return (x - mean) * inv
    return run


@register(OneHotEncoder)
def lower_one_hot(enc: OneHotEncoder) -> TensorFn:
    if enc.drop is not None:
        _refuse(enc, f"drop={enc.drop!r}")
    if enc.handle_unknown != "ignore":
        # 'error' cannot raise inside a graph; the targets refuse unknown categories up front.
        _refuse(enc, f"handle_unknown={enc.handle_unknown!r} (only 'ignore')")
    if getattr(enc, "_infrequent_enabled", False):
        _refuse(enc, "infrequent categories")
    cats = [_f32(c)[tf.newaxis, :] for c in enc.categories_]

    def run(x):
        cols = [tf.cast(tf.equal(x[:, j:j + 1], c), tf.float32) for j, c in enumerate(cats)]
        return tf.concat(cols, axis=1) if len(cols) > 1 else cols[0]
    return run


_ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.tanh, "logistic": tf.sigmoid,
                "identity": lambda x: x}


def _mlp_layers(mlp, out: TensorFn | None = None) -> TensorFn:
    """The network's forward pass; the last layer goes through `out` (default: the network's
    own out_activation_)."""
    acts = (mlp.activation,) if out is not None else (mlp.activation, mlp.out_activation_)
    for act in acts:
        if act not in _ACTIVATIONS:
            _refuse(mlp, f"activation {act!r}")
    out = out or _ACTIVATIONS[mlp.out_activation_]
    hidden = _ACTIVATIONS[mlp.activation]
    # Hidden tanh as 2 * sigmoid(2z) - 1, the 2 folded into the layer's weights: TF.js fuses the
    # activation into its MatMul kernel, which implements sigmoid but not tanh.
    twice = [2.0 if mlp.activation == "tanh" and i < len(mlp.coefs_) - 1 else 1.0
             for i in range(len(mlp.coefs_))]
    if mlp.activation == "tanh":
        hidden = lambda z: 2.0 * tf.sigmoid(z) - 1.0   # noqa: E731
    layers = [(_f32(k * w), _f32(k * b)) for k, w, b in zip(twice, mlp.coefs_, mlp.intercepts_)]

    def run(x):
        for i, (w, b) in enumerate(layers):
            x = tf.matmul(x, w) + b
            x = hidden(x) if i < len(layers) - 1 else out(x)
        return x
    return run


@register(MLPRegressor)
def lower_mlp_regressor(mlp: MLPRegressor) -> TensorFn:
    return _mlp_layers(mlp)


def binary_probabilities(p: tf.Tensor) -> tf.Tensor:
    """[N, 1] probability of classes_[1] -> [N, 2] = [1 - p, p], as sklearn's predict_proba."""
    return tf.concat([1.0 - p, p], axis=1)


def softmax(z: tf.Tensor) -> tf.Tensor:
    return tf.nn.softmax(z, axis=1)


@register(MLPClassifier)
def lower_mlp_classifier(mlp: MLPClassifier) -> TensorFn:
    # Binary: one logistic unit, p of classes_[1]. Multiclass: softmax over one unit per class.
    # Multilabel (independent logistic units, rows not summing to 1) picks no single class.
    if mlp._label_binarizer.y_type_ == "multilabel-indicator":
        _refuse(mlp, "multilabel targets (only one class per row)")
    if mlp.out_activation_ == "softmax":
        return _mlp_layers(mlp, out=softmax)
    if mlp.out_activation_ != "logistic" or mlp.n_outputs_ != 1:
        _refuse(mlp, f"out_activation_={mlp.out_activation_!r} with {mlp.n_outputs_} outputs")
    net = _mlp_layers(mlp, out=tf.sigmoid)
    return lambda x: binary_probabilities(net(x))


@register(LogisticRegression)
def lower_logistic_regression(lr: LogisticRegression) -> TensorFn:
    """sklearn 1.9's predict_proba: binary [1 - sigmoid(z), sigmoid(z)]; multiclass softmax(z)
    (multinomial: scikit-learn 1.9 has no one-vs-rest mode left in LogisticRegression)."""
    if getattr(lr, "multi_class", "auto") not in ("auto", "multinomial", "deprecated"):
        _refuse(lr, f"multi_class={lr.multi_class!r} (only multinomial)")
    w, b = _f32(np.asarray(lr.coef_).T), _f32(np.asarray(lr.intercept_).reshape(-1))
    if len(lr.classes_) == 2:
        return lambda x: binary_probabilities(tf.sigmoid(tf.matmul(x, w) + b))
    return lambda x: softmax(tf.matmul(x, w) + b)


@register(Ridge, LinearRegression)
def lower_linear_regressor(lin) -> TensorFn:
    coef = np.asarray(lin.coef_, dtype=np.float64).reshape(-1, 1) if np.ndim(lin.coef_) == 1 \
        else np.asarray(lin.coef_).T
    w, b = _f32(coef), _f32(np.atleast_1d(lin.intercept_))

    def run(x):
        return tf.matmul(x, w) + b
    return run


# Registers the tree-ensemble lowerings (imported last: it imports `register` from here).
from mpgpack.export import lowering_trees  # noqa: E402,F401
