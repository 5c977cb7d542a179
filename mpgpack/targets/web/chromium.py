"""Headless Chromium for the page's tests, benchmark and screenshots (Playwright for Python).

Uses Debian's /usr/bin/chromium (installed by scripts/setup.sh), never a browser downloaded by
Playwright, with everything that would reach the network on its own switched off.
Also starts the real `mpgpack web` server on a loopback port.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("MPGPACK_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True}


def launch(playwright):
    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} not found; run `bash scripts/setup.sh` (Debian package chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_bundle(bundle: Path, port: int | None = None, timeout: float = 30.0):
    """Runs `mpgpack web --bundle BUNDLE` on 127.0.0.1 and yields its base URL."""
    port = port or _free_port()
    mpgpack = Path(sys.executable).parent / "mpgpack"
    proc = subprocess.Popen([str(mpgpack), "web", "--bundle", str(bundle), "--port", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mpgpack web exited with {proc.returncode}: {proc.stderr.read().strip()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mpgpack web did not listen on port {port} within {timeout} s")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
