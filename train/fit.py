"""Fitting and scoring: 5-fold CV on the training split, hold-out scored once, Ridge beside it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline

from train.data import Dataset
from train.model import MLP_PARAMS, RIDGE_PARAMS, make_mlp_pipeline, make_ridge_pipeline

HOLDOUT_FRACTION = 0.2
CV_FOLDS = 5


@dataclass
class TrainedModel:
    pipeline: Pipeline          # the MLP pipeline that every artifact is exported from
    baseline: Pipeline          # Ridge on the same split, for comparison only
    X_train: np.ndarray
    y_train: np.ndarray
    X_holdout: np.ndarray
    y_holdout: np.ndarray
    metrics: dict


def _cv_mae(pipeline: Pipeline, X, y, seed: int) -> np.ndarray:
    folds = KFold(CV_FOLDS, shuffle=True, random_state=seed)
    return -cross_val_score(pipeline, X, y, cv=folds, scoring="neg_mean_absolute_error")


def _holdout(pipeline: Pipeline, X, y) -> dict:
    err = pipeline.predict(X) - y
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}


def train_model(ds: Dataset, seed: int) -> TrainedModel:
    X_tr, X_ho, y_tr, y_ho = train_test_split(ds.X, ds.y, test_size=HOLDOUT_FRACTION,
                                              random_state=seed)
    with warnings.catch_warnings():
        # A fold that stops at max_iter is still scored; the warning would only be noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        cv_mlp = _cv_mae(make_mlp_pipeline(seed), X_tr, y_tr, seed)
        cv_ridge = _cv_mae(make_ridge_pipeline(seed), X_tr, y_tr, seed)
        mlp = make_mlp_pipeline(seed).fit(X_tr, y_tr)
        ridge = make_ridge_pipeline(seed).fit(X_tr, y_tr)
    improvement = 1.0 - cv_mlp.mean() / cv_ridge.mean()
    metrics = {
        "split": {"train_rows": int(len(y_tr)), "holdout_rows": int(len(y_ho)),
                  "holdout_fraction": HOLDOUT_FRACTION, "cv_folds": CV_FOLDS, "seed": seed},
        "mlp": {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in MLP_PARAMS.items()},
                "cv_mae_mean": float(cv_mlp.mean()), "cv_mae_std": float(cv_mlp.std()),
                "cv_mae_folds": [float(v) for v in cv_mlp],
                "holdout": _holdout(mlp, X_ho, y_ho), "n_iter": int(mlp[-1].n_iter_)},
        "ridge_baseline": {"params": RIDGE_PARAMS,
                           "cv_mae_mean": float(cv_ridge.mean()), "cv_mae_std": float(cv_ridge.std()),
                           "cv_mae_folds": [float(v) for v in cv_ridge],
                           "holdout": _holdout(ridge, X_ho, y_ho)},
        "cv_mae_improvement_over_ridge": float(improvement),
    }
    return TrainedModel(mlp, ridge, X_tr, y_tr, X_ho, y_ho, metrics)
