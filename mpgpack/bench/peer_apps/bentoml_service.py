"""A BentoML service over ONNX Runtime: POST /predict {"rows": [[7 numbers], ...]}.

    MPG_ONNX=model.onnx MPG_WORKERS=2 bentoml serve bentoml_service:MPG --host 127.0.0.1 --port P
"""
import os

import bentoml
import numpy as np


@bentoml.service(workers=int(os.environ.get("MPG_WORKERS", "2")))
class MPG:
    def __init__(self):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1          # as mpgpack: one thread per worker process
        self.session = ort.InferenceSession(os.environ["MPG_ONNX"], opts,
                                            providers=["CPUExecutionProvider"])

    @bentoml.api
    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"features": rows.astype(np.float32, copy=False)})[0].ravel()
