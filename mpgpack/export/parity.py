"""Parity: every artifact evaluated in its real runtime on the golden set, errors recorded."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
from mpgpack.core.schema import REGRESSION
from mpgpack.core.verify import parity_entry

# TF.js runs in the web target's Node project; like the packers of export/build.py it is named,
# not imported, so export does not depend on a target (the import contracts check that).
TFJS_RUNNER = "mpgpack.targets.web.node_runner:tfjs_node_run"


def tfjs_node_run(model_dir: Path, X: np.ndarray, time_single_row_ms: float = 0
                  ) -> tuple[np.ndarray, dict]:
    """The whole output [N, K] of a TF.js graph model run by @tensorflow/tfjs in Node, and
    runtime info (with `time_single_row_ms`: the median single-row latency, single_row_us)."""
    module, func = TFJS_RUNNER.split(":")
    return getattr(importlib.import_module(module), func)(model_dir, X, time_single_row_ms)


def tfjs_node_predict(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """A regressor's values [N] (column 0) from TF.js in Node; a classifier's [N, C]."""
    out, info = tfjs_node_run(model_dir, X)
    return (out[:, 0] if out.shape[1] == 1 else out), info


def run_artifact(name: str, path: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """The artifact's whole output [N, K] in its own runtime, and that runtime's name/version."""
    if name == "onnx" or name.startswith("tflite"):
        runner = OnnxRunner(path) if name == "onnx" else LiteRTRunner(path)
        return runner.run(X), {"runtime": runner.runtime, "version": runner.version}
    if name == "tfjs":
        return tfjs_node_run(path, X)
    raise ValueError(f"no runtime for artifact {name}")


def evaluate_artifacts(paths: dict[str, Path], X: np.ndarray, expected: np.ndarray,
                       actual: np.ndarray, tolerance: float, gated: set[str],
                       task: str = REGRESSION) -> dict:
    """Parity of each artifact in its own runtime. `gated` artifacts must be within tolerance.

    expected: a regressor's [N] values, or a classifier's [N, C] probabilities; actual: the
    true value / class index of hold-out rows, NaN elsewhere. What an entry holds and when it
    passes is core.verify.parity_entry's rule (`mpgpack verify` applies the same)."""
    report = {}
    for name, path in paths.items():
        out, info = run_artifact(name, path, X)
        report[name] = {**info, **parity_entry(out, expected, actual, tolerance, task),
                        "gated": name in gated}
    return report
