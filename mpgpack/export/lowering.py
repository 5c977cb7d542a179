"""Lowering a fitted sklearn pipeline to TensorFlow ops, one function per supported step.

Like skl2onnx's `operator_converters/`: each lowering is registered by estimator type, takes
the fitted estimator and returns a function from a float32 tensor to a float32 tensor. A step
with no registered lowering (or an option a lowering does not implement) is refused with an
error that names it, instead of producing a graph that silently computes something else.

Only ops that TFLite builtins and TF.js graph models both implement are used: GatherV2,
NotEqual, SelectV2, Sub, Mul, Equal, Cast, ConcatV2, MatMul, AddV2, Relu/Tanh/Sigmoid; the tree
ensembles (lowering_trees.py) add LessEqual and, for multiclass probabilities, Softmax.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

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
    """The whole fitted pipeline as one function: raw features [N, 7] -> predictions [N, 1]."""
    return lower(pipeline)


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


@register(SimpleImputer)
def lower_simple_imputer(imp: SimpleImputer) -> TensorFn:
    if not (isinstance(imp.missing_values, float) and np.isnan(imp.missing_values)):
        _refuse(imp, f"missing_values={imp.missing_values!r} (only NaN)")
    if imp.add_indicator:
        _refuse(imp, "add_indicator=True")
    fill = _f32(imp.statistics_)[tf.newaxis, :]

    def run(x):
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


@register(MLPRegressor)
def lower_mlp_regressor(mlp: MLPRegressor) -> TensorFn:
    for act in (mlp.activation, mlp.out_activation_):
        if act not in _ACTIVATIONS:
            _refuse(mlp, f"activation {act!r}")
    layers = [(_f32(w), _f32(b)) for w, b in zip(mlp.coefs_, mlp.intercepts_)]
    hidden, out = _ACTIVATIONS[mlp.activation], _ACTIVATIONS[mlp.out_activation_]

    def run(x):
        for i, (w, b) in enumerate(layers):
            x = tf.matmul(x, w) + b
            x = hidden(x) if i < len(layers) - 1 else out(x)
        return x
    return run


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
