"""The two Python serving runtimes behind one small interface: run(X [N, F]) -> [N, K], the
model's one output tensor (K = 1 for a regressor, one probability per class for a classifier);
predict(X) -> [N], a regressor's values (column 0).

Each runtime is imported only when its runner is built, so the API needs no LiteRT and the
edge device needs no onnxruntime.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxRunner:
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        # One thread per session: the model is tiny, and the server scales with processes.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [self._session.get_outputs()[0].name]
        self.version = ort.__version__

    def run(self, X: np.ndarray) -> np.ndarray:
        return self._session.run(self._outputs, {self._input: X})[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.run(X)[:, 0]


class LiteRTRunner:
    runtime = "ai-edge-litert"

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter
        self._interp = Interpreter(model_path=str(path), num_threads=threads)
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._rows = -1

    @property
    def version(self) -> str:
        # Read on demand: importlib.metadata costs tens of ms of the edge runner's cold start.
        import importlib.metadata as md
        return md.version("ai-edge-litert")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.run(X)[:, 0]

    def run(self, X: np.ndarray) -> np.ndarray:
        if X.shape[0] != self._rows:  # re-plan only when the batch size changes
            self._interp.resize_tensor_input(self._in, list(X.shape))
            self._interp.allocate_tensors()
            self._rows = X.shape[0]
        self._interp.set_tensor(self._in, X)
        self._interp.invoke()
        return self._interp.get_tensor(self._out).copy()
