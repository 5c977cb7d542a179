"""Classifiers and regressors of any feature count through the export stage, with parity.

Each case fits a small Pipeline(ColumnTransformer(StandardScaler on every column), estimator)
on one of scikit-learn's bundled data sets (iris: 3 classes, 4 features; breast_cancer: 2
classes, 30; wine: 3 classes, 13; diabetes: regression, 10), exports ONNX (skl2onnx) and the
SavedModel lowering -> TFLite (float32, float16, int8) and TF.js, and runs every artifact in its
real runtime (onnxruntime, LiteRT, TF.js in Node) through export.parity.evaluate_artifacts, the
build's own gate. A wrong artifact (probability columns swapped) must fail that gate.

TensorFlow is imported by the tests that need it, not at collection.
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mpgpack.core.schema import CLASSIFICATION, PROBABILITIES, REGRESSION, Feature, Schema

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
GATED = {"onnx", "tflite_float32", "tfjs"}
DATASETS = {"iris": load_iris, "breast_cancer": load_breast_cancer, "wine": load_wine,
            "diabetes": load_diabetes}
ESTIMATORS = {
    "logistic": lambda: LogisticRegression(max_iter=1000),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0),
    # tanh: TF.js's fused MatMul has no tanh; the lowering writes it with sigmoid
    "mlp_tanh": lambda: MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=500,
                                      random_state=0),
    "gbm": lambda: GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
    "forest": lambda: RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
    "ridge": lambda: Ridge(),
    "mlp_regressor": lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0),
    "gbm_regressor": lambda: GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0),
    "forest_regressor": lambda: RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0),
    "hgb_regressor": lambda: HistGradientBoostingRegressor(max_iter=10, random_state=0),
}
CASES = ([(est, data) for est in ("logistic", "mlp", "gbm", "forest", "hgb")
          for data in ("iris", "breast_cancer")]
         + [("logistic", "wine"), ("hgb", "wine"), ("mlp_tanh", "wine")]
         + [(est, "diabetes") for est in ("ridge", "mlp_regressor", "gbm_regressor",
                                          "forest_regressor", "hgb_regressor")])


def fitted(estimator: str, dataset: str):
    """(pipeline, schema, golden X float32, expected, actual): fitted on 70 % of the rows; the
    golden set is every row, `actual` the truth (class index) of the 30 % held out."""
    X, y = DATASETS[dataset](return_X_y=True)
    # The artifacts are fed float32: fit on float32 values too, so the reference and the
    # artifacts see the same numbers (the build's data is read the same way).
    X = X.astype(np.float32).astype(np.float64)
    rng = np.random.default_rng(0)
    holdout = rng.random(len(X)) < 0.3
    pipe = Pipeline([
        ("features", ColumnTransformer([("scale", StandardScaler(), list(range(X.shape[1])))])),
        ("model", ESTIMATORS[estimator]()),
    ]).fit(X[~holdout], y[~holdout])
    features = [Feature(name=f"x{i}", unit="", description="", kind="number",
                        minimum=float(X[:, i].min()), maximum=float(X[:, i].max()))
                for i in range(X.shape[1])]
    X32 = X.astype(np.float32)
    if dataset == "diabetes":
        schema = Schema(tuple(features), output_name="target", task=REGRESSION, target="target")
        expected = pipe.predict(X32.astype(np.float64))
        actual = np.where(holdout, y, np.nan)
    else:
        classes = tuple(str(c) for c in pipe.classes_)
        schema = Schema(tuple(features), output_name=PROBABILITIES, task=CLASSIFICATION,
                        classes=classes, target="class")
        expected = pipe.predict_proba(X32.astype(np.float64))
        actual = np.where(holdout, np.searchsorted(pipe.classes_, y), np.nan)
    return pipe, schema, X32, expected, actual


def export_all(pipe, schema, tmp_path) -> dict:
    """{artifact name: path} as the build's parity stage gets them (TF.js: its folder)."""
    from mpgpack.export.onnx_export import export_onnx
    from mpgpack.export.tf_graph import save_saved_model
    from mpgpack.export.tfjs_export import export_tfjs
    from mpgpack.export.tflite_export import export_tflite

    paths = {"onnx": export_onnx(pipe, tmp_path / "model.onnx", "test", schema)}
    saved = save_saved_model(pipe, tmp_path / "saved_model", schema)
    paths.update(export_tflite(saved, tmp_path))
    paths["tfjs"] = export_tfjs(saved, tmp_path / "tfjs").parent
    return paths


@pytest.mark.parametrize("estimator, dataset", CASES, ids=[f"{e}-{d}" for e, d in CASES])
def test_every_artifact_matches_sklearn(estimator, dataset, tmp_path):
    import onnx

    from mpgpack.export.parity import evaluate_artifacts
    from mpgpack.targets.web.pack import check_graph_ops

    pipe, schema, X, expected, actual = fitted(estimator, dataset)
    paths = export_all(pipe, schema, tmp_path)
    report = evaluate_artifacts(paths, X, expected, actual, TOLERANCE, GATED, task=schema.task)

    # The contract's one input and one output, in every artifact.
    graph = onnx.load(paths["onnx"]).graph
    assert [i.name for i in graph.input] == ["features"]
    assert [o.name for o in graph.output] == [schema.output_name]
    dims = [d.dim_value or None for d in graph.output[0].type.tensor_type.shape.dim]
    assert dims == [None, schema.n_outputs]
    check_graph_ops(json.loads((paths["tfjs"] / "model.json").read_text()))   # the page can run it

    print(f"\n{estimator} on {dataset}: " + ", ".join(
        f"{name} {r['max_abs_error']:.1e}" for name, r in report.items()))
    for name in GATED:
        r = report[name]
        assert r["gated"] and r["passed"], (name, r)
        assert r["max_abs_error"] <= TOLERANCE
        if schema.is_classifier:
            assert r["decided_disagreements"] == 0
            assert abs(r["holdout_accuracy_change"]) < 0.05
            assert "holdout_mae" not in r
        else:
            assert {"holdout_mae", "holdout_mae_change", "mean_abs_error"} <= set(r)
    for name in ("tflite_float16", "tflite_int8"):
        assert not report[name]["gated"] and report[name]["rows"] == len(X)


def test_runners_return_the_whole_output(tmp_path):
    """ONNX, LiteRT and TF.js hand back [N, C] for a classifier (run); predict keeps [N]."""
    from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
    from mpgpack.export.parity import tfjs_node_predict, tfjs_node_run

    pipe, schema, X, expected, _ = fitted("logistic", "iris")
    paths = export_all(pipe, schema, tmp_path)
    for out in (OnnxRunner(paths["onnx"]).run(X), LiteRTRunner(paths["tflite_float32"]).run(X),
                tfjs_node_run(paths["tfjs"], X)[0]):
        assert out.shape == (len(X), 3)
        np.testing.assert_allclose(out, expected, atol=TOLERANCE)
    reg, reg_schema, Xr, want, _ = fitted("ridge", "diabetes")
    (tmp_path / "reg").mkdir()
    reg_paths = export_all(reg, reg_schema, tmp_path / "reg")
    got, info = tfjs_node_predict(reg_paths["tfjs"], Xr)
    assert got.shape == (len(Xr),) and info["runtime"] == "tfjs-node"
    assert np.abs(got - want).max() <= TOLERANCE


def _swap_columns(path, out_path):
    """The same ONNX model with its probability columns swapped: a wrong artifact."""
    import onnx
    from onnx import helper

    model = onnx.load(path)
    graph = model.graph
    name = graph.output[0].name
    for node in graph.node:
        node.output[:] = ["raw_probabilities" if o == name else o for o in node.output]
        node.input[:] = ["raw_probabilities" if i == name else i for i in node.input]
    graph.initializer.append(helper.make_tensor("swap", onnx.TensorProto.INT64, [2], [1, 0]))
    graph.node.append(helper.make_node("Gather", ["raw_probabilities", "swap"], [name], axis=1))
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return out_path


def test_parity_gate_fails_a_wrong_classifier(tmp_path):
    from mpgpack.export.onnx_export import export_onnx
    from mpgpack.export.parity import evaluate_artifacts

    pipe, schema, X, expected, actual = fitted("logistic", "breast_cancer")
    good = export_onnx(pipe, tmp_path / "model.onnx", "test", schema)
    wrong = _swap_columns(good, tmp_path / "swapped.onnx")
    report = evaluate_artifacts({"onnx": wrong}, X, expected, actual, TOLERANCE, {"onnx"},
                                task=CLASSIFICATION)["onnx"]
    assert report["passed"] is False
    assert report["max_abs_error"] > 0.5 and report["decided_disagreements"] > len(X) // 2
    assert report["holdout_accuracy_change"] < -0.5


def test_schema_and_pipeline_must_agree(tmp_path):
    from mpgpack.export.tf_graph import save_saved_model

    pipe, schema, *_ = fitted("ridge", "diabetes")
    wrong = Schema(schema.features, output_name=PROBABILITIES, task=CLASSIFICATION,
                   classes=("a", "b"))
    with pytest.raises(ValueError, match="schema says classification"):
        save_saved_model(pipe, tmp_path / "saved", wrong)


def test_most_frequent_imputer_fills_a_category_code():
    import tensorflow as tf

    from mpgpack.export.lowering import lower
    from sklearn.impute import SimpleImputer

    X = np.array([[1.0, 5.0], [3.0, np.nan], [3.0, 2.0], [np.nan, 2.0], [2.0, 7.0]])
    for imp in (SimpleImputer(strategy="most_frequent"),
                SimpleImputer(strategy="constant", fill_value=-1.0),
                SimpleImputer(strategy="mean")):
        imp.fit(X)
        got = lower(imp)(tf.constant(X.astype(np.float32))).numpy()
        np.testing.assert_allclose(got, imp.transform(X), rtol=1e-6)
    # A column all missing at fit time is dropped by sklearn, and by the lowering.
    Xe = np.column_stack([X[:, 0], np.full(len(X), np.nan)])
    imp = SimpleImputer(strategy="median").fit(Xe)
    got = lower(imp)(tf.constant(Xe.astype(np.float32))).numpy()
    np.testing.assert_allclose(got, imp.transform(Xe), rtol=1e-6)


def test_multilabel_mlp_is_refused_by_name():
    from mpgpack.export.lowering import UnsupportedStepError, lower

    X = np.random.default_rng(0).normal(size=(40, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0).fit(X, Y)
    with pytest.raises(UnsupportedStepError, match="MLPClassifier: multilabel"):
        lower(mlp)


def test_folded_thresholds_take_sklearns_branch_around_every_threshold():
    """x <= v (float32, raw) exactly when sklearn's float64 scaling puts x left of t."""
    from mpgpack.export.fold_scaler import raw_thresholds

    rng = np.random.default_rng(1)
    mean, scale = rng.normal(size=200) * 50, rng.uniform(0.01, 80, size=200)
    t = rng.normal(size=200)
    for cast32 in (True, False):
        v = raw_thresholds(t, mean, scale, cast32).astype(np.float32)
        for step in range(-3, 4):             # v and its float32 neighbours
            x = v.copy()
            for _ in range(abs(step)):
                x = np.nextafter(x, np.float32(np.inf if step > 0 else -np.inf))
            z = (x.astype(np.float64) - mean) / scale
            left = (z.astype(np.float32) if cast32 else z) <= t
            np.testing.assert_array_equal(left, x <= v)
    assert raw_thresholds(np.array([np.inf]), np.zeros(1), np.ones(1), True)[0] == np.inf


def test_only_scaler_then_trees_is_folded():
    from mpgpack.export.fold_scaler import fold_scaler_into_trees

    trees, *_ = fitted("gbm", "iris")
    assert len(fold_scaler_into_trees(trees).steps) == 1
    linear, *_ = fitted("logistic", "iris")
    assert fold_scaler_into_trees(linear) is linear


def test_onnx_tree_thresholds_decide_as_sklearn_where_nearest_float32_would_not(tmp_path):
    """HistGradientBoosting puts thresholds ON data values once a feature has more distinct
    values than bins; skl2onnx stores the nearest float32, which can lie above the threshold,
    so the data value itself went the other way in ONNX Runtime (errors of 10+ on the diabetes
    table). The exported graph must carry the largest float32 at or below each threshold."""
    import onnx
    from onnx import helper
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from mpgpack.core.runtimes import OnnxRunner
    from mpgpack.export.onnx_export import export_onnx
    from mpgpack.export.onnx_trees import exact_thresholds

    rng = np.random.default_rng(3)
    X = np.round(rng.uniform(3, 6, (2000, 2)), 4)            # ~2,000 distinct 4-decimal values
    y = np.where(X[:, 0] > 4.5, 100.0, 0.0) + X[:, 1]
    X32 = X.astype(np.float32)
    model = Pipeline([("m", HistGradientBoostingRegressor(max_iter=30, random_state=0))])
    model.fit(X, y)             # float64 decimals, as read from a CSV: thresholds on them
    expected = model.predict(X32.astype(np.float64))

    plain = convert_sklearn(model, initial_types=[("features", FloatTensorType([None, 2]))],
                            target_opset={"": 17, "ai.onnx.ml": 3})
    (tmp_path / "plain.onnx").write_bytes(plain.SerializeToString())
    naive = np.abs(OnnxRunner(tmp_path / "plain.onnx").run(X32)[:, 0] - expected).max()
    changed = exact_thresholds(plain, model[-1])
    assert changed > 0
    stored = next(helper.get_attribute_value(a) for n in plain.graph.node
                  if n.op_type == "TreeEnsembleRegressor" for a in n.attribute
                  if a.name == "nodes_values")
    assert len(stored) > 0

    path = export_onnx(model, tmp_path / "exact.onnx", "t")
    onnx.checker.check_model(onnx.load(path))
    exact = np.abs(OnnxRunner(path).run(X32)[:, 0] - expected).max()
    assert exact <= 1e-4, exact
    assert naive > 1.0, f"the data no longer shows the problem (naive error {naive})"
