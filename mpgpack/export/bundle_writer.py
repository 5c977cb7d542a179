"""Writing a bundle: manifest with hashes, atomically published into the registry folder."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from mpgpack.core.bundle import CURRENT_POINTER, FORMAT_VERSION, MANIFEST, sha256_file


def model_version(data_sha256: str, config: dict) -> str:
    """Content-addressed: the same data and training configuration give the same version."""
    blob = json.dumps({"data": data_sha256, "config": config}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def git_commit(repo: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def artifact_entry(root: Path, path: Path, kind: str, **extra) -> dict:
    return {"path": path.relative_to(root).as_posix(), "kind": kind,
            "bytes": path.stat().st_size, "sha256": sha256_file(path), **extra}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def write_manifest(staging: Path, manifest: dict) -> Path:
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    path = staging / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, sort_keys=False))
    return path


def publish(staging: Path, registry: Path, name: str, make_current: bool = True) -> Path:
    """Moves a finished staging folder to registry/name, then points CURRENT at it.

    A reader never sees a half-written bundle: the folder appears by rename, and CURRENT is
    replaced by rename after it.
    """
    final = registry / name
    if final.exists():
        trash = registry / f".{name}.old-{os.getpid()}"
        final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(final)
    if make_current:
        set_current(registry, name)
        from mpgpack.export.registry import record   # HISTORY: lets `mpgpack rollback` find the previous
        record(registry, name, "publish")
    return final


def set_current(registry: Path, name: str) -> None:
    tmp = registry / f".{CURRENT_POINTER}.tmp-{os.getpid()}"
    tmp.write_text(name + "\n")
    os.replace(tmp, registry / CURRENT_POINTER)
