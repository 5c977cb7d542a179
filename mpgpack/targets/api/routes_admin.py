"""The admin room: POST /admin/reload, switching model versions without dropping a request."""
from __future__ import annotations

import asyncio
import logging

import orjson
from starlette.requests import Request

from mpgpack.core.errors import UserError
from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.openapi import ErrorBody
from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.service import Room, Service
from mpgpack.targets.api.serving import reload_target
from mpgpack.targets.monitor.slot import ADMIN_TOKEN_ENV, check_admin_token

log = logging.getLogger("mpgpack.api")

MAX_RELOAD_BODY = 65536


class AdminRoutes(Room):
    def __init__(self, service: Service):
        super().__init__(service)
        # The token as read into the settings at start (check_admin_token takes a mapping).
        self._token_env = {ADMIN_TOKEN_ENV: service.settings.admin_token}

    async def admin_reload(self, request: Request) -> JsonResponse:
        """Needs `Authorization: Bearer $MPGPACK_ADMIN_TOKEN`. An empty body (or `{}`) follows
        the source again (a registry's CURRENT: after `mpgpack build` or `mpgpack rollback`);
        `{"version": "..."}` or `{"bundle": "/path"}` loads that one. The new bundle is verified
        and self-tested before the swap; requests in flight finish on the old version. With
        several workers, the answer comes once every worker serves the new version."""
        given = request.headers.getlist("authorization")
        if len(given) > 1:     # which one would count is a proxy's guess: refuse, do not pick
            raise ApiError(400, f"header Authorization: sent {len(given)} times; send it once")
        status, message = check_admin_token(given[0] if given else None, self._token_env)
        if status != 200:
            raise ApiError(status, message)
        slot = self.service.slot
        try:
            target = reload_target(slot.source, await _reload_body(request))
        except UserError as exc:
            raise ApiError(422, str(exc)) from None
        try:
            result = await asyncio.to_thread(self.service.reload_now, target)
        except Exception as exc:     # bad or tampered bundle: the old version keeps serving
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            log.error("reload refused, still serving %s: %s", slot.version, message)
            request.scope["mpg.error"] = message
            return JsonResponse({"error": message, "serving": slot.version}, status_code=409)
        if self.service.broadcast:
            await self._wait_for_workers(result)
        request.scope["mpg.version"] = result["current"]
        return JsonResponse(result)

    async def _wait_for_workers(self, result: dict) -> None:
        """Several workers: add each one's state, and a warning naming those not on the new version."""
        workers = await asyncio.to_thread(self.service.broadcast.wait_for, result["generation"])
        result["workers"] = {str(pid): w for pid, w in sorted(workers.items())}
        behind = [str(pid) for pid, w in workers.items()
                  if w.get("manifest_sha256") != result["manifest_sha256"] or w.get("error")]
        if behind:
            result["warning"] = (f"worker(s) {', '.join(behind)} do not serve {result['current']} "
                                 "yet; see `workers` and the server log")

    def docs(self) -> dict[str, dict]:
        version = self.service.slot.version
        return {"admin_reload": dict(
            responses={400: {"model": ErrorBody, "description": "the body is not JSON, or "
                                                                "Authorization was sent twice"},
                       401: {"model": ErrorBody, "description": "no bearer token"},
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
                             "a version": {"value": {"version": version}}}}}}})}


async def _reload_body(request: Request) -> dict:
    """The reload request's JSON object ({} when empty). Raises ApiError."""
    raw = await request.body()
    if len(raw) > MAX_RELOAD_BODY:
        raise ApiError(413, f"body: over the limit of {MAX_RELOAD_BODY} bytes")
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object: {}, {\"version\": …} or {\"bundle\": …}")
    return body

