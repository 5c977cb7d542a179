"""The `mpgpack` command. Each subcommand lives in the module that owns it.

Loaded lazily: `mpgpack --help` lists the commands from the table below without importing any
command module, and `mpgpack CMD …` imports only CMD's module, so `mpgpack serve` starts with
only the `api` extra installed. A command whose extra is missing says so in one line.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from mpgpack import __version__
from mpgpack.core.errors import UserError


class Command(NamedTuple):
    name: str
    module: str          # defines register(subparsers), which adds this command's parser
    help: str            # the line in `mpgpack --help` (tests check it matches register())
    extra: str | None    # the pip extra the command needs; None: the base install suffices


COMMANDS = [
    Command("build", "mpgpack.export.cli",
            "train, export ONNX/TFLite/TF.js, check parity, write a bundle", "build"),
    Command("schema", "mpgpack.train.schema_cli",
            "infer a CSV's schema and write it as JSON to edit and pass to build --schema", None),
    Command("verify", "mpgpack.export.cli",
            "re-check a bundle's sha256s and its parity in Python runtimes", "build"),
    Command("sign", "mpgpack.export.cli",
            "sign a bundle's manifest with an Ed25519 key", "build"),
    Command("keygen", "mpgpack.export.cli",
            "make an Ed25519 key pair for signing bundles", "build"),
    Command("web", "mpgpack.targets.web.cli",
            "serve a bundle's offline-capable web page (TF.js in the browser)", None),
    Command("bench", "mpgpack.bench.cli",
            "measure parity and latency of every runtime in one run", "dev"),
    Command("edge", "mpgpack.targets.edge.cli",
            "the Raspberry Pi bundle: pack it, check it under emulation", "edge"),
    Command("serve", "mpgpack.targets.api.cli",
            "serve the model over HTTP (ONNX Runtime; /predict, V2, /docs)", "api"),
    Command("predict", "mpgpack.targets.api.cli",
            "send cars to a running service and print the predictions", None),
    Command("publish", "mpgpack.storage.cli",
            "upload a bundle to s3://BUCKET/PREFIX/ (or a local registry folder) and make it "
            "current", "s3"),
    Command("fetch", "mpgpack.storage.cli",
            "download a bundle from S3 into the local cache, verified", "s3"),
    Command("report", "mpgpack.train.report_cli",
            "print where a bundle's model report is (--open: open it)", None),
    Command("monitor", "mpgpack.targets.monitor.cli",
            "drift report of a prediction log (table + HTML histograms)", None),
    Command("versions", "mpgpack.storage.registry_cli",
            "list the versions in a registry (folder or S3)", None),
    Command("rollback", "mpgpack.storage.registry_cli",
            "point the registry's current version back at the previous one", None),
]
COMMANDS_BY_NAME = {c.name: c for c in COMMANDS}

# Which extras install each third-party module a command may import (its top-level import
# name). tests/test_cli.py checks it against pyproject.toml's optional dependencies.
MODULE_EXTRAS: dict[str, tuple[str, ...]] = {
    "sklearn": ("build",), "pandas": ("build",), "skl2onnx": ("build",), "onnx": ("build",),
    "tensorflow": ("build",), "tensorflowjs": ("build",), "matplotlib": ("build", "dev"),
    "onnxruntime": ("api", "build"), "ai_edge_litert": ("edge", "build"),
    "fastapi": ("api",), "uvicorn": ("api",), "uvloop": ("api",), "httptools": ("api",),
    "orjson": ("api",), "prometheus_client": ("api",), "grpc": ("api",), "grpc_tools": ("api",),
    "boto3": ("s3",), "botocore": ("s3",), "cryptography": ("build", "api"),
    "pytest": ("dev",), "httpx": ("dev",), "psutil": ("dev",), "playwright": ("dev",),
    "flask": ("dev",), "gunicorn": ("dev",), "kubernetes_validate": ("dev",), "scipy": ("dev",),
    "build": ("dev",), "tritonclient": ("dev",), "hypothesis": ("dev",), "schemathesis": ("dev",), "importlinter": ("dev",),
}


def missing_extra(exc: ModuleNotFoundError, command: Command) -> str | None:
    """The extra that provides the module `exc` did not find; None if no extra does."""
    extras = MODULE_EXTRAS.get((exc.name or "").split(".")[0], ())
    if not extras:
        return None
    return command.extra if command.extra in extras else extras[0]


def command_in(argv: list[str]) -> Command | None:
    """The command named on the line: the first word that is not an option."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return COMMANDS_BY_NAME.get(word)


def make_parser(command: Command | None = None) -> argparse.ArgumentParser:
    """The full parser of `command` (its module imported); every other command is a stub that
    only carries its help line."""
    parser = argparse.ArgumentParser(
        prog="mpgpack",
        description="Train the Auto MPG model once, export it to ONNX, TFLite and TF.js, and "
                    "serve it in a browser, on an edge device and over HTTP.")
    parser.add_argument("--version", action="version", version=f"mpgpack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered = set()
    for c in COMMANDS:
        if c.name in registered:
            continue
        if command is not None and c.module == command.module:
            importlib.import_module(c.module).register(sub)
            registered.update(sub.choices)
        else:
            sub.add_parser(c.name, help=c.help)
            registered.add(c.name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = command_in(argv)
    name = f"mpgpack {command.name}" if command else "mpgpack"
    try:
        args = make_parser(command).parse_args(argv)
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc, command) if command else None
        if extra is None:
            raise
        print(f"{name} needs the {extra} extra: pip install 'mpgpack[{extra}]' "
              f"(no module named {exc.name!r})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
