"""What POST /predict answers per row, from what the manifest says the model's output is.

A regressor's row is {"<target>": value, "warnings": [...]}: the key is the target column's
name ("mpg" for the MPG model, so its answers are unchanged). A classifier's row is
{"class": "<label>", "probabilities": {"<label>": p, ...}, "warnings": [...]}, the class being
the core's one class rule (`mpgpack.core.outputs.class_index`: the highest probability, the
first on a tie), as in every other target.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mpgpack.core.outputs import class_index
from mpgpack.core.schema import Schema


class Answers:
    """`output(predictor, X)`: the model's output for the rows (what the prediction log and
    the V2 paths see); `rows(output, warnings)`: the friendly answer of each row."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.key = schema.target
        self.output: Callable[[Any, np.ndarray], np.ndarray]
        self.rows: Callable[[np.ndarray, list], list[dict]]
        if schema.is_classifier:
            self.classes = list(schema.classes)
            self._labels = np.array(self.classes, dtype=object)
            self.output, self.rows = self._probabilities, self._class_rows
        else:
            # The regressor's path is the MPG model's hot path: a [N] vector, one dict a row.
            self.output, self.rows = self._values, self._value_rows

    def logged(self, output: np.ndarray) -> np.ndarray:
        """The whole output [N, K] as `output` gives it: a regressor's column, a classifier's
        probabilities (so the prediction log writes the same for V2 as for /predict)."""
        return output if self.schema.is_classifier else output[:, 0]

    @staticmethod
    def _values(predictor, X: np.ndarray) -> np.ndarray:
        return predictor.predict(X)

    @staticmethod
    def _probabilities(predictor, X: np.ndarray) -> np.ndarray:
        return predictor.run(X)

    def _value_rows(self, pred: np.ndarray, warnings: list) -> list[dict]:
        key = self.key
        return [{key: p, "warnings": w} for p, w in zip(pred, warnings)]

    def _class_rows(self, probs: np.ndarray, warnings: list) -> list[dict]:
        # numpy float32 scalars: orjson writes them as float32 (0.97, not 0.9700000286102295)
        labels = self._labels[class_index(probs)].tolist()
        classes = self.classes
        return [{"class": label, "probabilities": dict(zip(classes, p)), "warnings": w}
                for label, p, w in zip(labels, probs, warnings)]
