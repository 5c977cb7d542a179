"""`mpgpack edge bundle | userland | emulate`. Imports of pip/tar/qemu helpers happen in run()."""
from __future__ import annotations

import argparse
from pathlib import Path

from mpgpack.core.cli_args import add_bundle_argument
from mpgpack.targets.edge.pack import PLATFORMS, RELEASE_PYTHONS

ARCH_CHOICES = list(PLATFORMS)
RELEASE_CHOICES = list(RELEASE_PYTHONS)    # bookworm (Pi OS 12, Python 3.11), trixie (13, 3.13)


def _bundle(args) -> int:
    from mpgpack.targets.edge.pack import pack_into_bundle
    path, entries = pack_into_bundle(args.bundle, args.arch or None,
                                     Path(args.wheel_cache) if args.wheel_cache else None,
                                     Path(args.trust) if args.trust else None)
    for entry in entries.values():
        print(f"wrote {path / entry['path']}  ({entry['bytes'] / 1e6:.1f} MB, "
              f"{len(entry['wheels'])} wheels, sha256 {entry['sha256'][:12]}…)")
    print(f"recorded in {path / 'manifest.json'} under packages")
    return 0


def _releases(args) -> list[str]:
    return [args.release] if args.release else RELEASE_CHOICES


def _userland(args) -> int:
    from mpgpack.core.errors import UserError
    from mpgpack.targets.edge.emulate import ensure_userland, userland_dir
    if args.dir and not args.release:
        raise UserError("a userland folder holds one release: "
                        "give --release bookworm|trixie with DIR")
    for release in _releases(args):
        folder = ensure_userland(release, Path(args.dir) if args.dir else userland_dir(release))
        print(f"aarch64 {release} userland ready in {folder} (run programs with {folder / 'run'})")
    return 0


def _emulate(args) -> int:
    import tempfile
    import time

    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge import emulate
    from mpgpack.core.runtimes import LiteRTRunner
    from mpgpack.core.schema import Schema

    bundle = open_bundle(args.bundle)
    entry = bundle.manifest.get("packages", {}).get("edge_aarch64")
    if not entry:
        raise UserError(f"bundle {bundle.path} has no aarch64 edge tarball; run "
                        f"`mpgpack edge bundle --arch aarch64` first")
    started = time.perf_counter()
    golden = bundle.golden()
    schema = Schema.from_manifest(bundle.manifest)
    host = LiteRTRunner(bundle.artifact("tflite_float32")).run(golden.X)
    features = schema.names
    unit = "" if schema.is_classifier else f" {schema.target}"
    failed = []
    for release in _releases(args):
        with tempfile.TemporaryDirectory(prefix=f"mpg-edge-emulate-{release}-") as tmp:
            try:
                check = emulate.check_release(bundle.path / entry["path"], release, golden,
                                              host, features, Path(tmp),
                                              columns=emulate.output_columns(schema))
            except UserError as exc:            # one release failing: still check the others
                print(f"emulated {release} (aarch64): FAILED: {exc}")
                failed.append(release)
                continue
        print(check.install.stdout, end="")
        # Both against the golden tolerance: the emulated Cortex-A72 makes LiteRT pick other
        # XNNPACK kernels than x86, so the last float32 bits differ (not a fault).
        ok = max(check.vs_reference, check.vs_host) <= golden.tolerance
        print(f"emulated {release} (aarch64): installed in {check.install_seconds:.0f} s, "
              f"{check.installed_bytes / 1e6:.0f} MB; golden max abs error vs reference "
              f"{check.vs_reference:.3g}{unit}, vs x86_64 LiteRT {check.vs_host:.3g}{unit} "
              f"(tolerance {golden.tolerance:g}, {len(check.predictions)} rows): "
              f"{'OK' if ok else 'FAILED'}")
        if not ok:
            failed.append(release)
    print(f"emulate: {'FAILED on ' + ', '.join(failed) if failed else 'OK'} "
          f"in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    edge = sub.add_parser("edge", help="the Raspberry Pi bundle: pack it, check it under emulation",
                          description="Pack the model for an offline 64-bit Raspberry Pi "
                                      "(LiteRT runner, wheelhouse, install.sh, systemd units) "
                                      "and check it on an emulated aarch64 userland.")
    esub = edge.add_subparsers(dest="edge_command", metavar="SUBCOMMAND", required=True)

    p = esub.add_parser("bundle", help="write mpg-edge-<version>-<arch>-py311-py313.tar.gz into "
                                       "a bundle",
                        description="Write mpg-edge-<version>-<arch>-py311-py313.tar.gz into the "
                                    "bundle folder (runner wheel, model.tflite, manifest, golden "
                                    "vectors, numpy + ai-edge-litert wheels for the target and "
                                    "for both Python 3.11 and 3.13, install.sh, "
                                    "systemd units, README) and record each in the manifest's "
                                    "packages with its sha256 and size. Wheels are downloaded "
                                    "once and cached.")
    add_bundle_argument(p)
    p.add_argument("--arch", action="append", choices=ARCH_CHOICES,
                   help="target architecture, repeatable (default: aarch64 and x86_64)")
    p.add_argument("--wheel-cache", default=None,
                   help="where downloaded wheels are kept (default: $MPGPACK_WHEEL_CACHE or "
                        "~/.cache/mpgpack/wheels)")
    p.add_argument("--trust", default=None, metavar="KEY.pub",
                   help="ship this Ed25519 public key: install.sh puts it beside the bundle and "
                        "the device then refuses bundles not signed by it (the bundle must be "
                        "signed by it already: `mpgpack sign`)")
    p.set_defaults(run=_bundle)

    p = esub.add_parser("userland", help="build the emulated aarch64 userlands (once, cached)",
                        description="Build a Debian 12 \"bookworm\" (Python 3.11) and/or a "
                                    "Debian 13 \"trixie\" (Python 3.13) arm64 userland, run by "
                                    "qemu-user-static as a Cortex-A72 (needs root for apt the "
                                    "first time).")
    p.add_argument("dir", nargs="?", default=None,
                   help="where, with --release (default: $MPGPACK_AARCH64_USERLAND-<release> or "
                        "~/.cache/mpgpack/aarch64-<release>)")
    p.add_argument("--release", choices=RELEASE_CHOICES, default=None,
                   help="Raspberry Pi OS release to build (default: both)")
    p.set_defaults(run=_userland)

    p = esub.add_parser("emulate", help="install the aarch64 tarball offline under emulation and "
                                        "compare its predictions",
                        description="Unpack the bundle's aarch64 edge tarball, run its install.sh "
                                    "offline in each emulated userland (bookworm, trixie), "
                                    "predict the golden vectors there and compare them with the "
                                    "reference and with this machine's LiteRT, both within the "
                                    "bundle's golden tolerance (the emulated CPU changes the last "
                                    "float32 bits, so not bit for bit).")
    add_bundle_argument(p)
    p.add_argument("--release", choices=RELEASE_CHOICES, default=None,
                   help="Raspberry Pi OS release to check (default: both)")
    p.set_defaults(run=_emulate)
