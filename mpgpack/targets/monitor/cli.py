"""`mpgpack monitor LOG…`: the drift report of a prediction log, as a table and an HTML page."""
from __future__ import annotations

import argparse
from pathlib import Path

from mpgpack.core.cli_args import add_bundle_argument
from mpgpack.core.drift_defaults import DEFAULT_MIN_COUNT, DEFAULT_WINDOW


def _monitor(args) -> int:
    import numpy as np

    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.drift import DriftMonitor
    from mpgpack.core.predlog import read_log
    from mpgpack.targets.monitor.report import format_table, render_html

    if args.window < 1 or args.min_count < 1:
        raise UserError("--window and --min-count must be at least 1")
    bundle = open_bundle(args.bundle)
    names = [f["name"] for f in bundle.features]
    records, files, notes = read_log(args.logs, names)
    recent = records[-args.window:]
    versions = sorted({str(r[1]) for r in recent})
    if versions != [bundle.version]:
        notes.append(f"the window's records come from model version(s) {', '.join(versions)}; "
                     f"compared with the training data of {bundle.version}")
    X = np.array([r[2] for r in recent], dtype=np.float32)
    monitor = DriftMonitor(bundle.manifest, window=args.window, min_count=args.min_count)
    monitor.observe(X)
    report = monitor.report()
    print(f"{len(records)} records in {len(files)} file(s); window: the last {len(recent)} "
          f"({recent[0][0]} .. {recent[-1][0]}); training data of {bundle.path}\n")
    print(format_table(report))
    for n in notes:
        print(f"note: {n}")
    if args.out:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(render_html(report, bundle.manifest, X, files, notes))
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
        print(f"\nwrote {args.out}")
    if args.json:
        import json
        print(json.dumps(report, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="drift report of a prediction log (table + HTML histograms)",
                       description="Read a prediction log written by the API (LOG and its rotated "
                                   "backups LOG.1, LOG.2, …), compare the inputs of the most recent "
                                   "WINDOW records with the training statistics in the bundle's "
                                   "manifest (PSI and Kolmogorov-Smirnov per number, chi-square on "
                                   "origin shares, Fisher on the missing-horsepower rate), print the "
                                   "table, and optionally write an HTML report with per-feature "
                                   "histograms (training vs recent). Exit code 0 whether or not "
                                   "there is drift.")
    p.add_argument("logs", nargs="+", type=Path, metavar="LOG",
                   help="prediction log file(s); rotated backups LOG.N are read too")
    add_bundle_argument(p)
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"number of most recent records compared (default: {DEFAULT_WINDOW})")
    p.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT,
                   help=f"fewer rows than this: 'not enough data' (default: {DEFAULT_MIN_COUNT})")
    p.add_argument("--out", type=Path, default=None,
                   help="write an HTML report with per-feature histograms to this file")
    p.add_argument("--json", action="store_true", help="also print the report as JSON")
    p.set_defaults(run=_monitor)
