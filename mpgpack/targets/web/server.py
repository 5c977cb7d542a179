"""A small static server for the built site (`mpgpack web`), standard library only.

Serves `<bundle>/web/` at `/` and, if the bundle has one, `<bundle>/report/` at `/report/`.
It sends the MIME types the page needs (.wasm, .webmanifest, .js as modules), gzip when the
browser accepts it (so what Chromium measures is what a compressing static host would send),
and ETag + `Cache-Control: no-cache` so a revisit revalidates instead of re-downloading.
"""
from __future__ import annotations

import gzip
import mimetypes
import sys
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
    ".bin": "application/octet-stream",
}
COMPRESSIBLE = {".html", ".css", ".js", ".mjs", ".json", ".webmanifest", ".wasm", ".svg", ".csv"}
MAX_FILE_BYTES = 64 * 1024 * 1024


def content_type(path: Path) -> str:
    return MIME_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@lru_cache(maxsize=256)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    # Keyed by mtime and size, so a rebuilt file is compressed afresh.
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


class SiteHandler(BaseHTTPRequestHandler):
    server_version = "mpgpack-web"
    mounts: dict[str, Path] = {}     # URL prefix -> folder, longest prefix first
    quiet = False

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None; never a file outside the mounted folders."""
        for prefix, root in self.mounts.items():
            if url_path == prefix.rstrip("/") and prefix != "/":
                return None   # "/report" -> let the caller redirect to "/report/"
            if url_path.startswith(prefix):
                rel = url_path[len(prefix):]
                candidate = (root / rel).resolve()
                if not candidate.is_relative_to(root):
                    return None
                if candidate.is_dir():
                    candidate = candidate / "index.html"
                return candidate if candidate.is_file() else None
        return None

    def _serve(self, send_body: bool) -> None:
        url_path = unquote(urlsplit(self.path).path)
        if "\x00" in url_path:
            self._error(HTTPStatus.BAD_REQUEST, "bad path")
            return
        if url_path + "/" in self.mounts:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", url_path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self._resolve(url_path)
        if path is None:
            self._error(HTTPStatus.NOT_FOUND, f"not found: {url_path}")
            return
        stat = path.stat()
        if stat.st_size > MAX_FILE_BYTES:
            self._error(HTTPStatus.FORBIDDEN, "file too large to serve")
            return
        use_gzip = (path.suffix.lower() in COMPRESSIBLE
                    and "gzip" in self.headers.get("Accept-Encoding", ""))
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}{"-gz" if use_gzip else ""}"'
        common = [("Content-Type", content_type(path)), ("ETag", etag),
                  ("Cache-Control", "no-cache"), ("Vary", "Accept-Encoding"),
                  ("X-Content-Type-Options", "nosniff")]
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for k, v in common:
                self.send_header(k, v)
            self.end_headers()
            return
        body = _gzipped(str(path), stat.st_mtime_ns, stat.st_size) if use_gzip else path.read_bytes()
        self.send_response(HTTPStatus.OK)
        for k, v in common:
            self.send_header(k, v)
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        body = f"{status.value} {status.phrase}: {message}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8080,
                report: Path | None = None, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for `site` (and `report` at /report/), bound but not yet serving."""
    mounts = {}
    if report is not None and report.is_dir():
        mounts["/report/"] = report.resolve()
    mounts["/"] = site.resolve()
    handler = type("BoundSiteHandler", (SiteHandler,), {"mounts": mounts, "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
