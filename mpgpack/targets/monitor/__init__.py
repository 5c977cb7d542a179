"""Monitoring a deployed model: the `mpgpack monitor` report and swapping the served version.

The prediction log and the drift monitor themselves are in mpgpack.core (core/predlog.py,
core/drift.py): the API and the edge runner write the same log and compute the same drift.
The report (`report.py`, `cli.py`) is build-side and imports matplotlib lazily.
"""