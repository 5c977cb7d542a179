"""Refusing, before any training, a model family that some format cannot carry.

Every step of every candidate pipeline must have a TensorFlow lowering (TFLite and TF.js are
built from it); skl2onnx converts every estimator the families offer. Checked on the unfitted
pipelines, by type: a family is refused by name in a second, not after minutes of search.
"""
from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from mpgpack.core.errors import UserError
from mpgpack.core.schema import Schema


def _steps(estimator):
    yield estimator
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _steps(step)
    elif isinstance(estimator, ColumnTransformer):
        for _, trans, _ in estimator.transformers:
            if trans not in ("drop", "passthrough"):
                yield from _steps(trans)


def check_families(schema: Schema, families: list[str], seed: int) -> None:
    from mpgpack.export.lowering import LOWERINGS
    from mpgpack.train.families import make_pipeline
    for family in families:
        for step in _steps(make_pipeline(schema, family, seed)):
            if type(step) not in LOWERINGS:
                supported = ", ".join(sorted(t.__name__ for t in LOWERINGS))
                raise UserError(f"model family {family!r} ({schema.task}) uses "
                                f"{type(step).__name__}, which has no lowering to TFLite/TF.js; "
                                f"supported steps: {supported}")
