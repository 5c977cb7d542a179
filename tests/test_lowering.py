"""Each TensorFlow lowering against sklearn's own transform/predict, and refusals by name.

Slow tier (tests/conftest.py): mpgpack.export.lowering imports TensorFlow, so it is imported when
a test runs, not when the file is collected; collecting the fast tier stays free of TensorFlow.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from mpgpack.train.data import load_dataset
from tests.helpers import DATA

RNG = np.random.default_rng(7)


def _mlp_pipeline():
    """The MPG model's MLP family default inside its schema-built preprocessing."""
    from mpgpack.train.families import make_pipeline
    from mpgpack.train.schema import mpg_spec
    return make_pipeline(mpg_spec().schema, "mlp", 0)


def lowering():
    """mpgpack.export.lowering (and with it TensorFlow), imported by the test that needs it."""
    from mpgpack.export import lowering as module
    return module


def lower(step):
    return lowering().lower(step)


@pytest.fixture(scope="module")
def data():
    ds = load_dataset(DATA)
    return ds.X, ds.y


def run(fn, X):
    import tensorflow as tf
    return fn(tf.constant(np.asarray(X, dtype=np.float32))).numpy()


def test_simple_imputer_median_fills_nan_only():
    X = RNG.normal(size=(50, 3))
    X[::4, 1] = np.nan
    imp = SimpleImputer(strategy="median").fit(X)
    Xt = X.copy()
    Xt[1, 0] = np.nan
    np.testing.assert_allclose(run(lower(imp), Xt), imp.transform(Xt), rtol=1e-6, atol=1e-6)


def test_standard_scaler(data):
    X = data[0][:, [0, 1, 3]]
    sc = StandardScaler().fit(X)
    np.testing.assert_allclose(run(lower(sc), X), sc.transform(X), rtol=1e-5, atol=1e-5)


def test_standard_scaler_without_mean():
    X = RNG.normal(3, 2, size=(40, 2))
    sc = StandardScaler(with_mean=False).fit(X)
    np.testing.assert_allclose(run(lower(sc), X), sc.transform(X), rtol=1e-5, atol=1e-5)


def test_one_hot_encoder_with_unknown_category():
    enc = OneHotEncoder(categories=[[1.0, 2.0, 3.0]], handle_unknown="ignore",
                        sparse_output=False).fit([[1.0], [2.0], [3.0]])
    X = np.array([[1.0], [3.0], [2.0], [4.0]])
    out = run(lower(enc), X)
    np.testing.assert_array_equal(out, enc.transform(X))
    assert out[3].sum() == 0  # unknown -> all zeros, as sklearn's 'ignore'


def test_column_transformer_of_the_shipped_pipeline(data):
    X, y = data
    pipe = _mlp_pipeline().fit(X, y)
    ct = pipe.named_steps["preprocess"]
    np.testing.assert_allclose(run(lower(ct), X), ct.transform(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_mlp_regressor_activations(activation):
    X = RNG.normal(size=(200, 5))
    y = X @ RNG.normal(size=5) + np.sin(X[:, 0])
    mlp = MLPRegressor(hidden_layer_sizes=(8, 4), activation=activation, solver="lbfgs",
                       max_iter=3000, tol=1e-6, random_state=0).fit(X, y)
    np.testing.assert_allclose(run(lower(mlp), X)[:, 0], mlp.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model", [Ridge(alpha=2.0), LinearRegression()])
def test_linear_regressors(model):
    X = RNG.normal(size=(100, 4))
    model.fit(X, X @ np.array([1.0, -2.0, 0.5, 3.0]) + 4)
    np.testing.assert_allclose(run(lower(model), X)[:, 0], model.predict(X), rtol=1e-5, atol=1e-4)


def test_whole_pipeline_with_missing_horsepower(data):
    X, y = data
    pipe = _mlp_pipeline().fit(X, y)
    Xm = X.copy()
    Xm[::3, 2] = np.nan
    got = run(lowering().lower_pipeline(pipe), Xm.astype(np.float32))[:, 0]
    want = pipe.predict(Xm.astype(np.float32).astype(np.float64))
    assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize("step, name", [
    (MinMaxScaler().fit([[0.0], [1.0]]), "MinMaxScaler"),
    (KNeighborsRegressor(n_neighbors=1).fit([[0.0], [1.0]], [0.0, 1.0]), "KNeighborsRegressor"),
])
def test_unsupported_step_is_refused_by_name(step, name):
    refused = lowering().UnsupportedStepError
    with pytest.raises(refused, match=f"no TensorFlow lowering for step {name}"):
        lower(Pipeline([("ok", StandardScaler().fit([[0.0], [1.0]])), ("bad", step)]))


@pytest.mark.parametrize("step, setting", [
    (OneHotEncoder(drop="first").fit([[1.0], [2.0]]), "drop='first'"),
    (OneHotEncoder(handle_unknown="error").fit([[1.0], [2.0]]), "handle_unknown='error'"),
    (SimpleImputer(missing_values=-1, strategy="mean").fit([[1.0], [-1.0]]), "missing_values=-1"),
    (SimpleImputer(add_indicator=True).fit([[1.0], [np.nan]]), "add_indicator=True"),
])
def test_unsupported_settings_are_refused(step, setting):
    with pytest.raises(lowering().UnsupportedStepError, match=f"{type(step).__name__}: {setting}"):
        lower(step)


def test_column_transformer_with_named_columns_is_refused():
    import pandas as pd
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    ct = ColumnTransformer([("s", StandardScaler(), ["a"])]).fit(df)
    with pytest.raises(lowering().UnsupportedStepError, match="only integer column indices"):
        lower(ct)


def test_registry_covers_every_step_of_the_shipped_pipeline(data):
    pipe = _mlp_pipeline()
    steps = {type(pipe), *(type(s) for _, s in pipe.steps)}
    ct = pipe.named_steps["preprocess"]
    for _, t, _ in ct.transformers:
        steps.add(type(t))
        if isinstance(t, Pipeline):
            steps |= {type(s) for _, s in t.steps}
    assert steps <= set(lowering().LOWERINGS)
