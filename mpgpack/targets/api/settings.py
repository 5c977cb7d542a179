"""Everything `mpgpack serve` is told, in one frozen object handed to the app.

Built once: from the command line (`ApiSettings.from_args`), or, in each worker process of
`serve --workers N` (uvicorn imports the app by name and cannot pass arguments), from the one
environment variable the parent wrote (`ApiSettings.from_env`). Nothing else in the API reads
MPGPACK_* variables; the admin token is read here, once, from $MPGPACK_ADMIN_TOKEN.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.targets.api.body import DEFAULT_MAX_BODY_BYTES
from mpgpack.targets.api.limits import DEFAULT_LIMITS, ConnectionLimits
from mpgpack.targets.api.schema import DEFAULT_MAX_BATCH
from mpgpack.core.drift_defaults import DEFAULT_MIN_COUNT, DEFAULT_WINDOW
from mpgpack.targets.monitor.slot import ADMIN_TOKEN_ENV

SETTINGS_ENV = "MPGPACK_API_SETTINGS"              # JSON of ApiSettings, for the workers
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"       # prometheus-client's own multiprocess switch
DEFAULT_SOURCE = "dist"
MIN_DRIFT_WINDOW = DEFAULT_MIN_COUNT               # below it the drift tests say "not enough data"
LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(ConnectionLimits))   # = the flags' dests


@dataclass(frozen=True)
class ApiSettings:
    source: str = DEFAULT_SOURCE       # --bundle as given: what reloads follow (registry, s3://…)
    bundle: str | None = None          # the local folder to start from (None: resolve source)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    access_log: bool = True
    prediction_log: str | None = None  # "{pid}" is replaced by the worker's pid
    drift_window: int = DEFAULT_WINDOW
    web_dir: str | None = None         # the web page (default: the bundle's web/)
    reload_dir: str | None = None      # shared by the workers; see reload_sync
    reload_signal: bool = True         # reload on SIGHUP (only possible in the main thread)
    metrics_dir: str | None = None     # prometheus multiprocess folder (several workers)
    trust: str | None = None           # Ed25519 public key every bundle must be signed by
    admin_token: str = field(default="", repr=False)   # "" = admin endpoints off
    grpc_port: int | None = None       # also V2 over gRPC on host:grpc_port (every worker binds it)
    limits: ConnectionLimits = DEFAULT_LIMITS   # headers, timeouts, connections (http_limits.py)
    fast_rows: bool = True             # /predict's good bodies skip pydantic (fast_rows.py)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")
        if self.max_batch < 1 or self.max_body_bytes < 1024:
            raise UserError("--max-batch must be >= 1 and --max-body-bytes >= 1024")
        if self.drift_window < MIN_DRIFT_WINDOW:
            raise UserError(f"--drift-window must be at least {MIN_DRIFT_WINDOW} (the drift tests' "
                            f"minimum count), got {self.drift_window}")
        if self.grpc_port is not None and self.grpc_port == self.port:
            raise UserError(f"--grpc-port {self.grpc_port} is also the HTTP --port; choose another")
        if isinstance(self.limits, dict):    # from_env: the JSON of the parent's settings
            object.__setattr__(self, "limits", ConnectionLimits(**self.limits))
        problems = self.limits.problems()
        if problems:
            raise UserError(problems[0])

    @classmethod
    def from_args(cls, args, environ=os.environ) -> ApiSettings:
        """From `mpgpack serve`'s arguments (see cli.register)."""
        return cls(source=str(args.bundle) if args.bundle is not None else DEFAULT_SOURCE,
                   host=args.host, port=args.port, workers=args.workers,
                   max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
                   access_log=not args.no_access_log,
                   prediction_log=_prediction_log_path(args.prediction_log, args.workers),
                   drift_window=args.drift_window, grpc_port=args.grpc_port,
                   trust=str(args.trust) if getattr(args, "trust", None) else None,
                   limits=ConnectionLimits(**{f: getattr(args, f) for f in LIMIT_FIELDS}),
                   admin_token=environ.get(ADMIN_TOKEN_ENV, ""))

    def with_(self, **changes) -> ApiSettings:
        return dataclasses.replace(self, **changes)

    def worker_environ(self) -> dict[str, str]:
        """What the parent puts in the environment for `from_env` in each worker. The token is
        left out: the workers inherit $MPGPACK_ADMIN_TOKEN itself."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "admin_token"}
        out = {SETTINGS_ENV: json.dumps(data)}
        if self.metrics_dir:
            out[METRICS_DIR_ENV] = self.metrics_dir
        return out

    @classmethod
    def from_env(cls, environ=os.environ) -> ApiSettings:
        """In a worker of `serve --workers N`: the settings its parent wrote."""
        raw = environ.get(SETTINGS_ENV)
        if not raw:
            raise UserError(f"${SETTINGS_ENV} is not set: start the API with `mpgpack serve`")
        return cls(**json.loads(raw), admin_token=environ.get(ADMIN_TOKEN_ENV, ""))


def _prediction_log_path(path, workers: int) -> str | None:
    """One file per process (two processes appending and rotating one file would tear lines):
    with several workers, "{pid}" in the path is the worker's pid, and is added if missing."""
    if not path:
        return None
    text = str(path)
    if workers > 1 and "{pid}" not in text:
        p = Path(text)
        text = str(p.with_name(f"{p.stem}-{{pid}}{p.suffix}"))
    return text
