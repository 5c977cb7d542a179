"""Swapping the served model version without dropping a request.

A `ModelSlot` holds one immutable "model" object (whatever the API builds from a bundle: the
bundle, its runner, its schema and version). A request reads `slot.current` ONCE and uses that
object to the end, so a request in flight when a reload happens finishes on the old version,
and every request after the swap gets the new one. The swap is a single reference assignment
(atomic in Python); the new model is loaded and checked *before* it, outside any lock that a
request would take, so requests never wait for a reload. Reloads are serialised with a lock.

Also here: the admin-token check for `POST /admin/reload` and a SIGHUP handler.
Stdlib only.
"""
from __future__ import annotations

import hmac
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar

from mpgpack.core.bundle import resolve_bundle_path

log = logging.getLogger("mpgpack.reload")

ADMIN_TOKEN_ENV = "MPGPACK_ADMIN_TOKEN"
T = TypeVar("T")


@dataclass(frozen=True)
class ReloadResult:
    previous: str | None    # version served before
    current: str            # version served now
    changed: bool           # by content (the manifest's sha256), not by version string
    bundle: str             # folder the new model was loaded from
    seconds: float          # time to load and check the new model (requests were not held)
    content: str = ""       # the new model's content id (its manifest sha256, else its version)

    def to_json(self) -> dict:
        return {"previous": self.previous, "current": self.current, "changed": self.changed,
                "bundle": self.bundle, "seconds": round(self.seconds, 4),
                "manifest_sha256": self.content}


class ModelSlot(Generic[T]):
    """The currently served model, swappable atomically.

    loader(bundle_dir: Path) -> T builds a ready model (verify sha256, open the runner, run the
    golden set); it raises (UserError) for a bad bundle, and then the old model stays.
    version_of(model) -> str names a model's version (default: model.version).
    What a model is, for comparisons, is model.content when it has one (the manifest's sha256),
    else its version: two bundles with one version string may differ.
    source: a bundle folder or a registry folder; a registry is re-resolved through its
    CURRENT pointer on every reload, so `mpgpack build` / `mpgpack rollback` + reload switches.
    resolve(source) -> Path turns the source into a local bundle folder (default:
    mpgpack.core.bundle.resolve_bundle_path; for `s3://…` pass the storage module's fetch, which
    re-reads the remote pointer and returns the verified local copy).
    """

    def __init__(self, loader: Callable[[Path], T], source: str | os.PathLike | None,
                 version_of: Callable[[T], str] = lambda m: m.version,
                 resolve: Callable[[str | os.PathLike | None], Path] = resolve_bundle_path):
        self._loader, self._version_of, self._resolve = loader, version_of, resolve
        self._content_of = lambda m: getattr(m, "content", None) or version_of(m)
        self.source = source
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.failed_reloads = 0
        self.last_reload: ReloadResult | None = None
        self._current: T = loader(resolve(source))

    @property
    def current(self) -> T:
        """The model to use for one whole request: read it once, keep the reference."""
        return self._current

    @property
    def version(self) -> str:
        return self._version_of(self._current)

    @property
    def content(self) -> str:
        return self._content_of(self._current)

    def reload(self, source: str | os.PathLike | None = None) -> ReloadResult:
        """Loads the bundle `source` (default: the slot's source) and swaps it in.

        Raises what the loader raises (the old model keeps serving). Concurrent reloads run one
        after the other.
        """
        with self._reload_lock:
            started = time.perf_counter()
            path = self._resolve(self.source if source is None else source)
            previous, before = self._version_of(self._current), self._content_of(self._current)
            try:
                model = self._loader(path)
            except BaseException:
                self.failed_reloads += 1
                raise
            self._current = model          # the swap: one reference assignment
            self.reloads += 1
            current, after = self._version_of(model), self._content_of(model)
            result = ReloadResult(previous, current, before != after, str(path),
                                  time.perf_counter() - started, after)
            self.last_reload = result
            log.warning("model reloaded: %s -> %s from %s in %.3f s", previous, current, path,
                        result.seconds)
            return result


def check_admin_token(authorization: str | None, environ=os.environ) -> tuple[int, str]:
    """(HTTP status, message) for an admin request's Authorization header.

    200 when it is `Bearer <token>` with the token from $MPGPACK_ADMIN_TOKEN; 401 when the
    header is missing or not a Bearer token; 403 when the token is wrong, or when no token is
    configured (admin endpoints are then off: there is nothing a caller could send).
    Compared in constant time.
    """
    expected = environ.get(ADMIN_TOKEN_ENV, "")
    if not authorization or not authorization.startswith("Bearer ") or \
            not authorization[len("Bearer "):].strip():
        return 401, "admin endpoint: send the header 'Authorization: Bearer <token>'"
    if not expected:
        return 403, f"admin endpoints are disabled: the server was started without {ADMIN_TOKEN_ENV}"
    given = authorization[len("Bearer "):].strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return 403, "admin endpoint: wrong token"
    return 200, "ok"


def install_reload_signal(slot: ModelSlot, signum: int = signal.SIGHUP,
                          reload: Callable[[], object] | None = None) -> None:
    """On `signum` (SIGHUP), reload the slot in a background thread.

    The handler itself only starts a thread: a signal handler runs between two bytecodes of
    the main thread (the event loop), and loading a model there would stall every request.
    Call from the main thread (Python's rule for signal.signal). `reload` replaces
    `slot.reload` (e.g. the API's, which also tells its sibling workers).
    """
    def reload_in_background():
        try:
            (reload or slot.reload)()
        except Exception as exc:    # a bad bundle: keep serving the old one, say why
            log.error("reload on signal failed, still serving %s: %s", slot.version, exc)

    def handler(_signum, _frame):
        threading.Thread(target=reload_in_background, name="reload-on-signal", daemon=True).start()

    signal.signal(signum, handler)
