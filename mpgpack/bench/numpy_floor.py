"""A hand-written numpy forward pass of the same fitted pipeline: the floor to compare runtimes to.

It reads the fitted parameters once and does only the arithmetic the model needs, so it shows
what a runtime's own per-call overhead costs on top of the maths.
"""
from __future__ import annotations

import numpy as np


class NumpyForward:
    runtime = "numpy (hand-written)"

    def __init__(self, pipeline):
        ct = pipeline.named_steps["preprocess"]
        mlp = pipeline.named_steps["regressor"]
        if mlp.activation != "relu":
            raise ValueError(f"numpy floor implements relu only, not {mlp.activation}")
        parts = {name: (trans, cols) for name, trans, cols in ct.transformers_}
        num_sc, num_cols = parts["numeric"]
        (imp, hp_sc), hp_cols = (parts["nullable"][0].named_steps["impute"],
                                 parts["nullable"][0].named_steps["scale"]), parts["nullable"][1]
        enc, origin_cols = parts["origin"]
        self.num_cols = np.asarray(num_cols)
        self.num_mean, self.num_inv = num_sc.mean_.astype(np.float32), (1 / num_sc.scale_).astype(np.float32)
        self.hp_col = int(hp_cols[0])
        self.hp_fill = np.float32(imp.statistics_[0])
        self.hp_mean, self.hp_inv = np.float32(hp_sc.mean_[0]), np.float32(1 / hp_sc.scale_[0])
        self.origin_col = int(origin_cols[0])
        self.origin_cats = enc.categories_[0].astype(np.float32)
        self.layers = [(w.astype(np.float32), b.astype(np.float32))
                       for w, b in zip(mlp.coefs_, mlp.intercepts_)]
        self.version = np.__version__

    def predict(self, X: np.ndarray) -> np.ndarray:
        hp = X[:, self.hp_col]
        hp = np.where(np.isnan(hp), self.hp_fill, hp)
        h = np.concatenate([
            (X[:, self.num_cols] - self.num_mean) * self.num_inv,
            ((hp - self.hp_mean) * self.hp_inv)[:, None],
            (X[:, self.origin_col, None] == self.origin_cats).astype(np.float32),
        ], axis=1)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                np.maximum(h, 0, out=h)
        return h[:, 0]
