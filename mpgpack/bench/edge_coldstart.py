"""The edge runner on one core: cold start and peak RSS (LiteRT vs full TensorFlow), CSV rows/s.

Cold start = process start to the first prediction printed, for `mpg-edge predict` fed one
JSON line on stdin (the bundle's first golden row); peak RSS from the kernel's accounting of that child (wait4). The same
runner is run twice over: on ai-edge-litert (what the device has) and, with
MPG_EDGE_INTERPRETER=tensorflow, on full TensorFlow's tf.lite.Interpreter (needs the dev venv).
Throughput: `mpg-edge predict --input` on a 100,000-row CSV of the bundle's golden rows
(repeated, shuffled; '?' where a value is missing), wall time included. Any bundle.

    .venv/bin/python -m mpgpack.bench.edge_coldstart [--bundle DIR] [--runs 5] [--prefix DIR]

--prefix also measures an installed edge venv (PREFIX/venv/bin/mpg-edge, e.g. from the x86_64
tarball's install.sh): the clean, device-like case without the dev venv's many packages.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mpgpack.bench.process import cold_start
from mpgpack.core.cli_args import add_bundle_argument

RUNNER = [sys.executable, "-m", "mpgpack.targets.edge.device"]


def one_row(bundle: str) -> bytes:
    """The bundle's first golden row as the JSON line a client writes."""
    from mpgpack.core.bundle import open_bundle
    return (json.dumps(open_bundle(bundle).golden_cars()[0]) + "\n").encode()


def _median_cold_start(cmd: list[str], env: dict, runs: int, cpu: int, line: bytes) -> dict:
    samples = [cold_start(cmd, stdin=line, cpu=cpu, env=env) for _ in range(runs)]
    first = [s["first_output_s"] for s in samples]
    rss = [s["peak_rss_mb"] for s in samples]
    return {"first_output_s": statistics.median(first), "first_output_s_min": min(first),
            "first_output_s_max": max(first), "peak_rss_mb": statistics.median(rss),
            "peak_rss_mb_max": max(rss), "runs": runs, "cpu": cpu,
            "first_line": samples[0]["first_line"]}


def make_csv(path: Path, rows: int, bundle: str, seed: int = 0) -> Path:
    """`rows` rows drawn from the bundle's golden rows (inside the limits, missing values and
    every category among them), in random order; '?' where a value is missing, as in the
    UCI file."""
    from mpgpack.core.bundle import open_bundle
    cars = open_bundle(bundle).golden_cars()
    pick = np.random.default_rng(seed).integers(0, len(cars), rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(cars[0]))
    lines = [["?" if v is None else v for v in car.values()] for car in cars]
    writer.writerows(lines[i] for i in pick)
    path.write_text(buf.getvalue())
    return path


def csv_throughput(cmd: list[str], bundle: str, rows: int, cpu: int, env: dict,
                   pass_bundle: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="mpg-edge-bench-") as tmp:
        src = make_csv(Path(tmp) / "rows.csv", rows, bundle)
        args = [*cmd, "predict", "--input", str(src), "--output", str(Path(tmp) / "out.csv")]
        if pass_bundle:
            args += ["--bundle", bundle]
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600,
                              preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"predict failed: {proc.stderr[-500:]}")
        summary = [l for l in proc.stderr.splitlines() if l.startswith("mpg-edge: predicted")][-1]
        inside = float(summary.split("(")[1].split()[0].replace(",", ""))
        return {"rows": rows, "wall_s": wall, "rows_per_s_wall": rows / wall,
                "rows_per_s_runner": inside, "csv_mb": src.stat().st_size / 1e6, "cpu": cpu}


def measure(bundle: str | None = None, runs: int = 5, rows: int = 100_000, cpu: int = 0,
            prefix: str | None = None, tensorflow: bool = True) -> dict:
    """Returns {"cold_start": {label: stats}, "edge_csv": {label: stats}}."""
    from mpgpack.core.bundle import resolve_bundle_path
    bundle = str(resolve_bundle_path(bundle))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MPG_EDGE_INTERPRETER", None)
    predict = ["predict", "--bundle", bundle]
    line = one_row(bundle)
    cold = {"edge runner (LiteRT)": _median_cold_start([*RUNNER, *predict], env, runs, cpu, line)}
    if tensorflow:
        cold["edge runner (full TensorFlow)"] = _median_cold_start(
            [*RUNNER, *predict], {**env, "MPG_EDGE_INTERPRETER": "tensorflow"}, runs, cpu, line)
    throughput = {"edge runner (LiteRT)": csv_throughput(RUNNER, bundle, rows, cpu, env)}
    if prefix:
        installed = [str(Path(prefix) / "venv" / "bin" / "mpg-edge")]
        cold["edge runner (installed venv, LiteRT)"] = _median_cold_start(
            [*installed, "predict"], env, runs, cpu, line)
        throughput["edge runner (installed venv, LiteRT)"] = csv_throughput(installed, bundle, rows, cpu, env,
                                                                     pass_bundle=False)
    return {"cold_start": cold, "edge_csv": throughput}


def section(bundle, quick: bool, peers: bool) -> dict:
    """For the benchmark runner: (Bundle, quick, peers) -> results to merge."""
    return measure(str(bundle.path), runs=3 if quick else 5, rows=20_000 if quick else 100_000)


def format_table(result: dict) -> str:
    lines = [f"{'cold start, one core':<40} {'first prediction':>17} {'peak RSS':>10}"]
    for name, r in result["cold_start"].items():
        lines.append(f"{name:<40} {r['first_output_s']:>15.3f} s {r['peak_rss_mb']:>7.0f} MB"
                     f"   (median of {r['runs']}, {r['first_output_s_min']:.3f}–"
                     f"{r['first_output_s_max']:.3f} s)")
    lines.append("")
    lines.append(f"{'CSV throughput, one core':<40} {'rows':>8} {'wall':>8} {'rows/s (wall)':>14} "
                 f"{'rows/s (runner)':>16}")
    for name, r in result["edge_csv"].items():
        lines.append(f"{name:<40} {r['rows']:>8,} {r['wall_s']:>6.2f} s {r['rows_per_s_wall']:>14,.0f} "
                     f"{r['rows_per_s_runner']:>16,.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_bundle_argument(p)
    p.add_argument("--runs", type=int, default=5, help="cold starts per runtime (median)")
    p.add_argument("--rows", type=int, default=100_000, help="rows in the generated CSV")
    p.add_argument("--cpu", type=int, default=0, help="the one core to pin to")
    p.add_argument("--prefix", default=None, help="also measure PREFIX/venv/bin/mpg-edge")
    p.add_argument("--no-tensorflow", action="store_true", help="skip the full TensorFlow run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    result = measure(a.bundle, a.runs, a.rows, a.cpu, a.prefix, not a.no_tensorflow)
    print(json.dumps(result, indent=1) if a.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
