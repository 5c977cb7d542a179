"""The emulated device check: the aarch64 edge tarball installed and run under qemu-user.

Used by `mpgpack edge emulate` and by the test suite. An arm64 userland per Raspberry Pi OS
release (Debian 12 "bookworm" with Python 3.11, Debian 13 "trixie" with Python 3.13, on an
emulated Cortex-A72 as in a Pi 4) is built once by aarch64_userland.sh into a cache folder
outside the repository; each check then unpacks the tarball, runs its own install.sh offline
(with the userland's qemu wrappers as PYTHON and RUN, since this kernel cannot start an
aarch64 program by itself) and runs `verify` and `predict` on the golden vectors.
Emulation proves the wheels, glibc, Python ABI and numbers; its timings mean nothing. The
emulated CPU makes LiteRT's XNNPACK pick other kernels than on x86, so results differ in the
last float32 bits: they are held to the golden tolerance, not compared bit for bit.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.targets.edge.pack import RELEASE_PYTHONS

USERLAND_SCRIPT = Path(__file__).resolve().parent / "aarch64_userland.sh"
RELEASES = list(RELEASE_PYTHONS)          # bookworm, trixie: the releases a tarball serves


def userland_dir(release: str) -> Path:
    """~/.cache/mpgpack/aarch64-<release>, or $MPGPACK_AARCH64_USERLAND-<release>."""
    prefix = os.environ.get("MPGPACK_AARCH64_USERLAND",
                            str(Path.home() / ".cache" / "mpgpack" / "aarch64"))
    return Path(f"{prefix}-{release}")


def ensure_userland(release: str, folder: Path | None = None) -> Path:
    """Builds the release's userland the first time (apt downloads, a few minutes); later
    calls only check."""
    if release not in RELEASE_PYTHONS:
        raise UserError(f"unknown release {release!r} (allowed: {', '.join(RELEASES)})")
    folder = folder or userland_dir(release)
    proc = subprocess.run(["bash", str(USERLAND_SCRIPT), str(folder), release],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise UserError(f"could not build the aarch64 {release} userland in {folder}: "
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


def install(top: Path, prefix: Path, userland: Path | None = None, timeout: float = 1800,
            extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs the tarball's own install.sh (offline) into prefix; emulated when userland is given."""
    env = {**(emulated_env(userland) if userland else os.environ), **(extra_env or {})}
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


def output_columns(schema) -> list[str]:
    """The columns `mpg-edge predict` writes the model's output into: a regressor's target
    ("mpg"), or a classifier's p_<label> per class (its class column is text)."""
    return [f"p_{c}" for c in schema.classes] if schema.is_classifier else [schema.target]


def read_predictions_csv(path_or_text, columns: list[str] | None = None) -> np.ndarray:
    """The output columns of a `mpg-edge predict` CSV (default: the MPG model's "mpg"), as the
    float32 values it printed: [N] for one column, [N, K] for several.

    The runner prints each float32 in the shortest text that reads back to the same float32;
    read as float64 it would be off by up to half a float32 step (~2e-6 at 40 MPG).
    """
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    rows = list(csv.reader(io.StringIO(text.strip() + "\n")))
    cols = [rows[0].index(c) for c in (columns or ["mpg"])]
    out = np.array([[row[c] for c in cols] for row in rows[1:]]).astype(np.float32)
    return out[:, 0] if len(cols) == 1 else out


def installed_bytes(prefix: Path) -> int:
    """Disk use of an install (what `du -s` counts), in bytes."""
    out = subprocess.run(["du", "-sk", str(prefix)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) * 1024


@dataclass
class ReleaseCheck:
    """One emulated install of an aarch64 tarball on one release, and its golden-set numbers."""
    release: str
    install: subprocess.CompletedProcess
    install_seconds: float
    prefix: Path
    userland: Path
    installed_bytes: int = 0
    predictions: np.ndarray | None = None       # float32, one row of outputs per golden row
    vs_reference: float = float("nan")          # max |device - reference|, output units
    vs_host: float = float("nan")               # max |device - this machine's LiteRT|


def check_release(tarball: Path, release: str, golden, host: np.ndarray, features: list[str],
                  work: Path, env: dict | None = None,
                  columns: list[str] | None = None) -> ReleaseCheck:
    """Unpacks the tarball in work/, installs it with its own install.sh in the release's
    emulated userland and predicts the golden vectors there. Raises UserError when the install
    or the prediction fails; the caller judges the numbers."""
    userland = ensure_userland(release)
    top = unpack(tarball, work)
    prefix = work / "opt"
    started = time.perf_counter()
    proc = install(top, prefix, userland, extra_env=env)
    check = ReleaseCheck(release, proc, time.perf_counter() - started, prefix, userland)
    if proc.returncode != 0:
        raise UserError(f"install.sh failed on emulated {release}: "
                        f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    check.installed_bytes = installed_bytes(prefix)
    csv = write_golden_csv(golden.X, features, work / "golden.csv")
    run = run_runner(prefix, "predict", "--input", str(csv), userland=userland,
                     env={**os.environ, **(env or {})})
    if run.returncode != 0:
        raise UserError(f"predict failed on emulated {release}: {run.stderr.strip()[-300:]}")
    check.predictions = read_predictions_csv(run.stdout, columns)
    device = check.predictions.astype(np.float64).reshape(len(golden.X), -1)
    check.vs_reference = float(np.abs(device - golden.expected.reshape(device.shape)).max())
    check.vs_host = float(np.abs(device - np.asarray(host, np.float64).reshape(device.shape)).max())
    return check
