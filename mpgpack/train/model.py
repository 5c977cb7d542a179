"""The sklearn pipeline: preprocessing inside the model, so every artifact takes raw features."""
from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mpgpack.train.schema import NULLABLE_INDEX, NUMERIC_INDEX, ORIGIN_CATEGORIES, ORIGIN_INDEX

# The MLP's untuned default settings. Every build searches a small grid around them
# (train/tune.py, 5-fold CV on the training split) and the default is always a candidate.
# lbfgs: full-batch and deterministic for a given seed, and a good fit on 300-odd rows.
MLP_PARAMS = dict(hidden_layer_sizes=(16,), activation="relu", solver="lbfgs",
                  alpha=10.0, max_iter=2000, tol=1e-6)
RIDGE_PARAMS = dict(alpha=1.0)


def make_preprocess() -> ColumnTransformer:
    """Median-impute horsepower, scale every number, one-hot the origin (unknown -> all zeros)."""
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_INDEX)),
            ("nullable", Pipeline([("impute", SimpleImputer(strategy="median")),
                                   ("scale", StandardScaler())]), list(NULLABLE_INDEX)),
            ("origin", OneHotEncoder(categories=[list(map(float, ORIGIN_CATEGORIES))],
                                     handle_unknown="ignore", sparse_output=False),
             [ORIGIN_INDEX]),
        ],
        remainder="drop",
    )


def make_mlp_pipeline(seed: int, **overrides) -> Pipeline:
    params = {**MLP_PARAMS, **overrides}
    return Pipeline([("preprocess", make_preprocess()),
                     ("regressor", MLPRegressor(random_state=seed, **params))])


def make_ridge_pipeline(seed: int) -> Pipeline:
    return Pipeline([("preprocess", make_preprocess()),
                     ("regressor", Ridge(random_state=seed, **RIDGE_PARAMS))])
