"""`mpgpack serve` and `mpgpack predict`. FastAPI, uvicorn and ONNX Runtime load inside run()."""
from __future__ import annotations

import argparse
from pathlib import Path


def _serve(args) -> int:
    import os
    import shutil
    import sys
    import tempfile

    from mpgpack.errors import UserError
    from targets.api import app as api
    from targets.api.observability import configure_logging

    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.max_batch < 1 or args.max_body_bytes < 1024:
        raise UserError("--max-batch must be >= 1 and --max-body-bytes >= 1024")
    _check_port_free(args.host, args.port)
    import uvicorn
    configure_logging()
    if args.bundle and str(args.bundle).startswith("s3://"):
        # Fetched into a verified local cache by the storage module (the `s3` extra); imported
        # only here, so the API image does not need it.
        from storage.s3 import resolve_bundle_arg
        args.bundle = resolve_bundle_arg(args.bundle)
    # Load and self-test in this process first: a bad bundle fails here with one line,
    # before any worker starts.
    app = api.create_app(args.bundle, max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
                         log_requests=not args.no_access_log)
    version = app.state.predictor.version
    bundle_path = str(app.state.predictor.bundle.path)
    print(f"mpgpack serve: model {version} from {bundle_path} on http://{args.host}:{args.port} "
          f"({args.workers} worker{'s' if args.workers > 1 else ''}; docs at /docs)",
          file=sys.stderr, flush=True)
    common = dict(host=args.host, port=args.port, loop="uvloop", http="httptools",
                  access_log=False, log_config=None, log_level="warning", server_header=False,
                  timeout_keep_alive=30)
    if args.workers == 1:
        uvicorn.run(app, **common)
        return 0
    # Several processes: each worker builds its own app from the environment, and the metrics
    # of all workers are summed through prometheus-client's multiprocess folder.
    metrics_dir = tempfile.mkdtemp(prefix="mpgpack-metrics-")
    os.environ.update({api.ENV_BUNDLE: bundle_path, api.ENV_MAX_BATCH: str(args.max_batch),
                       api.ENV_MAX_BODY: str(args.max_body_bytes),
                       api.ENV_ACCESS_LOG: "0" if args.no_access_log else "1",
                       "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    try:
        uvicorn.run("targets.api.app:app_from_env", factory=True, workers=args.workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A taken port is a user mistake: say so in one line, before loading anything."""
    import socket

    from mpgpack.errors import UserError
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
    from mpgpack.errors import UserError
    from targets.api.client import ServiceError, run
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
                                   "first request. Needs only the `api` extra (no TensorFlow, no "
                                   "scikit-learn).")
    p.add_argument("--bundle", default=None,
                   help="bundle folder, a registry folder with CURRENT, or s3://BUCKET/PREFIX/current "
                        "(needs the s3 extra) (default: dist)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default: 1); each runs the model on one thread")
    p.add_argument("--max-batch", type=int, default=10_000,
                   help="most cars per request (default: 10000)")
    p.add_argument("--max-body-bytes", type=int, default=2 * 1024 * 1024,
                   help="largest request body in bytes (default: 2097152 = 2 MiB)")
    p.add_argument("--no-access-log", action="store_true",
                   help="do not write the JSON access log line per request (stderr)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("predict", help="send cars to a running service and print the predictions",
                       description="Send one or more cars (or a CSV of cars) to a running "
                                   "`mpgpack serve` and print the predicted MPG with any "
                                   "out-of-training-range warnings.")
    from targets.api.client import add_arguments   # stdlib only: cheap to import
    add_arguments(p)
    p.set_defaults(run=_predict)
