"""What a model's output tensor means: a regressor's values, or a classifier's class.

One rule for every target (API, edge runner, page, parity): the predicted class is the index
of the highest probability, the first one on a tie (numpy's argmax; the page's loop does the
same). Standard library + numpy only: the device uses it too.
"""
from __future__ import annotations

import numpy as np


def class_index(probabilities: np.ndarray) -> np.ndarray:
    """int [N]: the predicted class of each row of [N, C] probabilities."""
    return np.argmax(np.asarray(probabilities), axis=1)


def class_agreement(pred: np.ndarray, expected: np.ndarray, tolerance: float) -> dict:
    """How often an artifact's class equals the reference's.

    A row whose two highest reference probabilities lie within 2 x tolerance is a tie: an
    artifact inside the tolerance may honestly pick either class there, so such rows are
    counted (`ties`) but a disagreement on them does not fail parity. Everywhere else an
    artifact within tolerance cannot disagree; `decided_disagreements` must be 0.
    """
    expected = np.asarray(expected, dtype=np.float64)
    agree = class_index(pred) == class_index(expected)
    top2 = np.sort(expected, axis=1)[:, -2:]
    tie = (top2[:, 1] - top2[:, 0]) <= 2 * tolerance
    return {"class_agreement": float(agree.mean()) if len(agree) else 1.0,
            "class_disagreements": int((~agree).sum()),
            "decided_disagreements": int((~agree & ~tie).sum()),
            "ties": int(tie.sum())}
