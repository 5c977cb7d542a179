"""Every malformed request gets a 4xx with {"error": ...} naming the field and the rule. Never a 500.

Each case is (id, method, path, body, headers, expected status, words the message must contain).
Bodies are raw bytes where JSON itself is the problem; dicts are sent as JSON.
"""
from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import running_server

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}
JSON = {"Content-Type": "application/json"}
P, V2 = "/predict", "/v2/models/mpg/infer"


def car(**changes) -> dict:
    out = {**CAR, **changes}
    return {k: v for k, v in out.items() if v is not ...}


def raw_car(field: str, literal: str) -> bytes:
    """A car body with one value written as a raw JSON token (NaN, Infinity, 1e999)."""
    text = json.dumps(car(**{field: 0}))
    return text.replace(f'"{field}": 0', f'"{field}": {literal}').encode()


def tensor(shape=(1, 7), datatype="FP32", data=None, name="features", **extra) -> dict:
    data = data if data is not None else list(CAR.values())
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}], **extra}


ROW = list(CAR.values())

CASES = [
    # --- the body is not a JSON object --------------------------------------------------
    ("not-json", P, b"hello", JSON, 400, ["not valid JSON"]),
    ("truncated-json", P, b'{"cylinders": 4', JSON, 400, ["not valid JSON"]),
    ("trailing-comma", P, b'{"cylinders": 4,}', JSON, 400, ["not valid JSON", "trailing comma"]),
    ("empty-body", P, b"", JSON, 400, ["body", "empty"]),
    ("whitespace-body", P, b"   \n", JSON, 400, ["body", "empty"]),
    ("top-level-array", P, b"[1, 2]", JSON, 422, ["body", "JSON object", "array"]),
    ("top-level-string", P, b'"car"', JSON, 422, ["body", "JSON object", "string"]),
    ("top-level-null", P, b"null", JSON, 422, ["body", "JSON object", "null"]),
    # --- content type ------------------------------------------------------------------
    ("text-plain", P, json.dumps(CAR).encode(), {"Content-Type": "text/plain"}, 415,
     ["Content-Type", "application/json", "text/plain"]),
    ("no-content-type", P, json.dumps(CAR).encode(), {}, 415, ["Content-Type", "missing"]),
    ("form-encoded", P, b"cylinders=4", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     ["Content-Type", "application/json"]),
    # --- fields: presence and names ----------------------------------------------------
    ("missing-field", P, car(weight=...), JSON, 422, ["weight: missing (only horsepower may be missing)"]),
    ("unknown-field", P, car(colour="red"), JSON, 422, ["colour", "unknown field", "allowed fields"]),
    ("misspelt-field", P, {**car(horsepower=...), "horse_power": 130}, JSON, 422,
     ["horse_power", "unknown field"]),
    ("empty-object", P, {}, JSON, 422, ["cylinders: missing"]),
    # --- fields: types -----------------------------------------------------------------
    ("number-as-string", P, car(cylinders="8"), JSON, 422,
     ['cylinders: "8" is not a number', "allowed: a whole number within 2–16"]),
    ("boolean", P, car(acceleration=True), JSON, 422, ["acceleration: true is not a number", "4–35 s"]),
    ("null-not-nullable", P, car(weight=None), JSON, 422, ["weight: missing (only horsepower may be missing)"]),
    ("array-value", P, car(acceleration=[12]), JSON, 422, ["acceleration: an array of 1 is not a number"]),
    ("object-value", P, car(displacement={"cu_in": 307}), JSON, 422, ["displacement: an object is not a number"]),
    ("unknown-category-name", P, car(origin="Mars"), JSON, 422,
     ['origin: unknown value "Mars"', "allowed: 1 USA, 2 Europe, 3 Japan; the code or the name"]),
    # --- NaN and infinity ----------------------------------------------------------------
    ("nan-literal", P, raw_car("horsepower", "NaN"), JSON, 422,
     ["horsepower: NaN is not a finite number", "30–400 hp, or null"]),
    ("infinity-literal", P, raw_car("weight", "Infinity"), JSON, 422, ["weight", "finite number", "Infinity"]),
    ("overflow-to-infinity", P, raw_car("displacement", "1e999"), JSON, 422, ["displacement", "finite number"]),
    ("negative-infinity", P, raw_car("acceleration", "-Infinity"), JSON, 422, ["acceleration", "finite number"]),
    # --- hard limits, integers, categories --------------------------------------------
    ("negative-weight", P, car(weight=-3504), JSON, 422,
     ["weight: -3504 is outside the hard limits 1000–7000 lb"]),
    ("absurd-horsepower", P, car(horsepower=5000), JSON, 422,
     ["horsepower: 5000 is outside the hard limits 30–400 hp"]),
    ("zero-displacement", P, car(displacement=0), JSON, 422, ["displacement: 0 is outside", "40–700 cu. in."]),
    ("too-few-cylinders", P, car(cylinders=1), JSON, 422, ["cylinders: 1 is outside the hard limits 2–16"]),
    ("fractional-cylinders", P, car(cylinders=4.5), JSON, 422, ["cylinders: must be a whole number, got 4.5"]),
    ("four-digit-year", P, car(model_year=1975), JSON, 422, ["model_year: 1975 is outside the hard limits 60–99"]),
    ("fractional-year", P, car(model_year=75.5), JSON, 422, ["model_year: must be a whole number, got 75.5"]),
    ("unknown-origin", P, car(origin=4), JSON, 422,
     ["origin: unknown value 4 (allowed: 1 USA, 2 Europe, 3 Japan)"]),
    ("origin-zero", P, car(origin=0), JSON, 422, ["origin: unknown value 0 (allowed: 1 USA"]),
    ("near-origin", P, car(origin=3.0000000001), JSON, 422, ["origin: unknown value 3.0000000001 (allowed: 1 USA"]),
    ("fractional-origin", P, car(origin=2.5), JSON, 422, ["origin: unknown value 2.5 (allowed: 1 USA"]),
    ("slow-acceleration", P, car(acceleration=100), JSON, 422, ["acceleration: 100 is outside the hard limits 4–35 s"]),
    # --- batches -----------------------------------------------------------------------
    ("empty-batch", P, {"instances": []}, JSON, 422, ["instances", "at least 1"]),
    ("instances-not-a-list", P, {"instances": CAR}, JSON, 422, ["instances", "JSON array", "object"]),
    ("instance-not-an-object", P, {"instances": [CAR, 7]}, JSON, 422, ["instances[1]", "JSON object", "number"]),
    ("bad-car-in-batch", P, {"instances": [CAR, CAR, CAR, car(horsepower=-1)]}, JSON, 422,
     ["instances[3].horsepower: -1 is outside the hard limits 30–400 hp"]),
    ("extra-key-beside-instances", P, {"instances": [CAR], "model": "x"}, JSON, 422, ["model", "unknown field", "allowed fields: instances"]),
    ("batch-over-limit", P, {"instances": [CAR] * 10_001}, JSON, 422, ["instances", "at most 10000", "10001"]),
    ("body-over-limit", P, b'{"instances": [' + b",".join([json.dumps(CAR).encode()] * 25_000) + b"]}",
     JSON, 413, ["body", "over the limit", "2 MiB"]),
    # --- headers, routes, methods --------------------------------------------------------
    ("bad-request-id", P, CAR, {**JSON, "X-Request-ID": "has spaces in it"}, 400, ["X-Request-ID", "characters"]),
    ("long-request-id", P, CAR, {**JSON, "X-Request-ID": "x" * 200}, 400, ["X-Request-ID", "128"]),
    ("get-on-predict", ("GET", P), None, {}, 405, ["method GET", "/predict"]),
    ("unknown-route", "/predictions", CAR, JSON, 404, ["no such route", "/predictions"]),
    # --- Open Inference Protocol V2 ------------------------------------------------------
    ("v2-not-json", V2, b"{inputs", JSON, 400, ["not valid JSON"]),
    ("v2-no-inputs", V2, {"inputs": []}, JSON, 400, ["inputs", "at least 1"]),
    ("v2-missing-inputs", V2, {"id": "1"}, JSON, 400, ["inputs", "required"]),
    ("v2-two-inputs", V2, {"inputs": tensor()["inputs"] * 2}, JSON, 400, ["inputs", "exactly 1", "features"]),
    ("v2-wrong-input-name", V2, tensor(name="x"), JSON, 400, ["inputs[0].name", "'x'", "features"]),
    ("v2-wrong-datatype", V2, tensor(datatype="INT64"), JSON, 400, ["inputs[0].datatype", "FP32", "INT64"]),
    ("v2-fp64", V2, tensor(datatype="FP64"), JSON, 400, ["inputs[0].datatype", "FP32"]),
    ("v2-wrong-width", V2, tensor(shape=(1, 6), data=ROW[:6]), JSON, 400, ["inputs[0].shape", "[N, 7]", "[1, 6]"]),
    ("v2-rank-3", V2, tensor(shape=(1, 1, 7)), JSON, 400, ["inputs[0].shape", "[N, 7]"]),
    ("v2-zero-rows", V2, tensor(shape=(0, 7), data=[]), JSON, 400, ["inputs[0].shape", "at least 1"]),
    ("v2-negative-shape", V2, tensor(shape=(-1, 7)), JSON, 400, ["inputs[0].shape[0]", "greater than or equal to 0"]),
    ("v2-too-many-rows", V2, tensor(shape=(10_001, 7), data=ROW), JSON, 400, ["inputs[0].shape", "at most 10000"]),
    ("v2-data-size-mismatch", V2, tensor(shape=(2, 7)), JSON, 400, ["inputs[0].data", "14 values", "got 7"]),
    ("v2-ragged-nested", V2, tensor(shape=(2, 7), data=[ROW, ROW[:5]]), JSON, 400, ["inputs[0].data", "row 1", "5 values"]),
    ("v2-string-in-data", V2, tensor(data=ROW[:3] + ["3504"] + ROW[4:]), JSON, 400, ["inputs[0].data[3]", "must be a number", "string"]),
    ("v2-bool-in-data", V2, tensor(data=[True] + ROW[1:]), JSON, 400, ["inputs[0].data[0]", "must be a number", "boolean"]),
    ("v2-out-of-range", V2, tensor(shape=(2, 7), data=ROW + ROW[:2] + [999] + ROW[3:]), JSON, 400,
     ["inputs[0].data row 1: horsepower: 999 is outside the hard limits 30–400 hp"]),
    ("v2-null-not-nullable", V2, tensor(data=[None] + ROW[1:]), JSON, 400,
     ["inputs[0].data row 0: cylinders: missing (only horsepower may be missing)"]),
    ("v2-nan-literal", V2, json.dumps(tensor()).replace("3504.0", "NaN").encode(), JSON, 400,
     ["inputs[0].data row 0: weight: NaN is not a finite number (allowed: a number within 1000–7000 lb)"]),
    ("v2-fraction", V2, tensor(data=[4.5] + ROW[1:]), JSON, 400,
     ["inputs[0].data row 0: cylinders: must be a whole number, got 4.5"]),
    ("v2-near-category", V2, tensor(data=ROW[:6] + [3.0000000001]), JSON, 400,
     ["inputs[0].data row 0: origin: unknown value 3.0000000001 (allowed: 1 USA, 2 Europe, 3 Japan)"]),
    ("v2-many-problems", V2, tensor(shape=(2, 7), data=ROW + [1] + ROW[1:6] + [7]), JSON, 400,
     ["inputs[0].data row 1: cylinders: 1 is outside the hard limits 2–16 (and 1 more)"]),
    ("v2-missing-data", V2, {"inputs": [{"name": "features", "shape": [1, 7], "datatype": "FP32"}]}, JSON, 400,
     ["inputs[0].data", "required"]),
    ("v2-unknown-output", V2, tensor(outputs=[{"name": "price"}]), JSON, 400, ["outputs[0].name", "'price'", "mpg"]),
    ("v2-unknown-key", V2, tensor(priority=1), JSON, 400, ["priority", "unknown field", "id, parameters, inputs, outputs"]),
    ("v2-unknown-tensor-key", V2, {"inputs": [{**tensor()["inputs"][0], "dtype": "FP32"}]}, JSON, 400,
     ["inputs[0].dtype", "unknown field", "name, shape, datatype, parameters, data"]),
    ("v2-unknown-model", "/v2/models/price/infer", tensor(), JSON, 404, ["model 'price' not found", "'mpg'"]),
    ("v2-unknown-version", "/v2/models/mpg/versions/0000/infer", tensor(), JSON, 404, ["no version '0000'"]),
    ("v2-text-plain", V2, json.dumps(tensor()).encode(), {"Content-Type": "text/plain"}, 415, ["Content-Type"]),
    ("v2-model-metadata-unknown", ("GET", "/v2/models/price"), None, {}, 404, ["model 'price' not found"]),
]


@pytest.fixture(scope="module")
def http(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("api-bad")) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        yield client


def test_there_are_at_least_40_distinct_bad_requests():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) >= 40
    bodies = [json.dumps(c[2], sort_keys=True) if not isinstance(c[2], bytes) else c[2].decode()
              for c in CASES]
    requests = {(str(c[1]), b, json.dumps(c[3], sort_keys=True)) for c, b in zip(CASES, bodies)}
    assert len(requests) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_refused_clearly(http, case):
    _, target, body, headers, status, words = case
    method, path = target if isinstance(target, tuple) else ("POST", target)
    content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    r = http.request(method, path, content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    message = answer["error"]
    assert isinstance(message, str) and "\n" not in message and "Traceback" not in r.text
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    if path.startswith("/v2/"):        # the V2 error object is exactly {"error": "..."}
        assert set(answer) == {"error"}
    if "errors" in answer:             # the per-field list: each names its field and rule
        for e in answer["errors"]:
            assert e["field"] and e["rule"] and e["message"].startswith(e["field"])


def test_chunked_body_over_limit_is_refused(http):
    """No Content-Length (chunked upload): the limit is enforced while reading."""
    def chunks():
        yield b'{"instances": ['
        for _ in range(25_000):
            yield json.dumps(CAR).encode() + b","
        yield json.dumps(CAR).encode() + b"]}"
    r = http.post(P, content=chunks(), headers=JSON)
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_every_problem_is_listed(http):
    r = http.post(P, json={"instances": [car(cylinders=99), car(origin=7, weight=None)]})
    assert r.status_code == 422
    answer = r.json()
    assert answer["error"].startswith("instances[0].cylinders: 99 is outside the hard limits 2–16")
    assert "(and 2 more problems)" in answer["error"]
    assert [e["field"] for e in answer["errors"]] == [
        "instances[0].cylinders", "instances[1].weight", "instances[1].origin"]
    assert [e["rule"] for e in answer["errors"]] == ["less_than_equal", "float_type", "less_than_equal"]


def test_server_still_healthy_after_the_abuse(http):
    assert http.get("/v2/health/ready").status_code == 200
    assert http.post(P, json=CAR).status_code == 200
    metrics = http.get("/metrics").text
    assert 'status="500"' not in metrics
