"""Input drift: recent requests compared with the training statistics stored in the manifest.

Per numeric feature: the population stability index (PSI) over the training decile bins and a
two-sample Kolmogorov–Smirnov test against the training sample; for the category (origin): a
chi-square test of the category shares; for a nullable feature (horsepower): Fisher's exact
test of the missing rate. All of it over a sliding window of the last `window` rows.

Calibration (why the thresholds are what they are): one window runs
`2 * numeric + categories + nullable` tests (14 for the seven Auto MPG features). To keep the
chance that *training-like* traffic raises any alarm at or below `family_alpha` (default
5 %), each test uses alpha = family_alpha / tests (Bonferroni). The KS and chi-square tests
have p-values; PSI does not, so its threshold is the (1 - alpha) quantile of its null
distribution, simulated: a "training" sample of m rows and a window of n rows both drawn from
the training bin shares (two multinomials), PSI computed as for real traffic, 20,000 times,
seeded, cached per feature and window size. (The textbook approximation PSI ≈ X²·(1/n + 1/m) with
X² ~ chi-square(k - 1) was measured here to alarm ~1.5× too often in the far tail: PSI's log
term is heavier-tailed than Pearson's X².) The threshold shrinks as the window fills.
tests/test_monitor_drift.py replays windows sampled from the real data file and measures the
false-alarm rate and the detection rate of shifted traffic.

Stdlib + numpy only: this runs inside the API and on the edge device (`mpg-edge status`).
"""
from __future__ import annotations

import threading

import numpy as np

from mpgpack.core.drift_defaults import DEFAULT_MIN_COUNT, DEFAULT_WINDOW
from mpgpack.core.drift_stats import chi2_homogeneity, fisher_exact, ks_2samp, psi

DEFAULT_FAMILY_ALPHA = 0.05
PSI_EPS = 1e-4
PSI_SIMULATIONS = 20_000

OK, DRIFT, NOT_ENOUGH = "ok", "drift", "not enough data"


def _num(x) -> float | None:
    """JSON-safe float: NaN/inf become None."""
    x = float(x)
    return x if np.isfinite(x) else None


# Simulated PSI thresholds, shared by every monitor in the process (same training bins, same
# window size -> same threshold): a reload to a known version or a second monitor costs nothing.
_PSI_LIMITS: dict[tuple, float] = {}
_PSI_LIMITS_LOCK = threading.Lock()


def simulated_psi_threshold(train_counts: np.ndarray, n: int, alpha: float,
                            simulations: int = PSI_SIMULATIONS, seed: int = 0) -> float:
    """(1 - alpha) quantile of PSI when window (n) and training sample come from one population.

    Both samples are drawn, as multinomials over the bins, from the training bin shares: the
    null hypothesis "recent traffic is distributed like the training data", including the
    noise of the training sample itself (m rows, not the true population).
    """
    m = int(round(train_counts.sum()))
    shares = train_counts / train_counts.sum()
    rng = np.random.default_rng(seed)
    q = np.clip(rng.multinomial(n, shares, size=simulations) / n, PSI_EPS, None)
    p = np.clip(rng.multinomial(m, shares, size=simulations) / m, PSI_EPS, None)
    values = np.sum((q - p) * np.log(q / p), axis=1)
    return float(np.quantile(values, 1 - alpha))


class _NumericRef:
    """Training reference of one numeric feature: decile bins (outer bins open) and sample."""

    def __init__(self, name: str, index: int, stats: dict):
        self.name, self.index = name, index
        self.sample = np.asarray(stats["sample"], dtype=np.float64)  # sorted training values
        edges = np.asarray(stats["bin_edges"], dtype=np.float64)
        # Inner edges only: the first and last bins reach to -inf/+inf, so a shifted value
        # beyond the training range lands in an outer bin instead of being lost.
        self.inner_edges = edges[1:-1]
        self.bin_counts = np.asarray(stats["bin_counts"], dtype=np.float64)
        self.mean = float(stats["mean"])
        self.count, self.missing = int(stats["count"]), int(stats["missing"])

    def bins(self, values: np.ndarray) -> np.ndarray:
        # side="right": value == edge goes to the upper bin, as np.histogram put training data.
        idx = np.searchsorted(self.inner_edges, values, side="right")
        return np.bincount(idx, minlength=len(self.bin_counts)).astype(np.float64)


class DriftMonitor:
    """Keeps the last `window` input rows and compares them with the training statistics.

    observe() is cheap (a copy into a ring buffer under a lock) and safe from many threads;
    report() copies the window and does the statistics outside the lock.
    """

    def __init__(self, manifest: dict, window: int = DEFAULT_WINDOW,
                 min_count: int = DEFAULT_MIN_COUNT, family_alpha: float = DEFAULT_FAMILY_ALPHA,
                 psi_simulations: int = PSI_SIMULATIONS):
        if window < 1 or min_count < 1 or not (0 < family_alpha < 1):
            raise ValueError("window and min_count must be >= 1 and 0 < family_alpha < 1")
        self.window, self.min_count, self.family_alpha = int(window), int(min_count), family_alpha
        self.model_version = manifest.get("model", {}).get("version")
        features = manifest["schema"]["features"]
        stats = manifest["training_stats"]
        self.names = [f["name"] for f in features]
        self.numeric: list[_NumericRef] = []
        self.categorical: list[tuple[str, int, list[str], np.ndarray, dict]] = []
        self.nullable: list[tuple[str, int, int, int]] = []
        for i, f in enumerate(features):
            s = stats[f["name"]]
            if f["kind"] == "category":
                cats = sorted(s["shares"], key=float)
                counts = np.array([s["shares"][c] * s["count"] for c in cats])
                self.categorical.append((f["name"], i, cats, np.round(counts), s["shares"]))
            else:
                self.numeric.append(_NumericRef(f["name"], i, s))
            if f.get("nullable"):
                self.nullable.append((f["name"], i, int(s["missing"]), int(s["count"])))
        self.tests = 2 * len(self.numeric) + len(self.categorical) + len(self.nullable)
        self.alpha = family_alpha / self.tests
        self._buf = np.full((self.window, len(self.names)), np.nan, dtype=np.float32)
        self._next = 0        # ring position of the next row
        self._filled = 0      # rows held (<= window)
        self._seen = 0        # rows observed since start
        self._pending: list[np.ndarray] = []   # observed, not yet in the ring buffer
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._cache: tuple[int, dict] | None = None
        self.psi_simulations = psi_simulations
        grid, g = [], self.min_count
        while g < self.window:
            grid.append(g)
            g *= 2
        self._grid = [*grid, self.window]

    # -- window -----------------------------------------------------------------------------
    def observe(self, X) -> None:
        """Adds request rows (float32 [N, features], NaN for missing) to the window.

        On the request path, so it only keeps a reference: the rows are copied into the ring
        buffer in bulk later (when a few windows' worth are pending, or at the next report),
        which costs ~1 µs per call instead of a NumPy slice assignment per request. The caller
        must not modify X afterwards (the API never does: X is the request's own matrix).
        """
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ValueError(f"observe() takes rows of {len(self.names)} features, got shape {X.shape}")
        n = len(X)
        with self._lock:
            self._pending.append(X)
            self._pending_rows += n
            self._seen += n
            if self._pending_rows >= 2 * self.window:
                self._fold()

    def _fold(self) -> None:
        """Moves the pending rows into the ring buffer (only the last `window` matter).
        Called with the lock held."""
        if not self._pending:
            return
        X = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        if len(X) > self.window:
            X = X[-self.window:]
        n = len(X)
        end = self._next + n
        if end <= self.window:
            self._buf[self._next:end] = X
        else:
            first = self.window - self._next
            self._buf[self._next:] = X[:first]
            self._buf[:n - first] = X[first:]
        self._next = end % self.window
        self._filled = min(self.window, self._filled + n)

    def reset(self) -> None:
        with self._lock:
            self._next = self._filled = 0
            self._pending, self._pending_rows = [], 0
            self._cache = None

    def rows(self) -> np.ndarray:
        """The window's rows, oldest first (a copy)."""
        with self._lock:
            self._fold()
            if self._filled < self.window:
                return self._buf[:self._filled].copy()
            return np.concatenate([self._buf[self._next:], self._buf[:self._next]])

    # -- report -----------------------------------------------------------------------------
    def psi_threshold(self, ref: "_NumericRef", n: int) -> float:
        """PSI above which a window of n rows differs from the training bins at level alpha.

        Simulated once per feature at a few window sizes (a doubling grid from min_count to
        window), then scaled by (1/n + 1/m), the factor by which PSI's null spread shrinks, so
        a report while the window fills costs no new simulation.
        """
        grid = max((g for g in self._grid if g <= n), default=self._grid[0])
        key = (tuple(ref.bin_counts.tolist()), grid, self.alpha, self.psi_simulations)
        limit = _PSI_LIMITS.get(key)
        if limit is None:
            limit = simulated_psi_threshold(ref.bin_counts, grid, self.alpha, self.psi_simulations)
            with _PSI_LIMITS_LOCK:
                if len(_PSI_LIMITS) > 4096:
                    _PSI_LIMITS.clear()     # bounded; in practice a few versions x 4 sizes x 6
                _PSI_LIMITS[key] = limit
        m = ref.bin_counts.sum()
        return limit * (1.0 / n + 1.0 / m) / (1.0 / grid + 1.0 / m)

    def warm_up(self) -> None:
        """Runs every PSI simulation now (≈0.1–0.3 s per feature and window size on one core),
        so no report pays for it later. Meant for a background thread after loading a model."""
        for ref in self.numeric:
            for g in self._grid:
                self.psi_threshold(ref, g)

    def report(self) -> dict:
        """The drift report: JSON-serialisable, same shape whatever the state of the window."""
        with self._lock:
            seen = self._seen
            if self._cache is not None and self._cache[0] == seen:
                return self._cache[1]
        X = self.rows()
        out = self.evaluate(X)
        out["observed_total"] = seen
        with self._lock:
            self._cache = (seen, out)
        return out

    def evaluate(self, X: np.ndarray) -> dict:
        """Drift of the given rows (the window) against training: the body of report()."""
        X = np.asarray(X, dtype=np.float64)
        features: dict[str, dict] = {}
        missing: dict[str, dict] = {}
        for ref in self.numeric:
            features[ref.name] = self._numeric(ref, X[:, ref.index])
        for name, i, cats, counts, shares in self.categorical:
            features[name] = self._category(name, X[:, i], cats, counts, shares)
        for name, i, train_missing, train_count in self.nullable:
            missing[name] = self._missing(X[:, i], train_missing, train_count)
        alarms = [n for n, r in features.items() if r["alarm"]]
        alarms += [f"{n} (missing rate)" for n, r in missing.items() if r["alarm"]]
        n = len(X)
        status = NOT_ENOUGH if n < self.min_count else (DRIFT if alarms else OK)
        return {
            "status": status, "alarm": bool(alarms), "alarms": alarms, "n": n,
            "window": self.window, "model_version": self.model_version,
            "features": features, "missing": missing,
            "thresholds": {
                "family_alpha": self.family_alpha, "tests": self.tests, "alpha_per_test": self.alpha,
                "min_count": self.min_count,
                "rule": "alarm if KS p < alpha_per_test or PSI > psi_threshold (numbers); "
                        "chi-square p < alpha_per_test (category shares); Fisher exact "
                        "p < alpha_per_test (missing rate). alpha_per_test = family_alpha / tests "
                        "(Bonferroni); psi_threshold = the (1 - alpha_per_test) quantile of PSI "
                        f"between two multinomial samples (n, n_training) of the training bin "
                        f"shares, {PSI_SIMULATIONS} simulations"},
        }

    def _numeric(self, ref: _NumericRef, col: np.ndarray) -> dict:
        values = np.sort(col[~np.isnan(col)])
        n = len(values)
        row = {"kind": "number", "n": n, "training_n": len(ref.sample),
               "training_mean": ref.mean, "recent_mean": _num(values.mean()) if n else None,
               "psi": None, "psi_threshold": None, "ks_stat": None, "p_value": None,
               "status": NOT_ENOUGH, "alarm": False}
        if n < self.min_count:
            return row
        counts = ref.bins(values)
        value = psi(counts, ref.bin_counts, PSI_EPS)
        limit = self.psi_threshold(ref, n)
        d, p = ks_2samp(values, ref.sample)
        alarm = bool(p < self.alpha or value > limit)
        row.update(psi=value, psi_threshold=limit, ks_stat=d, p_value=p,
                   status=DRIFT if alarm else OK, alarm=alarm,
                   recent_bin_counts=[int(c) for c in counts])
        return row

    def _category(self, name: str, col: np.ndarray, cats: list[str], train_counts: np.ndarray,
                  shares: dict) -> dict:
        values = col[~np.isnan(col)]
        n = len(values)
        counts = np.array([np.sum(values == float(c)) for c in cats], dtype=np.float64)
        other = n - int(counts.sum())   # values outside the categories (the API refuses them)
        row = {"kind": "category", "n": n, "training_shares": dict(shares),
               "shares": {c: (float(k) / n if n else None) for c, k in zip(cats, counts)},
               "other": other, "psi": None, "chi2": None, "p_value": None,
               "status": NOT_ENOUGH, "alarm": False}
        if n < self.min_count:
            return row
        recent = np.append(counts, other)
        train = np.append(train_counts, 0.0)
        stat, p, df = chi2_homogeneity(recent, train)
        alarm = bool(p < self.alpha)
        row.update(psi=psi(recent, train, PSI_EPS), chi2=stat, df=df, p_value=p,
                   status=DRIFT if alarm else OK, alarm=alarm)
        return row

    def _missing(self, col: np.ndarray, train_missing: int, train_count: int) -> dict:
        n = len(col)
        k = int(np.isnan(col).sum())
        row = {"n": n, "missing": k, "rate": (k / n if n else None),
               "training_rate": train_missing / train_count, "p_value": None,
               "status": NOT_ENOUGH, "alarm": False}
        if n < self.min_count:
            return row
        p = fisher_exact(k, n, train_missing, train_count)
        alarm = bool(p < self.alpha)
        row.update(p_value=p, status=DRIFT if alarm else OK, alarm=alarm)
        return row
