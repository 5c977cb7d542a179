"""The edge bundle: mpg-edge-<version>-<arch>-py311-py313.tar.gz, everything a device needs
with no network, on either Raspberry Pi OS release (12 "bookworm", Python 3.11; 13 "trixie",
Python 3.13): the wheelhouse holds both Pythons' wheels and pip picks by tag.

    mpg-edge-<version>-<arch>-py311-py313/
      README.md            how to copy, install, run and serve it (targets/edge/README.md)
      install.sh           venv + offline install from wheels/, then `mpg-edge verify`
      mpg-edge.path        systemd: start mpg-edge.service when the inbox holds a file
      mpg-edge.service     systemd: `mpg-edge drain INBOX OUTBOX`
      mpg-edge-follow.*    systemd: a timer running `mpg-edge follow REGISTRY --once`
      TARGET               the machine and Pythons the wheels are for ("aarch64 cp311 cp313")
      trust.pub            with `--trust KEY.pub`: the public key install.sh puts beside the
                           bundle; the device then refuses a bundle not signed by it
      bundle/              manifest.json, model.tflite, golden.json (sha256s in the manifest),
                           signature.json when the bundle is signed (core/signing.py)
      wheels/              the runner's wheel + numpy + ai-edge-litert and their dependencies,
                           and pip (run from its wheel: no ensurepip needed)
      SHA256SUMS           of every file above (`sha256sum -c SHA256SUMS`)

Build side only (pip, tarfile). Wheels are downloaded once per architecture, Python and pin set into
~/.cache/mpgpack/wheels, so packing again costs no network and a few seconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from mpgpack import __version__
from mpgpack.core.signing import core_manifest
from mpgpack.targets.edge.device import EDGE_ARTIFACTS
from mpgpack.core.errors import UserError

HERE = Path(__file__).resolve().parent
DEVICE_FILES = HERE / "device_files"
README = HERE / "README.md"
# The device's pins, shipped in the package (an installed mpgpack has no constraints.txt);
# tests/test_packaging.py keeps them equal to the repository's constraints.txt.
CONSTRAINTS = HERE / "device-constraints.txt"
RUNTIME_PACKAGES = ["numpy", "ai-edge-litert"]      # the runner's only dependencies
# pip itself rides along: install.sh runs it from its wheel, so the device needs no
# python3-venv/ensurepip (absent from some images) and no network to bootstrap it.
INSTALLER = "pip==26.3"
# The Python of each Raspberry Pi OS release (and the Debian release it is built on) that a
# tarball serves; every tarball carries the wheels of all of them.
RELEASE_PYTHONS = {"bookworm": "3.11", "trixie": "3.13"}
PYTHON_VERSIONS = list(RELEASE_PYTHONS.values())
# manylinux tags a Debian 12 device (glibc 2.36) accepts, per architecture.
PLATFORMS = {arch: [f"manylinux2014_{arch}", f"manylinux_2_17_{arch}", f"manylinux_2_27_{arch}",
                    f"manylinux_2_28_{arch}"] for arch in ("aarch64", "x86_64")}
DEFAULT_ARCHES = ["aarch64", "x86_64"]


def wheel_cache_root() -> Path:
    return Path(os.environ.get("MPGPACK_WHEEL_CACHE", Path.home() / ".cache" / "mpgpack" / "wheels"))


def runtime_pins(constraints: Path = CONSTRAINTS) -> list[str]:
    """numpy==X and ai-edge-litert==Y as pinned for the device (the versions tested here)."""
    pins = {}
    for line in constraints.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    missing = [p for p in RUNTIME_PACKAGES if p not in pins]
    if missing:
        raise UserError(f"{constraints} pins no version for {', '.join(missing)}")
    return [f"{p}=={pins[p]}" for p in RUNTIME_PACKAGES]


def python_abi(python_version: str) -> str:
    """"3.13" -> "cp313", the wheel tag of that CPython."""
    return "cp" + python_version.replace(".", "")


def python_tag(python_versions: list[str]) -> str:
    """["3.11", "3.13"] -> "py311-py313", the Pythons a tarball serves, as its name says."""
    return "-".join("py" + v.replace(".", "") for v in python_versions)


def fetch_wheels(arch: str, python: str, pins: list[str], cache_root: Path | None = None) -> Path:
    """A folder of wheels for `pins` on arch and CPython `python` (and dependencies), cached."""
    if arch not in PLATFORMS:
        raise UserError(f"unknown --arch {arch!r} (allowed: {', '.join(PLATFORMS)})")
    abi = python_abi(python)
    cache_root = cache_root or wheel_cache_root()
    key = hashlib.sha256("\n".join([arch, abi, *PLATFORMS[arch], *pins,
                                    CONSTRAINTS.read_text()]).encode()).hexdigest()[:12]
    folder = cache_root / f"{arch}-{abi}-{key}"
    if (folder / ".complete").is_file():
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_root))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp",
           "--abi", abi, "--abi", "abi3", "--abi", "none",
           *[a for p in PLATFORMS[arch] for a in ("--platform", p)],
           "-c", str(CONSTRAINTS), "-d", str(tmp), *pins]
    print(f"edge: downloading wheels for {arch} Python {python} ({', '.join(pins)}) "
          f"into {cache_root}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        last = [l for l in proc.stderr.splitlines() if l.strip()][-1:] or ["(no output)"]
        raise UserError(f"could not fetch the {arch} Python {python} wheels for {', '.join(pins)}: "
                        f"pip download failed: {last[0]}")
    (tmp / ".complete").write_text("\n".join(pins) + "\n")
    if folder.exists():                    # another packer finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(folder)
    return folder


def _stage(bundle_dir: Path, arch: str, wheel_sets: list[Path], pins: list[str],
           top: Path, trust: Path | None = None) -> None:
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge.wheel import build_runner_wheel
    bundle = open_bundle(bundle_dir)
    (top / "bundle").mkdir(parents=True)
    # The manifest as built, less "packages" (the derived outputs, this tarball among them:
    # a tarball cannot hold its own hash, and without it packing again gives the same bytes).
    shipped = core_manifest(bundle.manifest)
    (top / "bundle" / "manifest.json").write_text(json.dumps(shipped, indent=1))
    _stage_signature(bundle.path, shipped, top, trust)
    for name in EDGE_ARTIFACTS:            # sha256-checked on the way in
        src = bundle.artifact(name)
        shutil.copy2(src, top / "bundle" / src.name)
    (top / "wheels").mkdir()
    # One wheelhouse for every Python: the pure wheels (pip, tqdm, ...) are the same file in
    # each set and land once; pip on the device picks the cpXY wheels by its own tag.
    for wheels in wheel_sets:
        for whl in sorted(wheels.glob("*.whl")):
            shutil.copy2(whl, top / "wheels" / whl.name)
    build_runner_wheel(top / "wheels", __version__, pins)
    for name in ("install.sh", "mpg-edge.service", "mpg-edge.path", "mpg-edge-follow.service",
                 "mpg-edge-follow.timer"):
        shutil.copy2(DEVICE_FILES / name, top / name)
    shutil.copy2(README, top / "README.md")
    (top / "TARGET").write_text(" ".join([arch, *map(python_abi, PYTHON_VERSIONS)]) + "\n")
    sums = [f"{_sha256(p)}  {p.relative_to(top).as_posix()}\n"
            for p in sorted(top.rglob("*")) if p.is_file()]
    (top / "SHA256SUMS").write_text("".join(sums))


def _stage_signature(bundle_dir: Path, shipped: dict, top: Path, trust: Path | None) -> None:
    """The signature over the shipped manifest (the device checks that one) and, if given, the
    key it must be signed by (pack_into_bundle checked that it is)."""
    from mpgpack.core.signing import DEVICE_KEY_FILE, SIGNATURE_FILE, device_signature
    signature = device_signature(bundle_dir)
    if signature is not None:
        (top / "bundle" / SIGNATURE_FILE).write_text(json.dumps(signature, indent=1) + "\n")
    if trust is not None:
        shutil.copyfile(trust, top / DEVICE_KEY_FILE)


def _sha256(path: Path) -> str:
    from mpgpack.core.bundle import sha256_file
    return sha256_file(path)


def _write_tarball(top: Path, dest: Path) -> None:
    """tar.gz with sorted names, fixed times and owners: same inputs, same bytes."""
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
        executable = info.isdir() or info.name.endswith(".sh")
        info.mode = 0o755 if executable else 0o644
        return info
    tmp = dest.with_name("." + dest.name + ".tmp")
    with open(tmp, "wb") as raw:
        import gzip
        # level 6: the wheels inside are compressed already; 9 costs time and saves nothing
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for p in [top, *sorted(top.rglob("*"))]:
                    tar.add(p, arcname=p.relative_to(top.parent).as_posix(),
                            recursive=False, filter=normalise)
    os.replace(tmp, dest)


def pack_edge(bundle_dir: Path, manifest: dict, arches: list[str] | None = None,
              cache_root: Path | None = None, trust: Path | None = None) -> dict:
    """Writes one tarball per architecture (for every Python in PYTHON_VERSIONS) into
    bundle_dir; returns their manifest entries.

    Has the PACKERS signature (bundle_dir, manifest) -> {name: entry}.
    """
    from mpgpack.core.bundle_write import artifact_entry
    pins = runtime_pins()
    version = manifest["model"]["version"]
    entries = {}
    for arch in arches or DEFAULT_ARCHES:
        wheel_sets = [fetch_wheels(arch, py, [*pins, INSTALLER], cache_root)
                      for py in PYTHON_VERSIONS]
        name = f"mpg-edge-{version}-{arch}-{python_tag(PYTHON_VERSIONS)}"
        with tempfile.TemporaryDirectory(prefix="mpg-edge-pack-") as tmp:
            top = Path(tmp) / name
            _stage(Path(bundle_dir), arch, wheel_sets, pins, top, trust)
            dest = Path(bundle_dir) / f"{name}.tar.gz"
            _write_tarball(top, dest)
            wheel_names = sorted(p.name for p in (top / "wheels").glob("*.whl"))
        entries[f"edge_{arch}"] = artifact_entry(
            Path(bundle_dir), dest, "edge_tarball", arch=arch,
            python=[python_abi(v) for v in PYTHON_VERSIONS],
            requires=pins, wheels=wheel_names)
    return entries


def pack_into_bundle(bundle_path: str | None, arches: list[str] | None = None,
                     cache_root: Path | None = None,
                     trust: Path | None = None) -> tuple[Path, dict]:
    """`mpgpack edge bundle`: packs an existing bundle and records the tarballs in its manifest."""
    from mpgpack.core.bundle_write import write_manifest
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(bundle_path)
    bundle.verify(EDGE_ARTIFACTS)
    if trust is not None:        # before any download: a tarball must pass its own install
        from mpgpack.core.signing import verify_bundle_signature
        shipped = core_manifest(bundle.manifest)
        verify_bundle_signature(bundle.path, trust, shipped)
    entries = pack_edge(bundle.path, bundle.manifest, arches, cache_root, trust)
    for key, entry in entries.items():      # a tarball packed before under another name goes
        before = bundle.manifest.get("packages", {}).get(key, {}).get("path")
        if before and before != entry["path"] and re.fullmatch(r"mpg-edge-[^/]+\.tar\.gz", before):
            (bundle.path / before).unlink(missing_ok=True)
    manifest = dict(bundle.manifest)
    manifest["packages"] = {**manifest.get("packages", {}), **entries}
    write_manifest(bundle.path, manifest)
    return bundle.path, entries
