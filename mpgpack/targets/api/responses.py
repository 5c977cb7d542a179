"""The JSON response every handler returns (orjson, numpy arrays included) and the error one."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mpgpack.targets.api.errors import ApiError


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error_response(request: Request, exc: ApiError) -> JsonResponse:
    """{"error": ...} with the status; the message also goes to the access log line."""
    request.scope["mpg.error"] = exc.message
    return JsonResponse(exc.body(), status_code=exc.status)
