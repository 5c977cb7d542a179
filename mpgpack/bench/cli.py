"""`mpgpack bench`."""
from __future__ import annotations

import argparse
from pathlib import Path
from mpgpack.core.cli_args import add_bundle_argument


def _bench(args) -> int:
    from mpgpack.bench.run import run_benchmarks
    from mpgpack.bench.answers import refuse_peers
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(args.bundle)
    if args.peers:
        refuse_peers(bundle)      # before any section runs: the peers know the MPG model only
    results = run_benchmarks(bundle, args.out, args.quick, args.peers)
    print((args.out / "REPORT.md").read_text().split("## Parity")[0])
    print(f"wrote {args.out / 'REPORT.md'}, {args.out / 'results.json'} and {len(results['plots'])} plots")
    if results["errors"]:
        print(f"bench: {len(results['errors'])} section(s) failed: {', '.join(results['errors'])}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure parity and latency of every runtime in one run",
                       description="Measure, in one run on the same golden inputs: parity of every "
                                   "artifact in every runtime, in-process latency per batch size, cold "
                                   "start and memory, HTTP service latency under load, and TF.js in "
                                   "headless Chromium. Any bundle: a regressor's values or a "
                                   "classifier's probabilities and classes, read from its schema. "
                                   "Writes results.json, REPORT.md and PNG plots.")
    add_bundle_argument(p)
    p.add_argument("--quick", action="store_true", help="shorter runs (under 3 minutes), same sections")
    p.add_argument("--peers", action="store_true",
                   help="also measure `mlflow models serve` of the same pipeline, and KServe, "
                        "MLServer and BentoML serving the same model.onnx, interleaved with "
                        "mpgpack (each installed into a venv of its own on first use); "
                        "the MPG showcase bundle only")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="output folder (default: bench-out)")
    p.set_defaults(run=_bench)
