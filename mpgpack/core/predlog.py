"""The prediction log: one JSON line per predicted car, written by a background thread.

A request only puts a record on a bounded in-memory queue (a lock and an append); a writer
thread turns records into JSON lines and appends them to a size-rotated file
(`LOG`, `LOG.1` … `LOG.<backups>`, like logging.handlers.RotatingFileHandler). So a slow disk
never slows a prediction, and a failing one never fails it: every OSError (disk full,
read-only or missing folder, path not writable) is counted, reported once per kind on the
`mpgpack.predlog` logger, and the records of that batch are dropped (and counted). When the
queue is full the oldest records are dropped (and counted). `stats()` is what the API exports
to Prometheus.

Stdlib + numpy only: the API and the edge runner (`mpg-edge predict --prediction-log`) write
it; `mpgpack monitor` and `mpg-edge status` read it back with read_log().
"""
from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import math
import os
import stat
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.outputs import class_index

log = logging.getLogger("mpgpack.predlog")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
DEFAULT_QUEUE = 10_000   # records (cars), not requests


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")


def _value(v: float) -> float | None:
    return None if math.isnan(v) else v


class PredictionLog:
    """Appends prediction records to a rotating JSON-lines file without ever blocking or raising.

    feature_names: the manifest's feature order (the columns of X given to record()).
    """

    def __init__(self, path: str | os.PathLike, feature_names: list[str],
                 max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS,
                 queue_size: int = DEFAULT_QUEUE):
        if max_bytes < 1024 or backups < 0 or queue_size < 1:
            raise ValueError("max_bytes must be >= 1024, backups >= 0, queue_size >= 1")
        self.path = Path(path)
        self.feature_names = list(feature_names)
        self.max_bytes, self.backups, self.queue_size = max_bytes, backups, queue_size
        # Counters (read them with stats()); only the writer thread and record() touch them.
        self.written = 0          # records on disk
        self.dropped = 0          # records lost: queue full or write failed
        self.errors = 0           # failed write attempts (OSError)
        self.rotations = 0
        self.last_error: str | None = None
        self._error_kinds: set[str] = set()
        self._failing = False
        self._queue: deque = deque()
        self._queued = 0          # records in the queue (an entry holds a whole request)
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._fh = None
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    # -- the request side: never blocks on I/O, never raises for a well-formed record ---------
    def record(self, X: np.ndarray, y: np.ndarray, model_version: str, request_id: str,
               latency_ms: float, ts: float | None = None) -> None:
        """Queues one record per row of X (float32 [N, features], NaN = missing) with output
        y[i]: a regressor's value ([N] or [N, 1]), or a classifier's probabilities [N, C]
        (logged as the class index, the core's rule, and the probabilities)."""
        X = np.array(X, dtype=np.float64, copy=True)
        y = np.array(y, dtype=np.float64, copy=True)
        if y.ndim != 2 or y.shape[1] == 1:
            y = y.reshape(-1)
        entry = (time.time() if ts is None else ts, request_id, model_version, X, y,
                 float(latency_ms))
        with self._cond:
            if self._closed:
                self.dropped += len(y)
                return
            self._queue.append(entry)
            self._queued += len(y)
            while self._queued > self.queue_size and len(self._queue) > 1:
                old = self._queue.popleft()     # drop oldest: recent traffic matters more
                self._queued -= len(old[4])
                self.dropped += len(old[4])
            self._cond.notify()

    def stats(self) -> dict:
        """Counters for /metrics: written, dropped, errors, rotations, queued, last_error."""
        with self._cond:
            return {"written": self.written, "dropped": self.dropped, "errors": self.errors,
                    "rotations": self.rotations, "queued": self._queued,
                    "failing": self._failing, "last_error": self.last_error}

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until everything queued so far was written (or dropped). True if it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is queued (within timeout), stops the thread, closes the file."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    break
                batch = list(self._queue)
                self._queue.clear()
                self._queued = 0
                self._busy = True
            try:
                self._write_batch(batch)
            except Exception as exc:    # a bug must not kill the thread and stall the queue
                self._failed(batch, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        self._close_file()

    def _lines(self, batch) -> list[bytes]:
        out = []
        names = self.feature_names
        for ts, request_id, version, X, y, latency in batch:
            when = _iso(ts)
            classes = class_index(y).tolist() if y.ndim == 2 else None
            for i in range(len(y)):
                rec = {"time": when, "request_id": request_id, "model_version": version,
                       "row": i, "inputs": {n: _value(v) for n, v in zip(names, X[i].tolist())},
                       "output": _value(float(y[i])) if classes is None else classes[i],
                       "latency_ms": round(latency, 3)}
                if classes is not None:
                    rec["probabilities"] = [_value(p) for p in y[i].tolist()]
                out.append(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
        return out

    def _write_batch(self, batch) -> None:
        lines = self._lines(batch)
        try:
            for line in lines:
                if self._fh is None:
                    self._open()
                if self._size + len(line) > self.max_bytes and self._size > 0:
                    self._rotate()
                self._fh.write(line)
                self._size += len(line)
            self._fh.flush()
        except OSError as exc:
            self._close_file()
            self._failed(batch, exc)
            return
        with self._cond:
            self.written += len(lines)
        if self._failing:
            self._failing = False
            log.warning("prediction log %s: writing again after %d failed attempts",
                        self.path, self.errors)

    def _failed(self, batch, exc: BaseException) -> None:
        n = sum(len(entry[4]) for entry in batch)
        kind = errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)
        with self._cond:
            self.errors += 1
            self.dropped += n
            self.last_error = f"{kind}: {exc}"
            first = kind not in self._error_kinds
            self._error_kinds.add(kind)
            self._failing = True
        if first:   # once per kind: a full disk must not flood the server log
            log.error("prediction log %s cannot be written (%s: %s); predictions go on, "
                      "records are dropped and counted", self.path, kind, exc)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab", buffering=1 << 16)
        regular = stat.S_ISREG(os.fstat(self._fh.fileno()).st_mode)
        self._size = self._fh.tell() if regular else 0   # a device or FIFO has no size

    def _rotate(self) -> None:
        self._close_file()
        # Rotate only a regular file: never rename a device (e.g. /dev/full) or a FIFO.
        if stat.S_ISREG(os.stat(self.path).st_mode):
            if self.backups == 0:
                os.truncate(self.path, 0)
            else:
                for i in range(self.backups - 1, 0, -1):
                    src = self.path.with_name(f"{self.path.name}.{i}")
                    if src.exists():
                        os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
                os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            with self._cond:
                self.rotations += 1
        self._open()

    def _close_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass    # closing flushes; a full disk fails here too, already counted
            self._fh = None


def rotated_files(path: str | os.PathLike) -> list[Path]:
    """LOG and its backups, oldest first (LOG.N … LOG.1, LOG): the order records were written."""
    path = Path(path)
    backups = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1:]
        if suffix.isdigit():
            backups.append((int(suffix), p))
    files = [p for _, p in sorted(backups, reverse=True)]
    return files + ([path] if path.exists() else [])


def read_log(paths: list[Path], feature_names: list[str]) -> tuple[list, list[str], list[str]]:
    """Records (time, version, row) from every file (and its rotated backups), oldest first.

    Returns (records, files read, notes); a malformed line is skipped and counted in a note.
    """
    files: list[Path] = []
    for p in paths:
        found = rotated_files(p)
        if not found:
            raise UserError(f"prediction log {p} does not exist (nor any {p.name}.N backup)")
        files += [f for f in found if f not in files]
    records, bad, notes, first_bad = [], 0, [], None
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UserError(f"cannot read prediction log {f}: {exc.strerror}") from None
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                inputs = rec["inputs"]
                row = [math.nan if inputs[n] is None else float(inputs[n]) for n in feature_names]
                records.append((str(rec.get("time", "")), rec.get("model_version"), row))
            except (ValueError, KeyError, TypeError):
                bad += 1
                first_bad = first_bad or f"{f}:{lineno}"
    if bad:
        notes.append(f"{bad} malformed line(s) skipped (first at {first_bad})")
    if not records:
        raise UserError(f"no prediction records in {', '.join(map(str, files))}"
                        + (f" ({notes[0]})" if notes else ""))
    records.sort(key=lambda r: r[0])   # ISO-8601 UTC times sort as text; stable within a file
    return records, [str(f) for f in files], notes
