"""`mpgpack edge bundle | userland | emulate`. Imports of pip/tar/qemu helpers happen in run()."""
from __future__ import annotations

import argparse
from pathlib import Path

ARCH_CHOICES = ["aarch64", "x86_64"]
SAME_AS_HOST = 1e-6      # emulated aarch64 LiteRT vs this machine's LiteRT, MPG


def _bundle(args) -> int:
    from mpgpack.targets.edge.pack import pack_into_bundle
    path, entries = pack_into_bundle(args.bundle, args.arch or None,
                                     Path(args.wheel_cache) if args.wheel_cache else None)
    for entry in entries.values():
        print(f"wrote {path / entry['path']}  ({entry['bytes'] / 1e6:.1f} MB, "
              f"{len(entry['wheels'])} wheels, sha256 {entry['sha256'][:12]}…)")
    print(f"recorded in {path / 'manifest.json'} under packages")
    return 0


def _userland(args) -> int:
    from mpgpack.targets.edge.emulate import ensure_userland, userland_dir
    folder = ensure_userland(Path(args.dir) if args.dir else userland_dir())
    print(f"aarch64 userland ready in {folder} (run programs with {folder / 'run'})")
    return 0


def _emulate(args) -> int:
    import tempfile
    import time

    import numpy as np

    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge import emulate
    from mpgpack.core.runtimes import LiteRTRunner

    bundle = open_bundle(args.bundle)
    entry = bundle.manifest.get("packages", {}).get("edge_aarch64")
    if not entry:
        raise UserError(f"bundle {bundle.path} has no aarch64 edge tarball; run "
                        f"`mpgpack edge bundle --arch aarch64` first")
    started = time.perf_counter()
    userland = emulate.ensure_userland()
    golden = bundle.golden()
    host = LiteRTRunner(bundle.artifact("tflite_float32")).predict(golden.X).astype(np.float64)
    with tempfile.TemporaryDirectory(prefix="mpg-edge-emulate-") as tmp:
        tmp = Path(tmp)
        top = emulate.unpack(bundle.path / entry["path"], tmp)
        proc = emulate.install(top, tmp / "opt", userland)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            raise UserError(f"install.sh failed under emulation: "
                            f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        csv = emulate.write_golden_csv(golden.X, [f["name"] for f in bundle.features],
                                       tmp / "golden.csv")
        proc = emulate.run_runner(tmp / "opt", "predict", "--input", str(csv), userland=userland)
        if proc.returncode != 0:
            raise UserError(f"predict failed under emulation: {proc.stderr.strip()[-300:]}")
        device = emulate.read_predictions_csv(proc.stdout).astype(np.float64)
    vs_host = float(np.abs(device - host).max())
    vs_reference = float(np.abs(device - golden.expected).max())
    ok = vs_host <= SAME_AS_HOST and vs_reference <= golden.tolerance
    print(f"emulated aarch64 vs x86_64 LiteRT: max abs difference {vs_host:.3g} MPG "
          f"(limit {SAME_AS_HOST:g})")
    print(f"emulated aarch64 vs reference:     max abs error {vs_reference:.3g} MPG "
          f"(tolerance {golden.tolerance:g}), {len(device)} golden rows")
    print(f"emulate: {'OK' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    edge = sub.add_parser("edge", help="the Raspberry Pi bundle: pack it, check it under emulation",
                          description="Pack the model for an offline 64-bit Raspberry Pi "
                                      "(LiteRT runner, wheelhouse, install.sh, systemd units) "
                                      "and check it on an emulated aarch64 userland.")
    esub = edge.add_subparsers(dest="edge_command", metavar="SUBCOMMAND", required=True)

    p = esub.add_parser("bundle", help="write mpg-edge-<version>-<arch>.tar.gz into a bundle",
                        description="Write mpg-edge-<version>-<arch>.tar.gz into the bundle folder "
                                    "(runner wheel, model.tflite, manifest, golden vectors, "
                                    "numpy + ai-edge-litert wheels for the target, install.sh, "
                                    "systemd units, README) and record each in the manifest's "
                                    "packages with its sha256 and size. Wheels are downloaded "
                                    "once and cached.")
    p.add_argument("--bundle", default=None,
                   help="bundle folder, or a registry folder with CURRENT (default: dist)")
    p.add_argument("--arch", action="append", choices=ARCH_CHOICES,
                   help="target architecture, repeatable (default: aarch64 and x86_64)")
    p.add_argument("--wheel-cache", default=None,
                   help="where downloaded wheels are kept (default: $MPGPACK_WHEEL_CACHE or "
                        "~/.cache/mpgpack/wheels)")
    p.set_defaults(run=_bundle)

    p = esub.add_parser("userland", help="build the emulated aarch64 userland (once, cached)",
                        description="Build a Debian 12 arm64 userland with Python 3.11 under "
                                    "qemu-user-static (needs root for apt the first time).")
    p.add_argument("dir", nargs="?", default=None,
                   help="where (default: $MPGPACK_AARCH64_USERLAND or ~/.cache/mpgpack/aarch64)")
    p.set_defaults(run=_userland)

    p = esub.add_parser("emulate", help="install the aarch64 tarball offline under emulation and "
                                        "compare its predictions",
                        description="Unpack the bundle's aarch64 edge tarball, run its install.sh "
                                    "offline in the emulated userland, predict the golden vectors "
                                    "there and compare them with this machine's LiteRT (<= 1e-6) "
                                    "and the reference (<= the bundle's tolerance).")
    p.add_argument("--bundle", default=None,
                   help="bundle folder, or a registry folder with CURRENT (default: dist)")
    p.set_defaults(run=_emulate)
