"""Opening a registry by its address: a folder (mpgpack.core.registry.LocalRegistry) or
s3://BUCKET/PREFIX/ (mpgpack.storage.s3_registry.S3Registry, boto3 imported only then)."""
from __future__ import annotations

import os

from mpgpack.core.registry import LocalRegistry, Registry


def open_registry(location: str | os.PathLike, client=None) -> Registry:
    from mpgpack.storage.s3 import is_s3     # boto3 is imported only by an s3:// registry
    if is_s3(str(location)):
        from mpgpack.storage.s3_registry import S3Registry
        return S3Registry(str(location), client)
    return LocalRegistry(location)
