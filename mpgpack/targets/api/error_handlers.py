"""Errors are always {"error": "one line"} with the right status, never a traceback."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.responses import error_response

log = logging.getLogger("mpgpack.api")


async def on_api_error(request: Request, exc: ApiError):
    return error_response(request, exc)


async def on_http_error(request: Request, exc: StarletteHTTPException):
    """Starlette's own 404/405 (no route, wrong method) in our wording."""
    if exc.status_code == 404:
        msg = f"no such route: {request.method} {request.url.path}; see /docs for the endpoints"
    elif exc.status_code == 405:
        msg = f"method {request.method} is not allowed on {request.url.path}"
    else:
        msg = str(exc.detail)
    response = error_response(request, ApiError(exc.status_code, msg))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def on_request_validation(request: Request, exc: RequestValidationError):
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(request, ApiError(422, f"{where}: {first['msg']}"))


async def on_unexpected(request: Request, exc: Exception):
    rid = request.scope.get("request_id")
    log.exception("unhandled error", extra={"fields": {"request_id": rid}})
    return error_response(request, ApiError(
        500, f"internal error (request id {rid}); see the server log"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(Exception, on_unexpected)
