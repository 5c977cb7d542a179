"""The FastAPI application: friendly /predict, the V2 protocol, /metadata, /metrics, the web page.

Speed without giving up validation: handlers are async and take the raw body; the pydantic
models built from the manifest validate it in one pass (in Rust) straight from the JSON bytes;
ONNX Runtime runs inline (tens of microseconds for 100 cars, a thread hop would cost more);
responses are serialised by orjson. FastAPI still documents every route from the same models
(see `_openapi`), so /docs and /openapi.json show exactly what is enforced.
"""
from __future__ import annotations

import logging
import mimetypes
import os
from pathlib import Path
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

from mpgpack import __version__
from targets.api import v2
from targets.api.body import DEFAULT_MAX_BODY_BYTES, read_json_body
from targets.api.errors import ApiError, from_validation
from targets.api.observability import Metrics, ObservabilityMiddleware
from targets.api.predictor import Predictor
from targets.api.schema import DEFAULT_MAX_BATCH, RequestModels, example_car
from targets.bundle import open_bundle

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
               web_dir: str | os.PathLike | None = None) -> FastAPI:
    """Builds the service for one bundle. Raises UserError (one line) for a bad bundle."""
    bundle = open_bundle(bundle_path)
    predictor = Predictor(bundle)          # verifies model.onnx + golden.json, self-tests
    models = RequestModels(bundle.features, max_batch=max_batch)
    metrics = Metrics(predictor.version)
    manifest = bundle.manifest
    web = Path(web_dir) if web_dir else bundle.path / "web"
    has_web = (web / "index.html").is_file()

    app = FastAPI(
        # Native OpenTelemetry off: it checks providers on every request, and /metrics covers it.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="mpgpack: Auto MPG prediction service",
        version=predictor.version,
        description=(
            "Predicts a car's fuel economy (miles per US gallon) from seven raw features with "
            f"model {predictor.version} (ONNX Runtime). Two ways in: the friendly `POST /predict` "
            "with named features, and the Open Inference Protocol V2 under `/v2` (KServe, "
            "Triton clients). Every field's hard limits are enforced (outside: 422 naming "
            "field, value and range); values outside the training range are predicted and "
            f"flagged with warnings. Limits: {max_batch} cars per request, "
            f"{max_body_bytes} bytes per body."),
        openapi_tags=[{"name": "predict", "description": "the friendly API"},
                      {"name": "v2", "description": "Open Inference Protocol V2"},
                      {"name": "service", "description": "metadata and metrics"}])
    app.state.predictor, app.state.models, app.state.metrics = predictor, models, metrics

    metadata = {
        "model": {k: manifest["model"].get(k) for k in
                  ("name", "version", "created", "git", "estimator", "libraries", "io")},
        "runtime": predictor.runtime,
        "artifact": {"path": manifest["artifacts"]["onnx"]["path"], "sha256": predictor.onnx_sha256},
        "self_check": predictor.self_check,
        "schema": manifest["schema"],
        "metrics": manifest.get("metrics"),
        "parity": manifest.get("parity"),
        "data": manifest.get("data"),
        "limits": {"max_batch": max_batch, "max_body_bytes": max_body_bytes},
        "endpoints": ["POST /predict", "GET /metadata", "GET /metrics", "GET /docs",
                      "GET /v2", "GET /v2/health/live", "GET /v2/health/ready",
                      "GET /v2/models/mpg", "GET /v2/models/mpg/ready",
                      "POST /v2/models/mpg/infer"],
    }
    metadata_bytes = orjson.dumps(metadata)
    name, version = predictor.name, predictor.version

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
        body = await read_json_body(request, max_body_bytes)
        try:
            parsed = models.request.validate_json(body)
        except ValidationError as exc:
            raise from_validation(exc, models.rules) from None
        X = models.to_matrix(parsed)
        pred = predictor.predict(X)
        warnings, counts = models.check_training_range(X)
        for feature, count in counts.items():
            metrics.flag(feature, count)
        request.scope["mpg.batch"] = len(pred)
        return JsonResponse({"model_version": version, "request_id": request.scope["request_id"],
                             "predictions": [{"mpg": p, "warnings": w} for p, w in zip(pred, warnings)]})

    @app.get("/metadata", tags=["service"], summary="Model version, feature schema, metrics, parity")
    async def get_metadata() -> Response:
        return Response(metadata_bytes, media_type="application/json")

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics")
    async def get_metrics() -> Response:
        data, ctype = metrics.exposition()
        return Response(data, media_type=ctype)

    # ---- Open Inference Protocol V2 -------------------------------------------------------
    def check_model(model_name: str, model_version: str | None = None) -> None:
        if model_name != name:
            raise ApiError(404, f"model {model_name!r} not found; this server serves {name!r}")
        if model_version is not None and model_version != version:
            raise ApiError(404, f"model {name!r} has no version {model_version!r}; "
                                f"it serves version {version!r}")

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> JsonResponse:
        return JsonResponse({"name": "mpgpack", "version": __version__, "extensions": []})

    @app.get("/v2/health/live", tags=["v2"], summary="Liveness")
    async def v2_live() -> JsonResponse:
        return JsonResponse({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Readiness (the model is loaded and self-tested)")
    async def v2_ready() -> JsonResponse:
        return JsonResponse({"ready": True})

    model_meta = v2.model_metadata(name, version, models.names)

    @app.get("/v2/models/{model_name}", tags=["v2"], summary="Model metadata")
    @app.get("/v2/models/{model_name}/versions/{model_version}", tags=["v2"],
             summary="Model metadata (one version)")
    async def v2_model(model_name: str, model_version: str | None = None) -> JsonResponse:
        check_model(model_name, model_version)
        return JsonResponse(model_meta)

    @app.get("/v2/models/{model_name}/ready", tags=["v2"], summary="Model readiness")
    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", tags=["v2"],
             summary="Model readiness (one version)")
    async def v2_model_ready(model_name: str, model_version: str | None = None) -> JsonResponse:
        check_model(model_name, model_version)
        return JsonResponse({"name": name, "ready": True})

    infer_doc = dict(tags=["v2"], response_model=None, summary="Inference (FP32 [N, 7] in, FP32 [N, 1] out)",
                     responses={200: {"model": v2.InferenceResponse}, **ERRORS},
                     openapi_extra={"parameters": [
                         {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}],
                         "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}})

    @app.post("/v2/models/{model_name}/infer", **infer_doc)
    @app.post("/v2/models/{model_name}/versions/{model_version}/infer", **infer_doc)
    async def v2_infer(request: Request) -> JsonResponse:
        params = request.path_params
        check_model(params["model_name"], params.get("model_version"))
        body = await read_json_body(request, max_body_bytes)
        req, X = v2.parse_tensor(body, models)
        pred = predictor.predict(X)
        warnings, counts = models.check_training_range(X)
        for feature, count in counts.items():
            metrics.flag(feature, count)
        flagged = sum(1 for ws in warnings if ws)
        request.scope["mpg.batch"] = len(pred)
        return JsonResponse(v2.infer_response(name, version, req.id or request.scope["request_id"],
                                              pred, flagged))

    # The two prediction routes are *documented* by the FastAPI routes above and *served* by
    # plain Starlette routes placed first in the router, calling the same functions. They read
    # the raw body themselves, so FastAPI's per-request dependency solving would only add
    # overhead (it was most of a one-car request's CPU time).
    app.router.routes[:0] = [
        LabelledRoute("/predict", predict, methods=["POST"]),
        LabelledRoute("/v2/models/{model_name}/infer", v2_infer, methods=["POST"]),
        LabelledRoute("/v2/models/{model_name}/versions/{model_version}/infer", v2_infer,
                      methods=["POST"])]

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
            return JsonResponse({"service": "mpgpack", "model_version": version,
                                 "docs": "/docs", "metadata": "/metadata", "predict": "POST /predict",
                                 "v2": "/v2/models/mpg"})

    app.openapi = lambda: _openapi(app, models)   # type: ignore[method-assign]
    # Around the routes and their error handlers, so 404s, 413s and static files are
    # counted and logged too.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, log_requests=log_requests)
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


def app_from_env() -> FastAPI:
    from targets.api.observability import configure_logging
    configure_logging()
    return create_app(os.environ.get(ENV_BUNDLE) or None,
                      max_batch=int(os.environ.get(ENV_MAX_BATCH, DEFAULT_MAX_BATCH)),
                      max_body_bytes=int(os.environ.get(ENV_MAX_BODY, DEFAULT_MAX_BODY_BYTES)),
                      log_requests=os.environ.get(ENV_ACCESS_LOG, "1") == "1")
