"""In-process latency of sklearn, onnxruntime, LiteRT and a numpy floor, per batch size.

Each runner does what a user of that runtime would call for the model's answer: a regressor's
values, a classifier's class probabilities (predict_proba / the whole output tensor)."""
from __future__ import annotations

import pickle
import warnings

import numpy as np

from mpgpack.bench.answers import parity, schema_of
from mpgpack.bench.numpy_floor import floor_for
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

    def __init__(self, pipeline, classifier: bool = False):
        import sklearn
        self.pipeline, self.version = pipeline, sklearn.__version__
        self.predict = pipeline.predict_proba if classifier else pipeline.predict


class _WholeOutput:
    """A core runner whose predict() is its whole output (a classifier's probabilities)."""

    def __init__(self, runner):
        self.runtime, self.version, self.predict = runner.runtime, runner.version, runner.run


def runners(bundle: Bundle) -> tuple[dict, dict]:
    """({name: runner}, {name: why it was left out})."""
    pipeline = load_reference(bundle)
    classifier = schema_of(bundle).is_classifier
    wrap = _WholeOutput if classifier else (lambda r: r)
    out = {"sklearn": SklearnRunner(pipeline, classifier),
           "onnxruntime": wrap(OnnxRunner(bundle.artifact("onnx"))),
           "litert": wrap(LiteRTRunner(bundle.artifact("tflite_float32")))}
    floor, why = floor_for(pipeline)
    if floor is not None:
        out["numpy_floor"] = floor
    return out, ({} if floor is not None else {"numpy_floor": why})


def batch_of(X: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:n])


def latency(bundle: Bundle, quick: bool) -> dict:
    """{runtime: {batch: {median_us, p99_us, rows_per_s, ...}}}, warm-up excluded."""
    golden = bundle.golden()
    budget = 0.15 if quick else 0.6
    out = {}
    measured, _ = runners(bundle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, runner in measured.items():
            rows = {}
            for n in BATCHES:
                X = batch_of(golden.X, n)
                stats = time_calls(lambda: runner.predict(X), budget,
                                   min_reps=5 if n >= 10_000 else 20)
                stats["rows_per_s"] = n / (stats["median_us"] / 1e6)
                rows[str(n)] = stats
            out[name] = {"runtime": runner.runtime, "version": runner.version, "batches": rows}
    return out


def parity_inprocess(bundle: Bundle) -> tuple[dict, dict]:
    """sklearn on float32 input and the numpy floor (where it applies) against the float64
    reference; and {name: why not} for a path left out."""
    golden = bundle.golden()
    pipeline = load_reference(bundle)
    classifier = schema_of(bundle).is_classifier
    sk = pipeline.predict_proba(golden.X) if classifier else pipeline.predict(golden.X)
    out = {"sklearn_float32": parity(bundle, sk, "sklearn")}
    floor, why = floor_for(pipeline)
    if floor is None:
        return out, {"numpy_floor": why}
    out["numpy_floor"] = parity(bundle, floor.run(golden.X), "numpy")
    return out, {}
