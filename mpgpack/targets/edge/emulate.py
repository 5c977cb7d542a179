"""The emulated device check: the aarch64 edge tarball installed and run under qemu-user.

Used by `mpgpack edge emulate` and by the test suite. A Debian 12 arm64 userland with Python
3.11 (as on Raspberry Pi OS 12) is built once by aarch64_userland.sh into a cache folder
outside the repository; each check then unpacks the tarball, runs its own install.sh offline
(with the userland's qemu wrappers as PYTHON and RUN, since this kernel cannot start an
aarch64 program by itself) and runs `verify` and `predict` on the golden vectors.
Emulation proves the wheels, glibc, Python ABI and numbers; its timings mean nothing.
"""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError

USERLAND_SCRIPT = Path(__file__).resolve().parent / "aarch64_userland.sh"


def userland_dir() -> Path:
    return Path(os.environ.get("MPGPACK_AARCH64_USERLAND",
                               Path.home() / ".cache" / "mpgpack" / "aarch64"))


def ensure_userland(folder: Path | None = None) -> Path:
    """Builds the userland the first time (apt downloads, ~1 min); later calls only check."""
    folder = folder or userland_dir()
    proc = subprocess.run(["bash", str(USERLAND_SCRIPT), str(folder)], capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        raise UserError(f"could not build the aarch64 userland in {folder}: "
                        f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return folder


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpacks an edge tarball into dest; returns its top folder."""
    with tarfile.open(tarball) as tar:
        tops = {m.name.split("/")[0] for m in tar.getmembers()}
        tar.extractall(dest, filter="data")
    if len(tops) != 1:
        raise UserError(f"{tarball} should hold one top folder, holds {sorted(tops)}")
    return dest / tops.pop()


def emulated_env(userland: Path) -> dict:
    return {**os.environ, "PYTHON": str(userland / "python3"), "RUN": str(userland / "run")}


def install(top: Path, prefix: Path, userland: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
    """Runs the tarball's own install.sh (offline) into prefix; emulated when userland is given."""
    env = emulated_env(userland) if userland else dict(os.environ)
    return subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(prefix), "--no-link"],
                          capture_output=True, text=True, timeout=timeout, env=env)


def run_runner(prefix: Path, *args: str, userland: Path | None = None, timeout: float = 600,
               **kw) -> subprocess.CompletedProcess:
    """Runs the installed runner (`python -m mpgpack.targets.edge.device`, what the mpg-edge script runs)."""
    cmd = [str(prefix / "venv" / "bin" / "python"), "-m", "mpgpack.targets.edge.device", *args]
    if userland:
        cmd = [str(userland / "run"), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def write_golden_csv(X: np.ndarray, names: list[str], path: Path) -> Path:
    """The golden inputs as CSV, exactly: float32 values written as their float64 value."""
    lines = [",".join(names)]
    for row in X.astype(np.float64):
        lines.append(",".join("" if np.isnan(v) else repr(float(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def read_predictions_csv(path_or_text) -> np.ndarray:
    """The mpg column of a `mpg-edge predict` CSV output, as the float32 values it printed.

    The runner prints each float32 in the shortest text that reads back to the same float32;
    read as float64 it would be off by up to half a float32 step (~2e-6 at 40 MPG).
    """
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    lines = text.strip().splitlines()
    col = lines[0].split(",").index("mpg")
    return np.array([line.split(",")[col] for line in lines[1:]]).astype(np.float32)
