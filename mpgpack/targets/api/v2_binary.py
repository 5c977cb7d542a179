"""The V2 binary tensor data extension over HTTP, as a pure codec (no web framework here).

How clients use it (tritonclient's default): the body is a JSON header followed by raw tensor
bytes; the `Inference-Header-Content-Length` header says where the JSON ends. Each input sent
in binary has no `data` but `parameters.binary_data_size`, and the raw bytes of those inputs
follow the JSON in input order, each flattened row-major, little-endian, no padding. A client
asks for binary outputs per output (`"parameters": {"binary_data": true}`) or for every output
(request `"parameters": {"binary_data_output": true}`); the response is then built the same
way, its JSON length in the same response header.

Sizes are checked exactly (a size that does not add up is a 400 naming the input and both
numbers); the body size limit is the same as for JSON, enforced before this codec runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import orjson

from mpgpack.targets.api.errors import ApiError

HEADER_LENGTH = "inference-header-content-length"      # lower case: ASGI header names
EXTENSION = "binary_tensor_data"                        # as listed in GET /v2 "extensions"
SIZE_PARAMETER = "binary_data_size"
OUTPUT_PARAMETER = "binary_data"
ALL_OUTPUTS_PARAMETER = "binary_data_output"

# The protocol's fixed-size datatypes -> little-endian numpy dtype. BYTES (length-prefixed
# strings) has no fixed size and this model never takes it: such an input is refused by name.
DTYPES = {"BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
          "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
          "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


@dataclass(frozen=True)
class BinaryBody:
    header: bytes      # the JSON inference request
    blob: bytes        # the raw bytes of the binary inputs, back to back


def split_body(body: bytes, header_length: Optional[bytes | str]) -> BinaryBody:
    """Splits a request body at `Inference-Header-Content-Length` (None: all JSON)."""
    if header_length is None:
        return BinaryBody(body, b"")
    text = header_length.decode("latin-1") if isinstance(header_length, bytes) else header_length
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ApiError(400, f"header Inference-Header-Content-Length: must be a whole number of "
                            f"bytes, got {text[:40]!r}")
    length = int(text)
    if length < 1 or length > len(body):
        raise ApiError(400, f"header Inference-Header-Content-Length: {length} is not within the "
                            f"body of {len(body)} bytes (the JSON header must come first and "
                            "be at least 1 byte)")
    return BinaryBody(body[:length], body[length:])


def _size_parameter(index: int, parameters: Optional[Mapping[str, Any]]) -> Optional[int]:
    if not parameters or SIZE_PARAMETER not in parameters:
        return None
    size = parameters[SIZE_PARAMETER]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ApiError(400, f"inputs[{index}].parameters.{SIZE_PARAMETER}: must be a whole number "
                            f"of bytes (0 or more), got {size!r}")
    return size


def expected_bytes(where: str, datatype: str, shape: Sequence[int]) -> int:
    """The byte size of a tensor of this datatype and shape; `where` names it in errors."""
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise ApiError(400, f"{where}: datatype {datatype!r} cannot be sent as raw bytes here; "
                            f"use one of {', '.join(DTYPES)}")
    return math.prod(shape) * np.dtype(dtype).itemsize


def decode_tensor(where: str, datatype: str, shape: Sequence[int], raw: bytes,
                  offset: int = 0, size: Optional[int] = None) -> np.ndarray:
    """One tensor's flat values from its raw bytes (raw[offset:offset+size]), whose size must
    be exactly what the shape and datatype need."""
    size = len(raw) - offset if size is None else size
    expected = expected_bytes(where, datatype, shape)
    if size != expected:
        raise ApiError(400, f"{where}: shape {list(shape)} of {datatype} needs {expected} bytes, "
                            f"got {size}")
    dtype = np.dtype(DTYPES[datatype])
    return np.frombuffer(raw, dtype=dtype, count=size // dtype.itemsize, offset=offset)


def decode_inputs(inputs: Iterable[Any], blob: bytes) -> list[Optional[np.ndarray]]:
    """The binary inputs' values, one flat array per input (None for inputs sent as JSON
    `data`). `inputs` are the request's input tensors (anything with name, datatype, shape,
    parameters and data attributes), in request order."""
    out: list[Optional[np.ndarray]] = []
    offset = 0
    for i, tensor in enumerate(inputs):
        size = _size_parameter(i, tensor.parameters)
        if size is None:
            out.append(None)
            continue
        where = f"inputs[{i}].parameters.{SIZE_PARAMETER}"
        if tensor.data is not None:
            raise ApiError(400, f"inputs[{i}]: has both data and parameters.{SIZE_PARAMETER}; "
                                "send the values one way")
        if offset + size > len(blob):
            raise ApiError(400, f"{where}: {size} bytes declared but only {len(blob) - offset} "
                                "bytes of binary data are left in the body")
        out.append(decode_tensor(where, tensor.datatype, tensor.shape, blob, offset, size))
        offset += size
    if offset != len(blob):
        raise ApiError(400, f"body: {len(blob) - offset} bytes of binary data after the JSON header "
                            f"belong to no input (the inputs' {SIZE_PARAMETER} add up to {offset})")
    return out


def binary_outputs(request_parameters: Optional[Mapping[str, Any]],
                   outputs: Optional[Iterable[Any]], name: str) -> bool:
    """Whether the output `name` is to be sent as binary data: its own `binary_data`
    parameter wins; else the request's `binary_data_output`; else JSON."""
    for i, out in enumerate(outputs or ()):
        if out.name == name and out.parameters and OUTPUT_PARAMETER in out.parameters:
            return _flag(out.parameters[OUTPUT_PARAMETER], f"outputs[{i}].parameters.{OUTPUT_PARAMETER}")
    if request_parameters and ALL_OUTPUTS_PARAMETER in request_parameters:
        return _flag(request_parameters[ALL_OUTPUTS_PARAMETER], f"parameters.{ALL_OUTPUTS_PARAMETER}")
    return False


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ApiError(400, f"{where}: must be true or false, got {value!r}")
    return value


def encode_response(response: dict, binary: set[str]) -> tuple[bytes, Optional[int]]:
    """The response body and, when some output is binary, its JSON header length (for the
    `Inference-Header-Content-Length` response header). Outputs named in `binary` lose their
    `data` (a numpy array) and gain `parameters.binary_data_size`; their bytes follow the JSON."""
    if not binary:
        return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY), None
    blobs = []
    outputs = []
    for out in response["outputs"]:
        if out["name"] in binary:
            raw = np.ascontiguousarray(out["data"], dtype=DTYPES[out["datatype"]]).tobytes()
            blobs.append(raw)
            out = {k: v for k, v in out.items() if k != "data"}
            out["parameters"] = {**(out.get("parameters") or {}), SIZE_PARAMETER: len(raw)}
        outputs.append(out)
    header = orjson.dumps({**response, "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)
    return header + b"".join(blobs), len(header)
