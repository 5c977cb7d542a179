"""How a reload reaches every worker of `mpgpack serve --workers N`.

Each worker is a process with its own ModelSlot, and a POST /admin/reload lands on one of them.
That worker loads and checks the new bundle; only if it passes does it *publish* the result in
a folder shared by the workers (`state.json`: a generation number and the exact bundle folder it
loaded, written atomically with a rename under an flock). Every worker watches that file from a
small thread (one stat() every 0.2 s, never on a request) and, when the generation moves, loads
the same folder. Each worker writes `worker-<pid>.json` (its generation and version), so the
reloading request can wait until all live workers serve the new version and say so.

Why a file and not signals or watching CURRENT: sibling pids are uvicorn's business (it
restarts dead workers; its own SIGHUP restarts them all, closing their keep-alive connections);
a worker that is restarted reads state.json at start and serves what its siblings serve, not
whatever CURRENT says at that moment; and a reload to an explicit version or path (not CURRENT)
propagates the same way. Watching CURRENT would make every pointer change go live without an
operator's reload, and a half-built registry change could reach some workers and not others.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("mpgpack.reload")

STATE = "state.json"
POLL_SECONDS = 0.2


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ReloadBroadcast:
    def __init__(self, folder: str | os.PathLike, expected_workers: int = 1):
        self.folder = Path(folder)
        self.expected_workers = expected_workers   # a worker still starting has no status yet
        self.state_path = self.folder / STATE
        self.pid = os.getpid()
        self.generation = 0
        self.slot = None
        self._stat = None
        self._stop = threading.Event()

    def published(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def attach(self, slot, generation: int) -> None:
        """Starts watching for this worker's slot (loaded from `generation`'s bundle)."""
        self.slot, self.generation = slot, generation
        self._status()
        threading.Thread(target=self._watch, name="reload-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        try:
            (self.folder / f"worker-{self.pid}.json").unlink()
        except OSError:
            pass

    def publish(self, bundle: str, version: str, content: str) -> int:
        """After this worker loaded `bundle`: tell the others. Returns the new generation."""
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            gen = max((self.published() or {}).get("generation", 0), self.generation) + 1
            _write_atomic(self.state_path, {"generation": gen, "bundle": bundle, "version": version,
                                            "manifest_sha256": content, "by": self.pid,
                                            "time": time.time()})
            self.generation = gen
        self._status()
        return gen

    def workers(self) -> dict[int, dict]:
        out = {}
        for p in self.folder.glob("worker-*.json"):
            try:
                pid = int(p.stem.split("-", 1)[1])
                if _alive(pid):
                    out[pid] = json.loads(p.read_text())
            except (ValueError, OSError):
                continue
        return out

    def wait_for(self, generation: int, timeout: float = 15.0) -> dict[int, dict]:
        """Worker statuses once every worker (all `expected_workers` of them: one still starting
        has written no status yet) reached `generation` (or gave up on it), or when the timeout
        passed."""
        deadline = time.monotonic() + timeout
        while True:
            workers = self.workers()
            done = len(workers) >= self.expected_workers and \
                all(w.get("generation", 0) >= generation for w in workers.values())
            if done or time.monotonic() > deadline:
                return workers
            time.sleep(0.05)

    def _status(self, error: str | None = None) -> None:
        _write_atomic(self.folder / f"worker-{self.pid}.json",
                      {"generation": self.generation, "version": self.slot.version if self.slot else None,
                       "manifest_sha256": self.slot.content if self.slot else None, "error": error})

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                st = os.stat(self.state_path)
            except OSError:
                continue
            key = (st.st_mtime_ns, st.st_ino, st.st_size)
            if key == self._stat:
                continue
            self._stat = key
            state = self.published()
            if not state or state.get("generation", 0) <= self.generation:
                continue
            error = None
            try:
                # By content: an edited copy of a bundle keeps its version string.
                if state.get("manifest_sha256") != self.slot.content:
                    self.slot.reload(state["bundle"])
            except Exception as exc:        # keep serving the old version; say why
                error = str(exc)
                log.error("worker %d: reload to %s failed, still serving %s: %s", self.pid,
                          state.get("version"), self.slot.version, exc)
            self.generation = state["generation"]
            self._status(error)
