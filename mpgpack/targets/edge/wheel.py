"""The runner as a pure-Python wheel (mpg_edge-<version>-py3-none-any.whl), made at pack time.

It holds exactly the runtime code the device needs, copied unchanged from this repository
(the same files the API and `mpgpack verify` use, so there is no fork to keep in step), and
pins its two dependencies. pip then installs it like any wheel: the `mpg-edge` command, and
an install RECORD of sha256s that `mpg-edge verify` re-checks on the device.
Written by hand (a wheel is a zip with three metadata files) so packing needs no build
backend and the same sources always give the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[3]   # holds mpgpack/
NAME = "mpg_edge"
# The runner's whole import closure: stdlib + numpy + ai_edge_litert beyond these.
RUNTIME_FILES = [
    "mpgpack/__init__.py",
    "mpgpack/core/__init__.py",
    "mpgpack/core/errors.py",
    "mpgpack/core/bundle.py",
    "mpgpack/core/pointer.py",
    "mpgpack/core/runtimes.py",
    "mpgpack/core/verify.py",
    "mpgpack/core/rows.py",
    "mpgpack/core/schema.py",
    "mpgpack/core/outputs.py",         # the class rule
    "mpgpack/core/predlog.py",         # mpg-edge predict --prediction-log, status
    "mpgpack/core/drift.py",           # mpg-edge status
    "mpgpack/core/drift_stats.py",
    "mpgpack/core/drift_defaults.py",
    "mpgpack/core/signing.py",      # checks signatures with the openssl CLI on the device
    "mpgpack/targets/__init__.py",
    "mpgpack/targets/edge/__init__.py",
    "mpgpack/targets/edge/device.py",
    "mpgpack/targets/edge/records.py",
    "mpgpack/targets/edge/rows.py",
    "mpgpack/targets/edge/outputs.py",
    "mpgpack/targets/edge/follow.py",
    "mpgpack/targets/edge/device_store.py",
    "mpgpack/targets/edge/registry_source.py",
    "mpgpack/targets/edge/status.py",
]
ENTRY_POINT = "mpg-edge = mpgpack.targets.edge.device:main"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)     # zip timestamps: the same sources give the same wheel


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_runner_wheel(dest: Path, version: str, requires: list[str]) -> Path:
    """Writes dest/mpg_edge-<version>-py3-none-any.whl and returns its path."""
    dist_info = f"{NAME}-{version}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", "Name: mpg-edge", f"Version: {version}",
                          "Summary: Auto MPG predictions on an edge device with LiteRT",
                          "Requires-Python: >=3.11",
                          *[f"Requires-Dist: {r}" for r in requires]]) + "\n"
    files = {rel: (SOURCE_ROOT / rel).read_bytes() for rel in RUNTIME_FILES}
    files[f"{dist_info}/METADATA"] = metadata.encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: mpgpack\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{ENTRY_POINT}\n".encode()
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in files.items():
            info = zipfile.ZipInfo(rel, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path
