"""V2 over HTTP as unmodified clients send it: the request in, the response out.

tritonclient (and other V2 clients) send the body without a Content-Type, and by default in
the binary tensor data extension; both are read here into the V2 request and its tensor
values, and the response is encoded as JSON or binary as the request asked (v2_binary).
The endpoints of the protocol's optional extensions a client may call, and which this server
does not implement, answer a 404 saying so instead of a bare "no such route".
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from mpgpack.targets.api import v2
from mpgpack.targets.api.body import read_json_body
from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.schema import RequestModels
from mpgpack.targets.api.v2_binary import (HEADER_LENGTH, binary_outputs, decode_inputs,
                                           encode_response, split_body)

OCTET_STREAM = b"application/octet-stream"
_HEADER_LENGTH = HEADER_LENGTH.encode()


def _headers(scope: dict) -> tuple[Optional[bytes], Optional[bytes]]:
    length = encoding = None
    for key, value in scope["headers"]:
        if key == _HEADER_LENGTH:
            length = value
        elif key == b"content-encoding":
            encoding = value
    return length, encoding


async def read_request(request: Request, max_body_bytes: int, models: RequestModels
                       ) -> tuple[v2.InferenceRequest, list[Optional[np.ndarray]]]:
    """The V2 request and the values of its binary inputs (None for JSON `data`).
    Same body limit as every request; no Content-Type means JSON."""
    length, encoding = _headers(request.scope)
    if encoding is not None and encoding.strip().lower() != b"identity":
        raise ApiError(415, f"header Content-Encoding: {encoding.decode('latin-1')[:40]!r} is not "
                            "supported; send the body uncompressed")
    body = await read_json_body(request, max_body_bytes, untyped_is_json=True,
                                also_accept=(OCTET_STREAM,))
    parts = split_body(body, length)
    req = v2.parse_request(parts.header, models)
    return req, decode_inputs(req.inputs, parts.blob)


def infer_response(req: v2.InferenceRequest, response: dict) -> Response:
    """JSON, or the binary extension's layout when the request asked for binary outputs."""
    binary = {out["name"] for out in response["outputs"]
              if binary_outputs(req.parameters, req.outputs, out["name"])}
    body, header_length = encode_response(response, binary)
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(body, media_type=OCTET_STREAM.decode(),
                    headers={"Inference-Header-Content-Length": str(header_length)})


# (method, path, what it is): the calls of the protocol's optional extensions that KServe and
# Triton clients offer; the route table (routes.py) routes each to `not_implemented`.
UNSUPPORTED = [
    ("GET", "/v2/models/{model_name}/config", "model configuration"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/config", "model configuration"),
    ("GET", "/v2/models/{model_name}/stats", "model statistics"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/stats", "model statistics"),
    ("POST", "/v2/repository/index", "the model repository"),
    ("POST", "/v2/repository/models/{model_name}/load", "the model repository"),
    ("POST", "/v2/repository/models/{model_name}/unload", "the model repository"),
    ("GET", "/v2/systemsharedmemory/status", "system shared memory"),
    ("GET", "/v2/cudasharedmemory/status", "CUDA shared memory"),
    ("GET", "/v2/trace/setting", "trace settings"),
    ("GET", "/v2/logging", "log settings"),
]
_WHAT = {(method, path): what for method, path, what in UNSUPPORTED}


def not_implemented(request: Request, model_name: str) -> ApiError:
    """The 404 for a call in UNSUPPORTED: what it is, and where to look instead."""
    what = _WHAT[(request.method, request.scope["route"].path)]
    return ApiError(404, f"{request.method} {request.url.path}: {what} is an optional V2 extension "
                         "this server does not implement (GET /v2 lists the ones it does); model "
                         f"metadata is at GET /v2/models/{model_name}, metrics at GET /metrics")
