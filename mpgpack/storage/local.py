"""Publishing a bundle into a local registry folder (the same layout as dist/).

The counterpart of mpgpack.storage.s3.publish for a folder: copy into a staging folder inside the
registry, check every sha256 of the copy, then let mpgpack.export.bundle_writer.publish rename it into
place and move CURRENT last.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mpgpack.core.errors import UserError


def publish_local(bundle: str | os.PathLike, registry: str | os.PathLike) -> Path:
    from mpgpack.export.bundle_writer import publish
    from mpgpack.core.bundle import open_bundle

    local = open_bundle(bundle)
    local.verify()
    registry = Path(registry)
    name = f"mpg-{local.version}"
    if local.path.resolve() == (registry / name).resolve():
        raise UserError(f"{local.path} is already in {registry}")
    registry.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=registry))
    try:
        shutil.copytree(local.path, staging, dirs_exist_ok=True)
        open_bundle(staging).verify()
        return publish(staging, registry, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
