"""Request ids, Prometheus metrics and JSON access logs, as one pure-ASGI middleware.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: that one wraps every request in extra
tasks and streams, which costs more than the model itself on a one-car request.

Metrics with several workers: uvicorn's workers are separate processes. When the environment
variable PROMETHEUS_MULTIPROC_DIR is set (`mpgpack serve --workers N` with N > 1 sets it to a
fresh temporary folder, ApiSettings.metrics_dir), prometheus-client's multiprocess mode writes
every worker's samples to that folder and /metrics sums them, so any worker answers for all. With one worker the
metrics simply live in the process.
"""
from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import os
import re
import sys
import time
from typing import Any

import orjson
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)

from mpgpack.targets.api.hot_lane import HotLane

disable_created_metrics()   # the *_created series double the output and nobody graphs them

REQUEST_ID_HEADER = b"x-request-id"
MODEL_VERSION_HEADER = b"x-model-version"
# What we accept as an incoming request id: printable, no spaces, bounded (it lands in logs).
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)



class AccessLog:
    """JSON access lines on stderr, written in small batches.

    Going through `logging` (a LogRecord, a formatter, a flushed write per request) cost more
    CPU than predicting a car. Lines are buffered and written when 64 are waiting, and at the
    latest ~0.5 s after they were logged (a background task in the server's event loop), and at
    exit. Same format as the other log lines (see JsonLogFormatter).
    """

    MAX_LINES = 64
    MAX_DELAY = 0.5

    def __init__(self, stream=None):
        self._stream = stream or sys.stderr.buffer
        self._lines: list[bytes] = []
        self._flusher: asyncio.Task | None = None
        atexit.register(self.flush)

    def write(self, entry: dict) -> None:
        self._lines.append(orjson.dumps(entry) + b"\n")
        if len(self._lines) >= self.MAX_LINES:
            self.flush()
        elif self._flusher is None or self._flusher.done():
            try:
                self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
            except RuntimeError:     # no running loop (called from a plain thread): write now
                self.flush()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.MAX_DELAY)
        self.flush()

    def flush(self) -> None:
        if self._lines:
            data, self._lines = b"".join(self._lines), []
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):   # stderr closed at shutdown: nothing left to tell
                pass


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: easy to ship to Loki/Elastic/CloudWatch, easy to grep."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 6), "level": record.levelname.lower(),
                 "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    for name in ("mpgpack", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.propagate = False
        log.setLevel(level.upper())


class Metrics:
    """The service's Prometheus metrics, every one labelled with the model version that
    answered (after a reload, the new version's series start; `model_version` is the default
    for requests no model answered, e.g. a 404)."""

    def __init__(self, model_version: str, multiprocess: bool = False):
        self.model_version = model_version
        # Several workers (PROMETHEUS_MULTIPROC_DIR set): /metrics sums every worker's files.
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("mpg_http_requests_total", "HTTP requests answered",
                                ["model_version", "endpoint", "method", "status"], registry=r)
        self.errors = Counter("mpg_http_request_errors_total",
                              "HTTP requests answered with a 4xx or 5xx status",
                              ["model_version", "endpoint", "status"], registry=r)
        self.latency = Histogram("mpg_http_request_duration_seconds",
                                 "Time from request start to the last response byte",
                                 ["model_version", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch = Histogram("mpg_batch_size", "Cars per successful prediction request",
                               ["model_version", "endpoint"], buckets=BATCH_BUCKETS, registry=r)
        self.out_of_range = Counter("mpg_out_of_training_range_total",
                                    "Predicted values outside the training range (drift signal)",
                                    ["model_version", "feature"], registry=r)
        self._children: dict[tuple, Any] = {}

    def _child(self, metric, version: str, *labels):
        # labels() does a lock + dict lookup per call; the hot path keeps its own cache.
        key = (id(metric), version, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(version, *labels)
        return child

    def observe(self, endpoint: str, method: str, status: int, seconds: float, batch: int | None,
                version: str | None = None) -> None:
        v = version or self.model_version
        self._child(self.requests, v, endpoint, method, str(status)).inc()
        self._child(self.latency, v, endpoint).observe(seconds)
        if status >= 400:
            self._child(self.errors, v, endpoint, str(status)).inc()
        elif batch:
            # mpg_batch_size_sum is the number of cars predicted; no separate counter needed.
            self._child(self.batch, v, endpoint).observe(batch)

    def flag(self, feature: str, count: int = 1, version: str | None = None) -> None:
        self._child(self.out_of_range, version or self.model_version, feature).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class ObservabilityMiddleware:
    """Sets scope["request_id"], echoes it as X-Request-ID, records metrics, logs one JSON line.

    Endpoints may put the number of cars in scope["mpg.batch"] for the batch-size histogram,
    the error message in scope["mpg.error"] for the log line, and the model version that
    answered in scope["mpg.version"]; every response carries it as X-Model-Version (for other
    requests: `current_version()`, the version served when the response starts). POSTs to the
    prediction paths go to their handler through the hot lane (hot_lane.py), the rest through
    the app's full stack.
    """

    def __init__(self, app, metrics: Metrics, log_requests: bool = True, current_version=None):
        self.app = app
        self.metrics = metrics
        self.current_version = current_version or (lambda: metrics.model_version)
        self.access_log = AccessLog() if log_requests else None
        # Generated ids: a random per-process prefix and a counter; unique across workers and
        # restarts, and far cheaper than a uuid4 per request.
        self._id_prefix = os.urandom(6).hex() + "-"
        self._ids = itertools.count(1)
        self._lane: HotLane | None = None     # the prediction paths' own lane (hot_lane.py)

    def _open_lane(self, scope) -> HotLane:
        # The app's routes and error handlers are complete once it serves a request.
        self._lane = HotLane(scope["app"])
        return self._lane

    def _flushing_at_shutdown(self, send):
        """uvicorn re-raises SIGTERM after a graceful shutdown, so the process dies by the
        signal and atexit never runs: the buffered access lines are written at the end of the
        app's shutdown instead."""
        async def send_lifespan(message):
            if message["type"] == "lifespan.shutdown.complete":
                self.access_log.flush()
            await send(message)
        return send_lifespan

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.access_log is not None:
                send = self._flushing_at_shutdown(send)
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = bad_id = None
        if incoming is not None:
            text = incoming.decode("latin-1")
            if REQUEST_ID_RE.fullmatch(text):
                request_id = text
            else:
                bad_id = text
        if request_id is None:
            request_id = f"{self._id_prefix}{next(self._ids):08x}"
        scope["request_id"] = request_id
        rid_header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = scope.get("mpg.version") or self.current_version()
                scope["mpg.version"] = version
                message["headers"] = [*message.get("headers", ()), rid_header,
                                      (MODEL_VERSION_HEADER, version.encode())]
            await send(message)

        try:
            if bad_id is None:
                lane = self._lane or self._open_lane(scope)
                route = lane.route(scope)
                if route is None:
                    await self.app(scope, receive, send_with_id)
                else:
                    await lane(route, scope, receive, send_with_id)
            else:
                message = (f"header X-Request-ID: must be 1 to 128 characters from "
                           f"A-Z a-z 0-9 . _ : / + = @ -, got {bad_id[:40]!r}")
                scope["mpg.error"] = message
                body = orjson.dumps({"error": message})
                await send_with_id({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            endpoint = ("unmatched" if route is None else
                        "static" if type(route).__name__ == "Mount" else route.path)
            batch = scope.get("mpg.batch")
            version = scope.get("mpg.version") or self.current_version()
            self.metrics.observe(endpoint, scope["method"], status, seconds, batch, version)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write({
                    "ts": round(time.time(), 6), "level": "info", "logger": "mpgpack.access",
                    "request_id": request_id, "method": scope["method"], "path": scope["path"],
                    "endpoint": endpoint, "status": status, "model_version": version,
                    "duration_ms": round(seconds * 1000, 3), "batch": batch,
                    "client": client[0] if client else None, "error": scope.get("mpg.error")})
