"""The benchmark's hand-written numpy floor: the same output as the pipeline for MLP and linear
models (regressor or classifier), and "not applicable" (never a failure) for tree ensembles."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor

from mpgpack.bench.numpy_floor import floor_for
from mpgpack.core.schema import Feature, Schema
from mpgpack.train.families import make_preprocess
from sklearn.pipeline import Pipeline


def _data(classes: int | None):
    schema = Schema((Feature("a", "", "", "number", 0, 10),
                     Feature("b", "", "", "number", 0, 10, nullable=True),
                     Feature("c", "", "", "category", 0, 2, integer=True, nullable=True,
                             categories={0: "x", 1: "y", 2: "z"})))
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0, 10, 300), rng.uniform(0, 10, 300),
                         rng.integers(0, 3, 300)]).astype(np.float32)
    X[rng.random(300) < 0.1, 1] = np.nan
    X[rng.random(300) < 0.1, 2] = np.nan
    y = X[:, 0] + np.nan_to_num(X[:, 2])
    return schema, X, (y if classes is None else np.digitize(y, np.linspace(0, 12, classes + 1)[1:-1]))


@pytest.mark.parametrize("estimator, classes", [
    (Ridge(), None), (MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300, random_state=0), None),
    (LogisticRegression(max_iter=2000), 3), (LogisticRegression(max_iter=2000), 2),
    (MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", max_iter=300, random_state=0), 3)])
def test_floor_matches_the_pipeline(estimator, classes):
    schema, X, y = _data(classes)
    pipe = Pipeline([("preprocess", make_preprocess(schema)), ("model", estimator)]).fit(X, y)
    floor, why = floor_for(pipe)
    assert floor is not None, why
    want = pipe.predict_proba(X) if classes else pipe.predict(X)[:, None]
    np.testing.assert_allclose(floor.run(X), want, atol=1e-4)


def test_floor_is_not_applicable_to_trees():
    schema, X, y = _data(None)
    pipe = Pipeline([("preprocess", make_preprocess(schema, scaled=False)),
                     ("model", GradientBoostingRegressor(n_estimators=5))]).fit(X, y)
    floor, why = floor_for(pipe)
    assert floor is None and why.startswith("not applicable") and "GradientBoostingRegressor" in why
