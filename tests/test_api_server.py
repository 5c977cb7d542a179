"""The HTTP service end to end: a real `mpgpack serve` on 127.0.0.1, every endpoint exercised."""
from __future__ import annotations

import re
import time

import httpx
import numpy as np
import pytest

from mpgpack.core.bundle import open_bundle
from tests.helpers import record_site
from tests.helpers import running_server

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("api")) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_predict_one_car(http, manifest):
    r = http.post("/predict", json=CAR)
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == manifest["model"]["version"]
    assert len(body["predictions"]) == 1
    mpg = body["predictions"][0]["mpg"]
    assert 8 < mpg < 25                       # a 1970 V8: thirsty
    assert body["predictions"][0]["warnings"] == []


def test_golden_vectors_via_predict_and_v2(http, bundle_dir):
    """The service's answers equal the bundle's golden outputs (sklearn) within the tolerance."""
    bundle = open_bundle(bundle_dir)
    golden = bundle.golden()
    cars = bundle.golden_cars()
    r = http.post("/predict", json={"instances": cars})
    assert r.status_code == 200, r.text
    got = np.array([p["mpg"] for p in r.json()["predictions"]])
    assert len(got) == len(golden.expected) > 1000
    assert np.max(np.abs(got - golden.expected)) <= golden.tolerance

    flat = [None if v != v else v for v in golden.X.reshape(-1).tolist()]
    r = http.post("/v2/models/mpg/infer", json={"id": "golden", "inputs": [
        {"name": "features", "shape": [len(cars), 7], "datatype": "FP32", "data": flat}]})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["name"] == "mpg" and out["datatype"] == "FP32" and out["shape"] == [len(cars), 1]
    assert np.max(np.abs(np.array(out["data"]) - golden.expected)) <= golden.tolerance


def test_missing_horsepower_null_or_omitted(http):
    with_null = http.post("/predict", json={**CAR, "horsepower": None}).json()
    omitted = http.post("/predict", json={k: v for k, v in CAR.items() if k != "horsepower"}).json()
    assert with_null["predictions"][0]["mpg"] == omitted["predictions"][0]["mpg"]
    assert with_null["predictions"][0]["mpg"] != http.post("/predict", json=CAR).json()["predictions"][0]["mpg"]


def test_integer_features_accept_whole_floats(http):
    a = http.post("/predict", json=CAR).json()["predictions"][0]["mpg"]
    b = http.post("/predict", json={**CAR, "cylinders": 8.0, "model_year": 70.0, "origin": 1.0}).json()
    assert b["predictions"][0]["mpg"] == a


def test_outside_training_range_is_predicted_and_flagged(http, manifest):
    feats = {f["name"]: f for f in manifest["schema"]["features"]}
    lo, hi = feats["cylinders"]["training_range"]
    assert feats["cylinders"]["maximum"] >= 12 > hi         # allowed, but never seen in training
    r = http.post("/predict", json={"instances": [CAR, {**CAR, "cylinders": 12, "model_year": 90}]})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert preds[0]["warnings"] == []
    fields = [w["field"] for w in preds[1]["warnings"]]
    assert fields == ["cylinders", "model_year"]
    w = preds[1]["warnings"][0]
    assert w["value"] == 12 and w["training_range"] == [lo, hi]
    assert "outside the training range" in w["message"]
    assert isinstance(preds[1]["mpg"], float)


def test_request_id_honoured_or_generated(http):
    r = http.post("/predict", json=CAR, headers={"X-Request-ID": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a" and r.json()["request_id"] == "trace-42.a"
    ids = set()
    for _ in range(3):
        r = http.post("/predict", json=CAR)
        assert r.headers["x-request-id"] == r.json()["request_id"]
        ids.add(r.json()["request_id"])
    assert len(ids) == 3
    # Errors carry the id too, so a client can quote it.
    r = http.post("/predict", json={"cylinders": 1}, headers={"X-Request-ID": "bad-one"})
    assert r.status_code == 422 and r.headers["x-request-id"] == "bad-one"


def test_metadata(http, manifest):
    meta = http.get("/metadata").json()
    assert meta["model"]["version"] == manifest["model"]["version"]
    assert meta["schema"] == manifest["schema"]
    assert meta["metrics"] == manifest["metrics"]
    assert meta["parity"]["onnx"] == manifest["parity"]["onnx"]
    assert meta["artifact"]["sha256"] == manifest["artifacts"]["onnx"]["sha256"]
    assert meta["self_check"]["rows"] == manifest["artifacts"]["golden"]["rows"] > 1000
    assert meta["self_check"]["max_abs_error"] <= meta["self_check"]["tolerance"]
    assert meta["limits"] == {"max_batch": 10000, "max_body_bytes": 2 * 1024 * 1024}
    assert meta["runtime"].startswith("onnxruntime ")


def test_docs_and_openapi_come_from_the_schema(http, manifest):
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = http.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert {"one row", "a batch"} <= set(body["examples"])
    car = spec["components"]["schemas"]["Row"]
    for f in manifest["schema"]["features"]:
        prop = car["properties"][f["name"]]
        if f["nullable"]:
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
        assert prop["minimum"] == f["minimum"] and prop["maximum"] == f["maximum"], f["name"]
        assert prop["type"] == ("integer" if f["integer"] else "number")
    assert car["properties"]["origin"]["enum"] == [1, 2, 3]
    assert set(car["required"]) == {f["name"] for f in manifest["schema"]["features"] if not f["nullable"]}
    assert car["additionalProperties"] is False
    assert spec["components"]["schemas"]["Batch"]["properties"]["instances"]["maxItems"] == 10000
    assert "/v2/models/{model_name}/infer" in spec["paths"]
    assert "InferenceRequest" in spec["components"]["schemas"]


def test_v2_health_and_metadata(http, manifest):
    version = manifest["model"]["version"]
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    server = http.get("/v2").json()
    assert server["name"] == "mpgpack" and isinstance(server["extensions"], list)
    model = http.get("/v2/models/mpg").json()
    assert model["name"] == "mpg" and model["versions"] == [version]
    assert model["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 7]}]
    assert model["outputs"] == [{"name": "mpg", "datatype": "FP32", "shape": [-1, 1]}]
    assert http.get("/v2/models/mpg/ready").json() == {"name": "mpg", "ready": True}
    assert http.get(f"/v2/models/mpg/versions/{version}").json() == model
    assert http.get(f"/v2/models/mpg/versions/{version}/ready").status_code == 200


def test_v2_infer_flat_and_nested_agree_and_echo_id(http, manifest):
    rows = [[8, 307, 130, 3504, 12, 70, 1], [4, 97, None, 2130, 14.5, 70, 3]]
    flat = http.post("/v2/models/mpg/infer", json={"id": "req-1", "inputs": [
        {"name": "features", "shape": [2, 7], "datatype": "FP32", "data": sum(rows, [])}]})
    nested = http.post(f"/v2/models/mpg/versions/{manifest['model']['version']}/infer", json={
        "id": "req-2", "inputs": [{"name": "features", "shape": [2, 7], "datatype": "FP32",
                                   "data": rows}], "outputs": [{"name": "mpg"}]})
    assert flat.status_code == nested.status_code == 200
    a, b = flat.json(), nested.json()
    assert a["id"] == "req-1" and b["id"] == "req-2"
    assert a["model_name"] == "mpg" and a["model_version"] == manifest["model"]["version"]
    assert a["outputs"][0]["data"] == b["outputs"][0]["data"]
    one = http.post("/predict", json=dict(zip(CAR, rows[0]))).json()["predictions"][0]["mpg"]
    assert abs(a["outputs"][0]["data"][0] - one) < 1e-6
    # Without an id the response still carries one: the request id.
    r = http.post("/v2/models/mpg/infer", headers={"X-Request-ID": "abc"}, json={"inputs": [
        {"name": "features", "shape": [1, 7], "datatype": "FP32", "data": rows[0]}]})
    assert r.json()["id"] == "abc"


def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics(http, manifest):
    version = manifest["model"]["version"]
    before = http.get("/metrics").text
    for _ in range(3):
        assert http.post("/predict", json={"instances": [CAR] * 5}).status_code == 200
    assert http.post("/predict", json={"cylinders": 99}).status_code == 422
    r = http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text

    def delta(name, **labels):
        return _metric(text, name, **labels) - _metric(before, name, **labels)

    assert delta("mpg_http_requests_total", model_version=version, endpoint="/predict", status="200") == 3
    assert delta("mpg_http_request_errors_total", model_version=version, endpoint="/predict", status="422") == 1
    assert delta("mpg_http_request_duration_seconds_count", model_version=version, endpoint="/predict") == 4
    assert delta("mpg_batch_size_sum", model_version=version, endpoint="/predict") == 15
    assert delta("mpg_batch_size_bucket", model_version=version, endpoint="/predict", le="5.0") == 3
    assert 'mpg_http_request_duration_seconds_bucket{endpoint="/predict",le="0.005"' in text


def test_structured_access_log(server, http):
    http.post("/predict", json=CAR, headers={"X-Request-ID": "log-me-1"})
    http.post("/predict", json={"cylinders": 1}, headers={"X-Request-ID": "log-me-2"})
    deadline = time.monotonic() + 5          # lines are flushed in batches, within ~0.5 s
    entries = {}
    import json
    while time.monotonic() < deadline and len(entries) < 2:
        for line in server.log_lines():
            if line.startswith("{") and '"log-me-' in line:
                e = json.loads(line)
                entries[e["request_id"]] = e
        time.sleep(0.2)
    ok, bad = entries["log-me-1"], entries["log-me-2"]
    assert ok["status"] == 200 and ok["method"] == "POST" and ok["path"] == "/predict"
    assert ok["batch"] == 1 and ok["duration_ms"] > 0 and ok["logger"] == "mpgpack.access"
    assert bad["status"] == 422 and "cylinders" in bad["error"]


def test_root_is_the_web_page_or_points_to_docs(http, bundle_dir):
    root = http.get("/")
    assert root.status_code == 200
    if (bundle_dir / "web" / "index.html").is_file():      # the web target's packer made one
        assert root.headers["content-type"].startswith("text/html")
        assert root.text == (bundle_dir / "web" / "index.html").read_text()
        types = {".wasm": "application/wasm", ".webmanifest": "application/manifest+json",
                 ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        for f in (bundle_dir / "web").rglob("*"):
            if f.suffix in types:
                r = http.get("/" + f.relative_to(bundle_dir / "web").as_posix())
                assert r.status_code == 200 and r.content == f.read_bytes()
                assert r.headers["content-type"].startswith(types[f.suffix]), f.name
    else:
        assert root.json()["docs"] == "/docs"


def test_static_site_mounted_when_bundle_has_web(bundle_copy, tmp_path):
    web = bundle_copy / "web"
    web.mkdir(exist_ok=True)
    (web / "index.html").write_text("<!doctype html><title>mpg</title><p id=prediction></p>")
    (web / "ort.wasm").write_bytes(b"\0asm\1\0\0\0")
    (web / "manifest.webmanifest").write_text('{"name": "mpg"}')
    (web / "app.js").write_text("export const x = 1;")
    record_site(bundle_copy)          # the server serves the page only as the manifest records it
    with running_server(bundle_copy, tmp_path) as srv, httpx.Client(base_url=srv.url) as http:
        index = http.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert 'id=prediction' in index.text
        assert http.get("/ort.wasm").headers["content-type"] == "application/wasm"
        assert http.get("/manifest.webmanifest").headers["content-type"] == "application/manifest+json"
        assert http.get("/app.js").headers["content-type"].startswith("text/javascript")
        # API routes take precedence over the site.
        assert http.post("/predict", json=CAR).status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        assert http.get("/metadata").json()["model"]["version"]
        missing = http.get("/nope.html")
        assert missing.status_code == 404 and "error" in missing.json()
        assert http.get("/predict").status_code == 405          # not a static-file 404
        assert http.post("/index.html", json=CAR).status_code == 404


def test_generated_request_ids_look_sane(http):
    rid = http.get("/v2/health/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{8,}", rid)
