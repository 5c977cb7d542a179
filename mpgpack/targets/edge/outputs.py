"""What the edge runner writes per predicted row, from what the manifest says the output is.

A regressor: one column (CSV) or key (JSON lines) named after its target ("mpg" for the MPG
model, as before). A classifier: the class label under the target's name, then its class
probabilities: one CSV column per class named `p_<label>`, or a JSON object
{"probabilities": {"<label>": p, ...}}. The class is the core's one rule
(`mpgpack.core.outputs.class_index`: the highest probability, the first on a tie).
Numbers are written as the shortest text that round-trips the float32 value.
Standard library + numpy only: this runs on the device.
"""
from __future__ import annotations

import json

import numpy as np

from mpgpack.core.outputs import class_index
from mpgpack.core.schema import Schema

PROBABILITY_PREFIX = "p_"


class OutputWriter:
    """header(): the columns appended to the CSV header; csv_rows / json_rows: the lines."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.target = schema.target
        self.classes = list(schema.classes)
        self._key = json.dumps(self.target)          # the JSON key, quoted and escaped once
        self._labels_json = np.array([json.dumps(c) for c in self.classes], dtype=object)
        self._labels_csv = np.array([_csv_cell(c) for c in self.classes], dtype=object)

    def header(self) -> str:
        columns = [self.target]
        if self.schema.is_classifier:
            columns += [PROBABILITY_PREFIX + c for c in self.classes]
        return ",".join(map(_csv_cell, columns))

    def csv_rows(self, raw: list[str], output: np.ndarray) -> str:
        """Each input row with the prediction's columns appended. `output`: [N, K]."""
        if not self.schema.is_classifier:
            return "".join(f"{r},{v}\n" for r, v in zip(raw, output[:, 0].astype(str)))
        labels = self._labels_csv[class_index(output)]
        probs = [",".join(p) for p in output.astype(str).tolist()]
        return "".join(f"{r},{c},{p}\n" for r, c, p in zip(raw, labels, probs))

    def json_rows(self, lines: list[int], output: np.ndarray) -> str:
        """{"line": n, "<target>": value} or {"line": n, "<target>": "label",
        "probabilities": {"<label>": p, ...}} per row."""
        key = self._key
        if not self.schema.is_classifier:
            return "".join(f'{{"line": {n}, {key}: {v}}}\n'
                           for n, v in zip(lines, output[:, 0].astype(str)))
        labels = self._labels_json[class_index(output)]
        names = self._labels_json.tolist()
        probs = ["{" + ", ".join(f"{c}: {p}" for c, p in zip(names, row)) + "}"
                 for row in output.astype(str).tolist()]
        return "".join(f'{{"line": {n}, {key}: {c}, "probabilities": {p}}}\n'
                       for n, c, p in zip(lines, labels, probs))


def _csv_cell(text: str) -> str:
    """A label or column name as one CSV field (quoted when it holds a comma or a quote)."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
