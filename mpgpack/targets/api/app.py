"""The FastAPI application: friendly /predict, the V2 protocol, /metadata, /metrics, the web page.

Speed without giving up validation: handlers are async and take the raw body; the pydantic
models built from the manifest validate it in one pass (in Rust) straight from the JSON bytes;
ONNX Runtime runs inline (tens of microseconds for 100 cars, a thread hop would cost more);
responses are serialised by orjson. FastAPI still documents every route from the same models
(see `_openapi`), so /docs and /openapi.json show exactly what is enforced.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from mpgpack.targets.api import v2, v2_http, v2_infer
from mpgpack.targets.api.body import DEFAULT_MAX_BODY_BYTES, read_json_body
from mpgpack.targets.api.errors import ApiError, from_validation
from mpgpack.core.errors import UserError
from mpgpack.targets.api.observability import Metrics, ObservabilityMiddleware
from mpgpack.targets.api.reload_sync import ReloadBroadcast
from mpgpack.targets.api.schema import DEFAULT_MAX_BATCH, RequestModels, example_car
from mpgpack.targets.api.serving import Served, load_served, reload_target, resolve_source
from mpgpack.targets.monitor.drift import DEFAULT_WINDOW
from mpgpack.targets.monitor.metrics import MonitorMetrics
from mpgpack.targets.monitor.predlog import PredictionLog
from mpgpack.targets.monitor.slot import ModelSlot, check_admin_token, install_reload_signal

log = logging.getLogger("mpgpack.api")

# Content types the web page needs; registered explicitly because a slim container's
# /etc/mime.types may lack them, and a browser refuses streaming WASM without the right one.
for _ext, _type in ((".wasm", "application/wasm"), (".webmanifest", "application/manifest+json"),
                    (".mjs", "text/javascript"), (".js", "text/javascript"),
                    (".json", "application/json"), (".bin", "application/octet-stream"),
                    (".svg", "image/svg+xml")):
    mimetypes.add_type(_type, _ext)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


# ---- response models: documentation only (handlers build plain dicts for speed) -----------
class RangeWarning(BaseModel):
    field: str
    value: float
    training_range: list[float]
    message: str


class Prediction(BaseModel):
    mpg: float = Field(description="predicted fuel economy, miles per US gallon")
    warnings: list[RangeWarning] = Field(description="features outside the training range")


class PredictResponse(BaseModel):
    model_version: str
    request_id: str
    predictions: list[Prediction]


class ErrorBody(BaseModel):
    error: str = Field(description="one line naming the field, the rule and what is allowed")
    errors: Optional[list[dict]] = Field(None, description="every problem: field, rule, message")


ERRORS = {400: {"model": ErrorBody, "description": "not JSON, or (V2) an invalid tensor"},
          413: {"model": ErrorBody, "description": "body over the size limit"},
          415: {"model": ErrorBody, "description": "Content-Type is not application/json"},
          422: {"model": ErrorBody, "description": "a field breaks a rule of the schema"}}


class _Labelled:
    """Puts the matched route in scope["route"] (as FastAPI's own routes do), so metrics and
    logs can label requests by route template instead of raw path."""

    def matches(self, scope):
        match, child = super().matches(scope)   # type: ignore[misc]
        if match != Match.NONE:
            child["route"] = self
        return match, child


class LabelledRoute(_Labelled, Route):
    pass


class SiteMount(_Labelled, Mount):
    """The web page at "/": only GET/HEAD, and never a path an API route owns, so
    `GET /predict` is still a 405 and `POST /anything` still a 404, not a static-file answer."""

    def __init__(self, *args, api_routes: list, **kw):
        super().__init__(*args, **kw)
        self.api_routes = api_routes

    def matches(self, scope):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        path = scope["path"]
        if any(getattr(r, "path_regex", None) is not None and r.path_regex.match(path)
               for r in self.api_routes):
            return Match.NONE, {}
        return super().matches(scope)


def _error_response(request: Request, exc: ApiError) -> JsonResponse:
    request.scope["mpg.error"] = exc.message
    return JsonResponse(exc.body(), status_code=exc.status)


def create_app(bundle_path: str | os.PathLike | None = None, *, max_batch: int = DEFAULT_MAX_BATCH,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, log_requests: bool = True,
               web_dir: str | os.PathLike | None = None, prediction_log: str | None = None,
               drift_window: int = DEFAULT_WINDOW, source: str | os.PathLike | None = None,
               reload_dir: str | os.PathLike | None = None, reload_signal: bool = True,
               grpc_port: int | None = None, grpc_host: str = "127.0.0.1") -> FastAPI:
    """Builds the service. Raises UserError (one line) for a bad bundle.

    bundle_path: the bundle (or registry) to serve at start. source: what a reload follows
    (default bundle_path; a registry is re-read through CURRENT, s3:// through its pointer).
    prediction_log: a file for one JSON line per predicted car ("{pid}" is replaced by the
    process id). reload_dir: the folder shared by the workers of `serve --workers N`, through
    which a reload reaches every worker (see reload_sync). reload_signal: reload on SIGHUP
    (only possible from the main thread). grpc_port: also serve V2 over gRPC there, from
    the same model slot (started with the app, stopped with it).
    """
    source = bundle_path if source is None else source

    def loader(path) -> Served:
        return load_served(path, max_batch=max_batch, max_body_bytes=max_body_bytes,
                           drift_window=drift_window)

    broadcast = ReloadBroadcast(reload_dir) if reload_dir else None
    published = broadcast.published() if broadcast else None
    # A worker (re)started after a reload serves what its siblings serve, not the start-up bundle.
    start_path = published["bundle"] if published else bundle_path
    slot: ModelSlot[Served] = ModelSlot(loader, start_path, resolve=resolve_source)
    slot.source = source
    if broadcast:
        broadcast.attach(slot, published["generation"] if published else 0)
    first = slot.current
    bundle, models = first.bundle, first.models     # the docs describe the start-up version
    metrics = Metrics(first.version)
    monitor_metrics = MonitorMetrics(metrics.registry)
    metrics_lock = threading.Lock()
    predlog = None
    if prediction_log:
        predlog = PredictionLog(str(prediction_log).replace("{pid}", str(os.getpid())),
                                [f["name"] for f in bundle.features])
        log.info("prediction log: %s", predlog.path)
    web = Path(web_dir) if web_dir else bundle.path / "web"
    has_web = (web / "index.html").is_file()

    def refresh_monitor_metrics() -> None:
        # Off the event loop (a drift report on a full window costs ~1 ms; the first at a new
        # window size more). One at a time: MonitorMetrics turns totals into counter increments.
        with metrics_lock:
            monitor_metrics.update(slot.current.drift.report(),
                                   predlog.stats() if predlog else None, slot)

    stop_refresh = threading.Event()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several workers: /metrics is answered by one of them, but every worker's gauges and
        # counters must be current, so each refreshes its own every 2 s.
        def refresh_loop():
            while not stop_refresh.wait(2.0):
                try:
                    refresh_monitor_metrics()
                except Exception:      # never let metrics kill the worker
                    log.exception("monitor metrics refresh failed")
        threading.Thread(target=refresh_loop, name="monitor-metrics", daemon=True).start()

    def reload_now(target: str | None = None) -> dict:
        """Load + check + swap in this worker, then tell the other workers (if any)."""
        result = slot.reload(target)
        out = result.to_json()
        if broadcast:
            out["generation"] = broadcast.publish(result.bundle, result.current)
        return out

    if reload_signal and threading.current_thread() is threading.main_thread():
        install_reload_signal(slot, reload=reload_now)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        grpc_server = None
        if grpc_port is not None:
            from mpgpack.targets.api.grpc_service import start_server   # the grpc libraries, only when asked
            grpc_server = start_server(_app.state.service, grpc_host, grpc_port, max_body_bytes)
        yield
        if grpc_server is not None:
            grpc_server.stop(5).wait()
        stop_refresh.set()
        if broadcast:
            broadcast.stop()
        if predlog:
            await asyncio.to_thread(predlog.close)

    app = FastAPI(
        lifespan=lifespan,
        # Native OpenTelemetry off: it checks providers on every request, and /metrics covers it.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="mpgpack: Auto MPG prediction service",
        version=first.version,
        description=(
            "Predicts a car's fuel economy (miles per US gallon) from seven raw features with "
            f"model {first.version} (ONNX Runtime). Two ways in: the friendly `POST /predict` "
            "with named features, and the Open Inference Protocol V2 under `/v2` (KServe, "
            "Triton clients). Every field's hard limits are enforced (outside: 422 naming "
            "field, value and range); values outside the training range are predicted and "
            f"flagged with warnings. Limits: {max_batch} cars per request, "
            f"{max_body_bytes} bytes per body. Every response names the model version that "
            "answered (`model_version`, header `X-Model-Version`); `POST /admin/reload` "
            "switches versions without dropping a request."),
        openapi_tags=[{"name": "predict", "description": "the friendly API"},
                      {"name": "v2", "description": "Open Inference Protocol V2"},
                      {"name": "service", "description": "metadata and metrics"},
                      {"name": "monitoring", "description": "input drift and model reloads"}])
    app.state.slot, app.state.predlog, app.state.metrics = slot, predlog, metrics

    # ---- friendly API ---------------------------------------------------------------------
    example = example_car(bundle.features)
    odd = {**example, "cylinders": 12, "horsepower": None}

    @app.post("/predict", tags=["predict"], response_model=None,
              summary="Predict MPG for one car or a batch",
              responses={200: {"model": PredictResponse}, **ERRORS},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/PredictRequest"},
                  "examples": {
                      "one car": {"value": example},
                      "a batch": {"value": {"instances": [example, {**example, "origin": 3}]}},
                      "missing horsepower, out of training range": {"value": odd},
                  }}}}})
    async def predict(request: Request) -> JsonResponse:
        """One car as named features, or `{"instances": [car, ...]}`. Send `X-Request-ID` to
        choose the request id (echoed in the body and the header); otherwise one is generated."""
        served = slot.current          # read ONCE: this request is answered by this version
        t0 = time.perf_counter()
        request.scope["mpg.version"] = version = served.version
        body = await read_json_body(request, max_body_bytes)
        models = served.models
        try:
            parsed = models.request.validate_json(body)
        except ValidationError as exc:
            raise from_validation(exc, models.rules) from None
        X = models.to_matrix(parsed)
        pred = served.predictor.predict(X)
        request_id = request.scope["request_id"]
        observe(served, X, pred, request_id, t0)
        warnings, counts = models.check_training_range(X)
        for feature, count in counts.items():
            metrics.flag(feature, count, version)
        request.scope["mpg.batch"] = len(pred)
        return JsonResponse({"model_version": version, "request_id": request_id,
                             "predictions": [{"mpg": p, "warnings": w} for p, w in zip(pred, warnings)]})

    def observe(served: Served, X, pred, request_id: str, t0: float) -> None:
        # Both only copy into memory under a short lock (a few µs); the log's I/O happens in
        # its own thread, and a failing log never fails a prediction.
        served.drift.observe(X)
        if predlog is not None:
            predlog.record(X, pred, served.version, request_id, (time.perf_counter() - t0) * 1000)

    def record(served: Served, X, pred, request_id: str, t0: float) -> list[list[dict]]:
        observe(served, X, pred, request_id, t0)
        warnings, counts = served.models.check_training_range(X)
        for feature, count in counts.items():
            metrics.flag(feature, count, served.version)
        return warnings

    # The data plane both V2 transports (HTTP and gRPC) predict through (see v2_infer).
    app.state.service = SimpleNamespace(slot=slot, metrics=metrics, record=record)

    @app.get("/metadata", tags=["service"], summary="Model version, feature schema, metrics, parity")
    async def get_metadata(request: Request) -> Response:
        served = slot.current
        request.scope["mpg.version"] = served.version
        return Response(served.metadata_bytes, media_type="application/json")

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics")
    async def get_metrics() -> Response:
        await asyncio.to_thread(refresh_monitor_metrics)
        data, ctype = metrics.exposition()
        return Response(data, media_type=ctype)

    # ---- monitoring and roll-out ----------------------------------------------------------
    @app.get("/monitoring/drift", tags=["monitoring"],
             summary="Recent inputs vs the training data, per feature (PSI, KS, chi-square)")
    async def get_drift(request: Request) -> JsonResponse:
        """The drift report of the served version's window of recent inputs ("not enough
        data" below the minimum count). With several workers, each keeps its own window:
        the answer is the answering worker's (`worker_pid`)."""
        served = slot.current
        request.scope["mpg.version"] = served.version
        report = await asyncio.to_thread(served.drift.report)
        return JsonResponse({**report, "worker_pid": os.getpid(),
                             "prediction_log": predlog.stats() if predlog else None})

    @app.post("/admin/reload", tags=["monitoring"], response_model=None,
              summary="Switch to another model version without dropping a request",
              responses={401: {"model": ErrorBody, "description": "no bearer token"},
                         403: {"model": ErrorBody, "description": "wrong token, or no token configured"},
                         409: {"model": ErrorBody, "description": "the new bundle was refused; "
                                                                   "the old version keeps serving"},
                         422: {"model": ErrorBody, "description": "the body names no usable version"}},
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": {"type": "object", "properties": {
                      "version": {"type": "string", "description": "a version of the registry"},
                      "bundle": {"type": "string", "description": "a bundle or registry folder"}},
                      "additionalProperties": False},
                  "examples": {"follow CURRENT": {"value": {}},
                               "a version": {"value": {"version": first.version}}}}}}})
    async def admin_reload(request: Request) -> JsonResponse:
        """Needs `Authorization: Bearer $MPGPACK_ADMIN_TOKEN`. An empty body (or `{}`) follows
        the source again (a registry's CURRENT: after `mpgpack build` or `mpgpack rollback`);
        `{"version": "..."}` or `{"bundle": "/path"}` loads that one. The new bundle is verified
        and self-tested before the swap; requests in flight finish on the old version. With
        several workers, the answer comes once every worker serves the new version."""
        status, message = check_admin_token(request.headers.get("authorization"))
        if status != 200:
            raise ApiError(status, message)
        raw = await request.body()
        if len(raw) > 65536:
            raise ApiError(413, "body: over the limit of 65536 bytes")
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(422, "body: must be a JSON object: {}, {\"version\": …} or {\"bundle\": …}")
        try:
            target = reload_target(slot.source, body)
        except UserError as exc:
            raise ApiError(422, str(exc)) from None
        try:
            result = await asyncio.to_thread(reload_now, target)
        except Exception as exc:     # bad or tampered bundle: the old version keeps serving
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            log.error("reload refused, still serving %s: %s", slot.version, message)
            request.scope["mpg.error"] = message
            return JsonResponse({"error": message, "serving": slot.version}, status_code=409)
        if broadcast:
            workers = await asyncio.to_thread(broadcast.wait_for, result["generation"])
            result["workers"] = {str(pid): w for pid, w in sorted(workers.items())}
            behind = [str(pid) for pid, w in workers.items()
                      if w.get("version") != result["current"] or w.get("error")]
            if behind:
                result["warning"] = (f"worker(s) {', '.join(behind)} do not serve {result['current']} "
                                     "yet; see `workers` and the server log")
        request.scope["mpg.version"] = result["current"]
        return JsonResponse(result)

    # ---- Open Inference Protocol V2 -------------------------------------------------------
    check_model = v2_infer.check_model

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> JsonResponse:
        return JsonResponse(v2_infer.server_metadata())

    @app.get("/v2/health/live", tags=["v2"], summary="Liveness")
    async def v2_live() -> JsonResponse:
        return JsonResponse({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Readiness (the model is loaded and self-tested)")
    async def v2_ready() -> JsonResponse:
        return JsonResponse({"ready": True})

    @app.get("/v2/models/{model_name}", tags=["v2"], summary="Model metadata")
    @app.get("/v2/models/{model_name}/versions/{model_version}", tags=["v2"],
             summary="Model metadata (one version)")
    async def v2_model(request: Request, model_name: str, model_version: str | None = None) -> JsonResponse:
        served = slot.current
        request.scope["mpg.version"] = served.version
        check_model(served, model_name, model_version)
        return JsonResponse(served.model_meta)

    @app.get("/v2/models/{model_name}/ready", tags=["v2"], summary="Model readiness")
    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", tags=["v2"],
             summary="Model readiness (one version)")
    async def v2_model_ready(request: Request, model_name: str,
                             model_version: str | None = None) -> JsonResponse:
        served = slot.current
        request.scope["mpg.version"] = served.version
        check_model(served, model_name, model_version)
        return JsonResponse({"name": served.name, "ready": True})

    infer_doc = dict(tags=["v2"], response_model=None, summary="Inference (FP32 [N, 7] in, FP32 [N, 1] out)",
                     responses={200: {"model": v2.InferenceResponse}, **ERRORS},
                     openapi_extra={"parameters": [
                         {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}],
                         "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}})

    @app.post("/v2/models/{model_name}/infer", **infer_doc)
    @app.post("/v2/models/{model_name}/versions/{model_version}/infer", **infer_doc)
    async def v2_infer_route(request: Request) -> Response:
        served = slot.current          # read ONCE: this request is answered by this version
        t0 = time.perf_counter()
        request.scope["mpg.version"] = served.version
        params = request.path_params
        check_model(served, params["model_name"], params.get("model_version"))
        req, values = await v2_http.read_request(request, max_body_bytes, served.models)
        answer = v2_infer.infer(app.state.service, served, req, values,
                                request.scope["request_id"], t0)
        request.scope["mpg.batch"] = answer.rows
        return v2_http.infer_response(req, answer.response)

    # The two prediction routes are *documented* by the FastAPI routes above and *served* by
    # plain Starlette routes placed first in the router, calling the same functions. They read
    # the raw body themselves, so FastAPI's per-request dependency solving would only add
    # overhead (it was most of a one-car request's CPU time).
    app.router.routes[:0] = [
        LabelledRoute("/predict", predict, methods=["POST"]),
        LabelledRoute("/v2/models/{model_name}/infer", v2_infer_route, methods=["POST"]),
        LabelledRoute("/v2/models/{model_name}/versions/{model_version}/infer", v2_infer_route,
                      methods=["POST"]),
        *(LabelledRoute(path, handler, methods=[method])
          for method, path, handler in v2_http.unsupported_routes())]

    # ---- errors: always {"error": ...}, never a traceback -------------------------------
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return _error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            msg = (f"no such route: {request.method} {request.url.path}; see /docs "
                   "for the endpoints")
        elif exc.status_code == 405:
            msg = f"method {request.method} is not allowed on {request.url.path}"
        else:
            msg = str(exc.detail)
        response = _error_response(request, ApiError(exc.status_code, msg))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error_response(request, ApiError(422, f"{where}: {first['msg']}"))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", extra={"fields": {"request_id": request.scope.get("request_id")}})
        return _error_response(request, ApiError(
            500, f"internal error (request id {request.scope.get('request_id')}); see the server log"))

    # ---- the web page (built by the web target into the bundle), below every API route ----
    if has_web:
        api_routes = list(app.router.routes)
        report = bundle.path / "report"
        if (report / "index.html").is_file():  # the model report the page links to
            app.router.routes.append(SiteMount("/report", StaticFiles(directory=report, html=True),
                                               name="report", api_routes=api_routes))
        app.router.routes.append(SiteMount("/", StaticFiles(directory=web, html=True), name="web",
                                           api_routes=api_routes))
    else:
        @app.get("/", tags=["service"], summary="Where to go from here")
        async def index() -> JsonResponse:
            return JsonResponse({"service": "mpgpack", "model_version": slot.version,
                                 "docs": "/docs", "metadata": "/metadata", "predict": "POST /predict",
                                 "v2": "/v2/models/mpg"})

    app.openapi = lambda: _openapi(app, models)   # type: ignore[method-assign]
    # Around the routes and their error handlers, so 404s, 413s and static files are
    # counted and logged too.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, log_requests=log_requests,
                       current_version=lambda: slot.version)
    return app


def _openapi(app: FastAPI, models: RequestModels) -> dict:
    """FastAPI's schema plus the request models, whose JSON Schema comes from the same pydantic
    models that validate (handlers read the raw body, so FastAPI cannot see them itself)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes, tags=app.openapi_tags)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    predict_schema = models.request.json_schema(ref_template=ref)
    components.update(predict_schema.pop("$defs", {}))
    predict_schema.pop("discriminator", None)     # a callable discriminator has no OpenAPI mapping
    components["PredictRequest"] = {**predict_schema, "title": "PredictRequest",
                                    "description": "One car, or {\"instances\": [car, ...]}"}
    infer_schema = v2.REQUEST.json_schema(ref_template=ref)
    components.update(infer_schema.pop("$defs", {}))
    components["InferenceRequest"] = infer_schema
    app.openapi_schema = schema
    return schema


# ---- for `uvicorn --factory` in each worker process of `mpgpack serve --workers N` ----------
ENV_BUNDLE = "MPGPACK_API_BUNDLE"
ENV_MAX_BATCH = "MPGPACK_API_MAX_BATCH"
ENV_MAX_BODY = "MPGPACK_API_MAX_BODY_BYTES"
ENV_ACCESS_LOG = "MPGPACK_API_ACCESS_LOG"
ENV_SOURCE = "MPGPACK_API_BUNDLE_SOURCE"      # what reloads follow (a registry, s3://…)
ENV_PREDICTION_LOG = "MPGPACK_API_PREDICTION_LOG"
ENV_DRIFT_WINDOW = "MPGPACK_API_DRIFT_WINDOW"
ENV_RELOAD_DIR = "MPGPACK_API_RELOAD_DIR"     # shared by the workers; see reload_sync
ENV_GRPC = "MPGPACK_API_GRPC"                 # HOST:PORT of the gRPC service (every worker binds it)


def app_from_env() -> FastAPI:
    from mpgpack.targets.api.observability import configure_logging
    configure_logging()
    return create_app(os.environ.get(ENV_BUNDLE) or None,
                      max_batch=int(os.environ.get(ENV_MAX_BATCH, DEFAULT_MAX_BATCH)),
                      max_body_bytes=int(os.environ.get(ENV_MAX_BODY, DEFAULT_MAX_BODY_BYTES)),
                      log_requests=os.environ.get(ENV_ACCESS_LOG, "1") == "1",
                      prediction_log=os.environ.get(ENV_PREDICTION_LOG) or None,
                      drift_window=int(os.environ.get(ENV_DRIFT_WINDOW, DEFAULT_WINDOW)),
                      source=os.environ.get(ENV_SOURCE) or None,
                      reload_dir=os.environ.get(ENV_RELOAD_DIR) or None,
                      **_grpc_from_env(os.environ.get(ENV_GRPC)))


def _grpc_from_env(value: str | None) -> dict:
    if not value:
        return {}
    host, _, port = value.rpartition(":")
    return {"grpc_host": host, "grpc_port": int(port)}
