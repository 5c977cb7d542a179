"""Benchmark sections that drive the real targets: the HTTP API, the edge runner, the page in Chromium."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mpgpack.core.bundle import Bundle
from mpgpack.bench.answers import is_showcase, output_of_answers, parity, refuse_peers, schema_of

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]   # holds mpgpack/


def _golden_cars(bundle: Bundle) -> list[dict]:
    """The golden inputs as named rows, as a client sends them."""
    return bundle.golden_cars()


def _peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def api(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """Cold start + memory of `mpgpack serve` (1 worker, one core) and its parity over HTTP."""
    from mpgpack.bench.api_load import _post
    from mpgpack.bench.servers import free_port, stop
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cars = _golden_cars(bundle)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "mpgpack"), "serve", "--bundle", str(bundle.path), "--port",
                             str(port), "--workers", "1", "--no-access-log"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    try:
        while True:
            try:
                _post(f"{url}/predict", json.dumps(cars[0]).encode())
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("mpgpack serve did not answer")
                time.sleep(0.02)
        first = time.perf_counter() - t0
        preds = _post(f"{url}/predict", json.dumps({"instances": cars}).encode(), timeout=60)["predictions"]
        rss = _peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    out = output_of_answers(schema_of(bundle), preds)
    return {"cold_start": {"API (mpgpack serve, 1 worker)": {
                "first_output_s": first, "peak_rss_mb": rss,
                "what": "process start, sha256 + golden self-check, first POST /predict answered"}},
            "parity": {"HTTP API (onnxruntime)": parity(bundle, out, "mpgpack serve")}}


def edge(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """Cold start/RSS (LiteRT vs full TF) and 100k-row CSV throughput, plus parity of the runner."""
    from mpgpack.bench.edge_coldstart import RUNNER, section
    cars = _golden_cars(bundle)
    lines = "".join(json.dumps(c) + "\n" for c in cars).encode()
    out = subprocess.run([*RUNNER, "predict", "--bundle", str(bundle.path)], input=lines,
                         capture_output=True, cwd=REPO, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"edge runner failed: {out.stderr.decode()[-500:]}")
    pred = output_of_answers(schema_of(bundle), [json.loads(l) for l in out.stdout.decode().splitlines()])
    result = section(bundle, quick, peers)
    for name, r in result["cold_start"].items():
        r.setdefault("what", "mpg-edge predict, one JSON line on stdin, pinned to one core")
    result["parity"] = {"edge runner (LiteRT)": parity(bundle, pred, "mpg-edge")}
    return result


def browser(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """The page's timings per backend, and window.mpg.predict over the golden set per backend."""
    from playwright.sync_api import sync_playwright

    from mpgpack.bench.web_browser import measure_web_browser
    from mpgpack.targets.web.chromium import launch, serve_bundle
    timings = measure_web_browser(bundle.path, quick=quick)
    rows = [list(c.values()) for c in _golden_cars(bundle)]
    rows_parity = {}
    with serve_bundle(bundle.path) as base, sync_playwright() as p:
        chromium = launch(p)
        try:
            for backend in timings["backends"]:
                page = chromium.new_page()
                page.goto(f"{base}?backend={backend}&nosw")
                pred = page.evaluate("rows => window.mpg.ready.then(() => window.mpg.predict(rows))", rows)
                # a regressor's numbers, a classifier's probability rows: the whole output
                rows_parity[f"tfjs in Chromium ({backend})"] = parity(bundle, np.asarray(pred),
                                                                      f"tfjs {backend}")
                page.close()
        finally:
            chromium.close()
    return {"browser": timings, "parity": rows_parity}


def service(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """wrk on loopback: the API vs the Flask + sklearn baseline at 1, 8 and 32 clients."""
    from mpgpack.bench.api_load import run_load
    duration = 3 if quick else 15
    servers: dict = {"mpgpack API": {}, "Flask + sklearn baseline": {}}
    batch: dict = {}
    names = {"mpgpack serve": "mpgpack API", "flask baseline": "Flask + sklearn baseline"}
    for conc in (1, 8, 32):
        sizes = (1, 100) if conc == 32 else (1,)
        r = run_load(bundle.path, duration=duration, connections=conc, threads=min(conc, 2), sizes=sizes)
        for run in r["runs"]:
            target = servers if run["cars_per_request"] == 1 else batch.setdefault(names[run["server"]], {})
            (target[names[run["server"]]] if target is servers else target)[str(conc)] = run
    result = {"servers": servers, "hundred_cars_per_request": batch, "duration_s": duration,
              "notes": f"single {'car' if is_showcase(bundle) else 'row'} per request unless stated; wrk {duration} s per point; the API "
                       "and baseline each run 2 workers on the same 2 cores as wrk."}
    if peers:
        from mpgpack.bench.peer_load import run_peers
        refuse_peers(bundle)
        result["servers"]["mlflow models serve"] = _mlflow(bundle, duration)
        # The servers users would really pick, interleaved with mpgpack: shorter runs, repeated.
        result["peers"] = run_peers(bundle, duration=2 if quick else 5, reps=2)
    return {"service": result}


def v2_protocols(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """HTTP JSON vs HTTP binary vs gRPC, 1 and 100 cars, 1/8/32 clients, one server."""
    from mpgpack.bench.v2_load import run
    return {"v2_protocols": run(bundle.path, duration=2 if quick else 8)}


def _mlflow(bundle: Bundle, duration: float) -> dict:
    from mpgpack.bench.api_load import wrk
    from mpgpack.bench.servers import free_port
    from mpgpack.bench.peers import mlflow_body, mlflow_server
    cars = _golden_cars(bundle)
    body = mlflow_body([list(cars[0].values())])
    out = {}
    with tempfile.TemporaryDirectory() as tmp, mlflow_server(bundle, Path(tmp), free_port()) as url:
        for conc in (1, 8, 32):
            out[str(conc)] = wrk(f"{url}/invocations", body, duration, conc, min(conc, 2), Path(tmp))
    return out
