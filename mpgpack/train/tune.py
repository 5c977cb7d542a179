"""Choosing the model without fooling ourselves.

Every candidate (each family's small grid, mpgpack.train.families) is scored by K-fold CV on
the TRAINING split only, on the very same folds as every other candidate and as the baseline,
so the differences between rows of the table are differences between models, not between fold
draws. The hold-out split is not seen here at all: `mpgpack.train.fit` scores it once, with the
chosen model.

The score is what the model is judged by: MAE for a regressor (in the target's unit), log-loss
for a classifier (it rewards honest probabilities, which the targets show; accuracy is reported
beside it). Each family's default is a candidate, so the chosen model is never worse on these
folds than any family's default. The winner's CV score is still optimistic (it won a contest
on those folds); the hold-out score is the unbiased figure.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from mpgpack.core.schema import CLASSIFICATION, Schema
from mpgpack.train.families import candidates, make_pipeline

# Two worker processes: this is a 2-core machine, and each fit is single-threaded Python.
N_JOBS = max(1, min(2, os.cpu_count() or 1))
PROBABILITY_FLOOR = 1e-15       # log-loss of a probability of exactly 0 is infinite


@dataclass
class CVScore:
    """One model's K-fold result on the training split."""
    family: str
    params: dict               # the family's settings ({} = its default)
    fold_score: np.ndarray     # [K] MAE or log-loss, in fold order (lower is better)
    oof_pred: np.ndarray       # [n_train] values or [n_train, C] probabilities, each row
                               # predicted by the fold model that did not see it
    cpu_seconds: float         # summed fit+predict CPU time over the folds (load-independent)

    @property
    def mean(self) -> float:
        return float(self.fold_score.mean())

    @property
    def std(self) -> float:
        return float(self.fold_score.std())


@dataclass
class SearchResult:
    candidates: list[CVScore]  # family by family, each family's default first
    chosen: int
    folds: list[tuple[np.ndarray, np.ndarray]]
    seconds: float             # wall-clock time of the whole search
    score: str                 # "mae" or "log_loss"

    @property
    def cpu_seconds(self) -> float:
        return float(sum(c.cpu_seconds for c in self.candidates))

    @property
    def best(self) -> CVScore:
        return self.candidates[self.chosen]

    def best_of(self, family: str) -> CVScore | None:
        mine = [c for c in self.candidates if c.family == family]
        return min(mine, key=lambda c: c.mean) if mine else None


def single_threaded_blas():
    """One BLAS thread for these tiny matrices. More threads only spin and fight over the
    cores: on this 2-core machine under load an in-process fit was measured 20x slower with
    OpenBLAS's default threads. (joblib's worker processes already limit themselves.)"""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


def make_folds(y: np.ndarray, k: int, seed: int, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The one set of folds every candidate and the baseline are scored on (stratified by
    class for a classifier, so every fold sees every class)."""
    if task == CLASSIFICATION:
        smallest = int(np.bincount(y.astype(int)).min())
        k = max(2, min(k, smallest))
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros((len(y), 1)), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros((len(y), 1))))


def predict_output(model, X: np.ndarray, task: str) -> np.ndarray:
    """What the artifacts compute: values [N] or class probabilities [N, C]."""
    return model.predict_proba(X) if task == CLASSIFICATION else model.predict(X)


def fold_score(pred: np.ndarray, y: np.ndarray, task: str) -> float:
    if task == CLASSIFICATION:
        p = np.clip(pred[np.arange(len(y)), y.astype(int)], PROBABILITY_FLOOR, 1.0)
        return float(-np.mean(np.log(p)))
    return float(np.mean(np.abs(pred - y)))


def _fit_fold(pipeline: Pipeline, X, y, train_idx, test_idx, task: str, n_classes: int):
    # Usually runs in a worker process, where the caller's warning filters do not apply: a
    # fit that stops at max_iter is still a valid candidate and is scored like any other.
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.process_time()
        model = clone(pipeline).fit(X[train_idx], y[train_idx])
        pred = predict_output(model, X[test_idx], task)
        if task == CLASSIFICATION and pred.shape[1] != n_classes:   # a class absent in a fold
            full = np.zeros((len(pred), n_classes))
            full[:, model.classes_.astype(int)] = pred
            pred = full
        return pred, time.process_time() - t0


def cross_validate(pipelines: list[Pipeline], X: np.ndarray, y: np.ndarray, folds,
                   task: str, n_classes: int = 0, n_jobs: int = N_JOBS) -> list[CVScore]:
    """Scores every pipeline on the same folds; all (pipeline, fold) fits run in one pool."""
    from joblib import Parallel, delayed
    jobs = [(p, f) for p in range(len(pipelines)) for f in range(len(folds))]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_fold)(pipelines[p], X, y, *folds[f], task, n_classes) for p, f in jobs)
    scores = []
    for p in range(len(pipelines)):
        oof = np.full((len(y), n_classes) if task == CLASSIFICATION else len(y), np.nan)
        scores_f = np.empty(len(folds))
        seconds = 0.0
        for f, (_, test_idx) in enumerate(folds):
            pred, sec = results[p * len(folds) + f]
            oof[test_idx] = pred
            scores_f[f] = fold_score(pred, y[test_idx], task)
            seconds += sec
        scores.append(CVScore("", {}, scores_f, oof, seconds))
    return scores


def search(schema: Schema, families: list[str], X: np.ndarray, y: np.ndarray, folds,
           seed: int, n_jobs: int = N_JOBS, grid: dict[str, list[dict]] | None = None
           ) -> SearchResult:
    """Scores every candidate of `families` on `folds`; the chosen one has the lowest mean CV
    score. Ties go to the earlier candidate (family order, default first), so the result
    depends on nothing but the data, the seed and the grids. `grid` may replace a family's
    candidates ({family: [params, ...]}, e.g. [{}] for its default alone)."""
    todo = [(fam, p) for fam in families
            for p in (grid or {}).get(fam, candidates(fam, schema.task))]
    t0 = time.perf_counter()
    scores = cross_validate([make_pipeline(schema, fam, seed, p) for fam, p in todo], X, y,
                            folds, schema.task, len(schema.classes), n_jobs)
    for s, (fam, p) in zip(scores, todo):
        s.family, s.params = fam, p
    chosen = min(range(len(scores)), key=lambda i: (scores[i].mean, i))
    return SearchResult(scores, chosen, folds, time.perf_counter() - t0,
                        "log_loss" if schema.task == CLASSIFICATION else "mae")


def json_params(params: dict) -> dict:
    """Settings as JSON values (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
