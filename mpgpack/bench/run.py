"""`mpgpack bench`: every runtime measured in one run on the same golden inputs.

Each section is a function of (bundle, quick) returning a dict; a section that fails is
recorded under "errors" and makes the command exit non-zero, so no number is silently missing.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from mpgpack.core.bundle import Bundle

# (result key, "module:function"), run in this order. Functions take (bundle, quick, results).
SECTIONS = [
    ("parity", "mpgpack.bench.sections:parity_artifacts"),
    ("latency", "mpgpack.bench.sections:latency"),
    ("cold_start", "mpgpack.bench.sections:cold_start_sklearn"),
    ("api", "mpgpack.bench.targets_bench:api"),
    ("edge", "mpgpack.bench.targets_bench:edge"),
    ("browser", "mpgpack.bench.targets_bench:browser"),
    ("service", "mpgpack.bench.targets_bench:service"),
    ("v2_protocols", "mpgpack.bench.targets_bench:v2_protocols"),
]


def _call(spec: str):
    module, func = spec.split(":")
    return getattr(__import__(module, fromlist=[func]), func)


def run_benchmarks(bundle: Bundle, out: Path, quick: bool, peers: bool = False,
                   log=sys.stderr) -> dict:
    from mpgpack.bench.answers import describe
    from mpgpack.bench.machine import machine_info
    from mpgpack.bench.ratios import ratios
    from mpgpack.bench.report import write_report

    started = time.perf_counter()
    results: dict = {"machine": machine_info(), "quick": quick, "peers": peers,
                     "bundle": {"version": bundle.version, "path": str(bundle.path)},
                     "model": describe(bundle), "errors": {}}
    for key, spec in SECTIONS:
        t0 = time.perf_counter()
        print(f"bench: {key} …", end="", file=log, flush=True)
        try:
            part = _call(spec)(bundle, quick=quick, peers=peers)
            for k, v in part.items():  # sections may add to a shared key (parity, cold_start)
                if isinstance(v, dict) and isinstance(results.get(k), dict):
                    results[k].update(v)
                else:
                    results[k] = v
            print(f" {time.perf_counter() - t0:.1f} s", file=log, flush=True)
        except Exception as exc:  # recorded, reported, and the exit code says so
            results["errors"][key] = f"{type(exc).__name__}: {exc}"
            print(f" FAILED: {exc}", file=log, flush=True)
            traceback.print_exc(file=log)
    results["ratios"] = ratios(results)
    results["seconds"] = time.perf_counter() - started
    write_report(results, out)
    return results
