"""Choosing the MLP's settings without fooling ourselves.

Every candidate of a small, fixed grid is scored by K-fold CV on the TRAINING split only, on
the very same folds as every other candidate and as the Ridge baseline, so the differences
between rows of the table are differences between settings, not between fold draws. The
hold-out split is not seen here at all: `mpgpack.train.fit` scores it once, with the chosen model.

The untuned default (`mpgpack.train.model.MLP_PARAMS`) is always a candidate, so the chosen model's
CV MAE can never be worse than the default's on the same folds. The winner's CV MAE is still
optimistic (it won a contest on those folds); the hold-out MAE is the unbiased figure.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, ParameterGrid
from sklearn.pipeline import Pipeline

from mpgpack.train.model import MLP_PARAMS, make_mlp_pipeline

# The search space, as overrides of MLP_PARAMS (sklearn ParameterGrid format: a list of
# sub-grids). lbfgs is full-batch and has no learning rate, so the learning rate is searched
# with adam, whose early stopping on the training loss needs a looser tolerance than lbfgs's.
# Kept small on purpose: 13 candidates x 5 folds take about 20 s of CPU on this machine.
MLP_GRID: list[dict] = [
    {"solver": ["lbfgs"], "hidden_layer_sizes": [(8,), (16,), (32, 16)],
     "alpha": [3.0, 10.0, 30.0]},
    {"solver": ["adam"], "hidden_layer_sizes": [(16,)], "alpha": [1.0, 10.0],
     "learning_rate_init": [0.01, 0.03], "tol": [1e-4], "n_iter_no_change": [20]},
]
# Two worker processes: this is a 2-core machine, and each fit is single-threaded Python.
N_JOBS = max(1, min(2, os.cpu_count() or 1))


@dataclass
class CVScore:
    """One model's K-fold result on the training split."""
    params: dict               # the MLP settings searched ({} for other models)
    fold_mae: np.ndarray       # [K], in fold order
    oof_pred: np.ndarray       # [n_train]: each row predicted by the fold model that did not see it
    cpu_seconds: float         # summed fit+predict CPU time over the folds (load-independent)

    @property
    def mean(self) -> float:
        return float(self.fold_mae.mean())

    @property
    def std(self) -> float:
        return float(self.fold_mae.std())


@dataclass
class SearchResult:
    candidates: list[CVScore]  # in grid order; candidates[default] is MLP_PARAMS
    chosen: int
    default: int
    folds: list[tuple[np.ndarray, np.ndarray]]
    seconds: float             # wall-clock time of the whole search

    @property
    def cpu_seconds(self) -> float:
        return float(sum(c.cpu_seconds for c in self.candidates))

    @property
    def best(self) -> CVScore:
        return self.candidates[self.chosen]


def single_threaded_blas():
    """One BLAS thread for these tiny matrices. More threads only spin and fight over the
    cores: on this 2-core machine under load an in-process fit was measured 20x slower with
    OpenBLAS's default threads. (joblib's worker processes already limit themselves.)"""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


def make_folds(n_rows: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The one set of folds every candidate and the baseline are scored on."""
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros((n_rows, 1))))


def candidate_params(grid: list[dict] | None = None) -> list[dict]:
    """Full MLP settings for every grid point, the untuned default first (and only once)."""
    out = [dict(MLP_PARAMS)]
    for point in ParameterGrid(grid if grid is not None else MLP_GRID):
        params = {**MLP_PARAMS, **point}
        if params not in out:
            out.append(params)
    return out


def _fit_fold(pipeline: Pipeline, X, y, train_idx, test_idx):
    # Usually runs in a worker process, where the caller's warning filters do not apply: a
    # fit that stops at max_iter is still a valid candidate and is scored like any other.
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.process_time()
        model = clone(pipeline).fit(X[train_idx], y[train_idx])
        pred = model.predict(X[test_idx])
        return pred, time.process_time() - t0


def cross_validate(pipelines: list[Pipeline], X: np.ndarray, y: np.ndarray,
                   folds: list[tuple[np.ndarray, np.ndarray]], n_jobs: int = N_JOBS
                   ) -> list[CVScore]:
    """Scores every pipeline on the same folds; all (pipeline, fold) fits run in one pool."""
    from joblib import Parallel, delayed
    jobs = [(p, f) for p in range(len(pipelines)) for f in range(len(folds))]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_fold)(pipelines[p], X, y, *folds[f]) for p, f in jobs)
    scores = []
    for p, pipeline in enumerate(pipelines):
        oof = np.full(len(y), np.nan)
        fold_mae = np.empty(len(folds))
        seconds = 0.0
        for f, (_, test_idx) in enumerate(folds):
            pred, sec = results[p * len(folds) + f]
            oof[test_idx] = pred
            fold_mae[f] = np.mean(np.abs(pred - y[test_idx]))
            seconds += sec
        scores.append(CVScore({}, fold_mae, oof, seconds))
    return scores


def search_mlp(X: np.ndarray, y: np.ndarray, folds, seed: int,
               grid: list[dict] | None = None, n_jobs: int = N_JOBS) -> SearchResult:
    """Scores every candidate on `folds`; the chosen one has the lowest mean CV MAE.

    Ties go to the earlier candidate, so the default wins a tie and the result never depends
    on anything but the data, the seed and the grid.
    """
    params = candidate_params(grid)
    t0 = time.perf_counter()
    scores = cross_validate([make_mlp_pipeline(seed, **p) for p in params], X, y, folds, n_jobs)
    for s, p in zip(scores, params):
        s.params = p
    chosen = min(range(len(scores)), key=lambda i: (scores[i].mean, i))
    return SearchResult(scores, chosen, 0, folds, time.perf_counter() - t0)


def json_params(params: dict) -> dict:
    """Settings as JSON values (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
