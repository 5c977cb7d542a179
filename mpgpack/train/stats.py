"""Per-feature training statistics, stored in the manifest for drift monitoring."""
from __future__ import annotations

import numpy as np

from mpgpack.core.schema import Schema

N_BINS = 10  # decile bins: the usual choice for the population stability index


def feature_stats(X: np.ndarray, schema: Schema) -> dict:
    out = {}
    for i, f in enumerate(schema):
        col = X[:, i]
        present = col[~np.isnan(col)]
        stats = {"count": int(len(col)), "missing": int(np.isnan(col).sum()),
                 "mean": float(present.mean()), "std": float(present.std()),
                 "min": float(present.min()), "max": float(present.max()),
                 "median": float(np.median(present))}
        if f.categories:
            stats["shares"] = {str(c): float(np.mean(present == c)) for c in f.categories}
        else:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, N_BINS + 1)))
            counts, _ = np.histogram(present, bins=edges)
            stats["bin_edges"] = [float(e) for e in edges]
            stats["bin_counts"] = [int(c) for c in counts]
            # Kept so a two-sample test (KS) can compare against the real training sample.
            stats["sample"] = [float(v) for v in np.sort(present)]
        out[f.name] = stats
    return out


def training_range(X: np.ndarray, schema: Schema) -> dict[str, tuple[float, float]]:
    return {f.name: (float(np.nanmin(X[:, i])), float(np.nanmax(X[:, i])))
            for i, f in enumerate(schema)}
