"""The benchmark sections that run in this process or spawn plain Python processes."""
from __future__ import annotations

import json
import sys

from mpgpack.core.bundle import Bundle


def parity_artifacts(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """Every artifact in its runtime (onnxruntime, LiteRT x3, TF.js in Node) + sklearn float32 + numpy."""
    from mpgpack.bench.answers import reference_row, schema_of
    from mpgpack.bench.inprocess import parity_inprocess
    from mpgpack.export.parity import evaluate_artifacts
    golden = bundle.golden()
    artifacts = bundle.manifest["artifacts"]
    paths = {name: bundle.artifact(name) for name in
             ("onnx", "tflite_float32", "tflite_float16", "tflite_int8") if name in artifacts}
    bundle.artifact("tfjs")
    for name, a in artifacts.items():
        if a["kind"] == "tfjs_weights":
            bundle.artifact(name)
    paths["tfjs"] = bundle.path / "tfjs"
    # The build's own rule (core.verify.parity_entry) on the whole output: values or probabilities.
    report = evaluate_artifacts(paths, golden.X, golden.expected, golden.actual,
                                golden.tolerance, {"onnx", "tflite_float32", "tfjs"},
                                schema_of(bundle).task)
    parity = {f"{k} ({v['runtime']})": v for k, v in report.items()}
    inprocess, left_out = parity_inprocess(bundle)
    parity.update(inprocess)
    parity["reference (float64 sklearn)"] = reference_row(bundle)
    return {"parity": parity, "not_applicable": left_out}


def latency(bundle: Bundle, quick: bool, peers: bool) -> dict:
    from mpgpack.bench.inprocess import latency as measure, load_reference
    from mpgpack.bench.numpy_floor import floor_for
    _, why = floor_for(load_reference(bundle))
    return {"latency": measure(bundle, quick), "not_applicable": {"numpy_floor": why} if why else {}}


def cold_start_sklearn(bundle: Bundle, quick: bool, peers: bool) -> dict:
    """The tutorial way: unpickle the sklearn pipeline and predict one row (the first golden row)."""
    from mpgpack.bench.process import cold_start
    row = [None if v != v else v for v in bundle.golden().X[0].tolist()]
    code = ("import json, pickle, numpy as np; p = pickle.load(open(%r, 'rb')); "
            "x = np.array([[np.nan if v is None else v for v in json.loads(%r)]], dtype=np.float32); "
            "print(p.predict(x)[0])"
            % (str(bundle.artifact("reference_pickle")), json.dumps(row)))
    r = cold_start([sys.executable, "-c", code])
    r["what"] = "python + pickle.load(sklearn pipeline) + predict(1 row)"
    return {"cold_start": {"sklearn (pickle)": r}}
