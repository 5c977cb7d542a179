"""The API and the edge runner serve any model the manifest describes (issue 17, item 4).

Two bundles, each built once per session by the real build (conftest.py): iris, a classifier
of 3 classes, and clinic, the diabetes patients with string categories (`sex`
"female"/"male", a `bmi_band`) and missing values, a regressor of `progression`. Each is
served by a real `mpgpack serve` on loopback (the friendly /predict and V2 through
tritonclient) and run by the real edge runner, and every answer is held against the bundle's
golden file (golden.json: [N][C] probabilities, or [N] values).
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpgpack.core.bundle import open_bundle
from mpgpack.core.outputs import class_index
from mpgpack.core.schema import Schema
from tests.helpers import REPO, post_json, running_server

TOLERANCE = 1e-4


# The bundles: conftest's iris_bundle and clinic_bundle, built once per session.
def _schema(bundle: Path) -> Schema:
    return Schema.from_manifest(open_bundle(bundle).manifest)


def _named_rows(bundle: Path, labels: bool) -> list[dict]:
    """The golden inputs as a client sends them; category codes as labels when asked."""
    schema, rows = _schema(bundle), open_bundle(bundle).golden_cars()
    if labels:
        for row in rows:
            for f in schema:
                if f.is_category and row[f.name] is not None:
                    row[f.name] = f.categories[int(row[f.name])]
    return rows


@pytest.fixture(scope="module")
def iris_server(iris_bundle, tmp_path_factory):
    with running_server(iris_bundle, tmp_path_factory.mktemp("iris-serve")) as srv:
        yield srv


@pytest.fixture(scope="module")
def clinic_server(clinic_bundle, tmp_path_factory):
    with running_server(clinic_bundle, tmp_path_factory.mktemp("clinic-serve")) as srv:
        yield srv


# -- the API: a classifier ------------------------------------------------------------------
def test_classifier_predict_answers_class_and_probabilities_of_the_golden(iris_bundle,
                                                                          iris_server):
    golden, schema = open_bundle(iris_bundle).golden(), _schema(iris_bundle)
    assert schema.is_classifier and len(schema.classes) == 3
    status, answer = post_json(f"{iris_server.url}/predict",
                               {"instances": _named_rows(iris_bundle, labels=False)})
    assert status == 200, answer
    preds = answer["predictions"]
    assert len(preds) == len(golden.X)
    assert all(set(p) == {"class", "probabilities", "warnings"} for p in preds)
    probs = np.array([[p["probabilities"][c] for c in schema.classes] for p in preds])
    assert np.abs(probs - golden.expected).max() <= TOLERANCE
    # The class is the core's rule on the served probabilities (first on a tie), and the
    # reference's class wherever the reference has no tie.
    assert [p["class"] for p in preds] == [schema.classes[i] for i in class_index(probs)]
    top2 = np.sort(golden.expected, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 2 * TOLERANCE
    want = np.array(schema.classes)[class_index(golden.expected)]
    assert (np.array([p["class"] for p in preds])[decided] == want[decided]).all()
    one = post_json(f"{iris_server.url}/predict", _named_rows(iris_bundle, False)[0])[1]
    single = one["predictions"][0]
    assert set(single["probabilities"]) == set(schema.classes)
    assert max(abs(single["probabilities"][c] - golden.expected[0][k])
               for k, c in enumerate(schema.classes)) <= TOLERANCE


def test_classifier_metadata_docs_and_v2_name_the_manifest(iris_bundle, iris_server):
    import httpx
    manifest = open_bundle(iris_bundle).manifest
    name, classes = manifest["model"]["name"], manifest["schema"]["target"]["classes"]
    meta = httpx.get(f"{iris_server.url}/metadata").json()
    assert meta["task"] == "classification" and meta["classes"] == classes
    spec = httpx.get(f"{iris_server.url}/openapi.json").json()
    prediction = spec["components"]["schemas"]["Prediction"]
    assert set(prediction["properties"]) == {"class", "probabilities", "warnings"}
    assert name in spec["info"]["title"]
    assert not re.findall(r"\bMPG\b|\bcars?\b|horsepower", json.dumps(spec))
    model = httpx.get(f"{iris_server.url}/v2/models/{name}").json()
    assert model["outputs"] == [{"name": "probabilities", "datatype": "FP32",
                                 "shape": [-1, len(classes)]}]
    assert model["inputs"][0]["shape"] == [-1, len(manifest["schema"]["features"])]
    assert httpx.get(f"{iris_server.url}/v2/models/mpg").status_code == 404


def test_classifier_v2_tritonclient_http_json_and_binary(iris_bundle, iris_server):
    import tritonclient.http as httpclient
    golden = open_bundle(iris_bundle).golden()
    name = open_bundle(iris_bundle).manifest["model"]["name"]
    client = httpclient.InferenceServerClient(iris_server.url.removeprefix("http://"))
    try:
        assert client.is_model_ready(name)
        meta = client.get_model_metadata(name)
        assert meta["outputs"][0]["name"] == "probabilities"
        for binary in (False, True):
            tensor = httpclient.InferInput("features", list(golden.X.shape), "FP32")
            tensor.set_data_from_numpy(golden.X, binary_data=binary)
            out = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
            result = client.infer(name, [tensor], outputs=[out])
            probs = result.as_numpy("probabilities")
            assert probs.shape == golden.expected.shape
            assert np.abs(probs - golden.expected).max() <= TOLERANCE
        with pytest.raises(Exception, match="unknown output 'mpg'"):
            client.infer(name, [tensor], outputs=[httpclient.InferRequestedOutput("mpg")])
    finally:
        client.close()


# -- the API: a regressor with string categories --------------------------------------------
def test_regressor_answers_under_its_target_and_takes_labels(clinic_bundle, clinic_server):
    golden, schema = open_bundle(clinic_bundle).golden(), _schema(clinic_bundle)
    assert schema.target == "progression" and not schema.is_classifier
    assert any(f.is_category for f in schema)
    for labels in (False, True):
        status, answer = post_json(f"{clinic_server.url}/predict",
                                   {"instances": _named_rows(clinic_bundle, labels)})
        assert status == 200, answer
        assert all(set(p) == {"progression", "warnings"} for p in answer["predictions"])
        pred = np.array([p["progression"] for p in answer["predictions"]])
        assert np.abs(pred - golden.expected).max() <= TOLERANCE * max(1, np.abs(golden.expected).max())


def test_a_bad_label_is_refused_naming_the_field_and_the_labels(clinic_bundle, clinic_server):
    schema = _schema(clinic_bundle)
    feature = next(f for f in schema if f.is_category)
    row = {k: v for k, v in _named_rows(clinic_bundle, labels=True)[0].items() if v is not None}
    status, answer = post_json(f"{clinic_server.url}/predict", {**row, feature.name: "martian"})
    assert status == 422
    assert answer["error"].startswith(f"{feature.name}: ")
    assert "martian" in answer["error"]
    assert all(label in answer["error"] for label in feature.categories.values())


# -- the edge runner ------------------------------------------------------------------------
def mpg_edge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _golden_csv(bundle: Path, path: Path) -> Path:
    """The golden inputs as CSV, categories written as their labels (as a user's file has)."""
    schema = _schema(bundle)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(schema.names)
        for row in open_bundle(bundle).golden().X.astype(np.float64):
            w.writerow(["" if np.isnan(v) else
                        f.categories[int(v)] if f.is_category else repr(float(v))
                        for f, v in zip(schema, row)])
    return path


def test_edge_classifier_writes_class_and_probability_columns(iris_bundle, tmp_path):
    golden, schema = open_bundle(iris_bundle).golden(), _schema(iris_bundle)
    out = tmp_path / "out.csv"
    proc = mpg_edge("predict", "--input", str(_golden_csv(iris_bundle, tmp_path / "in.csv")),
                    "--output", str(out), "--bundle", str(iris_bundle))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    p_columns = [f"p_{c}" for c in schema.classes]
    assert list(rows[0])[-len(schema.classes) - 1:] == [schema.target, *p_columns]
    probs = np.array([[float(r[c]) for c in p_columns] for r in rows])
    assert np.abs(probs - golden.expected).max() <= TOLERANCE
    assert [r[schema.target] for r in rows] == [schema.classes[i] for i in class_index(probs)]
    # JSON lines: {"line": n, "<target>": label, "probabilities": {label: p}}
    first = dict(zip(schema.names, golden.X[0].tolist()))
    proc = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "predict",
                           "--bundle", str(iris_bundle)], input=json.dumps(first) + "\n",
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    line = json.loads(proc.stdout)
    assert line["line"] == 1 and line[schema.target] in schema.classes
    assert abs(line["probabilities"][schema.classes[0]] - golden.expected[0][0]) <= TOLERANCE
    verify = mpg_edge("verify", "--bundle", str(iris_bundle))
    assert verify.returncode == 0 and "verify: OK" in verify.stdout, verify.stdout + verify.stderr
    assert "class agreement" in verify.stdout


def test_edge_regressor_reads_labels_and_writes_its_target(clinic_bundle, tmp_path):
    golden, schema = open_bundle(clinic_bundle).golden(), _schema(clinic_bundle)
    out = tmp_path / "out.csv"
    proc = mpg_edge("predict", "--input", str(_golden_csv(clinic_bundle, tmp_path / "in.csv")),
                    "--output", str(out), "--bundle", str(clinic_bundle))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0])[-1] == "progression" and len(rows) == len(golden.X)
    pred = np.array([float(r["progression"]) for r in rows])
    assert np.abs(pred - golden.expected).max() <= TOLERANCE * max(1, np.abs(golden.expected).max())
    # A label the schema does not know: refused on its line, naming the feature and the labels.
    feature = next(f for f in schema if f.is_category)
    bad = tmp_path / "bad.csv"
    lines = (tmp_path / "in.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[schema.names.index(feature.name)] = "martian"
    bad.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    proc = mpg_edge("predict", "--input", str(bad), "--bundle", str(clinic_bundle))
    assert proc.returncode == 3
    assert f"line 2: {feature.name}: 'martian' is neither a label nor a code (allowed: one of" \
        in proc.stderr
    assert all(label in proc.stderr for label in feature.categories.values())


def test_the_client_prints_a_classifiers_class(iris_bundle, iris_server):
    """`mpgpack predict` prints what the model answers: the class and its probability."""
    from tests.helpers import run_cli
    golden, schema = open_bundle(iris_bundle).golden(), _schema(iris_bundle)
    row = golden.X[0].tolist()
    res = run_cli("predict", "--url", iris_server.url, "--car",
                  *[f"{n}={v}" for n, v in zip(schema.names, row)])
    assert res.returncode == 0, res.stderr
    want = schema.classes[int(class_index(golden.expected[:1])[0])]
    header, first = res.stdout.splitlines()[:2]
    assert header.split()[:2] == ["#", "class"]
    assert first.split()[1] == want and first.split()[2].startswith("(")
