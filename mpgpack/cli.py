"""The `mpgpack` command. Each subcommand lives in the module that owns it.

Command modules are imported lazily and must be cheap to import: `mpgpack serve` has to start
without TensorFlow or scikit-learn installed.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from mpgpack import __version__
from mpgpack.core.errors import UserError

# Each module defines register(subparsers) which adds its parser(s) with set_defaults(run=...).
COMMAND_MODULES = [
    "mpgpack.export.cli",          # build, verify, sign, keygen
    "mpgpack.targets.web.cli",     # web
    "mpgpack.bench.cli",      # bench
    "mpgpack.targets.edge.cli",    # edge bundle|userland|emulate
    "mpgpack.targets.api.cli",     # serve, predict
    "mpgpack.storage.cli",         # publish, fetch (S3)
    "mpgpack.train.report_cli",    # report
    "mpgpack.targets.monitor.cli", # monitor (drift report of a prediction log)
    "mpgpack.storage.registry_cli", # versions, rollback
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
