"""Peers measured with `mpgpack bench --peers`: `mlflow models serve` of the same pipeline, and
the venv each peer is installed into (the KServe, MLServer and BentoML servers: peer_servers.py).

MLflow is installed into a venv of its own on first use. It saves sklearn models with skops,
which refuses types it does not trust: the ones skops reports for this pipeline are passed
as trusted explicitly (here only numpy.dtype), which is what a careful MLflow user would do.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from mpgpack.core.bundle import Bundle

VENV = Path.home() / ".cache" / "mpgpack" / "mlflow-venv"
REQUIREMENTS = Path(__file__).with_name("mlflow-requirements.txt")
SAVE_SCRIPT = """
import pickle, sys, numpy as np, mlflow.sklearn, skops.io as sio
pipe = pickle.load(open(sys.argv[1], "rb"))
trusted = sio.get_untrusted_types(data=sio.dumps(pipe))
mlflow.sklearn.save_model(pipe, sys.argv[2], serialization_format="skops",
                          skops_trusted_types=trusted,
                          input_example=np.array([[8, 307, 130, 3504, 12, 70, 1]], dtype=np.float32))
print("trusted:", trusted)
"""
# MLflow must not call home during a benchmark.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def ensure_venv(name: str, requirements: Path, log=sys.stderr) -> Path:
    """~/.cache/mpgpack/<name>-venv with the pinned requirements, (re)installed only when the
    pins change: a peer's dependencies never touch the project's."""
    venv = VENV.parent / f"{name}-venv"
    stamp = venv / ".requirements"
    want = requirements.read_text()
    if stamp.is_file() and stamp.read_text() == want:
        return venv
    print(f"bench: installing {name} into {venv} (first use only) …", file=log, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
    stamp.write_text(want)
    return venv


def ensure_mlflow_venv(log=sys.stderr) -> Path:
    return ensure_venv("mlflow", REQUIREMENTS, log)


@contextmanager
def mlflow_server(bundle: Bundle, workdir: Path, port: int, workers: int = 2):
    """Yields the URL of `mlflow models serve` over the bundle's sklearn pipeline."""
    venv = ensure_mlflow_venv()
    model_dir = workdir / "mlflow-model"
    if not model_dir.exists():
        subprocess.run([str(venv / "bin" / "python"), "-c", SAVE_SCRIPT,
                        str(bundle.artifact("reference_pickle")), str(model_dir)],
                       check=True, capture_output=True, env={**os.environ, **QUIET_ENV})
    env = {**os.environ, **QUIET_ENV, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
                             "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local",
                             "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/ping", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow models serve did not start")
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def mlflow_body(rows: list[list[float]]) -> bytes:
    import json
    return json.dumps({"inputs": rows}).encode()
