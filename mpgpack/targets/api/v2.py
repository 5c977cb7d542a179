"""The Open Inference Protocol V2 (KServe / Triton "v2" REST) for the one served model.

The wire types follow the protocol's REST spec: an inference request holds `inputs`, each a
tensor {name, shape, datatype, data[, parameters]}, with `data` either flat (row-major) or
nested to the tensor's shape; the response echoes the request `id` and returns `outputs`;
errors are a 4xx with {"error": "..."}. The model is named in its manifest (`model.name`,
"mpg" for the MPG model); it has one input `features` FP32 [N, F] (F features) and one output
FP32 [N, K] named from the manifest: a regressor's [N, 1] after its target ("mpg"), a
classifier's class probabilities [N, classes] "probabilities".

The rows of the tensor are then checked by the core's row validator (`mpgpack.core.rows`:
hard limits, integers, categories, nullability from the manifest; the same rules and words as
POST /predict and the edge runner), so the low-level protocol cannot send the model a value
the friendly API would refuse.
"""
from __future__ import annotations

from typing import Annotated, Any, Optional, Union

import numpy as np
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Strict, Tag, TypeAdapter,
                      ValidationError)

from mpgpack.core.rows import check_rows
from mpgpack.core.schema import INPUT_NAME, Schema
from mpgpack.targets.api.errors import ApiError, from_validation
from mpgpack.targets.api.json_keys import count_keys, refuse_duplicate_keys
from mpgpack.targets.api.schema import RequestModels

DATATYPE = "FP32"

# NaN passes this first, structural check on purpose: it is how V2 clients write a missing
# FP32 value (Python's json writes the literal NaN), and the row rules then say which feature
# may or may not be missing.
Scalar = Optional[Annotated[float, Strict()]]


def _data_kind(value: Any) -> str:
    return "nested" if isinstance(value, list) and value and isinstance(value[0], list) else "flat"


TensorData = Annotated[Union[Annotated[list[Scalar], Tag("flat")],
                             Annotated[list[list[Scalar]], Tag("nested")]],
                       Discriminator(_data_kind)]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(description=f"input tensor name; this model's is '{INPUT_NAME}'",
                      json_schema_extra={"enum": [INPUT_NAME]})   # checked in _the_input
    shape: list[Annotated[int, Field(ge=0)]] = Field(description="[N, F]: N rows of the F "
                                                     "features, in the schema's order")
    datatype: str = Field(description=f"tensor datatype; this model takes {DATATYPE}",
                          json_schema_extra={"enum": [DATATYPE]})
    parameters: Optional[dict[str, Any]] = None
    data: Optional[TensorData] = Field(None, description="row-major values, flat or nested; null "
                                         "or NaN = missing (where the schema allows it); "
                                         "omitted when the "
                                         "values follow as binary data (parameters."
                                         "binary_data_size)")


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(description="an output tensor of the model (GET /v2/models/{model_name} "
                                  "lists it)")   # checked in _check_outputs
    parameters: Optional[dict[str, Any]] = None


class InferenceRequest(BaseModel):
    # The example is the served model's (openapi.py, from example_request).
    model_config = ConfigDict(extra="forbid", strict=True)
    id: Optional[str] = Field(None, max_length=256)
    parameters: Optional[dict[str, Any]] = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: Optional[list[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    parameters: Optional[dict[str, Any]] = None
    outputs: list[ResponseOutput]


REQUEST = TypeAdapter(InferenceRequest)


def v2_location(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part in ("flat", "nested"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def v2_fields(loc: tuple) -> list[str]:
    """The field names the V2 request allows at a location (for "unknown field" messages)."""
    model = {0: InferenceRequest}.get(len(loc) - 1)
    if model is None and len(loc) >= 3:
        model = {"inputs": RequestInput, "outputs": RequestOutput}.get(loc[0])
    return list(model.model_fields) if model else []


def parse_request(body: bytes | dict, models: RequestModels) -> InferenceRequest:
    """The request's structure (field names and types) by the protocol's models: from the JSON
    of an HTTP body (or of a binary request's header), or from gRPC as the same dict."""
    try:
        req = REQUEST.validate_json(body) if isinstance(body, bytes) else REQUEST.validate_python(body)
    except ValidationError as exc:
        err = from_validation(exc, models.rules, status=400, where=v2_location, allowed=v2_fields)
        err.errors = None          # the V2 error object is exactly {"error": "..."}
        raise err from None
    if not isinstance(body, dict):     # JSON text; gRPC messages cannot repeat a field
        refuse_duplicate_keys(body, count_keys(req), 400)
    return req


def tensor_matrix(req: InferenceRequest, models: RequestModels,
                  values: Optional[list[Optional[np.ndarray]]] = None) -> np.ndarray:
    """The request's input as float32 [N, F] (NaN = missing), checked by the core's row rules.
    `values`: per input, its flat values when they came outside the JSON (binary HTTP data,
    gRPC contents); None (or a None entry) where the JSON `data` holds them."""
    tensor = _the_input(req)
    rows = _check_shape(tensor.shape, models)
    width = len(models.names)
    flat = values[0] if values else None
    if flat is None:
        X, nulls = _json_matrix(tensor, rows, width)
    else:
        if flat.size != rows * width:
            raise ApiError(400, f"inputs[0]: shape {tensor.shape} needs {rows * width} values, "
                                f"got {flat.size}")
        X, nulls = flat.reshape(rows, width).astype(np.float64), None
    X = _check_rows(X, nulls, models)
    _check_outputs(req, models.schema)
    return X


def _the_input(req: InferenceRequest) -> RequestInput:
    if len(req.inputs) != 1:
        raise ApiError(400, f"inputs: this model takes exactly 1 input tensor ('{INPUT_NAME}'), "
                            f"got {len(req.inputs)}")
    tensor = req.inputs[0]
    if tensor.name != INPUT_NAME:
        raise ApiError(400, f"inputs[0].name: unknown input {tensor.name!r}; this model's input "
                            f"is '{INPUT_NAME}'")
    if tensor.datatype != DATATYPE:
        raise ApiError(400, f"inputs[0].datatype: must be {DATATYPE} (the model's input type), "
                            f"got {tensor.datatype!r}")
    return tensor


def _check_shape(shape: list[int], models: RequestModels) -> int:
    """The number of rows the shape declares, once it is [N, F] with 1 <= N <= max batch."""
    width = len(models.names)
    if len(shape) != 2 or shape[1] != width:
        raise ApiError(400, f"inputs[0].shape: must be [N, {width}] (one row of {width} features "
                            f"per row: {', '.join(models.names)}), got {shape}")
    rows = shape[0]
    if rows < 1:
        raise ApiError(400, "inputs[0].shape: N must be at least 1, got 0")
    if rows > models.max_batch:
        raise ApiError(400, f"inputs[0].shape: at most {models.max_batch} rows per request, "
                            f"got {rows}; split the request")
    return rows


def _json_matrix(tensor: RequestInput, rows: int, width: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A JSON tensor's data as float64 [N, F] (null and NaN both NaN), and where it held null
    (None when it held no NaN at all)."""
    if tensor.data is None:
        raise ApiError(400, "inputs[0].data: required field is missing (or send the values as "
                            "binary data, with parameters.binary_data_size)")
    data, shape = tensor.data, tensor.shape
    nested = bool(data) and isinstance(data[0], list)
    if nested:
        bad = next((i for i, r in enumerate(data) if len(r) != width), None)
        if len(data) != rows or bad is not None:
            detail = (f"row {bad} has {len(data[bad])} values" if bad is not None
                      else f"{len(data)} rows")
            raise ApiError(400, f"inputs[0].data: nested data must match shape {shape}, got {detail}")
    elif len(data) != rows * width:
        raise ApiError(400, f"inputs[0].data: shape {shape} needs {rows * width} values, "
                            f"got {len(data)}")
    # Nested as sent or flat row-major: numpy reads either straight in (null -> NaN).
    X = np.array(data, dtype=np.float64).reshape(rows, width)
    if not np.isnan(X).any():
        return X, None
    cells = (v for row in data for v in row) if nested else iter(data)
    return X, np.fromiter((v is None for v in cells), bool, rows * width).reshape(rows, width)


def _check_rows(X: np.ndarray, nulls: np.ndarray | None, models: RequestModels) -> np.ndarray:
    """The core's row rules, with the first problem pointing at its tensor row. NaN is how an
    FP32 tensor writes "missing" (what tritonclient sends for a missing value): missing where
    the feature may be missing, else refused as not finite; null is missing everywhere."""
    missing = np.isnan(X) & models.schema.nullable
    if nulls is not None:
        missing |= nulls
    check = check_rows(models.schema, X, missing, missing_as="null or NaN")
    if check.problems:
        first = min(check.problems)
        more = check.count - 1
        raise ApiError(400, f"inputs[0].data row {first}: {check.problems[first][0].message}"
                            + (f" (and {more} more)" if more else ""))
    return X.astype(np.float32)


def _check_outputs(req: InferenceRequest, schema: Schema) -> None:
    for i, out in enumerate(req.outputs or []):
        if out.name != schema.output_name:
            raise ApiError(400, f"outputs[{i}].name: unknown output {out.name!r}; this model's "
                                f"output is '{schema.output_name}'")


def model_metadata(name: str, version: str, schema: Schema) -> dict:
    return {"name": name, "versions": [version], "platform": "onnxruntime_onnx",
            "inputs": [{"name": schema.input_name, "datatype": DATATYPE,
                        "shape": [-1, len(schema)]}],
            "outputs": [{"name": schema.output_name, "datatype": DATATYPE,
                         "shape": [-1, schema.n_outputs]}],
            "parameters": {"feature_order": ",".join(schema.names),
                           **({"classes": ",".join(schema.classes)}
                              if schema.is_classifier else {})}}


def infer_response(name: str, version: str, request_id: str, output: np.ndarray,
                   flagged_rows: int, schema: Schema) -> dict:
    """`output`: the model's whole output, float32 [N, K] (a [N] vector is a regressor's)."""
    return {"model_name": name, "model_version": version, "id": request_id,
            "parameters": {"rows_outside_training_range": flagged_rows},
            "outputs": [{"name": schema.output_name, "datatype": DATATYPE,
                         "shape": [len(output), schema.n_outputs], "data": output.reshape(-1)}]}


def example_request(models: RequestModels) -> dict:
    """The docs' example: two rows of the served model (models.example, typical values)."""
    row = [models.example[n] for n in models.names]
    return {"id": "42", "inputs": [{"name": models.schema.input_name, "shape": [2, len(row)],
                                    "datatype": DATATYPE, "data": row + row}]}
