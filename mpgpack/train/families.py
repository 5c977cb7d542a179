"""The model families `--model` chooses from, each inside the same preprocessing pipeline.

Preprocessing comes from the schema (so every artifact takes raw features): numbers are
scaled (median-imputed first where they may be missing), categories one-hot encoded on their
codes (most-frequent-imputed first where they may be missing; an unknown code -> all zeros).
Every estimator here has a lowering to TensorFlow ops (export/lowering*.py) and a skl2onnx
converter; the export refuses anything else by name before training starts.

Each family has a small grid (sklearn ParameterGrid format) searched by CV on the same folds;
its first point is the family's default. Grids are kept small: the whole `auto` search on the
MPG data takes well under a minute of CPU here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import ParameterGrid
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mpgpack.core.schema import CLASSIFICATION, Schema
from mpgpack.train.family_names import AUTO, CHOICES, FAMILY_NAMES

BASELINE = "linear"     # the family every report compares against


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    regressor: Callable       # (seed, **params) -> estimator
    classifier: Callable
    regression_grid: list[dict]
    classification_grid: list[dict]
    # Trees take numbers as they are: a split does not care about scale, and scaling would
    # make sklearn (float64 scaling, then float32) and a float32 artifact disagree by an ulp
    # right at a threshold, sending a row down the other branch.
    scaled: bool = True

    def grid(self, task: str) -> list[dict]:
        return self.classification_grid if task == CLASSIFICATION else self.regression_grid

    def estimator(self, task: str, seed: int, params: dict):
        make = self.classifier if task == CLASSIFICATION else self.regressor
        return make(seed, **params)


# lbfgs: full-batch and deterministic for a given seed, and a good fit on a few hundred rows.
MLP_DEFAULT = dict(hidden_layer_sizes=(16,), activation="relu", solver="lbfgs",
                   alpha=10.0, max_iter=2000, tol=1e-6)
# The MPG model's search (issue 8): lbfgs sizes x alphas, and adam with learning rates.
MLP_GRID: list[dict] = [
    {"solver": ["lbfgs"], "hidden_layer_sizes": [(8,), (16,), (32, 16)],
     "alpha": [3.0, 10.0, 30.0]},
    {"solver": ["adam"], "hidden_layer_sizes": [(16,)], "alpha": [1.0, 10.0],
     "learning_rate_init": [0.01, 0.03], "tol": [1e-4], "n_iter_no_change": [20]},
]
MLP_CLASSIFIER_GRID: list[dict] = [
    {"solver": ["lbfgs"], "hidden_layer_sizes": [(16,), (32, 16)], "alpha": [1.0, 10.0]},
]


def _mlp_regressor(seed, **p):
    return MLPRegressor(random_state=seed, **{**MLP_DEFAULT, **p})


def _mlp_classifier(seed, **p):
    return MLPClassifier(random_state=seed, **{**MLP_DEFAULT, **p})


# Tree sizes are bounded: every tree becomes tensors in the page's download and the Pi's file.
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("linear", "Ridge regression / logistic regression",
           lambda seed, **p: Ridge(random_state=seed, **{"alpha": 1.0, **p}),
           lambda seed, **p: LogisticRegression(random_state=seed, max_iter=5000,
                                                **{"C": 1.0, **p}),
           [{"alpha": [1.0, 0.1, 10.0]}], [{"C": [1.0, 0.1, 10.0]}]),
    Family("mlp", "multi-layer perceptron (scikit-learn MLP, lbfgs/adam)",
           _mlp_regressor, _mlp_classifier, MLP_GRID, MLP_CLASSIFIER_GRID),
    # Huber loss first: it resists outliers (mis-typed rows) and won the quick MPG trials.
    Family("gbm", "gradient-boosted trees (scikit-learn GradientBoosting)",
           lambda seed, **p: GradientBoostingRegressor(
               random_state=seed, **{"loss": "huber", "n_estimators": 300,
                                     "learning_rate": 0.05, "max_depth": 3,
                                     "subsample": 0.8, **p}),
           lambda seed, **p: GradientBoostingClassifier(
               random_state=seed, **{"n_estimators": 150, "learning_rate": 0.1,
                                     "max_depth": 3, "subsample": 0.8, **p}),
           [{"loss": ["huber", "squared_error"], "max_depth": [3, 2]}],
           [{"max_depth": [3, 2]}], scaled=False),
    Family("forest", "random forest (scikit-learn RandomForest)",
           lambda seed, **p: RandomForestRegressor(
               random_state=seed, n_jobs=1, **{"n_estimators": 100, "max_depth": 8,
                                               "min_samples_leaf": 2, **p}),
           lambda seed, **p: RandomForestClassifier(
               random_state=seed, n_jobs=1, **{"n_estimators": 100, "max_depth": 8,
                                               "min_samples_leaf": 2, **p}),
           [{"max_depth": [8, 6]}], [{"max_depth": [8, 6]}], scaled=False),
    Family("hgb", "histogram gradient boosting (scikit-learn HistGradientBoosting)",
           lambda seed, **p: HistGradientBoostingRegressor(
               random_state=seed, early_stopping=False, **{"max_iter": 200,
                                                           "learning_rate": 0.05,
                                                           "max_leaf_nodes": 15, **p}),
           lambda seed, **p: HistGradientBoostingClassifier(
               random_state=seed, early_stopping=False, **{"max_iter": 100,
                                                           "learning_rate": 0.1,
                                                           "max_leaf_nodes": 15, **p}),
           [{"loss": ["squared_error", "absolute_error"], "max_leaf_nodes": [15, 7]}],
           [{"max_leaf_nodes": [15, 7]}], scaled=False),
)}
if tuple(FAMILIES) != FAMILY_NAMES:          # the parsers list FAMILY_NAMES
    raise ImportError(f"families {tuple(FAMILIES)} differ from FAMILY_NAMES {FAMILY_NAMES}")
__all__ = ["AUTO", "BASELINE", "CHOICES", "FAMILIES", "candidates", "families_for",
           "make_pipeline", "make_preprocess"]


def candidates(family: str, task: str) -> list[dict]:
    """The family's settings to search: its default ({}) first, then the grid's other points."""
    out = [{}]
    for point in ParameterGrid(FAMILIES[family].grid(task)):
        if point not in out and {**point} != {}:
            out.append(dict(point))
    return out


def families_for(model: str) -> list[str]:
    if model == AUTO:
        return list(FAMILIES)
    if model not in FAMILIES:
        raise ValueError(f"unknown model family {model!r}; allowed: {', '.join(CHOICES)}")
    return [model]


def make_preprocess(schema: Schema, scaled: bool = True) -> ColumnTransformer:
    """Scale numbers if `scaled` (median-impute those that may be missing), one-hot categories
    (most-frequent-impute those that may be missing; unknown -> all zeros)."""
    numeric = [i for i, f in enumerate(schema) if not f.is_category and not f.nullable]
    nullable = [i for i, f in enumerate(schema) if not f.is_category and f.nullable]
    parts = []
    if numeric:
        parts.append(("numeric", StandardScaler() if scaled else "passthrough", numeric))
    if nullable:
        impute = SimpleImputer(strategy="median")
        parts.append(("nullable", Pipeline([("impute", impute), ("scale", StandardScaler())])
                      if scaled else impute, nullable))
    for i, f in enumerate(schema):
        if not f.is_category:
            continue
        onehot = OneHotEncoder(categories=[[float(c) for c in sorted(f.categories)]],
                               handle_unknown="ignore", sparse_output=False)
        step = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                         ("onehot", onehot)]) if f.nullable else onehot
        parts.append((f.name if f.name not in ("numeric", "nullable") else f"{f.name}_",
                      step, [i]))
    return ColumnTransformer(parts, remainder="drop")


def make_pipeline(schema: Schema, family: str, seed: int, params: dict | None = None) -> Pipeline:
    fam = FAMILIES[family]
    estimator = fam.estimator(schema.task, seed, params or {})
    step = "classifier" if schema.task == CLASSIFICATION else "regressor"
    return Pipeline([("preprocess", make_preprocess(schema, fam.scaled)), (step, estimator)])
