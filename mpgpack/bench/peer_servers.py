"""The servers a KServe, MLServer or BentoML user would write for model.onnx, and mpgpack's own,
as one table for `mpgpack bench --peers` (peer_load.py drives them).

Each server runs on 127.0.0.1 with 2 worker processes where it has them; each peer from a venv
of its own (peer-requirements/<venv>.txt), with the small model class its users write
(peer_apps/). ONNX Runtime gets one intra-op thread everywhere, as in mpgpack: the model is
tiny and the servers scale with processes. Each endpoint says how it wants rows and where its
answer's predictions are, so the same golden cars check every one before it is timed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil

from mpgpack.bench.peers import ensure_venv

APPS = Path(__file__).with_name("peer_apps")
PINS = Path(__file__).with_name("peer-requirements")
REPO = Path(__file__).resolve().parents[2]
QUIET = {"BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true"}   # no calls home while timed
WORKERS = 2


def v2_body(rows: list[list]) -> bytes:
    flat = [v for row in rows for v in row]
    return json.dumps({"inputs": [{"name": "features", "shape": [len(rows), len(rows[0])],
                                   "datatype": "FP32", "data": flat}]}).encode()


def v2_answer(out: dict) -> list[float]:
    return out["outputs"][0]["data"]


def v2_binary_body(rows: list[list]) -> bytes:
    """The binary tensor data extension, as tritonclient sends it by default: a JSON header
    (its length in Inference-Header-Content-Length), then the rows as little-endian float32;
    the outputs asked back in binary too."""
    raw = np.asarray(rows, dtype="<f4").tobytes()
    return _v2_binary_header(len(rows), len(rows[0])) + raw


def _v2_binary_header(n: int, width: int) -> bytes:
    return json.dumps({"inputs": [{"name": "features", "shape": [n, width], "datatype": "FP32",
                                   "parameters": {"binary_data_size": n * width * 4}}],
                       "parameters": {"binary_data_output": True}}).encode()


def v2_binary_headers(rows: list[list]) -> dict[str, str]:
    return {"Inference-Header-Content-Length": str(len(_v2_binary_header(len(rows), len(rows[0])))),
            "Content-Type": "application/octet-stream"}


def v2_binary_answer(body: bytes, headers) -> list[float]:
    """The first output of a binary V2 response (raw float32 after the JSON header)."""
    length = headers["Inference-Header-Content-Length"]
    if length is None:
        raise RuntimeError("asked for binary outputs, the server answered JSON: "
                           + body[:200].decode(errors="replace"))
    length = int(length)
    header = json.loads(body[:length])
    out = header["outputs"][0]
    size = out["parameters"]["binary_data_size"]
    return np.frombuffer(body[length:length + size], dtype="<f4").tolist()


def _json(answer: Callable[[dict], list[float]]) -> Callable[[bytes, Any], list[float]]:
    return lambda body, headers: answer(json.loads(body))


def _json_headers(rows: list[list]) -> dict[str, str]:
    return {"Content-Type": "application/json"}


def predict_body(names: list[str]) -> Callable[[list[list]], bytes]:
    """mpgpack's friendly body: one car as an object, several as {"instances": [...]}."""
    def body(rows: list[list]) -> bytes:
        cars = [dict(zip(names, row)) for row in rows]
        return json.dumps(cars[0] if len(cars) == 1 else {"instances": cars}).encode()
    return body


@dataclass(frozen=True)
class Endpoint:
    label: str                                   # the row in the report
    path: str
    body: Callable[[list[list]], bytes]          # rows (feature order) -> request body
    answer: Callable[[bytes, Any], list[float]]  # response body and headers -> predictions
    headers: Callable[[list[list]], dict[str, str]] = _json_headers   # rows -> request headers


@dataclass(frozen=True)
class Server:
    name: str
    venv: str | None            # peer-requirements/<venv>.txt; None: this project's own Python
    ready: str                  # a path that answers 2xx once the model is loaded
    endpoints: tuple[Endpoint, ...]
    command: Callable[[Path, Path, int, Path], tuple[list[str], dict, Path]]
    setting: str                # what was chosen, for the report


def _mpgpack(py: Path, bundle: Path, port: int, work: Path):
    return ([str(Path(sys.executable).parent / "mpgpack"), "serve", "--bundle", str(bundle),
             "--port", str(port), "--workers", str(WORKERS)], {}, REPO)


def _kserve(py: Path, bundle: Path, port: int, work: Path):
    return ([str(py), str(APPS / "kserve_model.py"), str(bundle / "model.onnx"), "--http_port",
             str(port), "--workers", str(WORKERS)], {}, work)


def _mlserver(py: Path, bundle: Path, port: int, work: Path):
    from mpgpack.bench.servers import free_port
    folder = work / "mlserver"
    (folder / "mpg").mkdir(parents=True, exist_ok=True)
    # parallel_workers 0: inference inline in the server process. MLServer's HTTP server is
    # one process either way; its worker pool adds an IPC hop per request for a ~12 µs model.
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(), "parallel_workers": 0}))
    (folder / "mpg" / "model-settings.json").write_text(json.dumps({
        "name": "mpg", "implementation": "mlserver_runtime.MPG",
        "parameters": {"uri": str(bundle / "model.onnx")}}))
    return [str(py.parent / "mlserver"), "start", str(folder)], {"PYTHONPATH": str(APPS)}, folder


def _bentoml(py: Path, bundle: Path, port: int, work: Path):
    return ([str(py.parent / "bentoml"), "serve", "bentoml_service:MPG", "--host", "127.0.0.1",
             "--port", str(port)],
            {"MPG_ONNX": str(bundle / "model.onnx"), "MPG_WORKERS": str(WORKERS)}, APPS)


def servers(feature_names: list[str]) -> list[Server]:
    v2 = "/v2/models/mpg/infer"
    return [
        Server("mpgpack", None, "/v2/health/ready", (
            Endpoint("mpgpack /predict", "/predict", predict_body(feature_names),
                     _json(lambda out: [p["mpg"] for p in out["predictions"]])),
            Endpoint("mpgpack V2", v2, v2_body, _json(v2_answer)),
            Endpoint("mpgpack V2 binary", v2, v2_binary_body, v2_binary_answer,
                     v2_binary_headers)), _mpgpack,
            f"mpgpack serve, {WORKERS} workers, all validation, metrics and access log on"),
        Server("KServe", "kserve", "/v2/health/ready", (
            Endpoint("KServe V1", "/v1/models/mpg:predict",
                     lambda rows: json.dumps({"instances": rows}).encode(),
                     _json(lambda out: out["predictions"])),
            Endpoint("KServe V2", v2, v2_body, _json(v2_answer)),
            Endpoint("KServe V2 binary", v2, v2_binary_body, v2_binary_answer,
                     v2_binary_headers)), _kserve,
            f"kserve ModelServer, custom ORT Model, {WORKERS} uvicorn workers"),
        Server("MLServer", "mlserver", "/v2/health/ready", (
            Endpoint("MLServer V2", v2, v2_body, _json(v2_answer)),), _mlserver,
            "mlserver start, custom ORT MLModel, parallel_workers 0 (inference in the server)"),
        Server("BentoML", "bentoml", "/readyz", (
            Endpoint("BentoML", "/predict", lambda rows: json.dumps({"rows": rows}).encode(),
                     _json(lambda out: out)),), _bentoml,
            f"bentoml serve, @bentoml.service(workers={WORKERS}) with ORT"),
    ]


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> tuple[bytes, Any]:
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read(), resp.headers


class Running:
    """One server started on a port: its process group, URL, cold start, and its memory."""

    def __init__(self, server: Server, bundle: Path, port: int, work: Path, probe: bytes):
        py = Path(sys.executable) if server.venv is None else \
            ensure_venv(server.venv, PINS / f"{server.venv}.txt") / "bin" / "python"
        cmd, env, cwd = server.command(py, bundle, port, work)
        self.server, self.url = server, f"http://127.0.0.1:{port}"
        self.log = work / f"{server.name}.log"
        t0 = time.perf_counter()
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **QUIET, **env},
                                         stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_first_answer(server.endpoints[0].path, probe, t0)

    def _wait_first_answer(self, path: str, probe: bytes, t0: float, timeout: float = 180):
        """Cold start: process start to the first prediction answered (the model loaded)."""
        while True:
            try:
                _post(self.url + path, probe, _json_headers([]), timeout=2)
                self.cold_start_s = time.perf_counter() - t0
                return
            except OSError:
                if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                    self.stop()
                    tail = self.log.read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"{self.server.name} did not answer {path}:\n{tail}")
                time.sleep(0.05)

    def predict(self, endpoint: Endpoint, rows: list[list]) -> list[float]:
        return endpoint.answer(*_post(self.url + endpoint.path, endpoint.body(rows),
                                      endpoint.headers(rows)))

    def memory(self) -> dict:
        """RSS of the whole process tree (supervisor + workers) and of its largest process."""
        procs = [psutil.Process(self.proc.pid)]
        procs += procs[0].children(recursive=True)
        rss = [p.memory_info().rss / 2**20 for p in procs if p.is_running()]
        return {"rss_total_mb": round(sum(rss), 1), "rss_max_process_mb": round(max(rss), 1),
                "processes": len(rss)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
