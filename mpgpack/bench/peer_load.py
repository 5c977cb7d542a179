"""mpgpack against the servers its users would otherwise pick, in one interleaved run.

Every server of peer_servers.py is started (cold start timed), then checked on the golden
cars (every endpoint must agree with golden.json within its tolerance, or nothing is timed);
then, for each repetition, each point (cars per request x clients) is loaded by wrk on every
endpoint in turn, so a burst of load from elsewhere on the machine hits all servers alike.
Figures are the medians over repetitions; RSS is read after the load.

    python -m mpgpack.bench.peer_load [--bundle DIR] [--duration 5] [--reps 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from mpgpack.bench.api_load import wrk, wrk_version
from mpgpack.bench.peer_servers import Running, servers
from mpgpack.bench.servers import free_port
from mpgpack.core.cli_args import add_bundle_argument

CLIENTS = (1, 8, 32)
SIZES = (1, 100)


def _golden(bundle) -> tuple[list[list], list[float], float]:
    """Golden cars with every feature present (JSON has no NaN: a peer gets null only through
    its own codecs, which is not what is being compared) and their expected MPG."""
    golden, cars = bundle.golden(), bundle.golden_cars()
    keep = [i for i, c in enumerate(cars) if None not in c.values()]
    rows = [list(cars[i].values()) for i in keep]
    return rows, [float(golden.expected[i]) for i in keep], golden.tolerance


def _check(run: Running, rows: list[list], expected: list[float], tolerance: float) -> float:
    worst = 0.0
    for ep in run.server.endpoints:
        got = run.predict(ep, rows)
        worst_ep = max(abs(a - b) for a, b in zip(got, expected)) if len(got) == len(rows) else 1e9
        if not worst_ep <= tolerance:
            raise RuntimeError(f"{ep.label} disagrees with golden.json: max abs error "
                               f"{worst_ep:.2e} > {tolerance:g} on {len(rows)} cars")
        worst = max(worst, worst_ep)
    return worst


def _median_run(runs: list[dict], cars: int) -> dict:
    rps = statistics.median(r["requests_per_s"] for r in runs)
    out = {k: round(statistics.median(r[k] for r in runs), 3)
           for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    return {"requests_per_s": round(rps, 1), "cars_per_s": round(rps * cars, 1), **out,
            "errors": sum(r["errors"] for r in runs), "repetitions": len(runs),
            "requests_per_s_each": [r["requests_per_s"] for r in runs]}


def run_peers(bundle, duration: float = 5, reps: int = 2, clients=CLIENTS, sizes=SIZES,
              log=sys.stderr) -> dict:
    from mpgpack.bench.answers import refuse_peers
    refuse_peers(bundle)
    rows, expected, tolerance = _golden(bundle)
    table = servers([f["name"] for f in bundle.features])
    raw: dict[str, dict[str, list]] = {}
    started: list[Running] = []
    with tempfile.TemporaryDirectory(prefix="mpgpack-peers-") as tmp:
        work = Path(tmp)
        try:
            for server in table:
                print(f" [{server.name}]", end="", file=log, flush=True)
                run = Running(server, bundle.path, free_port(), work, server.endpoints[0].body(rows[:1]))
                started.append(run)     # stopped below even when its check fails
                run.max_abs_error = _check(run, rows, expected, tolerance)
            for rep in range(reps):
                for cars in sizes:
                    for conc in clients:
                        for run in started:
                            for ep in run.server.endpoints:
                                r = wrk(run.url + ep.path, ep.body(rows[:cars]), duration, conc,
                                        min(conc, 2), work, ep.headers(rows[:cars]))
                                raw.setdefault(ep.label, {}).setdefault(f"{cars}x{conc}", []).append(r)
            memory = {run.server.name: run.memory() for run in started}
        finally:
            for run in started:
                run.stop()
    return _summary(started, raw, memory, duration, reps, len(rows))


def _summary(started, raw, memory, duration, reps, checked) -> dict:
    endpoints = {}
    for label, points in raw.items():
        endpoints[label] = {p: _median_run(runs, int(p.split("x")[0])) for p, runs in points.items()}
    srv = {run.server.name: {"setting": run.server.setting, "cold_start_s": round(run.cold_start_s, 3),
                             "golden_max_abs_error": run.max_abs_error, "golden_cars": checked,
                             "endpoints": [e.label for e in run.server.endpoints],
                             **memory[run.server.name]} for run in started}
    return {"tool": wrk_version(), "duration_s": duration, "repetitions": reps,
            "loadavg_at_end": os.getloadavg(), "servers": srv, "endpoints": endpoints,
            "notes": f"interleaved: each point is run on every endpoint in turn, {reps} repetitions, "
                     f"medians; wrk {duration:g} s per run, on the same 2 cores as every server; "
                     "RSS of each server's process tree after the load."}


def best_peer(result: dict, point: str) -> tuple[str, dict] | None:
    """The fastest non-mpgpack endpoint at a point ("cars x clients"), by requests/s."""
    peers = [(label, pts[point]) for label, pts in result["endpoints"].items()
             if not label.startswith("mpgpack") and point in pts]
    return max(peers, key=lambda lp: lp[1]["requests_per_s"]) if peers else None


def format_table(result: dict) -> str:
    points = list(next(iter(result["endpoints"].values())))
    lines = [f"{result['tool']}, {result['duration_s']:g} s x {result['repetitions']} per point, "
             f"load average at end {result['loadavg_at_end'][0]:.1f}",
             "endpoint".ljust(18) + "".join(f"{p:>18}" for p in points)]
    for label, pts in result["endpoints"].items():
        lines.append(label.ljust(18) + "".join(
            f"{pts[p]['requests_per_s']:>9,.0f} p99 {pts[p]['p99_ms']:>4.0f}" for p in points))
    for name, s in result["servers"].items():
        lines.append(f"{name}: cold start {s['cold_start_s']:.2f} s, RSS {s['rss_total_mb']:.0f} MB "
                     f"in {s['processes']} processes (largest {s['rss_max_process_mb']:.0f} MB)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from mpgpack.core.bundle import open_bundle
    p = argparse.ArgumentParser(prog="python -m mpgpack.bench.peer_load",
                                description=__doc__.splitlines()[0])
    add_bundle_argument(p)
    p.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--reps", type=int, default=2, help="repetitions per point (default 2)")
    p.add_argument("--clients", default="1,8,32", help="connections per point (default 1,8,32)")
    p.add_argument("--sizes", default="1,100", help="cars per request (default 1,100)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    result = run_peers(open_bundle(args.bundle), args.duration, args.reps,
                       tuple(int(c) for c in args.clients.split(",")),
                       tuple(int(s) for s in args.sizes.split(",")))
    print(format_table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
