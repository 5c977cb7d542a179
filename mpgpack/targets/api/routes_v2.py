"""The Open Inference Protocol V2 room (KServe / Triton "v2" REST): server and model metadata,
health, and inference. The wire format (tensor parsing, response shape) lives in v2.py."""
from __future__ import annotations

import time

from starlette.requests import Request

from mpgpack import __version__
from mpgpack.targets.api import v2
from mpgpack.targets.api.body import read_json_body
from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.openapi import ERRORS, NOT_FOUND
from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.service import Room
from mpgpack.targets.api.serving import Served


def check_model(served: Served, model_name: str, model_version: str | None = None) -> None:
    """404 unless the path names the served model (and, if given, its served version)."""
    name, version = served.name, served.version
    if model_name != name:
        raise ApiError(404, f"model {model_name!r} not found; this server serves {name!r}")
    if model_version is not None and model_version != version:
        raise ApiError(404, f"model {name!r} has no version {model_version!r}; "
                            f"it serves version {version!r}")


class V2Routes(Room):
    async def v2_server(self, request: Request) -> JsonResponse:
        return JsonResponse({"name": "mpgpack", "version": __version__, "extensions": []})

    async def v2_live(self, request: Request) -> JsonResponse:
        return JsonResponse({"live": True})

    async def v2_ready(self, request: Request) -> JsonResponse:
        return JsonResponse({"ready": True})

    def _served_model(self, request: Request) -> Served:
        served = self._slot.current
        request.scope["mpg.version"] = served.version
        params = request.path_params
        check_model(served, params["model_name"], params.get("model_version"))
        return served

    async def v2_model(self, request: Request) -> JsonResponse:
        return JsonResponse(self._served_model(request).model_meta)

    async def v2_model_ready(self, request: Request) -> JsonResponse:
        return JsonResponse({"name": self._served_model(request).name, "ready": True})

    async def v2_infer(self, request: Request) -> JsonResponse:
        t0 = time.perf_counter()
        served = self._served_model(request)   # read ONCE: this request is answered by this version
        body = await read_json_body(request, self._max_body_bytes)
        req, X = v2.parse_tensor(body, served.models)
        pred = served.predictor.predict(X)
        request_id = request.scope["request_id"]
        # V2 answers a count of flagged rows, no sentences: none are worded.
        _, summary = self._record(served, X, pred, request_id, t0, detail_limit=0)
        flagged = summary["rows_flagged"] if summary else 0
        request.scope["mpg.batch"] = len(pred)
        return JsonResponse(v2.infer_response(served.name, served.version, req.id or request_id,
                                              pred, flagged))

    def docs(self) -> dict[str, dict]:
        return {"v2_model": dict(responses=NOT_FOUND), "v2_model_ready": dict(responses=NOT_FOUND),
                "v2_infer": dict(
            responses={200: {"model": v2.InferenceResponse}, **ERRORS, **NOT_FOUND},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}})}
