"""Command-line arguments that several commands share, worded once. Stdlib only."""
from __future__ import annotations

import argparse

from mpgpack.core.pointer import DEFAULT_REGISTRY


def add_bundle_argument(parser: argparse.ArgumentParser, *, positional: bool = False,
                        s3: bool = False, required: bool = False) -> None:
    """`--bundle DIR` (or a positional BUNDLE): a bundle folder, or a registry whose pointer
    names one; with `s3`, also an S3 registry's pointer. Default: ./dist unless required."""
    what = "bundle folder, or a registry folder whose CURRENT names one"
    if s3:
        what += ", or s3://BUCKET/PREFIX/current (needs the s3 extra)"
    help_text = what + ("" if required else f" (default: {DEFAULT_REGISTRY})")
    if positional:
        parser.add_argument("bundle", nargs=None if required else "?", default=None, help=help_text)
    else:
        parser.add_argument("--bundle", default=None, required=required, help=help_text)
