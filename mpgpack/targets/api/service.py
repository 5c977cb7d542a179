"""What every room of the app shares: the served model slot, metrics, prediction log, reloads.

`Service` is the API's data plane (KServe's word): the routes of each room call it, and it
owns the background work (the monitor-metrics refresh with several workers, the reload
broadcast, SIGHUP) that `lifespan` stops.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time

from mpgpack.targets.api.observability import Metrics
from mpgpack.targets.api.reload_sync import ReloadBroadcast
from mpgpack.targets.api.serving import Served, load_served, resolve_source
from mpgpack.targets.api.settings import ApiSettings
from mpgpack.targets.monitor.metrics import MonitorMetrics
from mpgpack.core.predlog import PredictionLog
from mpgpack.targets.monitor.slot import ModelSlot, install_reload_signal

log = logging.getLogger("mpgpack.api")

REFRESH_SECONDS = 2.0
DETAILED_WARNING_ROWS = 100     # flagged rows whose warnings are worded in full; then a summary


class Service:
    def __init__(self, settings: ApiSettings):
        """Loads and self-tests the start-up version. Raises UserError (one line) for a bad bundle."""
        self.settings = settings
        self.broadcast = (ReloadBroadcast(settings.reload_dir, settings.workers)
                          if settings.reload_dir else None)
        published = self.broadcast.published() if self.broadcast else None
        # A worker (re)started after a reload serves what its siblings serve, not the start-up bundle.
        start = published["bundle"] if published else (settings.bundle or settings.source)
        self.slot: ModelSlot[Served] = ModelSlot(lambda path: load_served(path, settings), start,
                                                 resolve=resolve_source)
        self.slot.source = settings.source      # what a reload without a target follows
        if self.broadcast:
            self.broadcast.attach(self.slot, published["generation"] if published else 0)
        first = self.slot.current
        self.metrics = Metrics(first.version, multiprocess=bool(settings.metrics_dir))
        self.monitor_metrics = MonitorMetrics(self.metrics.registry)
        self._metrics_lock = threading.Lock()
        self.predlog = None
        if settings.prediction_log:
            self.predlog = PredictionLog(settings.prediction_log.replace("{pid}", str(os.getpid())),
                                         [f["name"] for f in first.bundle.features])
            log.info("prediction log: %s", self.predlog.path)
        self._stop_refresh = threading.Event()
        if settings.metrics_dir:
            threading.Thread(target=self._refresh_loop, name="monitor-metrics", daemon=True).start()
        if settings.reload_signal and threading.current_thread() is threading.main_thread():
            install_reload_signal(self.slot, reload=self.reload_now)

    def record(self, served: Served, X, pred, request_id: str, t0: float,
               detail_limit: int | None = DETAILED_WARNING_ROWS) -> tuple[list[list[dict]], dict | None]:
        """What every prediction leaves behind: its inputs in the drift window and the
        prediction log, its out-of-training-range values counted. Returns the range warnings,
        one list per row (worded for the first `detail_limit` flagged rows), and a summary when
        more rows than that were flagged (None otherwise). Drift and log only copy into memory
        under a short lock (a few µs); the log's I/O happens in its own thread, and a failing
        log never fails a prediction."""
        served.drift.observe(X)
        if self.predlog is not None:
            self.predlog.record(X, pred, served.version, request_id,
                                (time.perf_counter() - t0) * 1000)
        warnings, counts, flagged = served.models.check_training_range(X, detail_limit)
        for feature, count in counts.items():
            self.metrics.flag(feature, count, served.version)
        summary = None
        if detail_limit is not None and len(flagged) > detail_limit:
            summary = {"rows_flagged": len(flagged), "by_field": counts,
                       "detailed_rows": flagged[:detail_limit].tolist(),
                       "other_flagged_rows": flagged[detail_limit:].tolist(),
                       "message": f"{len(flagged)} rows have values outside the training range; "
                                  f"the first {detail_limit} carry their warnings, the others "
                                  "are listed by index (0-based) in other_flagged_rows"}
        return warnings, summary

    def refresh_monitor_metrics(self) -> None:
        # Off the event loop (a drift report on a full window costs ~1 ms; the first at a new
        # window size more). One at a time: MonitorMetrics turns totals into counter increments.
        with self._metrics_lock:
            self.monitor_metrics.update(self.slot.current.drift.report(),
                                        self.predlog.stats() if self.predlog else None, self.slot)

    def _refresh_loop(self) -> None:
        # Several workers: /metrics is answered by one of them, but every worker's gauges and
        # counters must be current, so each refreshes its own every 2 s.
        while not self._stop_refresh.wait(REFRESH_SECONDS):
            try:
                self.refresh_monitor_metrics()
            except Exception:      # never let metrics kill the worker
                log.exception("monitor metrics refresh failed")

    def reload_now(self, target: str | None = None) -> dict:
        """Load + check + swap in this worker, then tell the other workers (if any)."""
        result = self.slot.reload(target)
        out = result.to_json()
        if self.broadcast:
            out["generation"] = self.broadcast.publish(result.bundle, result.current, result.content)
        return out

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        grpc_server = None
        if self.settings.grpc_port is not None:
            from mpgpack.targets.api.grpc_service import start_server   # grpcio only when asked
            grpc_server = start_server(self, self.settings.host, self.settings.grpc_port,
                                       self.settings.max_body_bytes)
        yield
        if grpc_server is not None:
            await asyncio.to_thread(lambda: grpc_server.stop(5).wait())
        self._stop_refresh.set()
        if self.broadcast:
            self.broadcast.stop()
        if self.predlog:
            await asyncio.to_thread(self.predlog.close)


class Room:
    """Base of the route modules' classes (routes_*.py): handlers are their methods, taking
    the request. What the prediction paths use is bound once, to keep them lean."""

    def __init__(self, service: Service):
        self.service = service
        self._slot = service.slot
        self._record = service.record
        self._max_body_bytes = service.settings.max_body_bytes

    def docs(self) -> dict[str, dict]:
        """OpenAPI extras per handler name (request body, responses) for what FastAPI cannot
        see: handlers read the raw body themselves."""
        return {}
