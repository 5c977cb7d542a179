"""The benchmark sections that run in this process or spawn plain Python processes."""
from __future__ import annotations

import sys

from mpgpack.core.bundle import Bundle


def parity_artifacts(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """Every artifact in its runtime (onnxruntime, LiteRT x3, TF.js in Node) + sklearn float32 + numpy."""
    from mpgpack.bench.inprocess import parity_inprocess
    from mpgpack.export.parity import evaluate_artifacts
    golden = bundle.golden()
    paths = {name: bundle.artifact(name) for name in
             ("onnx", "tflite_float32", "tflite_float16", "tflite_int8")}
    bundle.artifact("tfjs")
    for name, a in bundle.manifest["artifacts"].items():
        if a["kind"] == "tfjs_weights":
            bundle.artifact(name)
    paths["tfjs"] = bundle.path / "tfjs"
    report = evaluate_artifacts(paths, golden.X, golden.expected, golden.actual,
                                golden.tolerance, {"onnx", "tflite_float32", "tfjs"})
    from mpgpack.core.verify import holdout_mae
    parity = {f"{k} ({v['runtime']})": v for k, v in report.items()}
    for name, stats in parity_inprocess(bundle).items():
        parity[name] = {"runtime": name.split("_")[0], **stats}
    parity["reference (float64 sklearn)"] = {
        "runtime": "scikit-learn", "max_abs_error": 0.0, "mean_abs_error": 0.0,
        "rows": int(len(golden.expected)), "holdout_mae": holdout_mae(golden.expected, golden.actual)}
    return {"parity": parity}


def latency(bundle: Bundle, quick: bool, peers: bool) -> dict:
    from mpgpack.bench.inprocess import latency as measure
    return {"latency": measure(bundle, quick)}


def cold_start_sklearn(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """The tutorial way: unpickle the sklearn pipeline and predict one car."""
    from mpgpack.bench.process import cold_start
    code = ("import pickle, numpy as np; p = pickle.load(open(%r, 'rb')); "
            "print(float(p.predict(np.array([[8, 307, 130, 3504, 12, 70, 1]], dtype=np.float32))[0]))"
            % str(bundle.artifact("reference_pickle")))
    r = cold_start([sys.executable, "-c", code])
    r["what"] = "python + pickle.load(sklearn pipeline) + predict(1 row)"
    return {"cold_start": {"sklearn (pickle)": r}}
