"""Writing a bundle: manifest entries with hashes, the manifest, and putting a finished
staging folder in place by rename. The writing half of the bundle format (core.bundle reads
it); used by the build, the packers and the registries. Stdlib only.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from mpgpack.core.bundle import FORMAT_VERSION, MANIFEST, sha256_file


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


def publish_folder(staging: Path, registry: Path, name: str) -> Path:
    """Moves a finished staging folder (inside `registry`) to registry/name by rename, so a
    reader never sees a half-written bundle. An existing registry/name (a rebuild of the same
    content-addressed version) is renamed away first and removed after."""
    final = registry / name
    if final.exists():
        trash = registry / f".{name}.old-{os.getpid()}"
        final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(final)
    return final
