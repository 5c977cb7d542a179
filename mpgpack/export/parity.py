"""Parity: every artifact evaluated in its real runtime on the golden set, errors recorded."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
from mpgpack.core.verify import error_stats, holdout_mae

# TF.js runs in the web target's Node project; like the packers of export/build.py it is named,
# not imported, so export does not depend on a target (the import contracts check that).
TFJS_RUNNER = "mpgpack.targets.web.node_runner:tfjs_node_predict"


def tfjs_node_predict(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """Predictions of a TF.js graph model by @tensorflow/tfjs in Node, and runtime info."""
    module, func = TFJS_RUNNER.split(":")
    return getattr(importlib.import_module(module), func)(model_dir, X)


def evaluate_artifacts(paths: dict[str, Path], X: np.ndarray, expected: np.ndarray,
                       actual: np.ndarray, tolerance: float, gated: set[str]) -> dict:
    """Parity of each artifact in its own runtime. `gated` artifacts must be within tolerance."""
    ref_mae = holdout_mae(expected, actual)
    report = {}
    for name, path in paths.items():
        if name == "onnx":
            runner = OnnxRunner(path)
            pred, info = runner.predict(X), {"runtime": runner.runtime, "version": runner.version}
        elif name.startswith("tflite"):
            runner = LiteRTRunner(path)
            pred, info = runner.predict(X), {"runtime": runner.runtime, "version": runner.version}
        elif name == "tfjs":
            pred, info = tfjs_node_predict(path, X)
        else:
            raise ValueError(f"no runtime for artifact {name}")
        entry = {**info, **error_stats(pred, expected), "tolerance": tolerance,
                 "gated": name in gated, "holdout_mae": holdout_mae(pred, actual),
                 "holdout_mae_change": holdout_mae(pred, actual) - ref_mae}
        entry["passed"] = entry["max_abs_error"] <= tolerance
        report[name] = entry
    return report
