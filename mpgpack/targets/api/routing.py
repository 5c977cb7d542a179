"""Routes that label each request with its route, and mounting the route table's rows.

Every row of the route table is served by a plain Starlette route calling its room's handler
with the request: handlers read the raw body and path parameters themselves, so FastAPI's
per-request dependency solving (most of a one-car request's CPU time) is skipped. FastAPI
still documents every row (openapi.py).
"""
from __future__ import annotations

from starlette.routing import Match, Mount, Route

from mpgpack.targets.api.routes import RouteSpec


class _Labelled:
    """Puts the matched route in scope["route"] (as FastAPI's own routes do), so metrics and
    logs can label requests by route template instead of raw path."""

    def matches(self, scope):
        match, child = super().matches(scope)   # type: ignore[misc]
        if match != Match.NONE:
            child["route"] = self
        return match, child


class LabelledRoute(_Labelled, Route):
    """Answers exactly the methods given: Starlette would add HEAD to a GET route, FastAPI's
    routes do not, and HEAD on an API route stays a 405."""

    def __init__(self, path: str, endpoint, *, methods: list[str], **kw):
        super().__init__(path, endpoint, methods=methods, **kw)
        self.methods = set(methods)


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


def labelled_routes(specs: list[RouteSpec], rooms: dict[str, object]) -> list[LabelledRoute]:
    """One route per row, calling `rooms[row.room].<row.name>(request)`, in table order (the
    hot rows never reach the router: the hot lane answers them, see hot_lane.py)."""
    return [LabelledRoute(s.path, getattr(rooms[s.room], s.name), methods=list(s.methods),
                          name=s.name) for s in specs]
