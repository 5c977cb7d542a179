"""The model search: the same data and seed give the same table, whatever the parallelism."""
from __future__ import annotations

import numpy as np


def test_search_is_reproducible_and_independent_of_parallelism(example_tables):
    from mpgpack.train.families import candidates
    from mpgpack.train.family_names import FAMILY_NAMES
    from mpgpack.train.table import infer_spec, load_table
    from mpgpack.train.tune import make_folds, search

    spec = infer_spec(example_tables["iris"], "species")
    ds = load_table(example_tables["iris"], spec)
    folds = make_folds(ds.y, 5, 0, spec.task)
    # stratified: every fold holds every class in the proportions of the data
    for _, test in folds:
        assert set(np.bincount(ds.y[test].astype(int))) == {10}
    grid = {f: candidates(f, spec.task)[:2] for f in FAMILY_NAMES}
    serial = search(spec.schema, list(FAMILY_NAMES), ds.X, ds.y, folds, 0, 1, grid)
    parallel = search(spec.schema, list(FAMILY_NAMES), ds.X, ds.y, folds, 0, 2, grid)
    assert serial.chosen == parallel.chosen and serial.score == "log_loss"
    for a, b in zip(serial.candidates, parallel.candidates):
        assert (a.family, a.params) == (b.family, b.params)
        np.testing.assert_array_equal(a.fold_score, b.fold_score)
        np.testing.assert_array_equal(a.oof_pred, b.oof_pred)
    best = serial.best
    assert best.mean == min(c.mean for c in serial.candidates)
    assert best.oof_pred.shape == (len(ds.y), 3)
    np.testing.assert_allclose(best.oof_pred.sum(axis=1), 1.0, atol=1e-9)
