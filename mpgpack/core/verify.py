"""`mpgpack verify`: re-check every sha256 and re-run parity in the Python runtimes.

Runtime-side code (numpy, onnxruntime, LiteRT): verifying a bundle never needs the build stack.
The parity rule (parity_entry) is the build's too, so a bundle verifies as it was built.
"""
from __future__ import annotations

import numpy as np

from mpgpack.core.bundle import Bundle
from mpgpack.core.outputs import class_agreement, class_index
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
from mpgpack.core.schema import CLASSIFICATION, Schema


def error_stats(pred: np.ndarray, expected: np.ndarray) -> dict:
    """Max and mean abs error over every value: [N] values, or [N, C] probabilities.

    A regressor's [N, 1] output is compared as [N] (never broadcast against [N] to [N, N])."""
    expected = np.asarray(expected, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != expected.shape:
        if pred.size != expected.size:
            raise ValueError(f"output shape {pred.shape} does not match the expected {expected.shape}")
        pred = pred.reshape(expected.shape)
    err = np.abs(pred - expected)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
            "rows": int(len(err))}


def holdout_mae(pred: np.ndarray, actual: np.ndarray) -> float:
    mask = ~np.isnan(actual)
    return float(np.mean(np.abs(np.asarray(pred).reshape(len(actual))[mask] - actual[mask])))


def holdout_accuracy(probabilities: np.ndarray, actual: np.ndarray) -> float:
    """Share of hold-out rows (actual = the true class index, NaN elsewhere) whose predicted
    class (core.outputs.class_index) is the true one."""
    mask = ~np.isnan(actual)
    if not mask.any():
        return float("nan")
    return float(np.mean(class_index(probabilities)[mask] == actual[mask]))


def parity_entry(out: np.ndarray, expected: np.ndarray, actual: np.ndarray, tolerance: float,
                 task: str) -> dict:
    """The parity record of one artifact's output `out` [N, K] against the reference.

    Regressor: errors of column 0, hold-out MAE and its change vs the reference; passed when
    the max abs error is within tolerance. Classifier: errors over every probability, class
    agreement (core.outputs), hold-out accuracy and its change; passed when within tolerance
    AND no row with a clear reference class (not a tie) gets another class."""
    out = np.asarray(out, dtype=np.float64)
    if task != CLASSIFICATION:
        pred = out.reshape(len(out), -1)[:, 0]
        entry = {**error_stats(pred, expected), "tolerance": tolerance,
                 "holdout_mae": holdout_mae(pred, actual),
                 "holdout_mae_change": holdout_mae(pred, actual) - holdout_mae(expected, actual)}
        entry["passed"] = entry["max_abs_error"] <= tolerance
        return entry
    agreement = class_agreement(out, expected, tolerance)
    accuracy = holdout_accuracy(out, actual)
    entry = {**error_stats(out, expected), "tolerance": tolerance, **agreement,
             "holdout_accuracy": accuracy,
             "holdout_accuracy_change": accuracy - holdout_accuracy(expected, actual)}
    entry["passed"] = entry["max_abs_error"] <= tolerance and agreement["decided_disagreements"] == 0
    return entry


PYTHON_RUNNERS = {"onnx": OnnxRunner, "tflite_float32": LiteRTRunner,
                  "tflite_float16": LiteRTRunner, "tflite_int8": LiteRTRunner}


def verify_bundle(bundle: Bundle) -> tuple[list[dict], bool]:
    """Returns one row per artifact checked and whether the bundle passed.

    Raises UserError (naming the file) when any artifact's sha256 does not match.
    """
    bundle.verify()
    bundle.verify_packages()      # the web page, the report, an edge tarball: what readers serve
    golden = bundle.golden()
    task = Schema.from_manifest(bundle.manifest).task
    rows, ok = [], True
    for name, runner_cls in PYTHON_RUNNERS.items():
        if name not in bundle.manifest["artifacts"]:
            continue
        built = bundle.manifest["parity"][name]
        runner = runner_cls(bundle.artifact(name))
        entry = parity_entry(runner.run(golden.X), golden.expected, golden.actual,
                             golden.tolerance, task)
        if built["gated"]:
            ok &= entry["passed"]
        extra = {k: entry[k] for k in ("class_agreement", "decided_disagreements") if k in entry}
        rows.append({"artifact": name, "runtime": runner.runtime,
                     **{k: entry[k] for k in ("max_abs_error", "mean_abs_error", "rows")}, **extra,
                     "gated": built["gated"], "passed": entry["passed"],
                     "build_max_abs_error": built["max_abs_error"]})
    return rows, ok
