"""Drift detection: the statistics against scipy, the window, and the calibration.

Calibration is shown by replaying many windows sampled (with replacement) from the real data
file: training-like traffic must raise an alarm in at most 5 % of windows, shifted traffic
(all cars 20 % heavier; origin shares moved) in at least 95 %.

`python -m tests.test_monitor_drift` prints the same rates for more windows, plus the rate
under a stricter null (training sample and window independent draws from the data file).
"""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from scipy import stats as sps

from mpgpack.core import drift_stats as st
from mpgpack.core.drift import DriftMonitor

WINDOW = 500
WEIGHT, ORIGIN, HORSEPOWER = 3, 6, 2


# -- the statistics, cross-checked with scipy ----------------------------------------------------
@pytest.mark.parametrize("discrete", [False, True])
def test_ks_matches_scipy(discrete):
    rng = np.random.default_rng(1)
    for n, m in [(30, 318), (500, 318), (120, 90)]:
        a = rng.normal(size=n) if not discrete else rng.integers(3, 9, n).astype(float)
        b = rng.normal(0.2, 1.1, size=m) if not discrete else rng.integers(3, 8, m).astype(float)
        d, p = st.ks_2samp(np.sort(a), np.sort(b))
        ref = sps.ks_2samp(a, b)
        assert d == pytest.approx(ref.statistic, abs=1e-12)
        assert p == pytest.approx(sps.kstwobign.sf(d * np.sqrt(n * m / (n + m))), rel=1e-9, abs=1e-15)


def test_kolmogorov_chi2_fisher_match_scipy():
    for x in [0.05, 0.4, 0.8, 0.999, 1.0, 1.2, 1.8, 3.0]:
        assert st.kolmogorov_sf(x) == pytest.approx(sps.kstwobign.sf(x), rel=1e-9, abs=1e-15)
    for df in [1, 2, 3, 5, 8, 9, 12]:
        for x in [0.1, 1.0, 7.5, 25.0, 90.0]:
            assert st.chi2_sf(x, df) == pytest.approx(sps.chi2.sf(x, df), rel=1e-9, abs=1e-300)
        assert st.chi2_isf(0.0036, df) == pytest.approx(sps.chi2.isf(0.0036, df), rel=1e-7)
    for a, n, b, m in [(12, 500, 5, 318), (0, 500, 5, 318), (50, 500, 5, 318), (3, 100, 5, 318)]:
        ref = sps.fisher_exact([[a, n - a], [b, m - b]]).pvalue
        assert st.fisher_exact(a, n, b, m) == pytest.approx(ref, rel=1e-9)
    counts_a, counts_b = np.array([300, 90, 110]), np.array([195, 58, 65])
    stat, p, df = st.chi2_homogeneity(counts_a, counts_b)
    ref = sps.chi2_contingency(np.vstack([counts_a, counts_b]), correction=False)
    assert (stat, p, df) == pytest.approx((ref.statistic, ref.pvalue, ref.dof), rel=1e-9)


# -- the window --------------------------------------------------------------------------------
def test_window_keeps_the_last_rows_in_order(small_manifest):
    mon = DriftMonitor(small_manifest, window=10, min_count=5)
    rows = np.arange(23 * 7, dtype=np.float32).reshape(23, 7)
    mon.observe(rows[:4])
    mon.observe(rows[4:15])
    mon.observe(rows[15:23])
    np.testing.assert_array_equal(mon.rows(), rows[-10:])
    mon.observe(rows[:25])     # more than a window at once: only its last `window` rows count
    np.testing.assert_array_equal(mon.rows(), rows[-10:])
    with pytest.raises(ValueError, match="7 features"):
        mon.observe(np.zeros((2, 6), np.float32))


def test_observe_from_many_threads(small_manifest, mpg_X):
    mon = DriftMonitor(small_manifest, window=WINDOW)

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            mon.observe(mpg_X[rng.integers(0, len(mpg_X), rng.integers(1, 5))])
    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = mon.rows()
    assert rows.shape == (WINDOW, 7)
    # every row in the window is a whole row of the data (no torn writes between threads)
    known = {tuple(np.nan_to_num(r, nan=-1)) for r in mpg_X}
    assert all(tuple(np.nan_to_num(r, nan=-1)) in known for r in rows)
    assert mon.report()["observed_total"] >= WINDOW


def test_not_enough_data_never_alarms(small_manifest, mpg_X):
    mon = DriftMonitor(small_manifest, window=WINDOW, min_count=100)
    report = mon.report()
    assert report["status"] == "not enough data" and not report["alarm"] and report["n"] == 0
    absurd = mpg_X[:99].copy()
    absurd[:, WEIGHT] *= 2.5          # wildly shifted, but only 99 rows
    mon.observe(absurd)
    report = mon.report()
    assert report["status"] == "not enough data" and report["alarm"] is False
    assert {f["status"] for f in report["features"].values()} == {"not enough data"}
    assert report["features"]["weight"]["psi"] is None
    mon.observe(absurd[:1])           # the 100th row: now it is judged
    report = mon.report()
    assert report["status"] == "drift" and "weight" in report["alarms"]
    json.dumps(report, allow_nan=False)   # the API returns it as it is


def test_report_shape_and_cache(small_manifest, mpg_X):
    mon = DriftMonitor(small_manifest, window=WINDOW)
    mon.observe(mpg_X[:300])
    first = mon.report()
    assert mon.report() is first                # no new rows: the cached report
    mon.observe(mpg_X[300:301])
    second = mon.report()
    assert second is not first and second["n"] == 301
    assert set(second["features"]) == {f["name"] for f in small_manifest["schema"]["features"]}
    t = second["thresholds"]
    assert t["tests"] == 14 and t["alpha_per_test"] == pytest.approx(0.05 / 14)
    w = second["features"]["weight"]
    assert w["psi_threshold"] > 0 and 0 <= w["p_value"] <= 1 and 0 <= w["ks_stat"] <= 1
    hp = small_manifest["training_stats"]["horsepower"]
    assert second["missing"]["horsepower"]["training_rate"] == pytest.approx(hp["missing"] / hp["count"])


# -- calibration: replayed windows -------------------------------------------------------------
def training_like(X, rng, n=WINDOW):
    return X[rng.integers(0, len(X), n)]


def heavier(X, rng, n=WINDOW):
    w = training_like(X, rng, n).copy()
    w[:, WEIGHT] *= 1.2
    return w


def origin_shifted(X, rng, n=WINDOW, shares=(0.45, 0.20, 0.35)):
    """Cars drawn per origin so that shares are USA 45 %, Europe 20 %, Japan 35 % (training:
    61 / 18 / 20 %): each row is still a real car."""
    counts = rng.multinomial(n, shares)
    parts = [X[X[:, ORIGIN] == c] for c in (1, 2, 3)]
    return np.concatenate([p[rng.integers(0, len(p), k)] for p, k in zip(parts, counts)])


def hp_often_missing(X, rng, n=WINDOW, rate=0.10):
    w = training_like(X, rng, n).copy()
    w[rng.random(n) < rate, HORSEPOWER] = np.nan
    return w


def alarm_rate(monitor, make, X, windows, seed, feature=None):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(windows):
        report = monitor.evaluate(make(X, rng))
        hits += report["alarm"] if feature is None else feature in report["alarms"]
    return hits / windows


def test_false_alarm_rate_on_training_like_windows(small_manifest, mpg_X):
    mon = DriftMonitor(small_manifest, window=WINDOW)
    rate = alarm_rate(mon, training_like, mpg_X, windows=1000, seed=11)
    print(f"false-alarm rate, 1000 training-like windows of {WINDOW}: {rate:.3f}")
    assert rate <= 0.05
    # a window that is just full enough to be judged is the noisiest case
    small = alarm_rate(mon, lambda X, rng: training_like(X, rng, mon.min_count), mpg_X,
                       windows=1000, seed=12)
    print(f"false-alarm rate, 1000 training-like windows of {mon.min_count}: {small:.3f}")
    assert small <= 0.05


def test_shifted_traffic_is_detected(small_manifest, mpg_X):
    mon = DriftMonitor(small_manifest, window=WINDOW)
    heavy = alarm_rate(mon, heavier, mpg_X, windows=200, seed=21, feature="weight")
    origin = alarm_rate(mon, origin_shifted, mpg_X, windows=200, seed=22, feature="origin")
    missing = alarm_rate(mon, hp_often_missing, mpg_X, windows=200, seed=23,
                         feature="horsepower (missing rate)")
    print(f"detection: weight x1.2 {heavy:.3f}; origin shares 45/20/35 % {origin:.3f}; "
          f"horsepower missing 10 % {missing:.3f}")
    assert heavy >= 0.95 and origin >= 0.95 and missing >= 0.95


def independent_null_rate(manifest, X, n, trials, seed=5, psi_simulations=5000):
    """Stricter than the replay: the 'training' sample (318 rows) and the window are independent
    draws from the data file, with the training statistics recomputed by the build's own
    mpgpack.train.stats.feature_stats, so the reference carries its own sampling noise."""
    from mpgpack.train.stats import feature_stats
    rng = np.random.default_rng(seed)
    m = manifest["training_stats"]["weight"]["count"]
    hits = 0
    for _ in range(trials):
        ref = dict(manifest, training_stats=feature_stats(X[rng.integers(0, len(X), m)].astype(np.float64)))
        mon = DriftMonitor(ref, window=n, psi_simulations=psi_simulations)
        hits += mon.evaluate(X[rng.integers(0, len(X), n)])["alarm"]
    return hits / trials


if __name__ == "__main__":   # the figures, with more windows than the test suite uses
    import sys

    from mpgpack.core.bundle import open_bundle
    from mpgpack.data import AUTO_MPG
    from mpgpack.train.data import load_dataset
    man = open_bundle(sys.argv[1] if len(sys.argv) > 1 else None).manifest
    X = load_dataset(AUTO_MPG).X.astype(np.float32)
    mon = DriftMonitor(man, window=WINDOW)
    for label, make, feature, seed in [
            ("false alarms, training-like windows", training_like, None, 1),
            ("false alarms, training-like windows of 100 rows",
             lambda X, rng: training_like(X, rng, 100), None, 2),
            ("detected, all cars 20 % heavier", heavier, "weight", 3),
            ("detected, origin shares 45/20/35 %", origin_shifted, "origin", 4),
            ("detected, horsepower missing in 10 %", hp_often_missing, "horsepower (missing rate)", 5)]:
        print(f"{label}: {alarm_rate(mon, make, X, 5000 if feature is None else 1000, seed, feature):.4f}")
    for n in (WINDOW, 100):
        print(f"false alarms, independent training sample and window of {n}: "
              f"{independent_null_rate(man, X, n, 600):.4f} (600 trials)")
