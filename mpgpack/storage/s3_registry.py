"""The registry under an S3 prefix: the same interface, pointer and history as a folder.

    s3://BUCKET/PREFIX/mpg-<version>/...   every file of the bundle, manifest.json uploaded last
    s3://BUCKET/PREFIX/current             the pointer (core.pointer's format), written LAST
    s3://BUCKET/PREFIX/history             JSON lines, as a folder's HISTORY (core.registry)

A version becomes visible only when `current` names it, and `current` moves only after every
object of the version was uploaded and read back with a matching sha256: a failed or
interrupted publish leaves the previous version current. Published versions are immutable
(content-addressed), so a publish never rewrites a complete version a reader may be
downloading; it checks the copy that is there instead.

S3 has no append: the history object is read, extended by one line and written back, after
the pointer. Two publishes racing on one prefix may lose one history line (the pointer is
last-writer-wins either way); rollback then still starts from what `current` names.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mpgpack.core.bundle import MANIFEST, open_bundle, sha256_file
from mpgpack.core.errors import UserError
from mpgpack.core.registry import PREFIX, Published, Registry
from mpgpack.storage.s3 import (POINTER, S3Url, listed_entries, check_bucket, exists,
                                list_children, list_keys, make_client, object_sha256,
                                parse_s3_url, read_bytes, registry_of, s3_errors)

HISTORY_KEY = "history"


@dataclass
class PublishResult(Published):
    objects: int = 0        # uploaded in this publish (0 if the version was already there)
    bytes: int = 0
    checked: int = 0        # sha256s re-read from S3 and compared with the manifest
    seconds: float = 0.0

    def report(self) -> list[str]:
        if self.already_published:
            done = f"{self.location} was already published; its {self.checked} sha256s match"
        else:
            done = (f"uploaded {self.objects} objects ({self.bytes:,} bytes) to {self.location}; "
                    f"re-read {self.checked} sha256s from S3: all match")
        return [done, f"{self.pointer} -> {self.name} (was {self.previous or 'unset'}) "
                      f"in {self.seconds:.1f} s"]


def _bundle_files(root: Path) -> list[Path]:
    """Every file of a bundle, manifest.json last (a version without it is incomplete)."""
    # Only the top-level manifest goes last: web/model/manifest.json is an ordinary file.
    files = sorted(p for p in root.rglob("*") if p.is_file() and p != root / MANIFEST)
    return files + [root / MANIFEST]


def _check_remote(client, version: S3Url, manifest: dict) -> int:
    """Re-reads every listed object from S3 and compares its sha256 with the manifest."""
    keys = {k[len(version.key):] for k in list_keys(client, version)}
    listed = listed_entries(manifest, lambda rel: rel in keys)
    missing = sorted(rel for rel in listed if rel not in keys)
    if missing:
        raise UserError(f"{version.child(missing[0])}: listed in the manifest but not in S3; "
                        f"not published")
    for rel, entry in listed.items():
        obj = version.child(rel)
        digest = object_sha256(client, obj)
        if digest != entry["sha256"]:
            raise UserError(f"{obj} does not match its sha256 in the manifest (expected "
                            f"{entry['sha256'][:12]}…, found {digest[:12]}…); not published")
    return len(listed)


class S3Registry(Registry):
    pointer_file = POINTER
    history_file = HISTORY_KEY

    def __init__(self, location: str | S3Url, client=None):
        self.root = registry_of(parse_s3_url(location) if isinstance(location, str) else location)
        self._client = client
        self.publish_hint = f"publish one with `mpgpack publish BUNDLE {self.root}`"

    @property
    def client(self):
        if self._client is None:
            self._client = make_client()
        return self._client

    def where(self, child: str = "") -> str:
        return str(self.root.child(child)) if child else str(self.root)

    def check(self) -> None:
        check_bucket(self.client, self.root)

    def _read_if_there(self, url: S3Url) -> bytes | None:
        return read_bytes(self.client, url) if exists(self.client, url) else None

    def _put(self, url: S3Url, body: bytes) -> None:
        with s3_errors(self.client, url, "writing"):
            self.client.put_object(Bucket=url.bucket, Key=url.key, Body=body,
                                   ContentType="text/plain")

    def read_pointer_text(self) -> str | None:
        raw = self._read_if_there(self.root.child(POINTER))
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def write_pointer_text(self, text: str) -> None:
        self._put(self.root.child(POINTER), text.encode())     # one PUT: atomic for readers

    def read_history_text(self) -> str:
        raw = self._read_if_there(self.root.child(HISTORY_KEY))
        return "" if raw is None else raw.decode("utf-8", errors="replace")

    def append_history_line(self, line: str) -> None:
        self._put(self.root.child(HISTORY_KEY), (self.read_history_text() + line).encode())

    def manifest_bytes(self, name: str) -> bytes | None:
        return self._read_if_there(self.root.child(f"{name}/{MANIFEST}"))

    def names(self) -> list[str]:
        return sorted(n for n in list_children(self.client, self.root) if n.startswith(PREFIX))

    def publish(self, bundle_dir, on_upload: Callable[[str, int], None] | None = None,
                **options) -> PublishResult:
        """Uploads a bundle under PREFIX/mpg-<version>/, checks it, then moves `current`.

        `on_upload(key, nbytes)` is called after each object is uploaded (CLI progress).
        """
        started = time.perf_counter()
        local = open_bundle(bundle_dir)
        local.verify()                     # never upload a bundle that is already broken
        name = f"{PREFIX}{local.version}"
        version = self.root.child(name + "/")
        self.check()
        previous = self.pointer()
        remote = self.manifest_bytes(name)
        if remote is not None:
            # Immutable versions: a complete copy is there already; check it instead of
            # overwriting files a reader may be downloading right now.
            objects = nbytes = 0
            checked = _check_remote(self.client, version, json.loads(remote))
        else:
            objects, nbytes = self._upload(local.path, version, on_upload)
            checked = self._check_upload(local.path, local.manifest, version)
        self.make_current(name, "publish")    # the one write that makes the version visible
        return PublishResult(name, str(version), self.where(POINTER),
                             previous.name if previous else None, remote is not None,
                             objects, nbytes, checked, time.perf_counter() - started)

    def _upload(self, root: Path, version: S3Url, on_upload) -> tuple[int, int]:
        uploaded = nbytes = 0
        for path in _bundle_files(root):
            obj = version.child(path.relative_to(root).as_posix())
            # put_object, not upload_file: bundle files are small, and its errors stay
            # botocore ClientErrors that s3_errors can explain.
            with s3_errors(self.client, obj, "uploading"), open(path, "rb") as fh:
                self.client.put_object(Bucket=obj.bucket, Key=obj.key, Body=fh)
            uploaded += 1
            nbytes += path.stat().st_size
            if on_upload:
                on_upload(obj.key, path.stat().st_size)
        return uploaded, nbytes

    def _check_upload(self, root: Path, manifest: dict, version: S3Url) -> int:
        checked = _check_remote(self.client, version, manifest)
        manifest_url = version.child(MANIFEST)
        if object_sha256(self.client, manifest_url) != sha256_file(root / MANIFEST):
            raise UserError(f"{manifest_url} does not match the uploaded manifest; not published")
        return checked + 1


def publish(bundle: str | os.PathLike, dest: str, client=None,
            on_upload: Callable[[str, int], None] | None = None) -> PublishResult:
    """Uploads a bundle to the registry at dest (s3://BUCKET/PREFIX/) and makes it current."""
    return S3Registry(dest, client).publish(bundle, on_upload=on_upload)

