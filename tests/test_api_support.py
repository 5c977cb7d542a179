"""Helpers for the API tests: start the real `mpgpack serve` on 127.0.0.1 and stop it. No tests here."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, VENV_BIN, free_port

STARTUP_SECONDS = 60


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"server at {url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextmanager
def running_server(bundle: Path, log_dir: Path, *extra: str, command: list[str] | None = None,
                   env: dict | None = None):
    """`mpgpack serve --bundle B --port P ...` as a subprocess; yields a Server, always stops it."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    cmd = (command or [str(VENV_BIN / "mpgpack")]) + [
        "serve", "--bundle", str(bundle), "--port", str(port), *extra]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, log)
        yield Server(url, proc, log)
    finally:
        stop(proc)


def golden_cars(bundle) -> list[dict]:
    """The golden inputs as /predict cars (NaN -> null)."""
    return bundle.golden_cars()


def post_json(url: str, body, timeout: float = 30) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


if __name__ == "__main__":
    sys.exit("helpers only")
