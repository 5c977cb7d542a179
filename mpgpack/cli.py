"""The `mpgpack` command. Each subcommand lives in the module that owns it.

Command modules are imported lazily and must be cheap to import: `mpgpack serve` has to start
without TensorFlow or scikit-learn installed.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from mpgpack import __version__
from mpgpack.errors import UserError

# Each module defines register(subparsers) which adds its parser(s) with set_defaults(run=...).
COMMAND_MODULES = [
    "export.cli",          # build, verify
    "targets.web.cli",     # web
    "benchmarks.cli",      # bench
    "targets.edge.cli",    # edge bundle|userland|emulate
    "targets.api.cli",     # serve, predict
    "storage.cli",         # publish, fetch (S3)
    "train.report_cli",    # report
    "targets.monitor.cli", # monitor (drift report of a prediction log)
    "export.registry_cli", # versions, rollback
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpgpack",
        description="Train the Auto MPG model once, export it to ONNX, TFLite and TF.js, and "
                    "serve it in a browser, on an edge device and over HTTP.")
    parser.add_argument("--version", action="version", version=f"mpgpack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"mpgpack {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mpgpack {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
