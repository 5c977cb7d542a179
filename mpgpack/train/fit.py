"""Fitting and scoring: the model chosen by K-fold CV on the training split (the linear
baseline scored on the same folds), then fitted, and the hold-out scored once."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from mpgpack.core.outputs import class_index
from mpgpack.core.schema import CLASSIFICATION
from mpgpack.train.data import Dataset
from mpgpack.train.families import AUTO, BASELINE, families_for, make_pipeline
from mpgpack.train.table import TableSpec
from mpgpack.train.tune import (N_JOBS, SearchResult, cross_validate, fold_score, json_params,
                                make_folds, predict_output, search, single_threaded_blas)

HOLDOUT_FRACTION = 0.2
CV_FOLDS = 5


@dataclass
class TrainedModel:
    pipeline: Pipeline          # the chosen model, every artifact is exported from it
    baseline: Pipeline          # the linear family's default on the same split, for comparison
    X_train: np.ndarray
    y_train: np.ndarray
    X_holdout: np.ndarray
    y_holdout: np.ndarray
    metrics: dict
    spec: TableSpec
    search: SearchResult | None = None                 # the tuning table, for the report
    oof_pred: np.ndarray | None = None                 # chosen model's out-of-fold predictions
    baseline_oof_pred: np.ndarray | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def family(self) -> str:
        return self.metrics["chosen"]["family"]


def scores(pred: np.ndarray, y: np.ndarray, spec: TableSpec) -> dict:
    """Regression: MAE, RMSE. Classification: accuracy, log-loss, per-class precision and
    recall, the confusion matrix (rows: true class, columns: predicted)."""
    if spec.task != CLASSIFICATION:
        err = pred - y
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}
    n = len(spec.classes)
    truth, guess = y.astype(int), class_index(pred)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (truth, guess), 1)
    per_class = {}
    for c, label in enumerate(spec.classes):
        predicted, actual = confusion[:, c].sum(), confusion[c].sum()
        per_class[label] = {"precision": float(confusion[c, c] / predicted) if predicted else None,
                            "recall": float(confusion[c, c] / actual) if actual else None,
                            "support": int(actual)}
    return {"accuracy": float(np.mean(truth == guess)),
            "log_loss": fold_score(pred, y, CLASSIFICATION),
            "per_class": per_class, "confusion": confusion.tolist()}


def _entry(score, spec: TableSpec, y_train: np.ndarray) -> dict:
    return {"family": score.family, "params": json_params(score.params),
            "cv_mean": score.mean, "cv_std": score.std,
            "cv_folds": [float(v) for v in score.fold_score],
            "cv": _headline(scores(score.oof_pred, y_train, spec)),
            "cpu_seconds": round(score.cpu_seconds, 2)}


def _headline(s: dict) -> dict:
    """The scores a table row shows (no per-class block)."""
    return {k: v for k, v in s.items() if k in ("mae", "rmse", "accuracy", "log_loss")}


def _fit(pipeline: Pipeline, X, y) -> Pipeline:
    with warnings.catch_warnings(), single_threaded_blas():
        # A fit that stops at max_iter is still a valid model; the warning would only be noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X, y)


def train_model(ds: Dataset, spec: TableSpec, seed: int, model: str = AUTO,
                grid: dict[str, list[dict]] | None = None, n_jobs: int = N_JOBS) -> TrainedModel:
    """Splits, searches the families `model` names on the training split's folds, fits the
    chosen one, scores the hold-out once. `grid` may replace a family's candidates (tests)."""
    schema, task = spec.schema, spec.task
    stratify = ds.y if task == CLASSIFICATION else None
    X_tr, X_ho, y_tr, y_ho = train_test_split(ds.X, ds.y, test_size=HOLDOUT_FRACTION,
                                              random_state=seed, stratify=stratify)
    folds = make_folds(y_tr, CV_FOLDS, seed, task)
    families = families_for(model)
    result = search(schema, families, X_tr, y_tr, folds, seed, n_jobs, grid)
    base_score = next((c for c in result.candidates if c.family == BASELINE and not c.params),
                      None)
    if base_score is None:
        base_score = cross_validate([make_pipeline(schema, BASELINE, seed)], X_tr, y_tr, folds,
                                    task, len(spec.classes), n_jobs=1)[0]
        base_score.family = BASELINE
    best = result.best
    chosen = _fit(make_pipeline(schema, best.family, seed, best.params), X_tr, y_tr)
    baseline = _fit(make_pipeline(schema, BASELINE, seed), X_tr, y_tr)
    # The hold-out is touched here, once, by the chosen model (and by the baseline beside it).
    score_name = result.score
    metrics = {
        "task": task, "score": score_name,
        "split": {"train_rows": int(len(y_tr)), "holdout_rows": int(len(y_ho)),
                  "holdout_fraction": HOLDOUT_FRACTION, "cv_folds": len(folds), "seed": seed,
                  "stratified": task == CLASSIFICATION},
        "chosen": {**_entry(best, spec, y_tr), "estimator": type(chosen[-1]).__name__,
                   "holdout": scores(predict_output(chosen, X_ho, task), y_ho, spec)},
        "baseline": {**_entry(base_score, spec, y_tr), "estimator": type(baseline[-1]).__name__,
                     "holdout": scores(predict_output(baseline, X_ho, task), y_ho, spec)},
        "improvement_over_baseline": float(1.0 - best.mean / base_score.mean)
        if base_score.mean else 0.0,
        "tuning": {
            "method": f"{len(folds)}-fold CV {score_name.replace('_', '-')} on the training "
                      "split only; the same folds for every candidate and the baseline; lowest "
                      "mean wins (ties to the earlier candidate); the hold-out is scored once, "
                      "by the chosen model",
            "model": model, "families": families,
            "candidates": [_entry(c, spec, y_tr) for c in result.candidates],
            "chosen": result.chosen,
            "seconds": round(result.seconds, 1), "cpu_seconds": round(result.cpu_seconds, 1),
            "n_jobs": n_jobs,
        },
    }
    return TrainedModel(chosen, baseline, X_tr, y_tr, X_ho, y_ho, metrics, spec, result,
                        best.oof_pred, base_score.oof_pred)


def describe(pipeline: Pipeline) -> str:
    """"Pipeline(ColumnTransformer(StandardScaler[5]; ...), GradientBoostingRegressor)"."""
    pre, est = pipeline[0], pipeline[-1]
    parts = []
    for name, trans, cols in pre.transformers:
        if trans == "drop":
            continue
        inner = ("passthrough" if trans == "passthrough" else
                 " + ".join(type(s).__name__ for _, s in trans.steps)
                 if isinstance(trans, Pipeline) else type(trans).__name__)
        parts.append(f"{inner} on {len(cols)} column{'s' if len(cols) != 1 else ''}"
                     if len(cols) != 1 else f"{inner}({name})")
    return f"Pipeline(ColumnTransformer({'; '.join(parts)}), {type(est).__name__})"

