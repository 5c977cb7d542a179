"""`mpgpack serve` and `mpgpack predict`. FastAPI, uvicorn and ONNX Runtime load inside run()."""
from __future__ import annotations

import argparse

from mpgpack.core.cli_args import add_bundle_argument


def _serve(args) -> int:
    # The server stack first: without the api extra, that is the one thing the user hears.
    import fastapi, onnxruntime, uvicorn  # noqa: F401,E401

    from mpgpack.targets.api.observability import configure_logging
    from mpgpack.targets.api.serving import resolve_source
    from mpgpack.targets.api.settings import ApiSettings

    settings = ApiSettings.from_args(args)     # checks the flags: one line if bad
    _check_port_free(settings.host, settings.port)
    if settings.grpc_port is not None:
        _check_grpc_available()
        _check_port_free(settings.host, settings.grpc_port)
    configure_logging()
    # Reloads follow the ORIGINAL --bundle (settings.source: a registry through CURRENT, s3://
    # through its pointer); the start uses the folder it resolves to now.
    settings = settings.with_(bundle=str(resolve_source(args.bundle)))
    if settings.workers == 1:
        _serve_one(settings)
    else:
        _serve_many(settings)
    return 0


def _uvicorn_options(settings) -> dict:
    """uvicorn's own limits from the settings; the ones it lacks (head size, request-read and
    idle timeouts, a JSON 503) come with the protocol class, http_limits.py, which reads
    `settings.limits` from the Config (see _uvicorn_config)."""
    from mpgpack.targets.api.http_limits import LimitedHttpToolsProtocol
    limits = settings.limits
    return dict(host=settings.host, port=settings.port, loop="uvloop", http=LimitedHttpToolsProtocol,
                ws="none",    # no WebSocket routes: an Upgrade request is answered as plain HTTP
                access_log=False, log_config=None, log_level="warning", server_header=False,
                timeout_keep_alive=limits.keep_alive_timeout,
                limit_concurrency=limits.max_connections,
                timeout_graceful_shutdown=limits.shutdown_timeout)


def _uvicorn_config(app, settings, **kw):
    import uvicorn

    from mpgpack.targets.api.http_limits import CONFIG_ATTR
    config = uvicorn.Config(app, **_uvicorn_options(settings), **kw)
    setattr(config, CONFIG_ATTR, settings.limits)    # pickled with the Config to the workers
    return config


def _serve_one(settings) -> None:
    import uvicorn

    from mpgpack.targets.api.app import create_app
    # Load and self-test here: a bad bundle fails with one line before the port opens.
    app = create_app(settings)
    _announce(settings, app.state.slot.current)
    uvicorn.Server(_uvicorn_config(app, settings)).run()


def _serve_many(settings) -> None:
    """Several processes: check the bundle once here (one clear line if bad, before any worker
    starts); each worker then builds its own app from the settings passed in the environment
    (ApiSettings.from_env). Metrics are summed through prometheus-client's multiprocess folder;
    reloads reach every worker through a shared folder (reload_sync.py)."""
    import os
    import shutil
    import tempfile

    from mpgpack.targets.api.serving import load_served
    served = load_served(settings.bundle, settings, warm_up=False)
    _announce(settings, served)
    settings = settings.with_(bundle=str(served.bundle.path),
                              metrics_dir=tempfile.mkdtemp(prefix="mpgpack-metrics-"),
                              reload_dir=tempfile.mkdtemp(prefix="mpgpack-reload-"))
    del served
    os.environ.update(settings.worker_environ())
    try:
        _run_workers(_uvicorn_config("mpgpack.targets.api.app:app_from_env", settings,
                                     factory=True, workers=settings.workers))
    finally:
        shutil.rmtree(settings.metrics_dir, ignore_errors=True)
        shutil.rmtree(settings.reload_dir, ignore_errors=True)


def _announce(settings, served) -> None:
    import os
    import sys

    workers, plog = settings.workers, settings.prediction_log
    print(f"mpgpack serve: model {served.version} from {served.bundle.path} on "
          f"http://{settings.host}:{settings.port}"
          f"{f' and gRPC {settings.host}:{settings.grpc_port}' if settings.grpc_port else ''} ({workers} worker{'s' if workers > 1 else ''}; "
          f"docs at /docs; pid {os.getpid()}: SIGHUP or POST /admin/reload switches versions"
          f"{'; prediction log ' + plog if plog else ''})",
          file=sys.stderr, flush=True)
    print(f"mpgpack serve: {served.signature}", file=sys.stderr, flush=True)


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
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            # Stop accepting at once: uvicorn only queues the signal for its loop (up to 0.5 s
            # later), and while this process or a worker still holds the listening socket, the
            # kernel accepts connections that nobody will answer. So, in the handler: close our
            # copy, and tell the workers now (each closes its copy as its shutdown begins; the
            # loop's own SIGTERM to them later is harmless).
            signal.signal(signal.SIGTERM, self._stop_accepting)

        def handle_hup(self) -> None:
            for process in self.processes:
                pid = process.pid
                if pid is not None and process.process.is_alive():
                    log.warning("SIGHUP: asking worker %d to reload the model", pid)
                    os.kill(pid, signal.SIGHUP)
                    return
            log.error("SIGHUP: no live worker to reload")

        def _stop_accepting(self, signum, _frame) -> None:
            _close(self.sockets)
            for process in self.processes:
                if process.pid is not None and process.process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)
            self.signal_queue.append(signum)

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
def _close(sockets) -> None:
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


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


def _add_limit_arguments(p: argparse.ArgumentParser) -> None:
    from mpgpack.targets.api.limits import DEFAULT_LIMITS as d   # stdlib only
    g = p.add_argument_group("connection limits (per worker)")
    g.add_argument("--max-header-bytes", type=int, default=d.max_header_bytes, metavar="N",
                   help=f"largest request line + headers; more is answered 431 "
                        f"(default: {d.max_header_bytes})")
    g.add_argument("--max-headers", type=int, default=d.max_headers, metavar="N",
                   help=f"most header lines per request; more is answered 431 (default: {d.max_headers})")
    g.add_argument("--request-timeout", type=float, default=d.request_timeout, metavar="S",
                   help="seconds from a request's first byte to its last (headers and body); "
                        f"slower is answered 408 and closed (default: {d.request_timeout:g})")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="S",
                   help=f"seconds a new connection may stay silent before it is closed "
                        f"(default: {d.idle_timeout:g})")
    g.add_argument("--keep-alive-timeout", type=float, default=d.keep_alive_timeout, metavar="S",
                   help=f"seconds an idle keep-alive connection is kept between requests "
                        f"(default: {d.keep_alive_timeout:g})")
    g.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                   help="connections and requests a worker holds at once; beyond, requests are "
                        f"answered 503 with Retry-After (default: {d.max_connections})")
    g.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout, metavar="S",
                   help="on SIGTERM the port closes at once and requests in flight get this many "
                        f"seconds to finish, then are cancelled (default: {d.shutdown_timeout:g})")


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
    add_bundle_argument(p, s3=True)
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
    p.add_argument("--trust", default=None, metavar="KEY.pub",
                   help="serve only bundles signed by this Ed25519 public key (`mpgpack "
                        "keygen`); a reload to an unsigned or badly signed bundle is refused "
                        "(409) and the current version keeps serving (default: signatures are "
                        "not checked, and the start-up line says so)")
    p.add_argument("--drift-window", type=int, default=500, metavar="N",
                   help="recent input rows per worker compared with the training data at "
                        "GET /monitoring/drift and on /metrics (default: 500; at least 100)")
    _add_limit_arguments(p)
    p.set_defaults(run=_serve)

    p = sub.add_parser("predict", help="send cars to a running service and print the predictions",
                       description="Send one or more cars (or a CSV of cars) to a running "
                                   "`mpgpack serve` and print the predicted MPG with any "
                                   "out-of-training-range warnings.")
    from mpgpack.targets.api.client import add_arguments   # stdlib only: cheap to import
    add_arguments(p)
    p.set_defaults(run=_predict)
