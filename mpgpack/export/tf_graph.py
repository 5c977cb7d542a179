"""The lowered pipeline as a tf.Module with a fixed [None, F] float32 signature, saved once.

The one output is named as the schema says: a regressor's [N, 1] values (named after its
target) or a classifier's [N, C] probabilities ("probabilities").
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from mpgpack.core.schema import (CLASSIFICATION, INPUT_NAME, OUTPUT_NAME, PROBABILITIES, REGRESSION,
                                 Schema)
from mpgpack.export.lowering import lower_pipeline


class LoweredModel(tf.Module):
    def __init__(self, pipeline: Pipeline, n_features: int, input_name: str, output_name: str,
                 n_outputs: int | None = None):
        super().__init__(name="model")
        fn = lower_pipeline(pipeline)

        def call(features):
            y = fn(features)
            if y.shape.rank == 1:          # a [N] prediction becomes the contract's [N, 1]
                y = y[:, tf.newaxis]
            if n_outputs is not None and y.shape[1] != n_outputs:
                raise ValueError(f"the lowered model has {y.shape[1]} output column(s), the "
                                 f"schema {n_outputs}")
            return {output_name: y}
        self.serve = tf.function(
            call, input_signature=[tf.TensorSpec([None, n_features], tf.float32, name=input_name)])


def io_names(pipeline: Pipeline, schema: Schema | None) -> tuple[int, str, str, int | None]:
    """(features, input name, output name, output columns or None if unknown) of the artifacts.

    Without a schema (older callers): the pipeline's own feature count, and the output named
    PROBABILITIES for a classifier, the MPG model's name for a regressor."""
    if schema is not None:
        return len(schema), schema.input_name, schema.output_name, \
            (schema.n_outputs if not schema.is_classifier or schema.classes else None)
    classifier = is_classifier(pipeline)
    return (pipeline.n_features_in_, INPUT_NAME, PROBABILITIES if classifier else OUTPUT_NAME,
            None if classifier else 1)


def task_of(pipeline: Pipeline, schema: Schema | None) -> str:
    """The schema's task; checked against the pipeline, so a mismatch stops the export."""
    classifier = is_classifier(pipeline)
    if schema is not None and schema.is_classifier != classifier:
        raise ValueError(f"the schema says {schema.task}, the pipeline's estimator is a "
                         f"{'classifier' if classifier else 'regressor'}")
    return CLASSIFICATION if classifier else REGRESSION


def save_saved_model(pipeline: Pipeline, out_dir: Path, schema: Schema | None = None) -> Path:
    """Writes a SavedModel (the common input of the TFLite and TF.js converters)."""
    task_of(pipeline, schema)
    module = LoweredModel(pipeline, *io_names(pipeline, schema))
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.serve})
    return out_dir
