"""Timing helpers shared by every benchmark: warm-up excluded, medians and p99 reported."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def time_calls(fn: Callable[[], object], budget_s: float, min_reps: int = 20,
               max_reps: int = 100_000, warmup: int = 5) -> dict:
    """Calls fn repeatedly for about budget_s seconds after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < max_reps and (len(samples) < min_reps or time.perf_counter() < deadline):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    us = np.asarray(samples, dtype=np.float64) / 1e3
    return {"reps": int(len(us)), "median_us": float(np.median(us)),
            "p99_us": float(np.percentile(us, 99)), "mean_us": float(us.mean()),
            "min_us": float(us.min())}
