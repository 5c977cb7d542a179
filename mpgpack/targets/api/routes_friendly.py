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
from mpgpack.targets.api.openapi import ERRORS, predict_response
from mpgpack.targets.api.responses import JsonResponse
from mpgpack.targets.api.service import Room


class FriendlyRoutes(Room):
    async def predict(self, request: Request) -> JsonResponse:
        """One row as named features, or `{"instances": [row, ...]}`. Send `X-Request-ID` to
        choose the request id (echoed in the body and the header); otherwise one is generated."""
        served = self._slot.current     # read ONCE: this request is answered by this version
        t0 = time.perf_counter()
        request.scope["mpg.version"] = version = served.version
        body = await read_json_body(request, self._max_body_bytes)
        models = served.models
        # A plainly good body takes the fast path; anything else (every refusal) pydantic's.
        X = None if models.fast is None else models.fast(body)
        if X is None:
            try:
                parsed = models.request.validate_json(body)
            except ValidationError as exc:
                raise from_validation(exc, models.rules) from None
            rows = parsed.get("instances")
            # A nullable field left out is filled with null by validation: it counts as a key
            # the body may not hold, so each null counts as possibly not sent (else a
            # duplicate elsewhere in that row would go unnoticed).
            nullable = models.schema.nullable_names
            unsent = sum(r.get(n) is None for r in (rows if rows is not None else [parsed])
                         for n in nullable)
            keys = len(parsed) if rows is None else 1 + sum(map(len, rows))
            refuse_duplicate_keys(body, keys - unsent, 422)
            X = models.to_matrix(parsed)
        answers = served.answers
        pred = answers.output(served.predictor, X)
        request_id = request.scope["request_id"]
        warnings, summary = self._record(served, X, pred, request_id, t0)
        request.scope["mpg.batch"] = len(pred)
        out = {"model_version": version, "request_id": request_id,
               "predictions": answers.rows(pred, warnings)}
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
                             "v2": f"/v2/models/{self._slot.current.name}"})

    def docs(self) -> dict[str, dict]:
        served = self._slot.current
        example = served.models.example
        return {"predict": dict(
            responses={200: {"model": predict_response(served.predictor.schema,
                                                       served.bundle.manifest)}, **ERRORS},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictRequest"},
                "examples": {
                    "one row": {"value": example},
                    "a batch": {"value": {"instances": [example, _other_row(served, example)]}},
                    "a missing value, out of the training range": {
                        "value": _odd_row(served, example)},
                }}}}})}


def _other_row(served, example: dict) -> dict:
    """The example with its first category set to the last category (or unchanged)."""
    cat = next((f for f in served.predictor.schema if f.is_category), None)
    return example if cat is None else {**example, cat.name: max(cat.categories)}


def _odd_row(served, example: dict) -> dict:
    """The example with its first nullable feature missing and its first number feature at
    the top of its hard limits (outside the training range, so the answer carries a warning)."""
    schema = served.predictor.schema
    odd = dict(example)
    nullable = next((f for f in schema if f.nullable), None)
    if nullable is not None:
        odd[nullable.name] = None
    number = next((f for f in schema if not f.is_category and f is not nullable), None)
    if number is not None:
        odd[number.name] = int(number.maximum) if number.integer else number.maximum
    return odd
