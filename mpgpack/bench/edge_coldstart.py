"""The edge runner on one core: cold start and peak RSS (LiteRT vs full TensorFlow), CSV rows/s.

Cold start = process start to the first prediction printed, for `mpg-edge predict` fed one
JSON line on stdin; peak RSS from the kernel's accounting of that child (wait4). The same
runner is run twice over: on ai-edge-litert (what the device has) and, with
MPG_EDGE_INTERPRETER=tensorflow, on full TensorFlow's tf.lite.Interpreter (needs the dev venv).
Throughput: `mpg-edge predict --input` on a generated 100,000-row CSV, wall time included.

    .venv/bin/python -m mpgpack.bench.edge_coldstart [--bundle DIR] [--runs 5] [--prefix DIR]

--prefix also measures an installed edge venv (PREFIX/venv/bin/mpg-edge, e.g. from the x86_64
tarball's install.sh): the clean, device-like case without the dev venv's many packages.
"""
from __future__ import annotations

import argparse
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

ONE_CAR = json.dumps({"cylinders": 4, "displacement": 97, "horsepower": 88, "weight": 2130,
                      "acceleration": 14.5, "model_year": 71, "origin": 3}) + "\n"
RUNNER = [sys.executable, "-m", "mpgpack.targets.edge.device"]


def _median_cold_start(cmd: list[str], env: dict, runs: int, cpu: int) -> dict:
    samples = [cold_start(cmd, stdin=ONE_CAR.encode(), cpu=cpu, env=env) for _ in range(runs)]
    first = [s["first_output_s"] for s in samples]
    rss = [s["peak_rss_mb"] for s in samples]
    return {"first_output_s": statistics.median(first), "first_output_s_min": min(first),
            "first_output_s_max": max(first), "peak_rss_mb": statistics.median(rss),
            "peak_rss_mb_max": max(rss), "runs": runs, "cpu": cpu,
            "first_line": samples[0]["first_line"]}


def make_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """Cars inside the training ranges, 2 % with horsepower missing ('?'), as the UCI file."""
    rng = np.random.default_rng(seed)
    cols = [rng.choice([4, 6, 8], rows), rng.uniform(70, 450, rows).round(1),
            rng.uniform(50, 220, rows).round(0), rng.uniform(1700, 5000, rows).round(0),
            rng.uniform(8, 24, rows).round(1), rng.integers(70, 83, rows), rng.integers(1, 4, rows)]
    text = np.column_stack([c.astype(str) for c in cols])
    text[rng.random(rows) < 0.02, 2] = "?"
    lines = ["cylinders,displacement,horsepower,weight,acceleration,model_year,origin"]
    lines += [",".join(r) for r in text.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_throughput(cmd: list[str], bundle: str | None, rows: int, cpu: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="mpg-edge-bench-") as tmp:
        src = make_csv(Path(tmp) / "cars.csv", rows)
        args = [*cmd, "predict", "--input", str(src), "--output", str(Path(tmp) / "out.csv")]
        if bundle:
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
    cold = {"edge runner (LiteRT)": _median_cold_start([*RUNNER, *predict], env, runs, cpu)}
    if tensorflow:
        cold["edge runner (full TensorFlow)"] = _median_cold_start(
            [*RUNNER, *predict], {**env, "MPG_EDGE_INTERPRETER": "tensorflow"}, runs, cpu)
    csv = {"edge runner (LiteRT)": csv_throughput(RUNNER, bundle, rows, cpu, env)}
    if prefix:
        installed = [str(Path(prefix) / "venv" / "bin" / "mpg-edge")]
        cold["edge runner (installed venv, LiteRT)"] = _median_cold_start(
            [*installed, "predict"], env, runs, cpu)
        csv["edge runner (installed venv, LiteRT)"] = csv_throughput(installed, None, rows, cpu, env)
    return {"cold_start": cold, "edge_csv": csv}


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
