"""Bring your own model: every example table x every model family, built and checked.

    python -m mpgpack.bench.byom --out DIR [--tables iris clinic ...] [--families gbm ...]

For each pair, `mpgpack build` (without the page, to keep it short) on the table, then from its
manifest: the chosen settings' CV and hold-out scores, each float32 artifact's parity (max abs
error on the output or the probabilities, class agreement), its bytes, and the single-row
latency in onnxruntime and LiteRT (in process, one thread) and TF.js (in Node). Writes
results.json and BYOM.md. Every figure comes from the run that writes it.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from mpgpack.bench.timing import time_calls
from mpgpack.core.bundle import open_bundle
from mpgpack.core.errors import UserError
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner

FORMATS = ("onnx", "tflite_float32", "tfjs")


def _bytes(manifest: dict, name: str) -> int:
    arts = manifest["artifacts"]
    if name == "tfjs":
        return arts["tfjs"]["bytes"] + sum(a["bytes"] for a in arts.values()
                                           if a["kind"] == "tfjs_weights")
    return arts[name]["bytes"]


def _latency(bundle, budget_s: float) -> dict:
    """Median single-row latency, µs, per runtime (a hold-out row of the golden set)."""
    from mpgpack.export.parity import tfjs_node_run
    golden = bundle.golden()
    row = golden.X[:1].copy()
    out = {}
    for name, runner in (("onnx", OnnxRunner(bundle.artifact("onnx"))),
                         ("tflite_float32", LiteRTRunner(bundle.artifact("tflite_float32")))):
        out[name] = time_calls(lambda: runner.run(row), budget_s)["median_us"]
    out["tfjs"] = tfjs_node_run(bundle.path / "tfjs", row, 1e3 * budget_s)[1]["single_row_us"]
    return out


def run_pair(table: Path, target: str, family: str, work: Path, budget_s: float) -> dict:
    from mpgpack.export.build import BuildRequest, build_bundle
    t0 = time.perf_counter()
    path = build_bundle(out=work / f"{table.stem}-{family}", packers=[],
                        request=BuildRequest(data=table, target=target, model=family))
    seconds = time.perf_counter() - t0
    bundle = open_bundle(path)
    m = bundle.manifest
    chosen = m["metrics"]["chosen"]
    row = {"table": table.stem, "family": family, "task": m["model"]["task"],
           "estimator": chosen["estimator"], "params": chosen["params"],
           "rows": m["data"]["rows"], "features": len(m["schema"]["features"]),
           "score": m["metrics"]["score"], "cv_mean": chosen["cv_mean"],
           "holdout": {k: v for k, v in chosen["holdout"].items()
                       if k in ("mae", "rmse", "accuracy", "log_loss")},
           "build_seconds": round(seconds, 1), "golden_rows": m["artifacts"]["golden"]["rows"],
           "tolerance": m["artifacts"]["golden"]["tolerance"],
           "formats": {}}
    latency = _latency(bundle, budget_s)
    for name in FORMATS:
        p = m["parity"][name]
        row["formats"][name] = {
            "max_abs_error": p["max_abs_error"], "passed": p["passed"],
            "class_agreement": p.get("class_agreement"), "ties": p.get("ties"),
            "bytes": _bytes(m, name), "single_row_us": latency[name]}
    return row


def markdown(results: dict) -> str:
    lines = [f"# Bring your own model: tables x families x formats", "",
             f"`python -m mpgpack.bench.byom` on {results['machine']}, {results['when']}. "
             "Each row is one `mpgpack build --data TABLE --target T --model FAMILY` (no page). "
             "Max abs error: float32 artifact vs float64 scikit-learn on the golden set "
             "(the output's unit for a regressor, a probability for a classifier), with the gate "
             "the build applied (1e-4; for a regressor whose target runs into the hundreds, "
             "2e-6 of its largest training value). "
             "Classes: share of golden rows whose predicted class equals the reference's "
             "(ties, where the reference's top two probabilities are within 2e-4, counted). "
             "Latency: median of one row, one thread, in process (onnxruntime, LiteRT) or in "
             "Node (TF.js, cpu backend).", "",
             "| table | family | estimator | CV | hold-out | format | max abs err | classes | "
             "bytes | 1-row µs | build s |", "|" + "---|" * 11]
    for r in results["rows"]:
        if "failed" in r:
            lines.append(f"| {r['table']} | {r['family']} | build refused: {r['failed']} |" + " |" * 8)
            continue
        score = r["score"].replace("_", "-")
        ho = ", ".join(f"{k.replace('_', '-')} {v:.3f}" for k, v in r["holdout"].items())
        for i, (name, f) in enumerate(r["formats"].items()):
            agree = "" if f["class_agreement"] is None else \
                f"{100 * f['class_agreement']:.2f} %" + (f" ({f['ties']} ties)" if f["ties"] else "")
            head = (f"| {r['table']} | {r['family']} | {r['estimator']} | {score} "
                    f"{r['cv_mean']:.3f} | {ho} |") if i == 0 else "| | | | | |"
            lines.append(f"{head} {name} | {f['max_abs_error']:.2e} (≤ {r['tolerance']:.1e}) | "
                         f"{agree} | {f['bytes']:,} "
                         f"| {f['single_row_us']:.0f} | {r['build_seconds'] if i == 0 else ''} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from mpgpack.data.examples import EXAMPLES, write_examples
    from mpgpack.train.family_names import FAMILY_NAMES
    p = argparse.ArgumentParser(prog="python -m mpgpack.bench.byom",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json and BYOM.md")
    p.add_argument("--tables", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    p.add_argument("--families", nargs="+", default=list(FAMILY_NAMES), choices=FAMILY_NAMES)
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timing per runtime")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mpgpack-byom-"))
    try:
        tables = write_examples(work / "tables")
        rows = []
        for name in args.tables:
            for family in args.families:
                try:
                    row = run_pair(tables[name], EXAMPLES[name][0], family, work, args.budget)
                except UserError as exc:         # a refused build is a result: recorded
                    rows.append({"table": name, "family": family, "failed": str(exc)})
                    print(f"{name:<14} {family:<7} FAILED: {exc}", flush=True)
                    continue
                rows.append(row)
                worst = max(f["max_abs_error"] for f in row["formats"].values())
                print(f"{name:<14} {family:<7} max abs err {worst:.2e}  "
                      f"build {row['build_seconds']} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {"machine": f"{platform.processor() or platform.machine()}, "
                          f"{__import__('os').cpu_count()} cores",
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "BYOM.md").write_text(markdown(results))
    print(f"wrote {args.out / 'BYOM.md'}")
    return 0 if all("failed" not in r and all(f["passed"] for f in r["formats"].values())
                    for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
