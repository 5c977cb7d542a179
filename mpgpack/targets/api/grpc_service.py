"""The Open Inference Protocol V2 over gRPC (KServe's `inference.GRPCInferenceService`).

Served by `mpgpack serve --grpc-port N` in the same process as HTTP, from the same data plane
(`service`: the model slot, metrics, drift window and prediction log; see v2_infer), so a
reload switches both and both answer with the same validation and messages. Each call reads
`slot.current` once: a call is answered by one version even while a reload swaps the slot.

The message classes come from proto/grpc_predict_v2.proto, compiled when this module is first
used (grpc.protos_and_services, i.e. grpcio-tools, in memory: no generated code is kept).
Its package is `inference`, as the protocol requires, so this module cannot be imported in one
process with another copy of the protocol (tritonclient.grpc): protobuf refuses a second
definition of the same message names. Clients run in their own process.

Errors are status codes with the HTTP message: a bad request is INVALID_ARGUMENT with the same
text as the HTTP 400, an unknown model NOT_FOUND; INTERNAL only for a server bug.
"""
from __future__ import annotations

import functools
import itertools
import logging
import os
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Optional

import grpc
import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.targets.api import v2
from mpgpack.targets.api.errors import ApiError
from mpgpack.targets.api.v2_binary import decode_tensor
from mpgpack.targets.api.v2_infer import check_model, infer, server_metadata

log = logging.getLogger("mpgpack.grpc")

PROTO = "mpgpack/targets/api/proto/grpc_predict_v2.proto"
SERVICE = "inference.GRPCInferenceService"
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
          413: grpc.StatusCode.RESOURCE_EXHAUSTED, 415: grpc.StatusCode.INVALID_ARGUMENT,
          422: grpc.StatusCode.INVALID_ARGUMENT}
DEFAULT_THREADS = 8


@functools.cache
def protocol():
    """(messages, services) modules compiled from the .proto, once per process."""
    # grpcio-tools looks the .proto up on sys.path; an editable install reaches mpgpack through
    # an import hook instead, so the folder holding mpgpack/ is put on the path meanwhile.
    root = str(Path(__file__).resolve().parents[3])
    added = root not in sys.path
    if added:
        sys.path.append(root)
    try:
        return grpc.protos_and_services(PROTO)
    finally:
        if added:
            sys.path.remove(root)


# ---- protobuf <-> the V2 request as the HTTP path sees it --------------------------------
def _parameter(p) -> Any:
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


def _parameters(pmap) -> Optional[dict]:
    return {k: _parameter(v) for k, v in pmap.items()} or None


def request_header(request) -> dict:
    """A ModelInferRequest as the JSON a V2 HTTP client would send, without tensor values."""
    header: dict[str, Any] = {"inputs": [
        {"name": t.name, "shape": list(t.shape), "datatype": t.datatype,
         "parameters": _parameters(t.parameters)} for t in request.inputs]}
    if request.id:
        header["id"] = request.id
    if request.parameters:
        header["parameters"] = _parameters(request.parameters)
    if request.outputs:
        header["outputs"] = [{"name": o.name, "parameters": _parameters(o.parameters)}
                             for o in request.outputs]
    return header


# InferTensorContents field per datatype (the protocol's table).
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def input_values(request) -> list[Optional[np.ndarray]]:
    """Each input's flat values, from raw_input_contents or from its typed contents."""
    raw = request.raw_input_contents
    if raw:
        if len(raw) != len(request.inputs):
            raise ApiError(400, f"raw_input_contents: must hold one entry per input "
                                f"({len(request.inputs)}), got {len(raw)}")
        if any(t.HasField("contents") for t in request.inputs):
            raise ApiError(400, "inputs: contents and raw_input_contents are both set; send "
                                "the values one way")
        return [decode_tensor(f"raw_input_contents[{i}]", t.datatype, list(t.shape), raw[i])
                for i, t in enumerate(request.inputs)]
    out: list[Optional[np.ndarray]] = []
    for t in request.inputs:
        field = CONTENTS.get(t.datatype)
        # Another datatype is refused by name in v2.tensor_matrix; nothing to read here.
        out.append(np.asarray(getattr(t.contents, field), dtype=np.float32)
                   if field == "fp32_contents" else None)
    return out


def _tensor_metadata(pb, tensors: list[dict]) -> list:
    meta = pb.ModelMetadataResponse.TensorMetadata
    return [meta(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in tensors]


def infer_response(pb, response: dict, raw: bool):
    """The V2 response dict as a ModelInferResponse; raw bytes when the request sent raw."""
    msg = pb.ModelInferResponse(model_name=response["model_name"],
                                model_version=response["model_version"], id=response["id"])
    for key, value in (response.get("parameters") or {}).items():
        msg.parameters[key].int64_param = int(value)
    for out in response["outputs"]:
        tensor = msg.outputs.add(name=out["name"], datatype=out["datatype"], shape=out["shape"])
        data = np.asarray(out["data"], dtype="<f4")
        if raw:
            msg.raw_output_contents.append(data.tobytes())
        else:
            tensor.contents.fp32_contents.extend(data.tolist())
    return msg


# ---- the service ----------------------------------------------------------------------
class InferenceServicer:
    """The six calls a V2 client makes. Others of the protocol's service answer UNIMPLEMENTED
    (grpcio's own answer for a method the server does not register)."""

    def __init__(self, service: Any):
        self.service = service
        self.pb, _ = protocol()
        self._id_prefix = "grpc-" + os.urandom(4).hex() + "-"
        self._ids = itertools.count(1)

    def _call(self, method: str, context, body: Callable[[Any], Any]):
        """Runs one call: metrics like an HTTP route, ApiError -> status code + message."""
        t0 = time.perf_counter()
        served = self.service.slot.current
        status, batch = 200, None
        try:
            result = body(served)
            if isinstance(result, tuple):
                result, batch = result
            return result
        except ApiError as exc:
            status = exc.status
            context.abort(STATUS.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT), exc.message)
        except Exception:
            status = 500
            log.exception("unhandled error in %s", method)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")
        finally:
            self.service.metrics.observe(f"/{SERVICE}/{method}", "GRPC", status,
                                         time.perf_counter() - t0, batch, served.version)

    def ServerLive(self, request, context):
        return self._call("ServerLive", context, lambda _: self.pb.ServerLiveResponse(live=True))

    def ServerReady(self, request, context):
        return self._call("ServerReady", context, lambda _: self.pb.ServerReadyResponse(ready=True))

    def ServerMetadata(self, request, context):
        return self._call("ServerMetadata", context,
                          lambda _: self.pb.ServerMetadataResponse(**server_metadata()))

    def ModelReady(self, request, context):
        def ready(served):
            check_model(served, request.name, request.version)
            return self.pb.ModelReadyResponse(ready=True)
        return self._call("ModelReady", context, ready)

    def ModelMetadata(self, request, context):
        def metadata(served):
            check_model(served, request.name, request.version)
            meta = served.model_meta
            return self.pb.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"],
                inputs=_tensor_metadata(self.pb, meta["inputs"]),
                outputs=_tensor_metadata(self.pb, meta["outputs"]))
        return self._call("ModelMetadata", context, metadata)

    def ModelInfer(self, request, context):
        t0 = time.perf_counter()

        def run(served):
            check_model(served, request.model_name, request.model_version)
            req = v2.parse_request(request_header(request), served.models)
            answer = infer(self.service, served, req, input_values(request),
                           self._request_id(context), t0)
            raw = bool(request.raw_input_contents)
            return infer_response(self.pb, answer.response, raw), answer.rows
        return self._call("ModelInfer", context, run)

    def _request_id(self, context) -> str:
        for key, value in context.invocation_metadata():
            if key == "x-request-id" and 0 < len(value) <= 128:
                return value
        return f"{self._id_prefix}{next(self._ids):08x}"


def start_server(service: Any, host: str, port: int, max_message_bytes: int,
                 threads: int = DEFAULT_THREADS) -> grpc.Server:
    """Starts the gRPC server on host:port in its own thread pool; returns it (call
    .stop(grace) to end it). Messages over max_message_bytes are refused by grpcio
    (RESOURCE_EXHAUSTED), the gRPC twin of the HTTP body limit."""
    _, services = protocol()
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max(max_message_bytes, 4 * 1024 * 1024))]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads,
                                                    thread_name_prefix="grpc"), options=options)
    services.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(service), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(f"cannot listen for gRPC on {address}; choose another --grpc-port or "
                        "stop what uses it")
    server.start()
    return server
