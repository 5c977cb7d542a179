"""`mpgpack serve` and `mpgpack predict`. FastAPI, uvicorn and ONNX Runtime load inside run()."""
from __future__ import annotations

import argparse
from pathlib import Path


def _serve(args) -> int:
    import os
    import shutil
    import tempfile

    from mpgpack.core.errors import UserError
    from mpgpack.targets.api import app as api
    from mpgpack.targets.api.observability import configure_logging

    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.max_batch < 1 or args.max_body_bytes < 1024:
        raise UserError("--max-batch must be >= 1 and --max-body-bytes >= 1024")
    if args.drift_window < 100:
        raise UserError(f"--drift-window must be at least 100 (the drift tests' minimum count), "
                        f"got {args.drift_window}")
    prediction_log = _prediction_log_path(args.prediction_log, args.workers)
    _check_port_free(args.host, args.port)
    if args.grpc_port is not None:
        if args.grpc_port == args.port:
            raise UserError(f"--grpc-port {args.grpc_port} is also the HTTP --port; choose another")
        _check_port_free(args.host, args.grpc_port)
    import uvicorn
    configure_logging()
    # Reloads follow the ORIGINAL --bundle (a registry through CURRENT, s3:// through its
    # pointer); the start uses the folder it resolves to now.
    source = str(args.bundle) if args.bundle is not None else "dist"
    from mpgpack.targets.api.serving import load_served, resolve_source
    start_path = resolve_source(args.bundle)
    common = dict(host=args.host, port=args.port, loop="uvloop", http="httptools",
                  access_log=False, log_config=None, log_level="warning", server_header=False,
                  timeout_keep_alive=30)
    options = dict(max_batch=args.max_batch, max_body_bytes=args.max_body_bytes)
    if args.grpc_port is not None:
        _check_grpc_available()
    if args.workers == 1:
        # Load and self-test here: a bad bundle fails with one line before the port opens.
        app = api.create_app(start_path, **options, log_requests=not args.no_access_log,
                             prediction_log=prediction_log, drift_window=args.drift_window,
                             source=source, grpc_port=args.grpc_port, grpc_host=args.host)
        _announce(args, app.state.slot.current, prediction_log)
        uvicorn.run(app, **common)
        return 0
    # Several processes: check the bundle once here (one clear line if bad, before any worker
    # starts); each worker then builds its own app from the environment. Metrics are summed
    # through prometheus-client's multiprocess folder; reloads reach every worker through a
    # shared folder (targets/api/reload_sync.py).
    served = load_served(start_path, **options, drift_window=args.drift_window, warm_up=False)
    _announce(args, served, prediction_log)
    metrics_dir = tempfile.mkdtemp(prefix="mpgpack-metrics-")
    reload_dir = tempfile.mkdtemp(prefix="mpgpack-reload-")
    os.environ.update({api.ENV_BUNDLE: str(served.bundle.path), api.ENV_SOURCE: source,
                       api.ENV_MAX_BATCH: str(args.max_batch),
                       api.ENV_MAX_BODY: str(args.max_body_bytes),
                       api.ENV_ACCESS_LOG: "0" if args.no_access_log else "1",
                       api.ENV_PREDICTION_LOG: prediction_log or "",
                       api.ENV_DRIFT_WINDOW: str(args.drift_window),
                       api.ENV_RELOAD_DIR: reload_dir,
                       api.ENV_GRPC: f"{args.host}:{args.grpc_port}" if args.grpc_port else "",
                       "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    del served
    try:
        _run_workers(uvicorn.Config("mpgpack.targets.api.app:app_from_env", factory=True,
                                    workers=args.workers, **common))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(reload_dir, ignore_errors=True)
    return 0


def _announce(args, served, prediction_log) -> None:
    import os
    import sys
    print(f"mpgpack serve: model {served.version} from {served.bundle.path} on "
          f"http://{args.host}:{args.port}"
          f"{f' and gRPC {args.host}:{args.grpc_port}' if args.grpc_port else ''} ({args.workers} worker{'s' if args.workers > 1 else ''}; "
          f"docs at /docs; pid {os.getpid()}: SIGHUP or POST /admin/reload switches versions"
          f"{'; prediction log ' + prediction_log if prediction_log else ''})",
          file=sys.stderr, flush=True)


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


def _run_workers(config) -> None:
    """uvicorn's multiprocess supervisor, except for SIGHUP: uvicorn restarts every worker on
    it (closing their keep-alive connections); here it is passed to one live worker, which
    reloads the model in place and publishes it to the others (reload_sync). So `kill -HUP`
    on the pid of `mpgpack serve` reloads with one worker or many."""
    import logging
    import os
    import signal

    from uvicorn.supervisors import Multiprocess

    log = logging.getLogger("mpgpack.reload")

    class ReloadingSupervisor(Multiprocess):
        def handle_hup(self) -> None:
            for process in self.processes:
                pid = process.pid
                if pid is not None and process.process.is_alive():
                    log.warning("SIGHUP: asking worker %d to reload the model", pid)
                    os.kill(pid, signal.SIGHUP)
                    return
            log.error("SIGHUP: no live worker to reload")

    sock = config.bind_socket()
    try:
        ReloadingSupervisor(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass


def _check_grpc_available() -> None:
    """--grpc-port needs grpcio and grpcio-tools (the api extra): one line if they are missing,
    and the protocol compiled before the port opens."""
    from mpgpack.core.errors import UserError
    try:
        from mpgpack.targets.api.grpc_service import protocol
        protocol()
    except (ImportError, NotImplementedError) as exc:
        raise UserError(f"--grpc-port needs grpcio and grpcio-tools ({exc}); "
                        "pip install 'mpgpack[api]'") from None


def _check_port_free(host: str, port: int) -> None:
    """A taken port is a user mistake: say so in one line, before loading anything."""
    import socket

    from mpgpack.core.errors import UserError
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                            "choose another --port or stop what uses it") from None


def _predict(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.targets.api.client import ServiceError, run
    try:
        return run(args.url, args.car, str(args.csv) if args.csv else None, args.json, args.timeout)
    except ServiceError as exc:
        raise UserError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP (ONNX Runtime; /predict, V2, /docs)",
                       description="Serve a bundle's model.onnx over HTTP with ONNX Runtime: POST "
                                   "/predict (named features), the Open Inference Protocol V2 under "
                                   "/v2, GET /metadata, /metrics (Prometheus), /docs; and the web "
                                   "page at / when the bundle has web/index.html. The bundle's "
                                   "sha256s are checked and its golden vectors re-run before the "
                                   "first request. GET /monitoring/drift compares recent inputs "
                                   "with the training data; POST /admin/reload (token in "
                                   "$MPGPACK_ADMIN_TOKEN) or SIGHUP to this process switches to the "
                                   "registry's CURRENT version without dropping a request. Needs "
                                   "only the `api` extra (no TensorFlow, no scikit-learn).")
    p.add_argument("--bundle", default=None,
                   help="bundle folder, a registry folder with CURRENT, or s3://BUCKET/PREFIX/current "
                        "(needs the s3 extra) (default: dist)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--grpc-port", type=int, default=None, metavar="PORT",
                   help="also serve the Open Inference Protocol V2 over gRPC on this port (KServe's "
                        "inference.GRPCInferenceService; same model, limits, reloads and metrics) "
                        "(default: off)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default: 1); each runs the model on one thread")
    p.add_argument("--max-batch", type=int, default=10_000,
                   help="most cars per request (default: 10000)")
    p.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024,
                   help="largest request body in bytes (default: 2097152 = 2 MiB)")
    p.add_argument("--no-access-log", action="store_true",
                   help="do not write the JSON access log line per request (stderr)")
    p.add_argument("--prediction-log", default=None, metavar="PATH",
                   help="append one JSON line per predicted car (time, request id, model version, "
                        "inputs, output, latency) to PATH, rotated at 10 MiB, 5 backups; never "
                        "blocks or fails a request. With --workers N, one file per worker: "
                        "'{pid}' in PATH, else '-<pid>' before the suffix (default: off)")
    p.add_argument("--drift-window", type=int, default=500, metavar="N",
                   help="recent input rows per worker compared with the training data at "
                        "GET /monitoring/drift and on /metrics (default: 500; at least 100)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("predict", help="send cars to a running service and print the predictions",
                       description="Send one or more cars (or a CSV of cars) to a running "
                                   "`mpgpack serve` and print the predicted MPG with any "
                                   "out-of-training-range warnings.")
    from mpgpack.targets.api.client import add_arguments   # stdlib only: cheap to import
    add_arguments(p)
    p.set_defaults(run=_predict)
