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
from mpgpack.core.runtimes import OnnxRunner


class Predictor:
    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.version: str = bundle.version
        self.name: str = bundle.manifest["model"].get("name", "mpg")
        self.io: dict = bundle.manifest["model"]["io"]
        self.onnx_sha256: str = bundle.manifest["artifacts"]["onnx"]["sha256"]
        self._runner = OnnxRunner(bundle.artifact("onnx"), threads=1)
        self.runtime = f"onnxruntime {self._runner.version}"
        self.self_check = self._golden_check()

    def _golden_check(self) -> dict:
        golden = self.bundle.golden()
        err = np.abs(self.predict(golden.X).astype(np.float64) - golden.expected)
        worst = float(err.max())
        if not worst <= golden.tolerance:
            raise UserError(f"bundle {self.bundle.path}: model.onnx disagrees with golden.json "
                            f"(max abs error {worst:.2e} > tolerance {golden.tolerance:g}); "
                            "refusing to serve it")
        return {"rows": int(len(err)), "max_abs_error": worst, "tolerance": golden.tolerance}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """float32 [N, 7] (NaN = missing) -> float32 [N] MPG."""
        return self._runner.predict(X)
