"""The service starts without the build stack, and refuses a tampered bundle with one line."""
from __future__ import annotations

import json
import sys

import httpx

from tests.helpers import free_port, run_cli
from tests.helpers import running_server

# Run `mpgpack serve` with an import hook that fails any import of the build stack, as if
# TensorFlow, scikit-learn, tensorflowjs and pandas were not installed, and records attempts.
BLOCKING_MAIN = r"""
import importlib.abc, os, sys
BLOCKED = {"tensorflow", "sklearn", "tensorflowjs", "pandas", "tf_keras", "keras", "skl2onnx"}
ATTEMPTS = os.environ["MPGPACK_BLOCKED_LOG"]

class BuildStackBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            with open(ATTEMPTS, "a") as fh:
                fh.write(name + "\n")
            raise ImportError(f"{name} is blocked: the API must run without the build stack")
        return None

sys.meta_path.insert(0, BuildStackBlocker())
from mpgpack.cli import main
sys.exit(main())
"""

CAR = {"cylinders": 4, "displacement": 97.0, "horsepower": None, "weight": 2130.0,
       "acceleration": 14.5, "model_year": 70, "origin": 3}


def test_serves_with_tensorflow_sklearn_pandas_blocked(bundle_dir, tmp_path):
    attempts = tmp_path / "blocked.txt"
    attempts.write_text("")
    env = {**__import__("os").environ, "MPGPACK_BLOCKED_LOG": str(attempts)}
    cmd = [sys.executable, "-c", BLOCKING_MAIN]
    with running_server(bundle_dir, tmp_path, command=cmd, env=env) as srv, \
            httpx.Client(base_url=srv.url) as http:
        r = http.post("/predict", json=CAR)
        assert r.status_code == 200 and 10 < r.json()["predictions"][0]["mpg"] < 50
        r = http.post("/v2/models/mpg/infer", json={"inputs": [
            {"name": "features", "shape": [1, 7], "datatype": "FP32", "data": list(CAR.values())}]})
        assert r.status_code == 200
        assert http.get("/metrics").status_code == 200
    assert attempts.read_text() == "", "the API tried to import: " + attempts.read_text()


def _serve_fails(bundle, *extra) -> str:
    result = run_cli("serve", "--bundle", str(bundle), "--port", str(free_port()), *extra, timeout=120)
    assert result.returncode != 0
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_tampered_model_is_refused(bundle_copy):
    onnx = bundle_copy / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    line = _serve_fails(bundle_copy)
    assert "model.onnx" in line and "sha256" in line


def test_tampered_golden_is_refused(bundle_copy):
    golden = bundle_copy / "golden.json"
    golden.write_text(golden.read_text().replace("[", "[ ", 1))
    line = _serve_fails(bundle_copy)
    assert "golden.json" in line and "sha256" in line


def test_model_that_disagrees_with_golden_is_refused(bundle_copy):
    """Even with matching sha256s (a re-signed manifest), a model that gives other answers
    than the golden outputs is not served."""
    import hashlib
    golden = bundle_copy / "golden.json"
    data = json.loads(golden.read_text())
    data["expected"][0] += 1.0
    golden.write_text(json.dumps(data))
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["artifacts"]["golden"]["sha256"] = hashlib.sha256(golden.read_bytes()).hexdigest()
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    line = _serve_fails(bundle_copy)
    assert "golden.json" in line and "max abs error" in line


def test_missing_bundle_is_one_line(tmp_path):
    line = _serve_fails(tmp_path / "nowhere")
    assert "nowhere" in line


def test_bad_flags_are_one_line(bundle_dir):
    assert "--workers" in _serve_fails(bundle_dir, "--workers", "0")


def test_port_in_use_is_one_line(bundle_dir):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--bundle", str(bundle_dir), "--port", str(port), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"mpgpack serve: error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another --port or stop what uses it"]
