"""`mpgpack publish` and `mpgpack fetch`: bundles into a registry (S3 or a folder) and from S3.

Cheap to import: boto3 and the bundle code are imported inside run().
"""
from __future__ import annotations

import argparse
import sys

from mpgpack.core.cli_args import add_bundle_argument


def _publish(args) -> int:
    from mpgpack.storage.registry import open_registry

    def progress(key: str, nbytes: int) -> None:
        print(f"  uploaded {key} ({nbytes:,} bytes)", file=sys.stderr, flush=True)

    if args.sign_key:
        _sign_before_publishing(args.bundle, args.sign_key)
    result = open_registry(args.dest).publish(args.bundle,
                                              on_upload=None if args.quiet else progress)
    print("\n".join(result.report()))
    return 0


def _sign_before_publishing(bundle: str, key_path: str) -> None:
    """Signs the local bundle as it will be published (signature.json travels with it): the
    last step before upload, so the edge tarballs packed before are covered too."""
    from mpgpack.core.bundle import resolve_bundle_path
    from mpgpack.core.signing import load_private_key, sign_and_report
    print(sign_and_report(resolve_bundle_path(bundle), load_private_key(key_path)), file=sys.stderr)


def _fetch(args) -> int:
    import time
    from mpgpack.storage.s3 import fetch_bundle
    t0 = time.perf_counter()
    path = fetch_bundle(args.url, args.cache)
    print(f"fetched and verified in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="upload a bundle to s3://BUCKET/PREFIX/ (or a local "
                                       "registry folder) and make it current",
                       description="Upload BUNDLE to DEST/mpg-<version>/, re-read every object "
                                   "and compare its sha256 with the manifest, then point "
                                   "DEST/current at it (written last: an interrupted upload "
                                   "leaves the previous version current). Credentials and "
                                   "endpoint come from the standard AWS environment/config "
                                   "(AWS_ENDPOINT_URL for a non-AWS server). DEST may also be "
                                   "a local registry folder (DEST/CURRENT); either way the "
                                   "publish is recorded in the registry's history.")
    add_bundle_argument(p, positional=True, required=True)
    p.add_argument("dest", help="s3://BUCKET/PREFIX/ or a local registry folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per uploaded object")
    p.add_argument("--sign-key", default=None, metavar="KEY",
                   help="sign the bundle with this Ed25519 private key first (writes its "
                        "signature.json, published with it; `mpgpack keygen` makes a key)")
    p.set_defaults(run=_publish)

    p = sub.add_parser("fetch", help="download a bundle from S3 into the local cache, verified",
                       description="Download s3://BUCKET/PREFIX/current (or .../mpg-<version>/) "
                                   "into the local cache, check every sha256, print the local "
                                   "folder. A tampered object is refused.")
    p.add_argument("url", help="s3://BUCKET/PREFIX/current, s3://BUCKET/PREFIX/ or "
                               "s3://BUCKET/PREFIX/mpg-<version>/")
    p.add_argument("--cache", default=None,
                   help="cache folder (default: $MPGPACK_CACHE/s3 or ~/.cache/mpgpack/s3)")
    p.set_defaults(run=_fetch)
