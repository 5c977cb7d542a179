"""The registry pointer: which version is current, and the sha256 of that version's manifest.

One format for a registry folder (`CURRENT`) and an S3 prefix (`current`):

    mpg-<version>
    manifest-sha256 <64 hex digits>

It is written whole and last (a rename in a folder, one PUT in S3), so a reader sees either
the old pointer or the new one. A reader following it checks the manifest it gets against the
recorded sha256, so a manifest edited after publishing is refused. A pointer holding only the
name (registries written before the sha256 was recorded) is still read, without that check.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mpgpack.core.errors import UserError

# Where a registry folder is when none is named (`mpgpack build --out`, `--bundle`, `--registry`).
DEFAULT_REGISTRY = "dist"
VERSION_NAME = re.compile(r"mpg-[A-Za-z0-9_-][A-Za-z0-9._-]*")
SHA_PREFIX = "manifest-sha256 "


@dataclass(frozen=True)
class Pointer:
    name: str
    manifest_sha256: str | None     # None: an old name-only pointer

    def text(self) -> str:
        if self.manifest_sha256 is None:
            return f"{self.name}\n"
        return f"{self.name}\n{SHA_PREFIX}{self.manifest_sha256}\n"

    def check(self, manifest: bytes, manifest_where: str, pointer_where: str) -> str:
        """Returns the manifest's sha256; raises UserError when it is not the recorded one."""
        digest = hashlib.sha256(manifest).hexdigest()
        if self.manifest_sha256 is not None and digest != self.manifest_sha256:
            raise UserError(f"{manifest_where} does not match the sha256 recorded in "
                            f"{pointer_where}; refusing it")
        return digest


def check_name(name: str, where: str) -> str:
    """A version name is one path segment `mpg-…` (it becomes a folder name or an S3 key)."""
    if not VERSION_NAME.fullmatch(name) or ".." in name:
        raise UserError(f"{where} does not name a bundle (found {name[:40]!r}, expected "
                        f"mpg-<version>)")
    return name


def parse_pointer(text: str, where: str) -> Pointer:
    lines = text.split("\n")
    name = check_name(lines[0].strip(), where)
    sha = None
    for line in lines[1:]:
        if line.startswith(SHA_PREFIX):
            sha = line[len(SHA_PREFIX):].strip()
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise UserError(f"{where}: {sha[:70]!r} is not a sha256")
    return Pointer(name, sha)
