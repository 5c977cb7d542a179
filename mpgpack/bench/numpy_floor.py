"""A hand-written numpy forward pass of the same fitted pipeline: the floor to compare runtimes to.

It reads the fitted parameters once and does only the arithmetic the model needs, so it shows
what a runtime's own per-call overhead costs on top of the maths. Written for the pipelines
whose maths is a few matrix products: the preprocessing mpgpack builds (scalers, imputers,
one-hot) before an MLP or a linear model, regressor or classifier. For anything else (tree
ensembles) `floor_for` says why not, and the benchmark reports the floor as not applicable.
"""
from __future__ import annotations

import numpy as np


class NotApplicable(Exception):
    """This pipeline has no hand-written floor; the message says why (shown in the report)."""


def _expit(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return z / z.sum(axis=1, keepdims=True)


ACTIVATIONS = {"relu": lambda h: np.maximum(h, 0, out=h), "tanh": np.tanh,
               "logistic": _expit, "identity": lambda h: h}


def _steps(trans) -> list:
    """A transformer (or a Pipeline of them) as its list of fitted steps."""
    return [s for _, s in trans.steps] if hasattr(trans, "steps") else [trans]


def _column_op(trans, cols):
    """f(X) -> float32 [N, k] for one ColumnTransformer part."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    cols = np.asarray(cols, dtype=int)
    fill = mean = inv = cats = None
    for step in _steps(trans):
        if (isinstance(step, str) and step == "passthrough") or (
                isinstance(step, FunctionTransformer) and step.func is None):  # fitted passthrough
            continue
        if isinstance(step, SimpleImputer):
            fill = step.statistics_.astype(np.float32)
        elif isinstance(step, StandardScaler):
            mean = (step.mean_ if step.with_mean else np.zeros(len(cols))).astype(np.float32)
            inv = (1 / step.scale_ if step.with_std else np.ones(len(cols))).astype(np.float32)
        elif isinstance(step, OneHotEncoder) and len(cols) == 1 and step.drop is None:
            cats = step.categories_[0].astype(np.float32)
        else:
            raise NotApplicable(f"no hand-written numpy step for {type(step).__name__}")

    def op(X):
        x = X[:, cols]
        if fill is not None:
            x = np.where(np.isnan(x), fill, x)
        if cats is not None:
            return (x == cats).astype(np.float32)      # unknown -> all zeros, as handle_unknown
        if mean is not None:
            x = (x - mean) * inv
        return x
    return op


class NumpyForward:
    runtime = "numpy (hand-written)"

    def __init__(self, pipeline):
        from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        ct, est = pipeline.steps[0][1], pipeline.steps[-1][1]
        if len(pipeline.steps) != 2 or not hasattr(ct, "transformers_"):
            raise NotApplicable("the pipeline is not preprocessing + one estimator")
        self.classifier = hasattr(est, "classes_")
        if isinstance(est, (MLPRegressor, MLPClassifier)):
            self.layers = [(w.astype(np.float32), b.astype(np.float32))
                           for w, b in zip(est.coefs_, est.intercepts_)]
            self.hidden, self.out_act = ACTIVATIONS[est.activation], est.out_activation_
        elif isinstance(est, (Ridge, LinearRegression, LogisticRegression)):
            coef = np.atleast_2d(est.coef_).astype(np.float32)
            self.layers = [(coef.T.copy(), np.atleast_1d(est.intercept_).astype(np.float32))]
            self.hidden = None
            self.out_act = ("identity" if not self.classifier else
                            "logistic" if coef.shape[0] == 1 else "softmax")
        else:
            raise NotApplicable(f"no hand-written numpy floor for {type(est).__name__} "
                                "(only MLP and linear models are a few matrix products)")
        self.parts = [_column_op(t, c) for _, t, c in ct.transformers_
                      if not (isinstance(t, str) and t == "drop") and len(c)]
        self.version = np.__version__

    def run(self, X: np.ndarray) -> np.ndarray:
        """The whole output: a regressor's [N, 1], a classifier's probabilities [N, C]."""
        h = np.concatenate([op(X) for op in self.parts], axis=1)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = self.hidden(h)
        if self.out_act == "softmax":
            return _softmax(h)
        if self.out_act == "logistic":
            p = _expit(h)
            return np.concatenate([1 - p, p], axis=1) if self.classifier else p
        return h

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What the latency section times: a regressor's [N], a classifier's probabilities."""
        out = self.run(X)
        return out if self.classifier else out[:, 0]


def floor_for(pipeline) -> tuple[NumpyForward | None, str]:
    """(the floor, "") or (None, why it does not apply)."""
    try:
        return NumpyForward(pipeline), ""
    except NotApplicable as exc:
        return None, f"not applicable: {exc}"
