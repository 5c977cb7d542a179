"""Monitoring a deployed model: prediction log, input drift, and swapping the served version.

Runtime-side (imported by the API): stdlib + numpy only. The `mpgpack monitor` report
(`report.py`, `cli.py`) is build-side and imports matplotlib lazily.
"""

# Defaults shared by the drift monitor and `mpgpack monitor` (here so the CLI need not import numpy).
DEFAULT_WINDOW = 500      # rows of recent traffic compared with training
DEFAULT_MIN_COUNT = 100   # below this many rows a feature reports "not enough data"
