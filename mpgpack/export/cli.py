"""`mpgpack build`, `verify`, `sign` and `keygen`. Imports of the build stack happen inside run()."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mpgpack.core.cli_args import add_bundle_argument
from mpgpack.core.pointer import DEFAULT_REGISTRY


def _build(args) -> int:
    key = None
    if args.sign_key:                      # a bad key fails now, not after a minute of training
        from mpgpack.core.signing import load_private_key
        key = load_private_key(args.sign_key)
    from mpgpack.export.build import BuildRequest, build_bundle, summary

    def request(data: Path | None) -> BuildRequest:
        return BuildRequest(data=data, target=args.target, task=args.task, schema=args.schema,
                            model=args.model, seed=args.seed)
    if args.data and args.data.startswith("s3://"):
        import tempfile
        from mpgpack.storage.s3 import download_data
        with tempfile.TemporaryDirectory(prefix="mpgpack-data-") as tmp:
            bundle = build_bundle(out=args.out, request=request(download_data(args.data, Path(tmp))))
    else:
        bundle = build_bundle(out=args.out, request=request(Path(args.data) if args.data else None))
    print(summary(json.loads((bundle / "manifest.json").read_text())))
    print(f"\nwrote {bundle}")
    if key is not None:
        _sign_and_say(bundle, key)
    return 0


def _sign_and_say(bundle_dir, key) -> None:
    from mpgpack.core.signing import sign_and_report
    print(f"{sign_and_report(bundle_dir, key)}: the manifest and its packages")


def _sign(args) -> int:
    from mpgpack.core.bundle import resolve_bundle_path
    from mpgpack.core.signing import load_private_key
    key = load_private_key(args.key)
    _sign_and_say(resolve_bundle_path(args.bundle), key)
    return 0


def _keygen(args) -> int:
    from mpgpack.core.signing import generate_keypair
    key, pub, key_id = generate_keypair(args.key)
    print(f"wrote {key} (private, mode 0600: keep it on the build machine) and {pub} "
          f"(public: give it to `--trust`); key id {key_id}")
    return 0


def _verify(args) -> int:
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.signing import trust_line
    from mpgpack.core.verify import verify_bundle
    from mpgpack.storage.s3 import resolve_bundle_arg
    bundle = open_bundle(resolve_bundle_arg(args.bundle))
    signature = trust_line(bundle.path, args.trust, bundle.manifest)   # raises if refused
    rows, ok = verify_bundle(bundle)
    print(signature)
    print(f"bundle {bundle.path}: every sha256 matches the manifest "
          f"({len(bundle.manifest['artifacts'])} files and {len(bundle.manifest.get('packages') or {})} "
          "packages)")
    print(f"{'artifact':<16} {'runtime':<15} {'rows':>5} {'max abs err':>12} {'mean abs err':>12}  result")
    for r in rows:
        verdict = ("pass" if r["passed"] else "FAIL") if r["gated"] else "recorded (quantized)"
        print(f"{r['artifact']:<16} {r['runtime']:<15} {r['rows']:>5} {r['max_abs_error']:>12.2e} "
              f"{r['mean_abs_error']:>12.2e}  {verdict}")
    print("verify: OK" if ok else "verify: FAILED (a float32 artifact exceeds the tolerance)")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="train, export ONNX/TFLite/TF.js, check parity, write a bundle",
                       description="Train a model on a table (by default the Auto MPG data "
                                   "shipped in the package), choosing the family by cross-"
                                   "validation, export it to ONNX, TFLite (float32, float16, int8) "
                                   "and TF.js, check every artifact against the sklearn reference "
                                   "in its real runtime, and write the bundle OUT/mpg-<version>/ "
                                   "(and point OUT/CURRENT at it). Your own data: --data FILE.csv "
                                   "--target COLUMN; the schema is inferred (see `mpgpack schema`) "
                                   "or read from --schema.")
    p.add_argument("--data", default=None,
                   help="training data, a file or s3://BUCKET/KEY: a CSV with a header row (with "
                        "--target), or the Auto MPG data (UCI auto-mpg.data format or CSV with "
                        "its columns; default: mpgpack/data/auto-mpg.data, shipped in the package)")
    p.add_argument("--target", default=None, metavar="COLUMN",
                   help="the column to predict; every other column is a feature (default: the "
                        "Auto MPG showcase, target mpg)")
    p.add_argument("--task", choices=["regression", "classification"], default=None,
                   help="default: inferred (classification when the target holds text or at "
                        "most 10 different whole numbers)")
    p.add_argument("--schema", type=Path, default=None, metavar="SCHEMA.json",
                   help="the schema to use instead of inferring it: a file `mpgpack schema` "
                        "wrote, edited (units, limits, which values may be missing, labels)")
    from mpgpack.train.family_names import CHOICES
    p.add_argument("--model", choices=CHOICES, default="auto",
                   help="model family: linear (Ridge / logistic regression), mlp, gbm (gradient "
                        "boosting, Huber loss among the candidates), forest, hgb (histogram "
                        "gradient boosting), or auto: every family on the same CV folds, the "
                        "best kept (default: auto)")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_REGISTRY),
                   help=f"registry folder (default: {DEFAULT_REGISTRY})")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, CV folds and the MLP (default: 0)")
    p.add_argument("--sign-key", default=None, metavar="KEY",
                   help="sign the new bundle with this Ed25519 private key (`mpgpack keygen`)")
    p.set_defaults(run=_build)

    p = sub.add_parser("verify", help="re-check a bundle's sha256s and its parity in Python runtimes",
                       description="Re-hash every artifact of a bundle against its manifest and "
                                   "re-run the golden vectors in onnxruntime and LiteRT. Exit code 0 "
                                   "only if every hash matches and every float32 artifact is within "
                                   "the tolerance.")
    add_bundle_argument(p, positional=True, s3=True)
    p.add_argument("--trust", default=None, metavar="KEY.pub",
                   help="require a valid signature by this Ed25519 public key (default: the "
                        "signature is not checked, and verify says so)")
    p.set_defaults(run=_verify)

    p = sub.add_parser("sign", help="sign a bundle's manifest with an Ed25519 key",
                       description="Sign BUNDLE's manifest (which holds every artifact's sha256) "
                                   "with an Ed25519 private key: writes BUNDLE/signature.json. "
                                   "Two signatures: the manifest less its packages (what the API "
                                   "and the device serve from; the edge tarball ships it) and "
                                   "the whole manifest (web site, report, edge tarballs). Sign "
                                   "after `mpgpack edge bundle`, or with `publish --sign-key`.")
    add_bundle_argument(p, positional=True, required=True)
    p.add_argument("--key", required=True, help="Ed25519 private key, PEM (`mpgpack keygen`)")
    p.set_defaults(run=_sign)

    p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing bundles",
                       description="Write KEY (the private key, PEM, mode 0600: keep it on the "
                                   "build machine) and KEY.pub (the public key: give it to "
                                   "`--trust` on `mpgpack serve`, `mpgpack verify` and the edge "
                                   "runner). Refuses to overwrite an existing file.")
    p.add_argument("key", help="path of the private key to write (the public key is KEY.pub)")
    p.set_defaults(run=_keygen)
