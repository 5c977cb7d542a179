"""KServe Python ModelServer with a custom ONNX Runtime model (V1 and V2 REST).

    python kserve_model.py MODEL_ONNX --http_port P --workers 2 --enable_grpc false
"""
import sys
import uuid

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.model_server import parser


class MPG(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1          # as mpgpack: one thread per worker process
        self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    # With workers > 1 KServe pickles the model into each spawned worker: the session cannot
    # be pickled, so each worker opens its own.
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "session"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.load()

    def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):          # V2
            X = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
            y = self.session.run(None, {"features": X})[0]
            out = InferOutput(name="mpg", shape=list(y.shape), datatype="FP32", data=y)
            # binary_data_output (tritonclient's default): the answer in binary, as asked
            return InferResponse(model_name=self.name, infer_outputs=[out],
                                 response_id=payload.id or str(uuid.uuid4()),
                                 use_binary_outputs=payload.use_binary_outputs)
        X = np.asarray(payload["instances"], dtype=np.float32)     # V1
        return {"predictions": self.session.run(None, {"features": X})[0].ravel().tolist()}


if __name__ == "__main__":
    args, _ = parser.parse_known_args(sys.argv[2:])
    ModelServer(http_port=args.http_port, workers=args.workers, enable_grpc=False).start(
        [MPG("mpg", sys.argv[1])])
