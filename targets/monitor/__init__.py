"""Monitoring a deployed model: prediction log, input drift, and swapping the served version.

Runtime-side (imported by the API): stdlib + numpy only. The `mpgpack monitor` report
(`report.py`, `cli.py`) is build-side and imports matplotlib lazily.
"""
