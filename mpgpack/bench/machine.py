"""What the benchmarks ran on: CPU, cores, memory, and the version of every runtime."""
from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from importlib import metadata


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def machine_info() -> dict:
    pkgs = {}
    for name in ("numpy", "scikit-learn", "onnxruntime", "ai-edge-litert", "tensorflow",
                 "fastapi", "uvicorn", "flask", "gunicorn", "playwright"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1),
            "os": platform.platform(), "python": platform.python_version(), "packages": pkgs,
            "node": _version(["node", "--version"]), "chromium": _version(["chromium", "--version"]),
            "wrk": _version(["wrk", "--version"])}
