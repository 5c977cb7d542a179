"""The lowered pipeline as a tf.Module with a fixed [None, 7] float32 signature, saved once."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from sklearn.pipeline import Pipeline

from mpgpack.export.lowering import lower_pipeline
from mpgpack.core.schema import INPUT_NAME, OUTPUT_NAME
from mpgpack.train.schema import N_FEATURES


class LoweredModel(tf.Module):
    def __init__(self, pipeline: Pipeline):
        super().__init__(name="mpg_model")
        self._fn = lower_pipeline(pipeline)

    @tf.function(input_signature=[tf.TensorSpec([None, N_FEATURES], tf.float32, name=INPUT_NAME)])
    def __call__(self, features):
        return {OUTPUT_NAME: self._fn(features)}


def save_saved_model(pipeline: Pipeline, out_dir: Path) -> Path:
    """Writes a SavedModel (the common input of the TFLite and TF.js converters)."""
    module = LoweredModel(pipeline)
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.__call__})
    return out_dir
