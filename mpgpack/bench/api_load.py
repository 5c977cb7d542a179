"""HTTP load benchmark: `mpgpack serve` against the naive Flask baseline, same machine, same run.

Both servers run on 127.0.0.1 as real processes; `wrk` (a C load generator, so the client is not
the bottleneck) sends the same POST body over keep-alive connections for a fixed time. Measured
per (server, cars per request): requests/s, cars/s, latency p50/p90/p99/max, and every error wrk
saw (connect/read/write/timeout and non-2xx statuses). Before loading, one request goes to each
server and their outputs (a regressor's values, a classifier's probabilities) must agree within
the bundle's parity tolerance (1e-4 for MPG), so both are measured doing the same work. Bodies
are the bundle's golden rows: any model.

    python -m mpgpack.bench.api_load [--bundle DIR] [--duration 30] [--connections 32] [--out FILE]

`run_load(...)` returns the same figures as a dict for the benchmark report.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from mpgpack.bench.servers import free_port, start, stop
from mpgpack.core.cli_args import add_bundle_argument

REPO = Path(__file__).resolve().parents[2]   # holds mpgpack/
BIN = Path(sys.executable).parent

# The Lua hook prints wrk's own counters as one JSON line we can parse without scraping text.
WRK_SCRIPT = r"""
wrk.method = "POST"
%(headers)slocal f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

def request_bodies(bundle_dir: Path, sizes: tuple[int, ...]) -> dict[int, bytes]:
    """Bodies of 1 row (a plain object) and of N rows ({"instances": [...]}) from golden rows."""
    from mpgpack.core.bundle import open_bundle
    cars = open_bundle(bundle_dir).golden_cars()[:max(sizes)]
    return {n: json.dumps(cars[0] if n == 1 else {"instances": cars[:n]}).encode() for n in sizes}


def _post(url: str, body: bytes, timeout: float = 10) -> dict:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def start_api(bundle_dir: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    return start([str(BIN / "mpgpack"), "serve", "--bundle", str(bundle_dir), "--port", str(port),
                  "--workers", str(workers)], log_path,
                 f"http://127.0.0.1:{port}/v2/health/ready", cwd=REPO)


def start_baseline(bundle_dir: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "MPGPACK_BASELINE_BUNDLE": str(bundle_dir)}
    return start([str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
                  "--log-level", "warning", "mpgpack.bench.baseline_flask:create_app()"],
                 log_path, f"http://127.0.0.1:{port}/health", cwd=REPO, env=env)


def wrk(url: str, body: bytes, duration: float, connections: int, threads: int,
        workdir: Path, headers: dict[str, str] | None = None) -> dict:
    """One wrk run; returns its counters and latencies (ms). `headers` replace the JSON
    Content-Type (e.g. for the V2 binary extension, bench/v2_load.py)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (scripts/setup.sh installs the Debian package)")
    body_file = workdir / f"body-{len(body)}.json"
    body_file.write_bytes(body)
    script = workdir / "post.lua"
    lua_headers = "".join(f'wrk.headers["{k}"] = "{v}"\n'
                          for k, v in (headers or {"Content-Type": "application/json"}).items())
    script.write_text(WRK_SCRIPT % {"body": str(body_file), "headers": lua_headers})
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "5s",
           "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout[-500:]}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {"requests": raw["requests"], "seconds": round(seconds, 2),
            "requests_per_s": round(raw["requests"] / seconds, 1),
            "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "mean_ms": round(raw["mean_us"] / 1000, 3),
            "errors": sum(errors.values()), "error_kinds": errors}


def wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "wrk"


def run_load(bundle: str | os.PathLike | None = None, duration: float = 30, connections: int = 32,
             threads: int = 2, api_workers: int = 2, baseline_workers: int = 2,
             sizes: tuple[int, ...] = (1, 100), baseline: bool = True,
             log_dir: str | os.PathLike | None = None) -> dict:
    """Loads the API (and the baseline) on loopback; returns the figures as a dict."""
    from mpgpack.bench.answers import output_of_answers
    from mpgpack.core.bundle import open_bundle, resolve_bundle_path
    from mpgpack.core.schema import Schema
    bundle_dir = resolve_bundle_path(bundle)
    bodies = request_bodies(bundle_dir, sizes)
    workdir = Path(tempfile.mkdtemp(prefix="mpgpack-load-"))
    logs = Path(log_dir) if log_dir else workdir
    logs.mkdir(parents=True, exist_ok=True)
    servers = [("mpgpack serve", f"FastAPI + ONNX Runtime, {api_workers} worker(s), all validation, "
                "metrics and JSON access log on", start_api, api_workers)]
    if baseline:
        servers.append(("flask baseline", f"Flask + gunicorn ({baseline_workers} workers) + "
                         "unpickled sklearn pipeline", start_baseline, baseline_workers))
    runs, started = [], []
    try:
        ports = {}
        for name, _, starter, workers in servers:
            ports[name] = port = free_port()
            started.append(starter(bundle_dir, port, workers, logs / f"{name.split()[0]}.log"))
        # Same answers first: otherwise the comparison would not be of the same work.
        check = {name: _post(f"http://127.0.0.1:{port}/predict", bodies[max(sizes)])
                 for name, port in ports.items()}
        opened = open_bundle(bundle_dir)
        schema, tolerance = Schema.from_manifest(opened.manifest), opened.golden().tolerance
        ref = output_of_answers(schema, check["mpgpack serve"]["predictions"])
        agreement = None
        if baseline:
            other = output_of_answers(schema, check["flask baseline"]["predictions"])
            agreement = float(abs(ref - other).max())
            if agreement > tolerance:      # the bundle's parity tolerance (1e-4 for MPG)
                raise RuntimeError(f"API and baseline disagree by {agreement:.2e} "
                                   f"(more than the bundle's tolerance {tolerance:g})")
        for n in sizes:
            for name, desc, _, workers in servers:
                url = f"http://127.0.0.1:{ports[name]}/predict"
                result = wrk(url, bodies[n], duration, connections, threads, workdir)
                result.update({"server": name, "description": desc, "cars_per_request": n,
                               "body_bytes": len(bodies[n]), "workers": workers,
                               "cars_per_s": round(result["requests_per_s"] * n, 1)})
                runs.append(result)
    finally:
        for proc in started:
            stop(proc)
        if not log_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    speedup = {}
    if baseline:
        for n in sizes:
            api = next(r for r in runs if r["server"] == "mpgpack serve" and r["cars_per_request"] == n)
            base = next(r for r in runs if r["server"] == "flask baseline" and r["cars_per_request"] == n)
            speedup[str(n)] = round(api["requests_per_s"] / max(base["requests_per_s"], 1e-9), 2)
    return {"tool": wrk_version(), "duration_s": duration, "connections": connections,
            "wrk_threads": threads, "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "loadavg_at_end": os.getloadavg(),
            "bundle": str(bundle_dir), "baseline_max_abs_diff_mpg": agreement,
            "runs": runs, "speedup_vs_baseline": speedup}


def format_table(result: dict) -> str:
    lines = [f"{result['tool']}, {result['duration_s']:g} s per run, {result['connections']} "
             f"connections, {result['wrk_threads']} wrk threads, {result['cpus']} CPUs "
             f"(load average at end {result['loadavg_at_end'][0]:.1f})",
             f"{'server':<16} {'cars/req':>8} {'req/s':>9} {'cars/s':>10} {'p50 ms':>7} "
             f"{'p90 ms':>7} {'p99 ms':>7} {'errors':>6}"]
    for r in result["runs"]:
        lines.append(f"{r['server']:<16} {r['cars_per_request']:>8} {r['requests_per_s']:>9.0f} "
                     f"{r['cars_per_s']:>10.0f} {r['p50_ms']:>7.2f} {r['p90_ms']:>7.2f} "
                     f"{r['p99_ms']:>7.2f} {r['errors']:>6}")
    for n, x in result["speedup_vs_baseline"].items():
        lines.append(f"speed-up vs baseline, {n} car(s)/request: {x:.1f}x requests/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mpgpack.bench.api_load", description=__doc__.splitlines()[0])
    add_bundle_argument(p)
    p.add_argument("--duration", type=float, default=30, help="seconds per wrk run (default 30)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--workers", type=int, default=2, help="API worker processes (default 2)")
    p.add_argument("--baseline-workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--sizes", default="1,100", help="cars per request, comma separated (default 1,100)")
    p.add_argument("--no-baseline", action="store_true", help="load only the API")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    result = run_load(args.bundle, args.duration, args.connections, args.threads, args.workers,
                      args.baseline_workers, tuple(int(s) for s in args.sizes.split(",")),
                      not args.no_baseline)
    print(format_table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
