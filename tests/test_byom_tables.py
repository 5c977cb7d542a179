"""Every other table scikit-learn ships, built and answered end to end by all three targets.

iris and clinic are covered in depth (tests/test_byom_targets.py, the page tests); here each
remaining table — diabetes (regression), wine (3 classes), breast_cancer (2 classes) — is built
by the real `mpgpack build` with one family each (so the three cover a linear model, an MLP and
a tree ensemble), then the built bundle is held against its own golden file by the API over
HTTP (`mpgpack serve`), the edge runner (`mpg-edge predict` on a CSV) and the page in headless
Chromium (its self-test and window.mpg.predict on every golden row).
"""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from mpgpack.core.bundle import open_bundle
from mpgpack.core.outputs import class_index
from mpgpack.core.schema import Schema
from tests.helpers import post_json, running_server
from tests.test_byom_targets import _golden_csv, mpg_edge

CASES = {"diabetes": ("progression", "linear"), "wine": ("cultivar", "mlp"),
         "breast_cancer": ("diagnosis", "hgb")}


@pytest.fixture(scope="module", params=list(CASES))
def built(request, tmp_path_factory, example_tables):
    from mpgpack.export.build import BuildRequest, build_bundle
    name = request.param
    target, family = CASES[name]
    path = build_bundle(out=tmp_path_factory.mktemp(name),
                        request=BuildRequest(data=example_tables[name], target=target,
                                             model=family))
    bundle = open_bundle(path)
    return name, path, bundle, Schema.from_manifest(bundle.manifest), bundle.golden()


def _outputs(schema: Schema, answers: list[dict]) -> np.ndarray:
    if schema.is_classifier:
        return np.array([[a["probabilities"][c] for c in schema.classes] for a in answers])
    return np.array([[a[schema.target]] for a in answers])


def _check(schema: Schema, golden, got: np.ndarray, classes: list[str] | None = None):
    expected = golden.expected.reshape(len(golden.X), -1)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= golden.tolerance
    if schema.is_classifier:
        top2 = np.sort(expected, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] > 2 * golden.tolerance
        assert (class_index(got)[decided] == class_index(expected)[decided]).all()
        if classes is not None:
            assert classes == [schema.classes[i] for i in class_index(got)]


def test_the_build_chose_the_family_and_passed_parity(built):
    name, path, bundle, schema, golden = built
    m = bundle.manifest
    assert m["model"]["name"] == name and m["model"]["family"] == CASES[name][1]
    assert m["model"]["task"] == ("regression" if name == "diabetes" else "classification")
    for artifact in ("onnx", "tflite_float32", "tfjs"):
        assert m["parity"][artifact]["passed"], m["parity"][artifact]
    assert "web" in m["packages"] and "report" in m["packages"]


def test_the_api_answers_the_golden_rows(built, tmp_path):
    name, path, bundle, schema, golden = built
    with running_server(path, tmp_path) as srv:
        status, answer = post_json(f"{srv.url}/predict", {"instances": bundle.golden_cars()})
        assert status == 200, answer
        preds = answer["predictions"]
        _check(schema, golden, _outputs(schema, preds),
               [p["class"] for p in preds] if schema.is_classifier else None)
        status, meta = post_json(f"{srv.url}/v2/models/{name}/infer", {"inputs": [{
            "name": "features", "datatype": "FP32", "shape": [2, len(schema)],
            "data": [None if v != v else float(v) for v in golden.X[:2].ravel().tolist()]}]})
        assert status == 200, meta
        assert meta["outputs"][0]["name"] == schema.output_name
        assert meta["outputs"][0]["shape"] == [2, schema.n_outputs]


def test_the_edge_runner_answers_the_golden_rows(built, tmp_path):
    name, path, bundle, schema, golden = built
    out = tmp_path / "out.csv"
    proc = mpg_edge("predict", "--input", str(_golden_csv(path, tmp_path / "in.csv")),
                    "--output", str(out), "--bundle", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    if schema.is_classifier:
        got = np.array([[float(r[f"p_{c}"]) for c in schema.classes] for r in rows])
        _check(schema, golden, got, [r[schema.target] for r in rows])
    else:
        _check(schema, golden, np.array([[float(r[schema.target])] for r in rows]))


def test_the_page_answers_the_golden_rows(built):
    from playwright.sync_api import sync_playwright

    from mpgpack.targets.web.chromium import launch, serve_bundle
    name, path, bundle, schema, golden = built
    with serve_bundle(path) as url, sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/?nosw")
            page.evaluate("window.mpg.ready")
            rows = [[None if v != v else float(v) for v in r] for r in golden.X.tolist()]
            got = np.array(page.evaluate("(rows) => window.mpg.predict(rows)", rows), dtype=float)
            _check(schema, golden, got.reshape(len(rows), -1))
            result = page.evaluate("window.mpg.selfTest()")
            assert result["passed"] and result["rows"] == len(rows), result
            assert errors == []
        finally:
            browser.close()
