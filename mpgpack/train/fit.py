"""Fitting and scoring: the MLP's settings chosen by 5-fold CV on the training split (with the
Ridge baseline on the same folds), then the chosen model fitted and the hold-out scored once."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mpgpack.train.data import Dataset
from mpgpack.train.model import RIDGE_PARAMS, make_mlp_pipeline, make_ridge_pipeline
from mpgpack.train.tune import (N_JOBS, SearchResult, cross_validate, json_params, make_folds,
                        search_mlp, single_threaded_blas)

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
    search: SearchResult | None = None                 # the tuning table, for the report
    oof_pred: np.ndarray | None = None                 # chosen MLP's out-of-fold CV predictions
    ridge_oof_pred: np.ndarray | None = field(default=None, repr=False)


def _holdout(pipeline: Pipeline, X, y) -> dict:
    err = pipeline.predict(X) - y
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}


def _cv_block(score) -> dict:
    return {"cv_mae_mean": score.mean, "cv_mae_std": score.std,
            "cv_mae_folds": [float(v) for v in score.fold_mae]}


def train_model(ds: Dataset, seed: int, grid: list[dict] | None = None,
                n_jobs: int = N_JOBS) -> TrainedModel:
    """Splits, tunes the MLP on the training split, fits the chosen settings, scores the hold-out.

    `grid` defaults to mpgpack.train.tune.MLP_GRID; pass `[]` to skip the search and train the untuned
    default (a quick fit, e.g. for tests that only need some fitted pipeline).
    """
    X_tr, X_ho, y_tr, y_ho = train_test_split(ds.X, ds.y, test_size=HOLDOUT_FRACTION,
                                              random_state=seed)
    folds = make_folds(len(y_tr), CV_FOLDS, seed)
    search = search_mlp(X_tr, y_tr, folds, seed, grid, n_jobs)
    ridge_cv = cross_validate([make_ridge_pipeline(seed)], X_tr, y_tr, folds, n_jobs=1)[0]
    best = search.best
    with warnings.catch_warnings(), single_threaded_blas():
        # A fit that stops at max_iter is still a valid model; the warning would only be noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = make_mlp_pipeline(seed, **best.params).fit(X_tr, y_tr)
        ridge = make_ridge_pipeline(seed).fit(X_tr, y_tr)
    # The hold-out is touched here, once, by the chosen model (and by the baseline beside it).
    default = search.candidates[search.default]
    metrics = {
        "split": {"train_rows": int(len(y_tr)), "holdout_rows": int(len(y_ho)),
                  "holdout_fraction": HOLDOUT_FRACTION, "cv_folds": CV_FOLDS, "seed": seed},
        "mlp": {"params": json_params(best.params), **_cv_block(best),
                "holdout": _holdout(mlp, X_ho, y_ho), "n_iter": int(mlp[-1].n_iter_)},
        "ridge_baseline": {"params": RIDGE_PARAMS, **_cv_block(ridge_cv),
                           "holdout": _holdout(ridge, X_ho, y_ho)},
        "cv_mae_improvement_over_ridge": float(1.0 - best.mean / ridge_cv.mean),
        "tuning": {
            "method": f"Grid search, {CV_FOLDS}-fold CV MAE on the training split only; the "
                      "same folds for every candidate and the Ridge baseline; lowest mean wins "
                      "(ties to the earlier candidate); the hold-out is scored once, by the "
                      "chosen model",
            "candidates": [{"params": json_params(c.params), **_cv_block(c),
                            "cpu_seconds": round(c.cpu_seconds, 2)} for c in search.candidates],
            "chosen": search.chosen,
            "default": search.default,
            "default_cv_mae_mean": default.mean,
            "chosen_vs_default_cv_mae": float(best.mean - default.mean),
            "search_seconds": round(search.seconds, 1),
            "search_cpu_seconds": round(search.cpu_seconds, 1),
            "n_jobs": n_jobs,
        },
    }
    return TrainedModel(mlp, ridge, X_tr, y_tr, X_ho, y_ho, metrics, search, best.oof_pred,
                        ridge_cv.oof_pred)
