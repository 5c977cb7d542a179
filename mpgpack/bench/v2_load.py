"""The V2 protocol's three ways in, under the same load: HTTP JSON, HTTP binary, gRPC.

One `mpgpack serve --workers 2 --grpc-port P` on 127.0.0.1 answers all three, so the figures
differ only by the wire format. HTTP is loaded by wrk (as the service section); gRPC by a small
load generator here: client processes (two at most, like wrk's threads), each with one thread
and one channel per simulated client, sending the serialized ModelInferRequest as raw bytes
(no protobuf work in the client) and timing each call. Every response is checked for an OK
status; before loading, the three paths must give the same outputs within the bundle's tolerance. Any bundle:
the model name, the input's [N, F] and the output's name come from its manifest.

    python -m mpgpack.bench.v2_load [--bundle DIR] [--duration 5]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mpgpack.bench.api_load import BIN, REPO, wrk
from mpgpack.bench.servers import free_port, start, stop
from mpgpack.core.cli_args import add_bundle_argument

METHOD = "/inference.GRPCInferenceService/ModelInfer"
PATHS = ("HTTP JSON", "HTTP binary", "gRPC")


def requests_for(X: np.ndarray, model: str = "mpg", input_name: str = "features"
                 ) -> dict[str, tuple[bytes, dict]]:
    """(body, extra HTTP headers) per path for the rows X [n, F] of model `model`; gRPC's body
    is the serialized ModelInferRequest with raw_input_contents (what tritonclient sends)."""
    from mpgpack.targets.api.grpc_service import protocol
    n, f = X.shape
    flat = [None if v != v else v for v in X.reshape(-1).tolist()]
    tensor = {"name": input_name, "shape": [n, f], "datatype": "FP32"}
    as_json = json.dumps({"inputs": [{**tensor, "data": flat}]}).encode()
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": n * f * 4}}],
                         "parameters": {"binary_data_output": True}}).encode()
    raw = X.astype("<f4").tobytes()
    pb, _ = protocol()
    grpc_req = pb.ModelInferRequest(model_name=model, inputs=[
        pb.ModelInferRequest.InferInputTensor(**tensor)], raw_input_contents=[raw])
    return {"HTTP JSON": (as_json, {"Content-Type": "application/json"}),
            "HTTP binary": (header + raw, {"Inference-Header-Content-Length": str(len(header))}),
            "gRPC": (grpc_req.SerializeToString(), {})}


def _grpc_worker(target: str, body: bytes, clients: int, seconds: float, queue) -> None:
    import grpc
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(METHOD)           # bytes in, bytes out
            mine = []
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    call(body, timeout=5)
                    mine.append(time.perf_counter() - t0)
                except grpc.RpcError:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, errors[0]))


def grpc_load(target: str, body: bytes, seconds: float, clients: int) -> dict:
    """`clients` concurrent callers for `seconds`, split over at most two processes."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    split = [clients // 2, clients - clients // 2] if clients > 1 else [1]
    procs = [ctx.Process(target=_grpc_worker, args=(target, body, c, seconds, queue)) for c in split]
    for p in procs:
        p.start()
    latencies, errors = [], 0
    for _ in procs:
        lat, err = queue.get(timeout=seconds + 120)
        latencies += lat
        errors += err
    for p in procs:
        p.join(30)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {"requests": len(latencies), "seconds": seconds,
            "requests_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "max_ms": round(float(ms.max()), 3),
            "errors": errors}


def _agree(url: str, grpc_target: str, reqs: dict, output: str, n_outputs: int) -> float:
    """The three paths' outputs for the same rows (each read as the tensor the schema names,
    [n, K]); their largest disagreement."""
    import grpc
    import httpx
    from mpgpack.targets.api.grpc_service import protocol
    from mpgpack.targets.api.v2_binary import split_body
    out = {}
    body, headers = reqs["HTTP JSON"]
    answer = httpx.post(url, content=body, headers=headers, timeout=30).json()
    if "outputs" not in answer:
        raise RuntimeError(f"V2 JSON answered {str(answer)[:300]}")
    tensor = next(o for o in answer["outputs"] if o["name"] == output)
    if tensor["shape"][-1] != n_outputs:
        raise RuntimeError(f"V2 output {output} has shape {tensor['shape']}, expected [n, {n_outputs}]")
    out["json"] = np.array(tensor["data"])
    body, headers = reqs["HTTP binary"]
    r = httpx.post(url, content=body, headers=headers, timeout=30)
    parts = split_body(r.content, r.headers["inference-header-content-length"])
    out["binary"] = np.frombuffer(parts.blob, "<f4")
    pb, _ = protocol()
    with grpc.insecure_channel(grpc_target) as channel:
        raw = channel.unary_unary(METHOD)(reqs["gRPC"][0], timeout=30)
    out["grpc"] = np.frombuffer(pb.ModelInferResponse.FromString(raw).raw_output_contents[0], "<f4")
    return float(max(np.max(np.abs(v - out["json"])) for v in out.values()))


def run(bundle_dir: Path, duration: float, sizes=(1, 100), clients=(1, 8, 32),
        workers: int = 2) -> dict:
    from mpgpack.core.bundle import open_bundle
    from mpgpack.bench.answers import model_name
    from mpgpack.core.schema import Schema
    bundle = open_bundle(bundle_dir)
    X, schema, model = bundle.golden().X, Schema.from_manifest(bundle.manifest), model_name(bundle)
    port, grpc_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="mpgpack-v2load-"))
    proc = start([str(BIN / "mpgpack"), "serve", "--bundle", str(bundle_dir), "--port", str(port),
                  "--grpc-port", str(grpc_port), "--workers", str(workers), "--no-access-log"],
                 workdir / "serve.log", f"http://127.0.0.1:{port}/v2/health/ready", cwd=REPO)
    url, target = f"http://127.0.0.1:{port}/v2/models/{model}/infer", f"127.0.0.1:{grpc_port}"
    runs, request_bytes, agreement = [], {}, 0.0
    try:
        for n in sizes:
            reqs = requests_for(X[:n], model, schema.input_name)
            agreement = max(agreement, _agree(url, target, reqs, schema.output_name, schema.n_outputs))
            request_bytes[str(n)] = {path: len(body) for path, (body, _) in reqs.items()}
            for c in clients:
                for path in PATHS:
                    body, headers = reqs[path]
                    r = (grpc_load(target, body, duration, c) if path == "gRPC" else
                         wrk(url, body, duration, c, min(c, 2), workdir, headers=headers))
                    runs.append({"path": path, "cars_per_request": n, "clients": c,
                                 "request_bytes": len(body), **r})
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    if agreement > bundle.golden().tolerance:     # the bundle's parity tolerance (1e-4 for MPG)
        raise RuntimeError(f"the V2 paths disagree by {agreement:.2e}")
    return {"runs": runs, "request_bytes": request_bytes, "max_abs_diff_between_paths": agreement,
            "duration_s": duration, "server_workers": workers,
            "notes": "HTTP by wrk, gRPC by mpgpack.bench.v2_load (Python, grpcio; bytes in, "
                     "bytes out); one server answering all three; all on the same 2 cores."}


def format_table(result: dict) -> str:
    lines = [f"{'path':<12} {'cars/req':>8} {'clients':>7} {'req/s':>9} {'p50 ms':>7} "
             f"{'p99 ms':>7} {'bytes/req':>9} {'errors':>6}"]
    for r in result["runs"]:
        lines.append(f"{r['path']:<12} {r['cars_per_request']:>8} {r['clients']:>7} "
                     f"{r['requests_per_s']:>9.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
                     f"{r['request_bytes']:>9} {r['errors']:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from mpgpack.core.bundle import resolve_bundle_path
    p = argparse.ArgumentParser(prog="python -m mpgpack.bench.v2_load", description=__doc__.splitlines()[0])
    add_bundle_argument(p)
    p.add_argument("--duration", type=float, default=5, help="seconds per point (default 5)")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients (default 1,8,32)")
    p.add_argument("--sizes", default="1,100", help="cars per request (default 1,100)")
    args = p.parse_args(argv)
    result = run(resolve_bundle_path(args.bundle), args.duration,
                 tuple(int(s) for s in args.sizes.split(",")),
                 tuple(int(c) for c in args.clients.split(",")))
    print(format_table(result))
    print(f"max difference between the paths' predictions: {result['max_abs_diff_between_paths']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
