"""Build provenance for the manifest: the content-addressed version and the git commit.

The bundle format's writing side (entries, manifest, publish by rename) is mpgpack.core.bundle_write;
the registry (CURRENT, HISTORY) is mpgpack.core.registry.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path


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
