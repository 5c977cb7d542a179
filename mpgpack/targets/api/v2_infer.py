"""One V2 inference, whatever carried it: HTTP JSON, HTTP binary or gRPC.

The transports only unwrap their request into a V2 request (checked by v2.parse_request) and
the tensor values that came outside its JSON (binary data, gRPC contents); from there every
path runs this same code, so they share the model slot, the validation and its messages, the
limits, the drift window, the prediction log and the out-of-range metric.

`service` is the API's data plane: anything with `slot` (the ModelSlot of Served), `metrics`
(observability.Metrics) and `record(served, X, pred, request_id, t0)` (drift window,
prediction log, out-of-range counts; returns the worded warnings and a summary).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from mpgpack import __version__
from mpgpack.targets.api import v2
from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.v2_binary import EXTENSION as BINARY_EXTENSION

# What GET /v2 and gRPC ServerMetadata list: only what this server really implements.
EXTENSIONS = [BINARY_EXTENSION]


def server_metadata() -> dict:
    return {"name": "mpgpack", "version": __version__, "extensions": EXTENSIONS}


def check_model(served: Any, model_name: str, model_version: Optional[str] = None) -> None:
    """404 unless the request names the served model (and, if given, its served version)."""
    name, version = served.name, served.version
    if model_name != name:
        raise ApiError(404, f"model {model_name!r} not found; this server serves {name!r}")
    if model_version and model_version != version:
        raise ApiError(404, f"model {name!r} has no version {model_version!r}; "
                            f"it serves version {version!r}")


@dataclass(frozen=True)
class Answer:
    response: dict            # the V2 response; the output's data is a float32 numpy array
    rows: int


def infer(service: Any, served: Any, req: v2.InferenceRequest,
          values: Optional[list[Optional[np.ndarray]]], request_id: str, t0: float) -> Answer:
    """Checks the tensor, predicts with `served` (read once by the caller, so one request is
    answered by one version even across a reload), records it, and builds the response."""
    X = v2.tensor_matrix(req, served.models, values)
    output = served.predictor.run(X)        # [N, K]: the model's one output tensor, whole
    # V2 answers a count of flagged rows, no sentences: none are worded (detail_limit=0).
    _, summary = service.record(served, X, served.answers.logged(output), request_id, t0,
                                detail_limit=0)
    flagged = summary["rows_flagged"] if summary else 0
    response = v2.infer_response(served.name, served.version, req.id or request_id, output,
                                 flagged, served.models.schema)
    return Answer(response, len(output))
