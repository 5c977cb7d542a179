"""The FastAPI application, assembled from its rooms.

Speed without giving up validation: handlers are async and take the raw body; the pydantic
models built from the manifest validate it in one pass (in Rust) straight from the JSON bytes;
ONNX Runtime runs inline (tens of microseconds for 100 rows, a thread hop would cost more);
responses are serialised by orjson. Every route is a plain Starlette route (routing.py) built
from the route table (routes.py); FastAPI documents the same table (openapi.py), so /docs and
/openapi.json show exactly what is served and enforced.

The rooms: routes_friendly.py (/predict, /metadata), routes_v2.py (/v2/...), routes_admin.py
(/admin/reload), routes_monitoring.py (/metrics, /monitoring/drift); what they share is the
Service (service.py); what the app is told, the ApiSettings (settings.py).
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from mpgpack.targets.api.error_handlers import install_error_handlers
from mpgpack.targets.api.observability import ObservabilityMiddleware
from mpgpack.targets.api.openapi import build_openapi, doc_routes
from mpgpack.targets.api.routes import TAGS, path_of, served_routes
from mpgpack.targets.api.routes_admin import AdminRoutes
from mpgpack.targets.api.routes_friendly import FriendlyRoutes
from mpgpack.targets.api.routes_monitoring import MonitoringRoutes
from mpgpack.targets.api.routes_v2 import V2Routes
from mpgpack.targets.api.routing import labelled_routes
from mpgpack.targets.api.service import Service
from mpgpack.targets.api.settings import ApiSettings
from mpgpack.targets.api.site import check_site, has_site, site_mounts

ROOMS = {"friendly": FriendlyRoutes, "v2": V2Routes, "admin": AdminRoutes,
         "monitoring": MonitoringRoutes}


def create_app(settings: ApiSettings) -> FastAPI:
    """Builds the service. Raises UserError (one line) for a bad bundle."""
    service = Service(settings)
    first = service.slot.current          # the docs describe the start-up version
    app = FastAPI(
        lifespan=service.lifespan,
        # Native OpenTelemetry off: it checks providers on every request, and /metrics covers it.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title=f"mpgpack: {first.name} prediction service", version=first.version,
        description=_description(first, settings), openapi_tags=TAGS,
        docs_url=path_of("docs"))
    app.state.slot = service.slot          # the served model: `mpgpack serve` announces it

    rooms = {name: room(service) for name, room in ROOMS.items()}
    web = Path(settings.web_dir) if settings.web_dir else first.bundle.path / "web"
    if has_site(web) and not settings.web_dir:
        check_site(first.bundle)          # the page and report are served as built, or not at all
    specs = served_routes(has_site(web))
    # Ahead of FastAPI's own /docs and /openapi.json (distinct paths: order is only speed).
    app.router.routes[:0] = labelled_routes(specs, rooms)
    if has_site(web):
        app.router.routes.extend(site_mounts(web, first.bundle.path / "report",
                                             api_routes=list(app.router.routes)))
    install_error_handlers(app)
    documented = doc_routes(specs, rooms)
    app.openapi = lambda: build_openapi(app, documented, first.models,  # type: ignore[method-assign]
                                        first.name)
    # Around the routes and their error handlers, so 404s, 413s and static files are
    # counted and logged too.
    app.add_middleware(ObservabilityMiddleware, metrics=service.metrics,
                       log_requests=settings.access_log,
                       current_version=lambda: service.slot.version)
    return app


def _description(served, settings: ApiSettings) -> str:
    schema = served.predictor.schema
    what = (f"the class of a row ({', '.join(schema.classes)}) with its probabilities"
            if schema.is_classifier else f"{schema.target} for a row")
    return (
        f"Predicts {what} from {len(schema)} raw features with model {served.name} "
        f"{served.version} (ONNX Runtime). Two ways in: the friendly `POST /predict` "
        "with named features, and the Open Inference Protocol V2 under `/v2` (KServe, "
        "Triton clients). Every field's hard limits are enforced (outside: 422 naming "
        "field, value and range); values outside the training range are predicted and "
        f"flagged with warnings. Limits: {settings.max_batch} rows per request, "
        f"{settings.max_body_bytes} bytes per body. Every response names the model version that "
        "answered (`model_version`, header `X-Model-Version`); `POST /admin/reload` "
        "switches versions without dropping a request.")


def app_from_env() -> FastAPI:
    """For `uvicorn --factory` in each worker process of `mpgpack serve --workers N`."""
    from mpgpack.targets.api.observability import configure_logging
    configure_logging()
    return create_app(ApiSettings.from_env())

