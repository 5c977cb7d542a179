"""A server as a subprocess on 127.0.0.1: a free port, start it, wait until it answers, stop it.

The one copy of these steps for the benchmarks and the tests (tests/helpers.py builds on it).
"""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick); a server started next can take it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60,
                  log: Path | None = None) -> None:
    """Polls url until it answers 2xx; fails early if proc exits. The log's tail goes into the
    error, so a test failure shows why the server did not come up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}"
                               f"{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    return f":\n{log.read_text(errors='replace')[-3000:]}" if log and log.exists() else ""


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def start(cmd: list[str], log: Path, ready_url: str, *, cwd: Path | None = None,
          env: dict | None = None, timeout: float = 60, **popen) -> subprocess.Popen:
    """Starts cmd with stdout and stderr into log; returns once ready_url answers (stops it and
    raises otherwise)."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, **popen)
    try:
        wait_until_up(ready_url, proc, timeout, log)
    except BaseException:
        stop(proc)
        raise
    return proc


@contextmanager
def running(cmd: list[str], log: Path, ready_url: str, **kw):
    """start(...) as a context: yields the process, always stops it."""
    proc = start(cmd, log, ready_url, **kw)
    try:
        yield proc
    finally:
        stop(proc)
