"""The loaded model: a sha256-checked model.onnx in ONNX Runtime, self-tested on the golden set.

A service that starts must be a service that answers correctly, so loading does three things
before the first request: verify the ONNX file against the manifest, open it in ONNX Runtime
(one intra-op thread: the model is tiny and the server scales with worker processes), and run
the bundle's golden vectors through it. A bundle that fails any step is refused with one line.
"""
from __future__ import annotations

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.bundle import Bundle
from mpgpack.core.outputs import class_agreement
from mpgpack.core.runtimes import OnnxRunner
from mpgpack.core.schema import Schema


def golden_check(schema: Schema, output: np.ndarray, expected: np.ndarray,
                 tolerance: float) -> tuple[dict, str | None]:
    """(figures, None) when a runtime's whole output [N, K] matches golden.json's expected
    values ([N] for a regressor, [N][C] probabilities for a classifier) within the tolerance
    and, for a classifier, picks the same class on every row that is no tie; else
    (figures, what is wrong)."""
    expected = np.asarray(expected, dtype=np.float64).reshape(len(output), -1)
    err = np.abs(np.asarray(output, dtype=np.float64) - expected)
    worst = float(err.max()) if err.size else 0.0
    stats = {"rows": int(len(err)), "max_abs_error": worst, "tolerance": tolerance}
    if not worst <= tolerance:
        return stats, f"max abs error {worst:.2e} > tolerance {tolerance:g}"
    if schema.is_classifier:
        agreement = class_agreement(output, expected, tolerance)
        stats["class_agreement"] = agreement["class_agreement"]
        if agreement["decided_disagreements"]:
            return stats, f"{agreement['decided_disagreements']} rows predict another class"
    return stats, None


class Predictor:
    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.version: str = bundle.version
        self.name: str = bundle.manifest["model"].get("name", "mpg")
        self.io: dict = bundle.manifest["model"]["io"]
        self.schema = Schema.from_manifest(bundle.manifest)
        self.onnx_sha256: str = bundle.manifest["artifacts"]["onnx"]["sha256"]
        self._runner = OnnxRunner(bundle.artifact("onnx"), threads=1)
        self.runtime = f"onnxruntime {self._runner.version}"
        self.self_check = self._golden_check()

    def _golden_check(self) -> dict:
        golden = self.bundle.golden()
        stats, problem = golden_check(self.schema, self.run(golden.X), golden.expected,
                                      golden.tolerance)
        if problem:
            raise UserError(f"bundle {self.bundle.path}: model.onnx disagrees with golden.json "
                            f"({problem}); refusing to serve it")
        return stats

    def run(self, X: np.ndarray) -> np.ndarray:
        """float32 [N, F] (NaN = missing) -> float32 [N, K]: a regressor's values (K = 1) or
        a classifier's class probabilities (K = classes)."""
        return self._runner.run(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """A regressor's values, float32 [N]."""
        return self._runner.predict(X)
