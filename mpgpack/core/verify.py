"""`mpgpack verify`: re-check every sha256 and re-run parity in the Python runtimes.

Runtime-side code (numpy, onnxruntime, LiteRT): verifying a bundle never needs the build stack.
"""
from __future__ import annotations

import numpy as np

from mpgpack.core.bundle import Bundle
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner


def error_stats(pred: np.ndarray, expected: np.ndarray) -> dict:
    err = np.abs(np.asarray(pred, dtype=np.float64) - expected)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
            "rows": int(len(err))}


def holdout_mae(pred: np.ndarray, actual: np.ndarray) -> float:
    mask = ~np.isnan(actual)
    return float(np.mean(np.abs(np.asarray(pred)[mask] - actual[mask])))


PYTHON_RUNNERS = {"onnx": OnnxRunner, "tflite_float32": LiteRTRunner,
                  "tflite_float16": LiteRTRunner, "tflite_int8": LiteRTRunner}


def verify_bundle(bundle: Bundle) -> tuple[list[dict], bool]:
    """Returns one row per artifact checked and whether the bundle passed.

    Raises UserError (naming the file) when any artifact's sha256 does not match.
    """
    bundle.verify()
    bundle.verify_packages()      # the web page, the report, an edge tarball: what readers serve
    golden = bundle.golden()
    rows, ok = [], True
    for name, runner_cls in PYTHON_RUNNERS.items():
        if name not in bundle.manifest["artifacts"]:
            continue
        built = bundle.manifest["parity"][name]
        runner = runner_cls(bundle.artifact(name))
        stats = error_stats(runner.predict(golden.X), golden.expected)
        passed = stats["max_abs_error"] <= golden.tolerance
        if built["gated"]:
            ok &= passed
        rows.append({"artifact": name, "runtime": runner.runtime, **stats,
                     "gated": built["gated"], "passed": passed,
                     "build_max_abs_error": built["max_abs_error"]})
    return rows, ok
