"""The few distribution functions drift detection needs, in numpy + math (no scipy at runtime).

Each one is cross-checked against scipy in tests/test_monitor_drift.py. Used by core.drift.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def ks_statistic(a_sorted: np.ndarray, b_sorted: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic sup|F_a - F_b| (both inputs sorted, no NaN).

    Evaluated at every observed value with right-continuous ECDFs, so ties (cylinders,
    model year) are handled exactly as scipy.stats.ks_2samp does.
    """
    values = np.concatenate([a_sorted, b_sorted])
    cdf_a = np.searchsorted(a_sorted, values, side="right") / len(a_sorted)
    cdf_b = np.searchsorted(b_sorted, values, side="right") / len(b_sorted)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the limiting Kolmogorov distribution (scipy.stats.kstwobign.sf)."""
    if x <= 0:
        return 1.0
    if x < 1.0:
        # The alternating series converges slowly for small x; use the Jacobi-theta form.
        s = sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * x * x)) for k in range(1, 20))
        return max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * s)
    s = sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return min(1.0, max(0.0, 2 * s))


def ks_2samp(a_sorted: np.ndarray, b_sorted: np.ndarray) -> tuple[float, float]:
    """(statistic, asymptotic p-value); effective size n·m/(n+m) as in scipy's 'asymp' mode.

    With ties (discrete features) the asymptotic p-value is conservative: fewer false alarms.
    """
    d = ks_statistic(a_sorted, b_sorted)
    n, m = len(a_sorted), len(b_sorted)
    return d, kolmogorov_sf(d * math.sqrt(n * m / (n + m)))


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square with integer df, in closed form (scipy.stats.chi2.sf)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if x <= 0:
        return 1.0
    h = x / 2
    if df % 2 == 0:
        terms = (math.exp(-h + i * math.log(h) - math.lgamma(i + 1)) for i in range(df // 2))
        return min(1.0, sum(terms))
    terms = (math.exp(-h + (i - 0.5) * math.log(h) - math.lgamma(i + 0.5))
             for i in range(1, (df - 1) // 2 + 1))
    return min(1.0, math.erfc(math.sqrt(h)) + sum(terms))


@lru_cache(maxsize=256)
def chi2_isf(p: float, df: int) -> float:
    """The x with chi2_sf(x, df) == p, by bisection (sf is monotone)."""
    lo, hi = 0.0, 1.0
    while chi2_sf(hi, df) > p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if chi2_sf(mid, df) > p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def chi2_homogeneity(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test that two samples share category proportions: (statistic, p, df).

    Categories empty in both samples are left out (they carry no information).
    """
    table = np.vstack([counts_a, counts_b]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    df = table.shape[1] - 1
    if df < 1 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, max(df, 0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, chi2_sf(stat, df), df


def fisher_exact(a: int, n: int, b: int, m: int) -> float:
    """Two-sided Fisher exact p-value that a/n and b/m are the same proportion.

    Used for the missing-horsepower rate, whose counts are tiny (5 of 318 in training), where
    a normal approximation would be wrong. Sums the hypergeometric probabilities of every
    table at most as likely as the observed one (scipy's definition).
    """
    k, total = a + b, n + m
    if k == 0 or k == total:
        return 1.0
    log_denominator = _log_comb(total, n)

    def logp(x: int) -> float:
        return _log_comb(k, x) + _log_comb(total - k, n - x) - log_denominator

    observed = logp(a)
    lo, hi = max(0, n - (total - k)), min(k, n)
    ps = [logp(x) for x in range(lo, hi + 1)]
    return min(1.0, sum(math.exp(p) for p in ps if p <= observed + 1e-7))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def psi(recent: np.ndarray, reference: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index sum((q - p) ln(q / p)) over bin shares.

    Shares are clipped at eps so an empty bin on either side gives a large but finite term.
    """
    q = np.clip(recent / max(recent.sum(), 1), eps, None)
    p = np.clip(reference / max(reference.sum(), 1), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))
