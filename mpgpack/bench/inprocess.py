"""In-process latency of sklearn, onnxruntime, LiteRT and a numpy floor, per batch size."""
from __future__ import annotations

import pickle
import warnings

import numpy as np

from mpgpack.bench.numpy_floor import NumpyForward
from mpgpack.bench.timing import time_calls
from mpgpack.core.bundle import Bundle
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner

BATCHES = (1, 10, 100, 1_000, 10_000)


def load_reference(bundle: Bundle):
    """The fitted sklearn pipeline. Benchmarks only: the file's sha256 is checked first."""
    with open(bundle.artifact("reference_pickle"), "rb") as fh:
        return pickle.load(fh)


class SklearnRunner:
    runtime = "scikit-learn"

    def __init__(self, pipeline):
        import sklearn
        self.pipeline, self.version = pipeline, sklearn.__version__

    def predict(self, X):
        return self.pipeline.predict(X)


def runners(bundle: Bundle) -> dict:
    pipeline = load_reference(bundle)
    return {"sklearn": SklearnRunner(pipeline),
            "onnxruntime": OnnxRunner(bundle.artifact("onnx")),
            "litert": LiteRTRunner(bundle.artifact("tflite_float32")),
            "numpy_floor": NumpyForward(pipeline)}


def batch_of(X: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:n])


def latency(bundle: Bundle, quick: bool) -> dict:
    """{runtime: {batch: {median_us, p99_us, rows_per_s, ...}}}, warm-up excluded."""
    golden = bundle.golden()
    budget = 0.15 if quick else 0.6
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, runner in runners(bundle).items():
            rows = {}
            for n in BATCHES:
                X = batch_of(golden.X, n)
                stats = time_calls(lambda: runner.predict(X), budget,
                                   min_reps=5 if n >= 10_000 else 20)
                stats["rows_per_s"] = n / (stats["median_us"] / 1e6)
                rows[str(n)] = stats
            out[name] = {"runtime": runner.runtime, "version": runner.version, "batches": rows}
    return out


def parity_inprocess(bundle: Bundle) -> dict:
    """sklearn on float32 input and the numpy floor against the float64 reference."""
    golden = bundle.golden()
    pipeline = load_reference(bundle)
    out = {}
    for name, pred in (("sklearn_float32", pipeline.predict(golden.X)),
                       ("numpy_floor", NumpyForward(pipeline).predict(golden.X))):
        err = np.abs(np.asarray(pred, dtype=np.float64) - golden.expected)
        out[name] = {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
                     "rows": int(len(err))}
    return out
