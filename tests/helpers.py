"""Helpers the test files share (no tests, no fixtures: those are in conftest.py).

A server subprocess (free port, start, wait until it answers, stop) is mpgpack.bench.servers, the
same steps the benchmarks use; this module adds the test-side conveniences on top.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mpgpack.data import AUTO_MPG
from mpgpack.bench.servers import free_port, running  # noqa: F401 (free_port: for the tests)

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DATA = AUTO_MPG                                           # the shipped Auto MPG data
STARTUP_SECONDS = 60


def run_cli(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Runs the installed `mpgpack` console script as a user would."""
    return subprocess.run([str(VENV_BIN / "mpgpack"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=kw.pop("cwd", REPO), **kw)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@contextmanager
def running_server(bundle: Path | str, log_dir: Path, *extra: str,
                   command: list[str] | None = None, env: dict | None = None):
    """`mpgpack serve --bundle B --port P ...` as a subprocess; yields a Server once
    /v2/health/ready answers, always stops it."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    url = f"http://127.0.0.1:{port}"
    cmd = (command or [str(VENV_BIN / "mpgpack")]) + [
        "serve", "--bundle", str(bundle), "--port", str(port), *extra]
    with running(cmd, log, url + "/v2/health/ready", cwd=REPO, env=env,
                 timeout=STARTUP_SECONDS) as proc:
        yield Server(url, proc, log)


def record_site(bundle: Path) -> None:
    """After a test changed a bundle's web/ or report/ on purpose: records them in its manifest
    as the build would (readers serve them only as recorded), dropping what is gone."""
    from mpgpack.core.bundle import sha256_file, tree_sha256
    manifest = json.loads((bundle / "manifest.json").read_text())
    packages = manifest.setdefault("packages", {})
    packages.pop("web", None)
    packages.pop("report", None)
    if (bundle / "web").is_dir():
        digest, files = tree_sha256(bundle / "web")
        packages["web"] = {"path": "web", "kind": "static_site", "sha256": digest,
                           "file_sha256": files}
    if (bundle / "report" / "index.html").is_file():
        packages["report"] = {"path": "report/index.html", "kind": "report_html",
                              "sha256": sha256_file(bundle / "report" / "index.html")}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))


def post_json(url: str, body, timeout: float = 30) -> tuple[int, dict]:
    """POSTs body as JSON; (status, decoded answer), also for an HTTP error status."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
