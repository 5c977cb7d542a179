"""The V2 protocol with the real, unmodified clients: tritonclient over HTTP (JSON and the binary
tensor extension) and over gRPC, against one real `mpgpack serve --grpc-port` on 127.0.0.1.

The matrix: (HTTP JSON, HTTP binary, gRPC) x (health, metadata, the golden batch with missing
horsepower, request id echo, bad input). The gRPC bad-input suite speaks the protocol through
tritonclient's own generated messages, so it can send what the friendly client would refuse.
This test process never imports mpgpack's gRPC service: its messages share the protocol's
names with tritonclient's, and protobuf allows one definition per process.
"""
from __future__ import annotations

import json
import os
import threading
import time

import httpx
import numpy as np
import pytest

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException
import grpc  # noqa: E402

from mpgpack.core.bundle import open_bundle  # noqa: E402
from tests.helpers import free_port, running_server  # noqa: E402

TOKEN = "v2-clients-admin-token"
ROW = [8, 307.0, 130.0, 3504.0, 12.0, 70, 1]
MAX_ABS_ERROR: dict[str, float] = {}       # per path, printed by the last test


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    grpc_port = free_port()
    env = {**os.environ, "MPGPACK_ADMIN_TOKEN": TOKEN}
    with running_server(bundle_dir, tmp_path_factory.mktemp("v2-clients"), "--grpc-port",
                        str(grpc_port), env=env) as srv:
        srv.grpc = f"127.0.0.1:{grpc_port}"
        yield srv


@pytest.fixture(scope="module")
def http_client(server):
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(server):
    client = grpcclient.InferenceServerClient(server.grpc)
    yield client
    client.close()


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def golden(bundle_dir):
    g = open_bundle(bundle_dir).golden()
    assert np.isnan(g.X[:, 2]).sum() > 0            # the batch holds cars with missing horsepower
    return g


# ---- health and metadata --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_health_and_metadata(kind, http_client, grpc_client, manifest):
    client = http_client if kind == "http" else grpc_client
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mpg")
    assert client.is_model_ready("mpg", manifest["model"]["version"])
    server = client.get_server_metadata(**({"as_json": True} if kind == "grpc" else {}))
    assert server["name"] == "mpgpack" and server["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("mpg", **({"as_json": True} if kind == "grpc" else {}))
    assert meta["name"] == "mpg" and meta["versions"] == [manifest["model"]["version"]]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 7]}] or \
        meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": ["-1", "7"]}]
    assert meta["outputs"][0]["name"] == "mpg"
    with pytest.raises(InferenceServerException, match="not found"):
        client.get_model_metadata("price")


# ---- the golden batch on every path ---------------------------------------------------------
def _http_infer(client, X, binary: bool, request_id: str = ""):
    tensor = httpclient.InferInput("features", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=binary)
    output = httpclient.InferRequestedOutput("mpg", binary_data=binary)
    return client.infer("mpg", [tensor], outputs=[output], request_id=request_id)


def _grpc_infer(client, X, request_id: str = ""):
    tensor = grpcclient.InferInput("features", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)
    return client.infer("mpg", [tensor], request_id=request_id)


@pytest.mark.parametrize("path", ["http-json", "http-binary", "http-default", "grpc"])
def test_golden_batch(path, http_client, grpc_client, golden):
    X = golden.X.astype(np.float32)
    if path == "grpc":
        result = _grpc_infer(grpc_client, X)
    elif path == "http-default":        # the client's own defaults: binary in and out
        tensor = httpclient.InferInput("features", list(X.shape), "FP32")
        tensor.set_data_from_numpy(X)
        result = http_client.infer("mpg", [tensor])
    else:
        result = _http_infer(http_client, X, binary=path == "http-binary")
    got = result.as_numpy("mpg")
    assert got.shape == (len(X), 1) and got.dtype == np.float32
    err = float(np.max(np.abs(got[:, 0].astype(np.float64) - golden.expected)))
    MAX_ABS_ERROR[path] = err
    assert err <= 1e-4


def test_json_nan_is_missing_horsepower(server, golden):
    """Python's json writes a missing FP32 value as the literal NaN, with no Content-Type."""
    X = golden.X[:20]
    body = json.dumps({"inputs": [{"name": "features", "shape": [20, 7], "datatype": "FP32",
                                   "data": X.reshape(-1).tolist()}]})
    assert "NaN" in body
    r = httpx.post(server.url + "/v2/models/mpg/infer", content=body.encode(), timeout=30)
    assert r.status_code == 200, r.text
    got = np.array(r.json()["outputs"][0]["data"])
    assert np.max(np.abs(got - golden.expected[:20])) <= 1e-4


@pytest.mark.parametrize("kind", ["http-json", "http-binary", "grpc"])
def test_request_id_echo(kind, http_client, grpc_client):
    X = np.array([ROW], np.float32)
    if kind == "grpc":
        assert _grpc_infer(grpc_client, X, request_id="trace-7").get_response().id == "trace-7"
    else:
        result = _http_infer(http_client, X, binary=kind == "http-binary", request_id="trace-7")
        assert result.get_response()["id"] == "trace-7"


def test_friendly_api_takes_category_names(server):
    """POST /predict takes "origin" by code or by name, any case, as the page's CSV does."""
    car = dict(zip(["cylinders", "displacement", "horsepower", "weight", "acceleration",
                    "model_year", "origin"], ROW))
    answers = set()
    for origin in (1, "USA", "usa", " Usa "):
        r = httpx.post(server.url + "/predict", json={**car, "origin": origin}, timeout=30)
        assert r.status_code == 200, r.text
        answers.add(r.json()["predictions"][0]["mpg"])
    assert len(answers) == 1
    japan = httpx.post(server.url + "/predict", json={"instances": [{**car, "origin": "Japan"},
                                                                    {**car, "origin": 3}]}, timeout=30)
    assert japan.status_code == 200
    a, b = (p["mpg"] for p in japan.json()["predictions"])
    assert a == b and a not in answers
    r = httpx.post(server.url + "/predict", json={**car, "origin": "Mars"}, timeout=30)
    assert r.status_code == 422
    assert "origin" in r.json()["error"] and "1 USA, 2 Europe, 3 Japan" in r.json()["error"]


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True])
def test_bad_input_http_client(binary, http_client):
    X = np.array([ROW, ROW], np.float32)
    X[1, 3] = np.nan                                  # weight may not be missing
    with pytest.raises(InferenceServerException) as err:
        _http_infer(http_client, X, binary)
    assert err.value.status() == "400"
    assert "row 1: weight: NaN is not a finite number" in err.value.message()
    X = np.array([ROW], np.float32)
    X[0, 2] = np.inf                                  # Infinity is never a value
    with pytest.raises(InferenceServerException, match="horsepower: Infinity is not a finite number"):
        _http_infer(http_client, X, binary)


def _raw_request(data=None, shape=(1, 7), datatype="FP32", name="features", model="mpg",
                 version="", raw=True, **kw):
    values = np.asarray(ROW if data is None else data, dtype=np.float32)
    tensor = pb.ModelInferRequest().InferInputTensor(name=name, datatype=datatype, shape=list(shape))
    if not raw:
        tensor.contents.fp32_contents.extend(values.tolist())
    req = pb.ModelInferRequest(model_name=model, model_version=version, inputs=[tensor], **kw)
    if raw:
        req.raw_input_contents.append(values.tobytes())
    return req


def _with(req, change):
    change(req)
    return req


NAN_WEIGHT = ROW[:3] + [float("nan")] + ROW[4:]
GRPC_CASES = [
    ("wrong-datatype", _raw_request(datatype="INT64", data=ROW[:7] * 2), ["inputs[0].datatype", "FP32"]),
    ("wrong-name", _raw_request(name="x"), ["inputs[0].name", "'x'", "features"]),
    ("wrong-width", _raw_request(shape=(1, 6), data=ROW[:6]), ["inputs[0].shape", "[N, 7]"]),
    ("rank-3", _raw_request(shape=(1, 1, 7)), ["inputs[0].shape", "[N, 7]"]),
    ("zero-rows", _raw_request(shape=(0, 7), data=[]), ["inputs[0].shape", "at least 1"]),
    ("negative-shape", _raw_request(shape=(-1, 7)), ["inputs[0].shape[0]"]),
    ("too-many-rows", _raw_request(shape=(10_001, 7), data=ROW * 10_001), ["at most 10000"]),
    ("raw-size-mismatch", _raw_request(shape=(2, 7)), ["raw_input_contents[0]", "56 bytes", "got 28"]),
    ("contents-count-mismatch", _raw_request(shape=(2, 7), raw=False), ["inputs[0]", "14 values", "got 7"]),
    ("raw-count-mismatch", _with(_raw_request(), lambda r: r.raw_input_contents.append(b"x")),
     ["raw_input_contents", "one entry per input"]),
    ("no-inputs", pb.ModelInferRequest(model_name="mpg"), ["inputs", "at least 1"]),
    ("two-inputs", _with(_raw_request(raw=False), lambda r: r.inputs.append(r.inputs[0])),
     ["inputs", "exactly 1"]),
    ("nan-weight", _raw_request(data=NAN_WEIGHT), ["row 0", "weight", "finite number"]),
    ("inf-horsepower", _raw_request(data=ROW[:2] + [float("inf")] + ROW[3:]), ["row 0", "horsepower", "Infinity"]),
    ("out-of-range", _raw_request(data=ROW[:2] + [999.0] + ROW[3:]), ["row 0", "horsepower", "999"]),
    ("not-whole", _raw_request(data=[8.5] + ROW[1:]), ["row 0", "cylinders", "whole number"]),
    ("unknown-category", _raw_request(data=ROW[:6] + [4]), ["row 0", "origin"]),
    ("unknown-output", _with(_raw_request(), lambda r: r.outputs.add(name="price")), ["outputs[0].name", "'price'"]),
    ("bytes-datatype", _raw_request(datatype="BYTES"), ["raw_input_contents[0]", "BYTES"]),
    ("unknown-model", _raw_request(model="price"), ["model 'price' not found"]),
    ("unknown-version", _raw_request(version="0000"), ["no version '0000'"]),
]


@pytest.mark.parametrize("case", GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_bad_input_grpc(case, stub):
    _, request, words = case
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(request, timeout=30)
    code = err.value.code()
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), code
    assert (code == grpc.StatusCode.NOT_FOUND) == case[0].startswith("unknown-m") or \
        case[0] == "unknown-version"
    for word in words:
        assert word in err.value.details(), f"{word!r} not in {err.value.details()!r}"


def test_grpc_message_over_body_limit(stub):
    """The HTTP body limit (2 MiB) is the gRPC message limit too."""
    n = 80_000
    request = _raw_request(shape=(n, 7), data=np.zeros(n * 7, np.float32))
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_error_matches_http_400(server, stub):
    """The same bad tensor gets the same message over gRPC as the HTTP 400."""
    body = {"inputs": [{"name": "features", "shape": [1, 7], "datatype": "FP32", "data": NAN_WEIGHT}]}
    r = httpx.post(server.url + "/v2/models/mpg/infer",
                   content=json.dumps(body).encode(), timeout=30)
    assert r.status_code == 400
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(_raw_request(data=NAN_WEIGHT, raw=False), timeout=30)
    assert err.value.details() == r.json()["error"]


def test_unimplemented_calls_are_clear(http_client, grpc_client):
    with pytest.raises(InferenceServerException) as err:
        http_client.get_model_config("mpg")
    assert err.value.status() == "404" and "not implement" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        http_client.get_model_repository_index()
    assert err.value.status() == "404"
    for call in (lambda: grpc_client.get_model_config("mpg"),
                 lambda: grpc_client.get_inference_statistics("mpg"),
                 lambda: grpc_client.get_model_repository_index()):
        with pytest.raises(InferenceServerException) as err:
            call()
        assert err.value.status() == "StatusCode.UNIMPLEMENTED"


BINARY_CASES = [   # (header JSON, binary blob, Inference-Header-Content-Length or None: exact)
    ("size-mismatch", {"binary_data_size": 20}, bytes(20), None, ["binary_data_size", "28 bytes", "got 20"]),
    ("blob-too-short", {"binary_data_size": 28}, bytes(20), None, ["28 bytes declared", "20"]),
    ("blob-too-long", {"binary_data_size": 28}, bytes(32), None, ["4 bytes", "belong to no input"]),
    ("header-length-past-body", {"binary_data_size": 28}, bytes(28), "9999", ["Inference-Header-Content-Length", "9999"]),
    ("header-length-not-number", {"binary_data_size": 28}, bytes(28), "12a", ["Inference-Header-Content-Length"]),
    ("size-not-integer", {"binary_data_size": "28"}, bytes(28), None, ["binary_data_size", "whole number"]),
]


@pytest.mark.parametrize("case", BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_binary_sizes_that_do_not_match(case, server):
    _, params, blob, length, words = case
    header = json.dumps({"inputs": [{"name": "features", "shape": [1, 7], "datatype": "FP32",
                                     "parameters": params}]}).encode()
    r = httpx.post(server.url + "/v2/models/mpg/infer", content=header + blob, timeout=30,
                   headers={"Inference-Header-Content-Length": length or str(len(header))})
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"}
    for word in words:
        assert word in r.json()["error"]


def test_binary_over_body_limit(server):
    n = 80_000                                          # 80,000 x 7 x 4 bytes > 2 MiB
    header = json.dumps({"inputs": [{"name": "features", "shape": [n, 7], "datatype": "FP32",
                                     "parameters": {"binary_data_size": n * 28}}]}).encode()
    r = httpx.post(server.url + "/v2/models/mpg/infer", content=header + bytes(n * 28),
                   headers={"Inference-Header-Content-Length": str(len(header))}, timeout=30)
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


# ---- one process, one slot -----------------------------------------------------------------
def test_grpc_metrics_and_reload_under_grpc_load(server, bundle_dir):
    """A reload while gRPC clients predict fails no request; gRPC calls show in /metrics."""
    X = np.array([ROW] * 10, np.float32)
    stop, done, failed = threading.Event(), [], []

    def load():
        client = grpcclient.InferenceServerClient(server.grpc)
        while not stop.is_set():
            try:
                client.infer("mpg", [_input(X)])
                done.append(1)
            except Exception as exc:      # counted, reported below
                failed.append(repr(exc))
        client.close()

    def _input(values):
        tensor = grpcclient.InferInput("features", list(values.shape), "FP32")
        tensor.set_data_from_numpy(values)
        return tensor

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    before = len(done)
    r = httpx.post(server.url + "/admin/reload", json={"bundle": str(bundle_dir)},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert r.status_code == 200, r.text
    assert failed == [] and len(done) > before > 0
    print(f"\nreload under gRPC load: {len(done)} requests, {len(failed)} failed")
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    assert 'endpoint="/inference.GRPCInferenceService/ModelInfer",method="GRPC"' in metrics
    assert 'status="500"' not in metrics


def test_report_max_abs_error(bundle_dir):
    # After the client tests above (same module, same tier: they need the bundle too).
    print("\nmax abs error vs golden outputs per path: " +
          ", ".join(f"{k} {v:.2e}" for k, v in sorted(MAX_ABS_ERROR.items())))
    assert set(MAX_ABS_ERROR) == {"http-json", "http-binary", "http-default", "grpc"}


# ---- the binary codec on its own (no server) ------------------------------------------------
def test_binary_codec_round_trip():
    from types import SimpleNamespace as T
    from mpgpack.targets.api.v2_binary import (binary_outputs, decode_inputs, encode_response,
                                               split_body)
    X = np.array([ROW, ROW], np.float32)
    header = b'{"inputs": []}'
    parts = split_body(header + X.tobytes(), str(len(header)).encode())
    assert parts.header == header and parts.blob == X.tobytes()
    inputs = [T(name="features", datatype="FP32", shape=[2, 7], data=None,
                parameters={"binary_data_size": 56}),
              T(name="other", datatype="FP32", shape=[1], data=[1.0], parameters=None)]
    values = decode_inputs(inputs, parts.blob)
    assert values[1] is None and np.array_equal(values[0].reshape(2, 7), X)
    # per-output binary_data wins over the request's binary_data_output
    outs = [T(name="mpg", parameters={"binary_data": False})]
    assert binary_outputs({"binary_data_output": True}, outs, "mpg") is False
    assert binary_outputs({"binary_data_output": True}, None, "mpg") is True
    assert binary_outputs(None, None, "mpg") is False
    pred = np.array([16.5, 25.25], np.float32)
    response = {"id": "1", "outputs": [{"name": "mpg", "datatype": "FP32", "shape": [2, 1], "data": pred}]}
    body, length = encode_response(response, {"mpg"})
    meta = json.loads(body[:length])
    assert "data" not in meta["outputs"][0] and meta["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert np.array_equal(np.frombuffer(body[length:], "<f4"), pred)
    body, length = encode_response(response, set())
    assert length is None and json.loads(body)["outputs"][0]["data"] == [16.5, 25.25]
