"""The friendly API room: POST /predict (named features), GET /metadata, and GET / when the
bundle has no web page. Rows in routes.py; handlers here."""
from __future__ import annotations

import time

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from mpgpack.targets.api.body import read_json_body
from mpgpack.targets.api.errors import from_validation
from mpgpack.targets.api.json_keys import refuse_duplicate_keys
from mpgpack.targets.api.openapi import ERRORS, PredictResponse
from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.schema import example_car
from mpgpack.targets.api.service import Room


class FriendlyRoutes(Room):
    async def predict(self, request: Request) -> JsonResponse:
        """One car as named features, or `{"instances": [car, ...]}`. Send `X-Request-ID` to
        choose the request id (echoed in the body and the header); otherwise one is generated."""
        served = self._slot.current     # read ONCE: this request is answered by this version
        t0 = time.perf_counter()
        request.scope["mpg.version"] = version = served.version
        body = await read_json_body(request, self._max_body_bytes)
        models = served.models
        try:
            parsed = models.request.validate_json(body)
        except ValidationError as exc:
            raise from_validation(exc, models.rules) from None
        cars = parsed.get("instances")
        refuse_duplicate_keys(body, len(parsed) if cars is None else 1 + sum(map(len, cars)), 422)
        X = models.to_matrix(parsed)
        pred = served.predictor.predict(X)
        request_id = request.scope["request_id"]
        warnings, summary = self._record(served, X, pred, request_id, t0)
        request.scope["mpg.batch"] = len(pred)
        out = {"model_version": version, "request_id": request_id,
               "predictions": [{"mpg": p, "warnings": w} for p, w in zip(pred, warnings)]}
        if summary is not None:
            out["warnings_summary"] = summary
        return JsonResponse(out)

    async def get_metadata(self, request: Request) -> Response:
        served = self._slot.current
        request.scope["mpg.version"] = served.version
        return Response(served.metadata_bytes, media_type="application/json")

    async def index(self, request: Request) -> JsonResponse:
        return JsonResponse({"service": "mpgpack", "model_version": self._slot.version,
                             "docs": "/docs", "metadata": "/metadata", "predict": "POST /predict",
                             "v2": "/v2/models/mpg"})

    def docs(self) -> dict[str, dict]:
        example = example_car(self._slot.current.bundle.features)
        odd = {**example, "cylinders": 12, "horsepower": None}
        return {"predict": dict(
            responses={200: {"model": PredictResponse}, **ERRORS},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictRequest"},
                "examples": {
                    "one car": {"value": example},
                    "a batch": {"value": {"instances": [example, {**example, "origin": 3}]}},
                    "missing horsepower, out of training range": {"value": odd},
                }}}}})}
