"""The OpenAPI document (/docs, /openapi.json), built from the route table.

Handlers read the raw body themselves and are served by plain routes (routing.py), so FastAPI
cannot see what they take. Each row of the table becomes a FastAPI `APIRoute` used only for
the document (never mounted): its path parameters come from the path, its summary and tag from
the row, its description from the handler's docstring, and its request and response bodies
from the room's `docs()`; the request models' JSON Schema is added from the same pydantic
models that validate.
"""
from __future__ import annotations

import inspect
import re
from typing import Optional

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, create_model

from mpgpack.core.schema import Schema
from mpgpack.targets.api import v2
from mpgpack.targets.api.routes import RouteSpec
from mpgpack.targets.api.schema import RequestModels


# ---- response models: documentation only (handlers build plain dicts for speed) -----------
class RangeWarning(BaseModel):
    field: str
    value: float
    training_range: list[float]
    message: str


class WarningsSummary(BaseModel):
    rows_flagged: int = Field(description="rows with a value outside the training range")
    by_field: dict[str, int] = Field(description="values outside the training range, per feature")
    detailed_rows: list[int] = Field(description="the rows whose `warnings` are worded (0-based)")
    other_flagged_rows: list[int] = Field(description="the other flagged rows (their `warnings` "
                                                      "are empty)")
    message: str


def predict_response(schema: Schema, manifest: dict) -> type[BaseModel]:
    """The response model of POST /predict for this model: a regressor's row holds its value
    under the target's name, a classifier's row the class and its probabilities."""
    warnings = (list[RangeWarning], Field(description="features outside the training range"))
    target = manifest.get("schema", {}).get("target", {})
    if schema.is_classifier:
        labels = ", ".join(schema.classes)
        fields = {
            "class": (str, Field(description=f"the predicted class: the one of highest "
                                             f"probability (the first on a tie); one of {labels}",
                                 json_schema_extra={"enum": list(schema.classes)})),
            "probabilities": (dict[str, float], Field(description=f"each class's probability "
                                                                  f"({labels})")),
            "warnings": warnings}
        prediction = create_model("Prediction", **fields)
    else:
        what = target.get("description") or f"predicted {schema.target}"
        unit = target.get("unit")
        prediction = create_model("Prediction", **{
            "value": (float, Field(alias=schema.target,
                                   description=f"{what}, {unit}" if unit else what)),
            "warnings": warnings})
    return create_model(
        "PredictResponse", model_version=(str, ...), request_id=(str, ...),
        predictions=(list[prediction], ...),
        warnings_summary=(Optional[WarningsSummary], Field(
            None, description="only when more rows were flagged than are worded in full")))


class ErrorBody(BaseModel):
    error: str = Field(description="one line naming the field, the rule and what is allowed")
    errors: Optional[list[dict]] = Field(None, description="every problem: field, rule, message")


ERRORS = {400: {"model": ErrorBody, "description": "not JSON, or (V2) an invalid tensor"},
          413: {"model": ErrorBody, "description": "body over the size limit"},
          415: {"model": ErrorBody, "description": "Content-Type is not application/json"},
          422: {"model": ErrorBody, "description": "a field breaks a rule of the schema"}}


def doc_routes(specs: list[RouteSpec], rooms: dict[str, object]) -> list[APIRoute]:
    """One documentation-only APIRoute per row."""
    extras = {(room, name): kw for room, r in rooms.items() for name, kw in r.docs().items()}
    return [APIRoute(s.path, _doc_endpoint(s, getattr(rooms[s.room], s.name)),
                     methods=list(s.methods), name=s.name, tags=[s.tag], summary=s.summary,
                     response_model=None, **extras.get((s.room, s.name), {}))
            for s in specs]


def _doc_endpoint(spec: RouteSpec, handler):
    """A stand-in with the handler's name and docstring whose signature is the path's
    parameters, which is all FastAPI reads from an endpoint to document it."""
    async def endpoint(**_params):
        raise NotImplementedError("documentation only")
    endpoint.__name__ = spec.name
    endpoint.__doc__ = handler.__doc__
    endpoint.__signature__ = inspect.Signature(   # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=str)
         for p in re.findall(r"{(\w+)}", spec.path)])
    return endpoint


NOT_FOUND = {404: {"model": ErrorBody, "description": "no such model (or version) on this server"}}
NOT_IMPLEMENTED = {404: {"model": ErrorBody, "description": "an optional V2 extension this server "
                                                          "does not implement (GET /v2 lists those it does)"}}


def build_openapi(app: FastAPI, routes: list[APIRoute], models: RequestModels,
                  model_name: str | None = None) -> dict:
    """FastAPI's schema of `routes` plus the request models (PredictRequest, InferenceRequest)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=routes, tags=app.openapi_tags)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    predict_schema = models.request.json_schema(ref_template=ref)
    components.update(predict_schema.pop("$defs", {}))
    predict_schema.pop("discriminator", None)     # a callable discriminator has no OpenAPI mapping
    components["PredictRequest"] = {**predict_schema, "title": "PredictRequest",
                                    "description": "One row, or {\"instances\": [row, ...]}"}
    infer_schema = v2.REQUEST.json_schema(ref_template=ref)
    infer_schema["examples"] = [v2.example_request(models)]
    components.update(infer_schema.pop("$defs", {}))
    components["InferenceRequest"] = infer_schema
    if model_name:
        _restrict_model_name(schema, model_name)
    app.openapi_schema = schema
    return schema


def _restrict_model_name(schema: dict, model_name: str) -> None:
    """The {model_name} path parameter takes the one served name (anything else is a 404)."""
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param.get("name") == "model_name":
                    param["schema"] = {**param.get("schema", {}), "enum": [model_name]}
