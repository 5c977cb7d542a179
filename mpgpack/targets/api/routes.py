"""The route table: every path the service answers, declared once.

From this table come the routing (one fast `LabelledRoute` per row, see routing.py), the
OpenAPI document (openapi.py) and the `endpoints` list of GET /metadata (`endpoint_list`).
Each row names its room, the module whose class holds the handler (as KServe registers one
set of endpoints per protocol): `friendly` (routes_friendly.py), `v2` (routes_v2.py),
`admin` (routes_admin.py), `monitoring` (routes_monitoring.py); `fastapi` rows are served
by FastAPI itself (the docs page) and only listed.
"""
from __future__ import annotations

from dataclasses import dataclass

from mpgpack.targets.api.v2_http import UNSUPPORTED

V2_MODEL = "/v2/models/{model_name}"
V2_VERSION = V2_MODEL + "/versions/{model_version}"


@dataclass(frozen=True)
class RouteSpec:
    path: str
    methods: tuple[str, ...]
    name: str          # the handler's name in its room (also the OpenAPI operation's name)
    room: str          # friendly | v2 | admin | monitoring | fastapi
    tag: str           # the OpenAPI group on /docs
    summary: str
    listed: bool = True       # in /metadata's `endpoints` (a route's versioned twin is not)
    site_fallback: bool = False   # only when the bundle has no web page to serve at "/"
    hot: bool = False         # a prediction path: served by the hot lane (hot_lane.py)


def _r(path, method, name, room, tag, summary, **kw) -> RouteSpec:
    return RouteSpec(path, (method,), name, room, tag, summary, **kw)


# Order: /metadata lists the endpoints in this order, and /docs shows the paths in it.
ROUTES: tuple[RouteSpec, ...] = (
    _r("/predict", "POST", "predict", "friendly", "predict", "Predict one row or a batch",
       hot=True),
    _r("/metadata", "GET", "get_metadata", "friendly", "service",
       "Model version, feature schema, metrics, parity"),
    _r("/metrics", "GET", "get_metrics", "monitoring", "service", "Prometheus metrics"),
    _r("/monitoring/drift", "GET", "get_drift", "monitoring", "monitoring",
       "Recent inputs vs the training data, per feature (PSI, KS, chi-square)"),
    _r("/docs", "GET", "docs", "fastapi", "service", "Interactive API documentation"),
    _r("/v2", "GET", "v2_server", "v2", "v2", "Server metadata"),
    _r("/v2/health/live", "GET", "v2_live", "v2", "v2", "Liveness"),
    _r("/v2/health/ready", "GET", "v2_ready", "v2", "v2",
       "Readiness (the model is loaded and self-tested)"),
    _r(V2_MODEL, "GET", "v2_model", "v2", "v2", "Model metadata"),
    _r(V2_VERSION, "GET", "v2_model", "v2", "v2", "Model metadata (one version)", listed=False),
    _r(V2_MODEL + "/ready", "GET", "v2_model_ready", "v2", "v2", "Model readiness"),
    _r(V2_VERSION + "/ready", "GET", "v2_model_ready", "v2", "v2",
       "Model readiness (one version)", listed=False),
    _r(V2_MODEL + "/infer", "POST", "v2_infer", "v2", "v2",
       "Inference (FP32 [N, features] in, FP32 [N, outputs] out)", hot=True),
    _r(V2_VERSION + "/infer", "POST", "v2_infer", "v2", "v2",
       "Inference (FP32 [N, features] in, FP32 [N, outputs] out)", listed=False, hot=True),
    # The protocol's optional extensions a client may call: a 404 saying what is not implemented.
    *(_r(path, method, "v2_unsupported", "v2", "v2", f"Not implemented: {what}", listed=False)
      for method, path, what in UNSUPPORTED),
    _r("/admin/reload", "POST", "admin_reload", "admin", "monitoring",
       "Switch to another model version without dropping a request"),
    _r("/", "GET", "index", "friendly", "service", "Where to go from here", listed=False,
       site_fallback=True),
)

TAGS = [{"name": "predict", "description": "the friendly API"},
        {"name": "v2", "description": "Open Inference Protocol V2"},
        {"name": "service", "description": "metadata and metrics"},
        {"name": "monitoring", "description": "input drift and model reloads"}]


def served_routes(has_site: bool) -> list[RouteSpec]:
    """The rows this app routes itself: not FastAPI's own, and "/" only without a web page."""
    return [r for r in ROUTES if r.room != "fastapi" and not (r.site_fallback and has_site)]


def path_of(name: str) -> str:
    return next(r.path for r in ROUTES if r.name == name)


def endpoint_list(model_name: str) -> list[str]:
    """GET /metadata's `endpoints`: "METHOD /path", with this server's model name filled in."""
    return [f"{m} {r.path.replace('{model_name}', model_name)}"
            for r in ROUTES if r.listed for m in r.methods]
