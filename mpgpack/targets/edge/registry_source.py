"""Where a device reads the registry from: an HTTP(S) URL or a local folder. Stdlib only.

An HTTP registry is the S3 prefix `mpgpack publish` writes, read with plain GETs (no boto3 on
the device): URL/current, then URL/mpg-<v>/<file>. The prefix must be readable without
credentials (a public-read bucket policy, or a web server or CDN in front of it). A folder
registry is what `mpgpack build --out DIR` and `mpgpack publish BUNDLE DIR` write (pointer
file CURRENT); a path or a file:// URL. A bundle folder (manifest.json, no pointer) reads as a
registry of that one version: install.sh fills the device's model folder from the tarball's
bundle that way, through the same checks as every update.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.core.pointer import Pointer

CHUNK = 1 << 16
TIMEOUT_S = 30
POINTER_NAMES = ("current", "CURRENT")   # S3 prefix / registry folder
# A connection dropped mid-body (a short read is also caught by the Content-Length check).
CUT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class HttpRegistry:
    def __init__(self, url: str):
        self.base = url if url.endswith("/") else url + "/"

    def where(self, rel: str = "") -> str:
        return self.base + rel

    def _open(self, rel: str):
        try:
            return urllib.request.urlopen(self.where(rel), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            hint = " (is the prefix public-read?)" if exc.code == 403 else ""
            raise UserError(f"GET {self.where(rel)}: HTTP {exc.code} {exc.reason}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"cannot reach {self.where(rel)}: {reason}") from None

    def pointer_text(self) -> str | None:
        for name in POINTER_NAMES:
            response = self._open(name)
            if response is not None:
                with response:
                    return self._read_all(response, name).decode("utf-8", errors="replace")
        return None

    def read(self, rel: str) -> bytes | None:
        response = self._open(rel)
        if response is None:
            return None
        with response:
            return self._read_all(response, rel)

    def download(self, rel: str, dest: Path, on_chunk=None) -> bool:
        """Streams URL/rel into dest; False when the registry has no such file."""
        response = self._open(rel)
        if response is None:
            return False
        with response, open(dest, "wb") as out:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    if on_chunk:
                        on_chunk()
            except CUT as exc:
                raise UserError(f"download of {self.where(rel)} was cut: {exc}") from None
            length = response.headers.get("Content-Length")
            if length is not None and out.tell() != int(length):
                raise UserError(f"download of {self.where(rel)} was cut after {out.tell()} of "
                                f"{length} bytes")
        return True

    def _read_all(self, response, rel: str) -> bytes:
        try:
            return response.read()
        except CUT as exc:
            raise UserError(f"download of {self.where(rel)} was cut: {exc}") from None


class FolderRegistry:
    def __init__(self, root: Path):
        self.root = root
        self.bundle_name: str | None = None     # set when root is one bundle, not a registry

    def where(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def pointer_text(self) -> str | None:
        if not self.root.is_dir():
            raise UserError(f"registry folder {self.root} does not exist")
        for name in POINTER_NAMES:
            path = self.root / name
            if path.is_file():
                return path.read_text(errors="replace")
        if (self.root / "manifest.json").is_file():
            return self._bundle_pointer()
        return None

    def _bundle_pointer(self) -> str:
        import hashlib
        import json
        raw = (self.root / "manifest.json").read_bytes()
        try:
            self.bundle_name = f"mpg-{json.loads(raw)['model']['version']}"
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{self.root / 'manifest.json'} is not a bundle manifest") from None
        return Pointer(self.bundle_name, hashlib.sha256(raw).hexdigest()).text()

    def _path(self, rel: str) -> Path:
        if self.bundle_name and rel.startswith(self.bundle_name + "/"):
            return self.root / rel[len(self.bundle_name) + 1:]
        return self.root / rel

    def read(self, rel: str) -> bytes | None:
        path = self._path(rel)
        return path.read_bytes() if path.is_file() else None

    def download(self, rel: str, dest: Path, on_chunk=None) -> bool:
        src = self._path(rel)
        if not src.is_file():
            return False
        with open(src, "rb") as inp, open(dest, "wb") as out:
            for block in iter(lambda: inp.read(CHUNK), b""):
                out.write(block)
                if on_chunk:
                    on_chunk()
        return True


def open_registry(url: str) -> HttpRegistry | FolderRegistry:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        return HttpRegistry(url)
    if parsed.scheme == "file":
        return FolderRegistry(Path(urllib.parse.unquote(parsed.path)))
    if parsed.scheme == "s3":
        raise UserError(f"{url}: the device reads a registry over HTTP(S), not s3:// (no "
                        f"boto3 here); give the prefix's https:// address")
    if parsed.scheme and len(parsed.scheme) > 1:
        raise UserError(f"{url}: expected an http(s):// or file:// URL or a folder")
    return FolderRegistry(Path(os.path.expanduser(url)))

