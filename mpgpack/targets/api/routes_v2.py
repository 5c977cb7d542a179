"""The Open Inference Protocol V2 room (KServe / Triton "v2" REST): server and model metadata,
health, and inference. The wire format (tensor parsing, response shape) lives in v2.py."""
from __future__ import annotations

import time

from starlette.requests import Request

from starlette.responses import Response

from mpgpack.targets.api import v2, v2_http, v2_infer
from mpgpack.targets.api.openapi import ERRORS, NOT_FOUND, NOT_IMPLEMENTED
from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.service import Room
from mpgpack.targets.api.serving import Served




class V2Routes(Room):
    async def v2_server(self, request: Request) -> JsonResponse:
        return JsonResponse(v2_infer.server_metadata())

    async def v2_live(self, request: Request) -> JsonResponse:
        return JsonResponse({"live": True})

    async def v2_ready(self, request: Request) -> JsonResponse:
        return JsonResponse({"ready": True})

    def _served_model(self, request: Request) -> Served:
        served = self._slot.current
        request.scope["mpg.version"] = served.version
        params = request.path_params
        v2_infer.check_model(served, params["model_name"], params.get("model_version"))
        return served

    async def v2_model(self, request: Request) -> JsonResponse:
        return JsonResponse(self._served_model(request).model_meta)

    async def v2_model_ready(self, request: Request) -> JsonResponse:
        return JsonResponse({"name": self._served_model(request).name, "ready": True})

    async def v2_infer(self, request: Request) -> Response:
        """JSON (no Content-Type needed) or the binary tensor extension; see v2_http.py."""
        t0 = time.perf_counter()
        served = self._served_model(request)   # read ONCE: this request is answered by this version
        req, values = await v2_http.read_request(request, self._max_body_bytes, served.models)
        answer = v2_infer.infer(self.service, served, req, values, request.scope["request_id"], t0)
        request.scope["mpg.batch"] = answer.rows
        return v2_http.infer_response(req, answer.response)

    async def v2_unsupported(self, request: Request) -> Response:
        raise v2_http.not_implemented(request, self._slot.current.name)

    def docs(self) -> dict[str, dict]:
        return {"v2_model": dict(responses=NOT_FOUND), "v2_model_ready": dict(responses=NOT_FOUND),
                "v2_unsupported": dict(responses=NOT_IMPLEMENTED),
                "v2_infer": dict(
            responses={200: {"model": v2.InferenceResponse}, **ERRORS, **NOT_FOUND},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}})}
