"""TFLite from the lowered SavedModel: float32, float16 weights, dynamic-range int8 weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

# name -> (file name, how the converter is set up)
VARIANTS = {
    "tflite_float32": "model.tflite",
    "tflite_float16": "model_float16.tflite",
    "tflite_int8": "model_int8.tflite",
}


def _converter(saved_model: Path, variant: str) -> tf.lite.TFLiteConverter:
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    # Builtin ops only: the LiteRT interpreter on the device has no TF (Flex) ops.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "tflite_float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "tflite_int8":
        # Dynamic-range quantization: int8 weights, float activations, no calibration data.
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv


def export_tflite(saved_model: Path, out_dir: Path) -> dict[str, Path]:
    paths = {}
    for variant, filename in VARIANTS.items():
        path = out_dir / filename
        path.write_bytes(_converter(saved_model, variant).convert())
        paths[variant] = path
    return paths


def weight_dtypes(path: Path) -> dict[str, int]:
    """How many constant tensors of each dtype the model stores: shows what a variant quantized.

    The converter leaves a weight tensor in float32 when it has fewer than 1024 elements, so on
    a small network the "int8" variant may hold no int8 weights at all; the manifest says so.
    """
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    counts: dict[str, int] = {}
    for t in interp.get_tensor_details():
        try:
            interp.get_tensor(t["index"])  # only constant tensors hold data before invoke
        except ValueError:
            continue
        name = np.dtype(t["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return counts
