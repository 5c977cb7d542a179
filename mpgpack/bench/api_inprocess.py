"""CPU per POST /predict request inside the app, without HTTP: the ASGI app called directly
with a prepared body (the middleware, hot lane, handler, validation, ONNX Runtime, metrics,
response rendering; not the server's parsing and socket writes).

    python -m mpgpack.bench.api_inprocess --bundle dist [--requests 4000] [--sizes 1 100]

Two apps from the same bundle, `fast_rows` on and off (ApiSettings.fast_rows: named rows
validated column-wise, or every body through pydantic), timed in alternating blocks so that
machine noise hits both alike. Per request: thread CPU time (and wall time), median and p99.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time

import numpy as np

from mpgpack.core.bundle import open_bundle, resolve_bundle_path
from mpgpack.core.schema import Schema


def body_of(bundle_path, n: int) -> bytes:
    """n rows of the bundle's golden inputs as named JSON rows (null where missing), compact;
    one row as the plain object, more as {"instances": [...]}."""
    bundle = open_bundle(bundle_path)
    schema = Schema.from_manifest(bundle.manifest)
    X = bundle.golden().X
    rows = []
    for i in range(n):
        row = {}
        for f, v in zip(schema, X[i % len(X)].tolist()):
            row[f.name] = None if math.isnan(v) else (int(v) if f.integer else round(v, 4))
        rows.append(row)
    return json.dumps(rows[0] if n == 1 else {"instances": rows},   # one row: the object form
                      separators=(",", ":")).encode()


def make_app(bundle: str, fast_rows: bool):
    from mpgpack.targets.api.app import create_app
    from mpgpack.targets.api.settings import ApiSettings
    return create_app(ApiSettings(bundle=bundle, source=bundle, reload_signal=False,
                                  access_log=False, fast_rows=fast_rows,
                                  web_dir=tempfile.mkdtemp(prefix="no-web-")))


async def call(app, body: bytes) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/predict", "raw_path": b"/predict",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8000), "state": {},
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent = False
    out: dict = {"status": 0, "body": b""}

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


async def _block(app, body: bytes, n: int, cpu: list, wall: list) -> None:
    for _ in range(n):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        status, _ = await call(app, body)
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        if status != 200:
            raise RuntimeError(f"status {status}")
        cpu.append(c1 - c0)
        wall.append(w1 - w0)


def measure(bundle: str, sizes=(1, 100), requests: int = 4000, block: int = 200) -> dict:
    apps = {"pydantic": make_app(bundle, False), "fast_rows": make_app(bundle, True)}
    out: dict = {}

    async def run():
        for n in sizes:
            body = body_of(bundle, n)
            answers = {k: (await call(app, body)) for k, app in apps.items()}
            if len({(s, b.split(b'"predictions"')[1]) for s, b in answers.values()}) != 1:
                raise RuntimeError(f"the two paths answer {n} rows differently")
            samples = {k: ([], []) for k in apps}
            for k, app in apps.items():                       # warm-up
                await _block(app, body, 200, [], [])
            done = 0
            while done < requests:
                for k, app in apps.items():
                    await _block(app, body, block, *samples[k])
                done += block
            for k, (cpu, wall) in samples.items():
                c, w = np.asarray(cpu) / 1e3, np.asarray(wall) / 1e3
                out.setdefault(str(n), {})[k] = {
                    "requests": len(c), "cpu_median_us": round(float(np.median(c)), 1),
                    "cpu_p99_us": round(float(np.percentile(c, 99)), 1),
                    "wall_median_us": round(float(np.median(w)), 1), "body_bytes": len(body)}
    asyncio.run(run())
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="dist")
    p.add_argument("--requests", type=int, default=4000, help="per path and size")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 100])
    a = p.parse_args(argv)
    bundle = str(resolve_bundle_path(a.bundle))
    result = measure(bundle, tuple(a.sizes), a.requests)
    print(json.dumps(result, indent=1))
    for n, paths in result.items():
        p0, p1 = paths["pydantic"]["cpu_median_us"], paths["fast_rows"]["cpu_median_us"]
        print(f"{n:>5} rows: CPU per request {p0:.1f} µs (pydantic) -> {p1:.1f} µs (fast_rows), "
              f"{p0 / p1:.2f}x")


if __name__ == "__main__":
    main()
