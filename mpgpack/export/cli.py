"""`mpgpack build` and `mpgpack verify`. Imports of the build stack happen inside run()."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _build(args) -> int:
    from mpgpack.export.build import build_bundle, summary
    if args.data and args.data.startswith("s3://"):
        import tempfile
        from mpgpack.storage.s3 import download_data
        with tempfile.TemporaryDirectory(prefix="mpgpack-data-") as tmp:
            bundle = build_bundle(download_data(args.data, Path(tmp)), args.out, args.seed)
    else:
        bundle = build_bundle(Path(args.data) if args.data else None, args.out, args.seed)
    print(summary(json.loads((bundle / "manifest.json").read_text())))
    print(f"\nwrote {bundle}")
    return 0


def _verify(args) -> int:
    from mpgpack.core.bundle import open_bundle, signature_notice
    from mpgpack.core.verify import verify_bundle
    from mpgpack.storage.s3 import resolve_bundle_arg
    bundle = open_bundle(resolve_bundle_arg(args.bundle))
    print(signature_notice(bundle))
    rows, ok = verify_bundle(bundle)
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
                       description="Train the MLP on the Auto MPG data, export it to ONNX, TFLite "
                                   "(float32, float16, int8) and TF.js, check every artifact against "
                                   "the sklearn reference in its real runtime, and write the bundle "
                                   "OUT/mpg-<version>/ (and point OUT/CURRENT at it).")
    p.add_argument("--data", default=None,
                   help="training data: UCI auto-mpg.data format or CSV with a header, a file "
                        "or s3://BUCKET/KEY (default: the data/auto-mpg.data shipped in the repo)")
    p.add_argument("--out", type=Path, default=Path("dist"), help="registry folder (default: dist)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, CV folds and the MLP (default: 0)")
    p.set_defaults(run=_build)

    p = sub.add_parser("verify", help="re-check a bundle's sha256s and its parity in Python runtimes",
                       description="Re-hash every artifact of a bundle against its manifest and "
                                   "re-run the golden vectors in onnxruntime and LiteRT. Exit code 0 "
                                   "only if every hash matches and every float32 artifact is within "
                                   "the tolerance.")
    p.add_argument("bundle", nargs="?", default=None,
                   help="bundle folder, a registry folder with CURRENT, or "
                        "s3://BUCKET/PREFIX/current (default: dist)")
    p.set_defaults(run=_verify)
