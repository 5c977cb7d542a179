"""Tree-ensemble lowerings (mpgpack/export/lowering_trees.py) against scikit-learn: the TF function,
the converted TFLite model in LiteRT and (for one regressor) the TF.js graph model in Node, on the
Auto MPG data and a synthetic set; exact decisions at and around every split threshold.

TensorFlow is imported by the tests that need it (as in test_lowering.py), not at collection.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import Ridge

from mpgpack.data import AUTO_MPG
from mpgpack.train.data import load_dataset

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
REGRESSORS = {
    "gbm": lambda: GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0),
    "forest": lambda: RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0),
    "hgb": lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0),
}
CLASSIFIERS = {
    "gbm": lambda: GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=50, random_state=0),
}
ACCEPTS_NAN = {"forest", "hgb"}   # GradientBoosting* refuses NaN in fit and predict


def lowering_trees():
    from mpgpack.export import lowering_trees as module
    return module


def lower(est):
    from mpgpack.export.lowering import lower as lower_step
    return lower_step(est)


def run(fn, X):
    import tensorflow as tf
    return fn(tf.constant(np.asarray(X, dtype=np.float32))).numpy()


def with_missing(X, rng, fraction=0.08):
    X = X.copy()
    X[rng.random(X.shape) < fraction] = np.nan
    return X


def mpg(family: str):
    """Auto MPG features [N, 7] (with NaN rows added where the family accepts them) and MPG."""
    ds = load_dataset(AUTO_MPG)
    X, y = ds.X, ds.y
    if family in ACCEPTS_NAN:
        X = np.vstack([X, with_missing(X[:80], np.random.default_rng(1), 0.3)])
        y = np.concatenate([y, y[:80]])
    else:
        keep = ~np.isnan(X).any(axis=1)
        X, y = X[keep], y[keep]
    return X, y


def synthetic(family: str):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 6)) * [1, 10, 0.01, 1e4, 1, 3]
    X[:, 4] = rng.integers(0, 5, 800)                     # a few repeated values, as counts are
    y = 3 * np.tanh(X[:, 0]) + X[:, 1] / 5 + 200 * X[:, 2] * X[:, 4] + np.sqrt(np.abs(X[:, 3])) / 20
    if family in ACCEPTS_NAN:
        X = with_missing(X, rng)
    return X, y


def classes(y):
    """Three classes from a regression target (by terciles)."""
    return np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))


def sklearn_out(est, X32):
    X = X32.astype(np.float64)
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)[:, None]


def saved_model(fn, n_features: int, tmp_path):
    """The lowered function as a SavedModel with a [None, n_features] float32 input."""
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda x: fn(x), input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    saved = tmp_path / "saved"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.f})
    return saved


def tflite_model(fn, n_features: int, tmp_path) -> bytes:
    """The lowered function converted as the build converts it (TFLite builtins only)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model(fn, n_features, tmp_path)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return conv.convert()


def litert_predict(model: bytes, X32):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=model)
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    interp.resize_tensor_input(inp, list(X32.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp, X32)
    interp.invoke()
    return interp.get_tensor(out).copy()


# --- exact thresholds --------------------------------------------------------------------------

def around(v32: np.ndarray, steps: int = 2) -> np.ndarray:
    """v and its float32 neighbours `steps` deep on each side."""
    out, up, down = [v32], v32, v32
    with np.errstate(over="ignore"):         # max float32 steps up to inf: still a float32
        for _ in range(steps):
            up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
            out += [up, down]
    return np.concatenate(out)


def test_float32_thresholds_decide_exactly_like_float64():
    rng = np.random.default_rng(0)
    t = np.concatenate([
        rng.normal(size=2000) * 10.0 ** rng.integers(-8, 9, 2000),     # mostly between floats
        rng.normal(size=200).astype(np.float32).astype(np.float64),     # exactly a float32
        [0.0, -0.0, 1e-45, -1e-45, 3.5e38, -3.5e38, 1e300, -1e300, np.inf, -np.inf],
    ])
    v = lowering_trees().float32_thresholds(t)
    assert v.dtype == np.float32
    with np.errstate(over="ignore"):
        near = np.float32(t)
    for i in range(len(t)):
        x = around(np.array([near[i], v[i]], dtype=np.float32))
        x = x[~np.isnan(x)]
        np.testing.assert_array_equal(x.astype(np.float64) <= t[i], x <= v[i], err_msg=f"t={t[i]!r}")


def edge_rows(est, X, tensors, rng, n: int = 3000):
    """Rows of X with one feature moved onto a split threshold of the model or a float32 step
    beside it (the float32 nearest to the float64 threshold, and the chosen one)."""
    rows = X[rng.integers(0, len(X), n)].astype(np.float32)
    finite = np.flatnonzero(np.abs(tensors.threshold_f64) < 1e38)   # sklearn refuses inf inputs
    node = finite[rng.integers(0, len(finite), n)]
    feature = tensors.feature[node]
    with np.errstate(over="ignore"):
        near = np.float32(tensors.threshold_f64[node])
    edge = np.where(rng.random(n) < 0.5, near, tensors.threshold[node])
    step = rng.integers(-2, 3, n)
    for s in range(2):                     # up to two float32 steps up or down
        edge = np.where(step > s, np.nextafter(edge, np.float32(np.inf)), edge)
        edge = np.where(step < -s, np.nextafter(edge, np.float32(-np.inf)), edge)
    rows[np.arange(n), feature] = edge
    return rows


def sklearn_leaves(est, X32):
    """The leaf each tree reaches, [N, trees] in the order the trees are lowered."""
    if isinstance(est, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
        return None
    leaves = est.apply(X32)
    return leaves.reshape(len(X32), -1)


def lowered_leaves(tensors, X32):
    indicator = run(tensors.leaf_indicator(), X32)
    assert np.all(indicator.sum(axis=1) == tensors.n_trees - tensors.n_constant_trees)
    out = np.full((len(X32), tensors.n_trees), -1)
    rows, cols = np.nonzero(indicator)
    out[rows, np.asarray(tensors.leaf_tree)[cols]] = np.asarray(tensors.leaf_node)[cols]
    return out


@pytest.mark.parametrize("family", ["gbm", "forest", "hgb"])
def test_decisions_at_the_thresholds_are_sklearn_s(family):
    X, y = synthetic(family)
    est = REGRESSORS[family]().fit(X, y)
    tensors = lowering_trees().ensemble_tensors(est)
    X32 = edge_rows(est, X, tensors, np.random.default_rng(5))
    want = sklearn_leaves(est, X32)
    if want is not None:
        np.testing.assert_array_equal(lowered_leaves(tensors, X32), want)
    # the reached leaves' values, tree by tree (HistGradientBoosting has no apply())
    got = run(lower(est), X32)[:, 0]
    assert np.abs(got - est.predict(X32.astype(np.float64))).max() <= TOLERANCE


# --- parity: TF function, TFLite in LiteRT -----------------------------------------------------

def check_parity(est, X, tmp_path):
    X32 = X.astype(np.float32)
    want = sklearn_out(est, X32)
    fn = lower(est)
    got_tf = run(fn, X32)
    got_lite = litert_predict(tflite_model(fn, X.shape[1], tmp_path), X32)
    assert got_tf.shape == got_lite.shape == want.shape
    assert np.abs(got_tf - want).max() <= TOLERANCE
    assert np.abs(got_lite - want).max() <= TOLERANCE
    if want.shape[1] > 1:
        np.testing.assert_array_equal(got_lite.argmax(axis=1), want.argmax(axis=1))
        np.testing.assert_allclose(got_lite.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("data", [mpg, synthetic])
@pytest.mark.parametrize("family", list(REGRESSORS))
def test_regressor_parity(family, data, tmp_path):
    X, y = data(family)
    check_parity(REGRESSORS[family]().fit(X, y), X, tmp_path)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("data", [mpg, synthetic])
@pytest.mark.parametrize("family", list(CLASSIFIERS))
def test_classifier_probability_parity(family, data, n_classes, tmp_path):
    X, y = data(family)
    labels = classes(y) if n_classes == 3 else (y > np.median(y)).astype(int)
    check_parity(CLASSIFIERS[family]().fit(X, labels), X, tmp_path)


def test_nan_in_every_column_goes_where_sklearn_sends_it(tmp_path):
    X, y = mpg("hgb")
    est = REGRESSORS["hgb"]().fit(X, y)
    rows = np.repeat(X[:20], X.shape[1], axis=0)
    rows[np.arange(len(rows)), np.tile(np.arange(X.shape[1]), 20)] = np.nan
    check_parity(est, np.vstack([rows, np.full((1, X.shape[1]), np.nan)]), tmp_path)


# --- TF.js in Node, and the page's trimmed TF.js build -----------------------------------------

TFJS_CASES = {   # one regressor (NaN rows included), and the classifiers' output shapes
    "hgb regressor": lambda X, y: REGRESSORS["hgb"]().fit(X, y),
    "gbm binary": lambda X, y: CLASSIFIERS["gbm"]().fit(X[~np.isnan(X).any(axis=1)],
                                                        (y > np.median(y))[~np.isnan(X).any(axis=1)]),
    "forest 3 classes": lambda X, y: CLASSIFIERS["forest"]().fit(X, classes(y)),
    "hgb 3 classes": lambda X, y: CLASSIFIERS["hgb"]().fit(X, classes(y)),
}


@pytest.mark.parametrize("case", list(TFJS_CASES))
def test_tfjs_graph_model_in_node(case, tmp_path):
    """TF.js in Node matches sklearn, and the page's trimmed TF.js build has every op used."""
    import json

    from mpgpack.export.tfjs_export import export_tfjs
    from mpgpack.export.parity import tfjs_node_predict
    from mpgpack.targets.web.pack import check_graph_ops

    X, y = mpg("hgb")
    est = TFJS_CASES[case](X, y)
    X = X[~np.isnan(X).any(axis=1)] if case.startswith("gbm") else X
    model_json = export_tfjs(saved_model(lower(est), X.shape[1], tmp_path), tmp_path / "tfjs")
    check_graph_ops(json.loads(model_json.read_text()))
    X32 = X.astype(np.float32)
    want = sklearn_out(est, X32)
    got, _ = tfjs_node_predict(tmp_path / "tfjs", X32)
    assert np.abs(got.reshape(want.shape) - want).max() <= TOLERANCE


# --- size ---------------------------------------------------------------------------------------

def test_weights_grow_with_nodes_not_with_leaves_times_nodes(tmp_path):
    X, y = synthetic("forest")
    est = RandomForestRegressor(n_estimators=100, max_depth=8, random_state=0).fit(X, y)
    nodes = sum(e.tree_.node_count for e in est.estimators_)
    size = len(tflite_model(lower(est), X.shape[1], tmp_path))
    # per node: feature index, threshold, missing side, two path indices, a leaf value: ~30 bytes;
    # a dense GEMM path matrix would be ~(nodes / 2)^2 / trees * 4 bytes (tens of MB here).
    assert size < 40 * nodes


# --- refusals ----------------------------------------------------------------------------------

def _hgb_categorical():
    X = np.column_stack([np.arange(100) % 4, np.linspace(0, 1, 100)])
    return HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(X, X[:, 0] + X[:, 1])


@pytest.mark.parametrize("make, message", [
    (lambda: HistGradientBoostingRegressor(loss="poisson", max_iter=3).fit([[0.0], [1.0]] * 20, [1.0, 2.0] * 20),
     "HistGradientBoostingRegressor: loss='poisson'"),
    (_hgb_categorical, "HistGradientBoostingRegressor: categorical_features"),
    (lambda: GradientBoostingRegressor(n_estimators=3, init=Ridge()).fit([[0.0], [1.0]] * 20, [1.0, 2.0] * 20),
     "GradientBoostingRegressor: init=Ridge"),
    (lambda: GradientBoostingClassifier(n_estimators=3, loss="exponential").fit([[0.0], [1.0]] * 20, [0, 1] * 20),
     "GradientBoostingClassifier: loss='exponential'"),
    (lambda: RandomForestRegressor(n_estimators=3).fit([[0.0], [1.0]] * 20, [[1.0, 2.0], [2.0, 1.0]] * 20),
     "RandomForestRegressor: n_outputs_=2"),
])
def test_unsupported_settings_are_refused_by_name(make, message):
    from mpgpack.export.lowering import UnsupportedStepError
    with pytest.raises(UnsupportedStepError, match=message):
        lower(make())
