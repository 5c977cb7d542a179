"""The prediction paths' own lane: POST /predict and V2 infer go straight to their handler.

Under load, a one-car request spent more CPU in the layers between the observability
middleware and the handler (Starlette's exception middleware, FastAPI's exit-stack middleware,
the router trying each route's regex, the request/response wrapper) than in validating the car.
For the route table's hot rows this lane does what those layers do for them: it sets the
scope's route and path parameters as the router would, calls the same handler with the same
Request, and answers an exception with the app's own handler for it (ApiError: the usual
{"error": ...} 4xx). Anything without a handler of its own is re-raised, as before, to the
server-error middleware outside (500, logged). Every other request takes the full stack.
"""
from __future__ import annotations

from starlette.requests import Request

from mpgpack.targets.api.routes import ROUTES

HOT_NAMES = frozenset(r.name for r in ROUTES if r.hot)


class HotLane:
    def __init__(self, app):
        """app: the FastAPI application, once its routes and exception handlers are in place."""
        routes = [r for r in app.router.routes
                  if getattr(r, "name", None) in HOT_NAMES and "POST" in getattr(r, "methods", ())]
        self._exact = {r.path: r for r in routes if not r.param_convertors}
        self._patterned = [r for r in routes if r.param_convertors]
        # Exception (the 500 handler) is the server-error middleware's, as in Starlette.
        self._handlers = {t: h for t, h in app.exception_handlers.items()
                          if t is not Exception and isinstance(t, type)}

    def route(self, scope: dict):
        """The hot route a POST is for, with scope["route"] and path parameters set; else None."""
        if scope["method"] != "POST":
            return None
        path = scope["path"]
        route = self._exact.get(path)
        if route is None:
            for candidate in self._patterned:
                match = candidate.path_regex.match(path)
                if match:
                    scope["path_params"] = {k: candidate.param_convertors[k].convert(v)
                                            for k, v in match.groupdict().items()}
                    route = candidate
                    break
            else:
                return None
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        return route

    async def __call__(self, route, scope, receive, send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = next((self._handlers[t] for t in type(exc).__mro__ if t in self._handlers),
                           None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
