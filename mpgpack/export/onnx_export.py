"""ONNX straight from the fitted pipeline with skl2onnx."""
from __future__ import annotations

from pathlib import Path

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from mpgpack.core.schema import INPUT_NAME, OUTPUT_NAME
from mpgpack.train.schema import N_FEATURES

TARGET_OPSET = 17  # supported by every onnxruntime of the last years, KServe and Triton included


def export_onnx(pipeline: Pipeline, path: Path, version: str) -> Path:
    onx = convert_sklearn(
        pipeline, name="mpg_model",
        initial_types=[(INPUT_NAME, FloatTensorType([None, N_FEATURES]))],
        final_types=[(OUTPUT_NAME, FloatTensorType([None, 1]))],
        target_opset={"": TARGET_OPSET, "ai.onnx.ml": 3},
    )
    onx.doc_string = f"Auto MPG regressor, mpgpack model version {version}"
    # skl2onnx lists the opset domains in set order, which changes with the process's string
    # hash seed: sort them so the same pipeline always gives the same bytes (and sha256).
    opsets = sorted(((o.domain, o.version) for o in onx.opset_import))
    del onx.opset_import[:]
    for domain, version_ in opsets:
        onx.opset_import.add(domain=domain, version=version_)
    path.write_bytes(onx.SerializeToString())
    return path
