"""What a user of each peer server writes to serve model.onnx: run inside that peer's own venv
(never imported by mpgpack; each file imports only its framework, numpy and onnxruntime)."""
