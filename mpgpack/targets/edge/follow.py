"""`mpg-edge follow URL`: keep this device on the registry's current version, safely.

One poll: read the registry's pointer (mpg-<v> + its manifest's sha256). If it names another
version than the one served, download that version's manifest and the files the device needs
(model.tflite, golden.json, and signature.json when there is one) into a staging folder, then
check all of it here: the manifest against the pointer's sha256, every file against the
manifest, the signature against the trusted key (--trust), and the golden vectors predicted by
LiteRT on this device within the golden tolerance. Only then does the version go into service
(device_store: a rename and a symlink swap). A version that fails any check never serves; the
reason goes to state.json, which `mpg-edge status` shows.

After `mpg-edge rollback` the version rolled back from is held: follow does not reinstall it
until the registry names another version.
Device code: stdlib + numpy + LiteRT + mpgpack.core.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.core.pointer import Pointer, parse_pointer
from mpgpack.targets.edge.device import EDGE_ARTIFACTS
from mpgpack.targets.edge.device_store import CURRENT, DeviceStore, kill_point, now_iso

# Imported by every `mpg-edge` start (its subcommands are registered here), so what is heavy
# (numpy through core.bundle, urllib) is imported inside the functions that poll.

PREFIX_ENV = "MPG_EDGE_PREFIX"
DEFAULT_PREFIX = "/var/lib/mpg-edge/model"
LOCK = ".lock"


class Refused(UserError):
    """The registry's version failed a check: it must never serve."""


def read_pointer(registry) -> Pointer:
    text = registry.pointer_text()
    if text is None or not text.strip():
        raise UserError(f"{registry.where()} has no current pointer; publish a version first")
    pointer = parse_pointer(text, registry.where("current"))
    if pointer.manifest_sha256 is None:
        raise Refused(f"{registry.where('current')} records no manifest sha256 (an old "
                      f"registry); publish again with this mpgpack")
    return pointer


def _relative(path: str, where: str) -> str:
    """An artifact path from the manifest, as a path inside the version folder."""
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or ".." in parts:
        raise Refused(f"{where} lists the artifact path {path!r}, outside the bundle")
    return Path(path).as_posix()


def fetch_version(registry, pointer: Pointer, staged: Path) -> dict:
    """Downloads the manifest (checked against the pointer) and the needed files into staged."""
    from mpgpack.core.bundle import MANIFEST
    from mpgpack.core.signing import SIGNATURE_FILE
    name = pointer.name
    raw = registry.read(f"{name}/{MANIFEST}")
    if raw is None:
        raise Refused(f"{registry.where('current')} names {name}, but "
                      f"{registry.where(f'{name}/{MANIFEST}')} is missing")
    try:
        pointer.check(raw, registry.where(f"{name}/{MANIFEST}"), registry.where("current"))
        manifest = json.loads(raw)
        entries = [manifest["artifacts"][key] for key in EDGE_ARTIFACTS]
    except UserError as exc:
        raise Refused(str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(f"{registry.where(f'{name}/{MANIFEST}')} is not a bundle manifest the "
                      f"device can serve ({type(exc).__name__}: {exc})") from None
    for entry in entries:
        rel = _relative(entry["path"], registry.where(f"{name}/{MANIFEST}"))
        dest = staged / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not registry.download(f"{name}/{rel}", dest, on_chunk=lambda: kill_point("download")):
            raise Refused(f"{registry.where(f'{name}/{rel}')} is listed in the manifest but "
                          f"missing")
    registry.download(f"{name}/{SIGNATURE_FILE}", staged / SIGNATURE_FILE)   # absent: unsigned
    (staged / MANIFEST).write_bytes(raw)     # last: a staging folder with it is complete
    return manifest


def check_version(staged: Path, manifest: dict, trust: str | None) -> str:
    """Every check the device makes before serving; returns the signature line."""
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge.device import runner_for
    bundle = open_bundle(staged)
    try:
        bundle.verify(list(EDGE_ARTIFACTS))
        signature = _check_signature(staged, manifest, trust)
    except UserError as exc:
        raise Refused(str(exc)) from None
    err, tolerance = golden_error(bundle, runner_for(bundle))
    if not golden_passed(err, tolerance):
        raise Refused(f"mpg-{bundle.version}: the golden vectors miss on this device "
                      f"({golden_text(err, tolerance, error_unit(bundle))})")
    return signature


def _check_signature(staged: Path, manifest: dict, trust: str | None) -> str:
    if trust is None:
        return "signature: not checked (no --trust key)"
    from mpgpack.core.signing import SIGNATURE_FILE, core_manifest, verify_bundle_signature
    if not (staged / SIGNATURE_FILE).is_file():
        raise UserError(f"mpg-{manifest['model']['version']} is not signed (no {SIGNATURE_FILE} "
                        f"in the registry); this device runs only versions signed by {trust}")
    # The device serves from the manifest less "packages" (web site, tarballs, report): the
    # signature over that part is the one that vouches for what runs here.
    return verify_bundle_signature(staged, trust, manifest=core_manifest(manifest)).line()


def golden_error(bundle, runner) -> tuple[dict, float]:
    """(error_stats of the runner's whole output on this device over the golden vectors, the
    golden tolerance). golden.json's expected values are [N] for a regressor, [N][C]
    probabilities for a classifier; for a classifier the stats also count the rows whose
    class differs where the reference's class is no tie (`decided_disagreements`: must be 0)."""
    from mpgpack.core.outputs import class_agreement
    from mpgpack.core.schema import Schema
    from mpgpack.core.verify import error_stats
    golden = bundle.golden()
    output = runner.run(golden.X)
    expected = golden.expected.reshape(len(output), -1)
    stats = error_stats(output, expected)
    stats["rows"] = int(len(output))
    if Schema.from_manifest(bundle.manifest).is_classifier:
        stats.update(class_agreement(output, expected, golden.tolerance))
    return stats, golden.tolerance


def golden_passed(err: dict, tolerance: float) -> bool:
    return err["max_abs_error"] <= tolerance and not err.get("decided_disagreements")


def golden_text(err: dict, tolerance: float, unit: str) -> str:
    """"max abs error 3e-06 mpg" or "max abs error 2e-07 (probabilities), 2 rows of another
    class": what a failed check says."""
    text = f"max abs error {err['max_abs_error']:.3g} {unit}"
    if err.get("decided_disagreements"):
        text += f", {err['decided_disagreements']} rows of another class"
    return f"{text}, tolerance {tolerance:g}"


def error_unit(bundle) -> str:
    """What the golden error is measured in: the target ("mpg"), or class probabilities."""
    from mpgpack.core.schema import Schema
    schema = Schema.from_manifest(bundle.manifest)
    return "(probabilities)" if schema.is_classifier else schema.target


def update(registry, pointer: Pointer, store: DeviceStore,
           trust: str | None) -> tuple[str | None, str]:
    """Downloads, checks and switches to the pointer's version. Returns (previous, signature)."""
    staged = store.new_staging(pointer.name)
    try:
        manifest = fetch_version(registry, pointer, staged)
        kill_point("downloaded")
        signature = check_version(staged, manifest, trust)
        kill_point("verified")
        store.install(staged, pointer.name)
        kill_point("installed")
        return store.switch(pointer.name), signature
    except UserError as exc:     # name the version where it came from, not the staging folder
        raise type(exc)(str(exc).replace(str(staged), registry.where(pointer.name))) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def poll(url: str, store: DeviceStore, trust: str | None) -> dict:
    """One poll; returns (and records in state.json) what happened."""
    before = store.read_state()
    state = {"time": now_iso(), "registry": url, "version": None}
    hold = before.get("hold")
    try:
        from mpgpack.targets.edge.registry_source import open_registry
        registry = open_registry(url)
        pointer = read_pointer(registry)
        state["version"] = pointer.name
        if pointer.name == store.link_name(CURRENT):
            state.update(outcome="unchanged", reason="already serving it")
        elif pointer.name == hold:
            state.update(outcome="held", reason=f"{hold} was rolled back on this device; "
                         f"waiting for the registry to name another version")
        else:
            hold = None
            previous, signature = update(registry, pointer, store, trust)
            state.update(outcome="updated", reason=f"verified and switched from "
                         f"{previous or 'nothing'}; {signature}")
    except Refused as exc:
        state.update(outcome="refused", reason=str(exc))
    except UserError as exc:
        state.update(outcome="error", reason=str(exc))
    except OSError as exc:       # a full disk, a read-only folder: the old version serves on
        state.update(outcome="error", reason=f"cannot write in {store.root}: "
                     f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}")
    state["serving"] = store.link_name(CURRENT)
    if hold:
        state["hold"] = hold
    _record(store, state)
    return state


def _record(store: DeviceStore, state: dict) -> None:
    try:
        store.write_state(state)
    except OSError as exc:       # the disk is full: still say what happened, on stderr
        print(f"mpg-edge follow: cannot write {store.root / 'state.json'}: {exc.strerror}",
              file=sys.stderr)


def describe(state: dict) -> str:
    serving = state.get("serving") or "nothing"
    if state["outcome"] == "updated":
        return f"serving {serving}: {state['reason']}"
    if state["outcome"] in ("unchanged", "held"):
        return f"serving {serving}; {state['version']}: {state['reason']}"
    what = f"refused {state['version']}" if state["outcome"] == "refused" else "update failed"
    return f"{what}: {state['reason']}; serving {serving}"


class PrefixLock:
    """One updater per device folder (the timer's run and a hand-started one must not race)."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self):
        import fcntl
        self.root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise UserError(f"another mpg-edge is updating {self.root}; try again when it "
                            f"is done") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def prefix_of(args) -> Path:
    return Path(args.prefix or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX)


def cmd_follow(args) -> int:
    if args.interval <= 0:
        raise UserError("--interval must be a positive number of seconds")
    if args.trust is not None and not Path(args.trust).is_file():
        raise UserError(f"--trust {args.trust}: no such key file")
    store = DeviceStore(prefix_of(args))
    with PrefixLock(store.root):
        store.prepare()            # leftovers of an interrupted update go first
        while True:
            state = poll(args.url, store, args.trust)
            print(f"mpg-edge follow: {describe(state)}", flush=True)
            if args.once:
                return 0 if state["outcome"] in ("updated", "unchanged", "held") else 1
            time.sleep(args.interval)


def cmd_rollback(args) -> int:
    store = DeviceStore(prefix_of(args))
    with PrefixLock(store.root):
        left, now = store.rollback()
        state = store.read_state()
        state.update(hold=left, serving=now)
        store.write_state(state)
    print(f"mpg-edge rollback: serving {now} (was {left}); follow will not reinstall {left} "
          f"until the registry names another version")
    return 0


def register(sub, prefix_help: str) -> None:
    """The follow and rollback subcommands of mpg-edge."""
    p = sub.add_parser("follow", help="keep this device on the registry's current version",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("url", help="the registry: http(s)://…/prefix/ (public-read or behind a web "
                   "server), file:///path or a folder")
    p.add_argument("--prefix", help=prefix_help)
    p.add_argument("--once", action="store_true", help="poll once and exit (for a systemd "
                   "timer); exit 1 when the registry's version was refused or unreachable")
    p.add_argument("--interval", type=float, default=300.0, metavar="S",
                   help="seconds between polls (default: 300)")
    p.add_argument("--trust", metavar="KEY.pub",
                   help="Ed25519 public key: refuse versions without a good signature by it "
                   "(default: as for predict)")
    p.set_defaults(run=cmd_follow)

    p = sub.add_parser("rollback", help="serve the previous version again",
                       description="Swap the served version with the previous one; follow "
                       "then holds off the version rolled back from until the registry "
                       "names another.")
    p.add_argument("--prefix", help=prefix_help)
    p.set_defaults(run=cmd_rollback)
