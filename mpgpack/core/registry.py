"""The model registry: one interface, one pointer format, one history format; two homes.

A registry holds one bundle per version (`mpg-<version>/`), a pointer naming the current one
with its manifest's sha256 (core.pointer; written last), and a history. `LocalRegistry` (a
folder such as dist/) is here; the S3 one (a prefix) is mpgpack.storage.s3_registry. Both get
current, versions, publish, activate, rollback and history from `Registry`; they only supply
the storage primitives (read/write the pointer, read/append the history, read a manifest,
list the version names, put a bundle in place).

History is JSON lines: {"time", "action": "publish"|"activate"|"rollback", "version",
"manifest_sha256"}. Replaying it gives a stack of versions: a publish (or activate) pushes a
version, a rollback pops the current one. So after publishing A, B, C: rollback -> B,
rollback -> A, rollback -> error (nothing older), as an editor's undo. Stdlib only: a host
that serves the model can roll back without the build stack.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from mpgpack.core.bundle import CURRENT_POINTER, MANIFEST, open_bundle
from mpgpack.core.bundle_write import now_iso, publish_folder
from mpgpack.core.errors import UserError
from mpgpack.core.pointer import Pointer, check_name, parse_pointer

HISTORY = "HISTORY"
PREFIX = "mpg-"


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    created: str
    family: str              # the model family ("mlp", "gbm", …)
    score: str               # what the CV figure is: "MAE" or "log-loss"
    cv: float | None         # the chosen model's mean CV score
    holdout: str             # its hold-out headline: "MAE 1.911" or "accuracy 0.967"
    data: str
    rows: int | None
    current: bool


@dataclass
class Published:
    name: str               # mpg-<version>
    location: str           # where the version now lives (folder or s3:// prefix)
    pointer: str            # where the pointer lives
    previous: str | None    # what the pointer named before
    already_published: bool = False

    def report(self) -> list[str]:
        """What `mpgpack publish` prints: where the version went, then the pointer's move."""
        return [f"published {self.location}",
                f"{self.pointer} -> {self.name} (was {self.previous or 'unset'})"]


def history_line(action: str, name: str, manifest_sha256: str) -> str:
    return json.dumps({"time": now_iso(), "action": action, "version": name,
                       "manifest_sha256": manifest_sha256}) + "\n"


def parse_history(text: str, where: str) -> list[dict]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entry["version"], entry["action"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{where}:{lineno}: not a history entry: {line[:80]!r}") from None
        out.append(entry)
    return out


def replay(entries: list[dict], pointed: str | None) -> list[str]:
    """Versions that were current, oldest first; the last one is what the pointer names."""
    versions: list[str] = []
    for entry in entries:
        if entry["action"] == "rollback":
            if versions:
                versions.pop()
            if not versions or versions[-1] != entry["version"]:
                versions.append(entry["version"])   # history was incomplete: trust the entry
        elif not versions or versions[-1] != entry["version"]:
            versions.append(entry["version"])
    if pointed is not None and (not versions or versions[-1] != pointed):
        versions.append(pointed)   # pointer set by hand or before the history existed
    return versions


def version_row(name: str, manifest: dict, current: bool) -> Version:
    metrics = manifest.get("metrics", {})
    # bundles built before any model could be packed recorded their MLP under "mlp"
    chosen = metrics.get("chosen") or {**metrics.get("mlp", {}), "family": "mlp",
                                       "cv_mean": metrics.get("mlp", {}).get("cv_mae_mean")}
    holdout = chosen.get("holdout", {})
    headline = (f"accuracy {holdout['accuracy']:.3f}" if "accuracy" in holdout
                else f"MAE {holdout['mae']:.3f}" if "mae" in holdout else "-")
    score = "log-loss" if metrics.get("score") == "log_loss" else "MAE"
    data = manifest.get("data", {})
    return Version(name, manifest["model"]["version"], manifest["model"].get("created", ""),
                   chosen.get("family", "-"), score, chosen.get("cv_mean"), headline,
                   data.get("source", ""), data.get("rows"), current)


class Registry(ABC):
    """current, versions, publish, activate, rollback, history over storage primitives."""

    pointer_file: str           # CURRENT (folder) / current (S3)
    history_file: str           # HISTORY (folder) / history (S3)
    publish_hint: str           # how to put a first version in, for messages

    # -- storage primitives -------------------------------------------------------------------
    @abstractmethod
    def where(self, child: str = "") -> str:
        """The registry's address, or that of a file/version in it, for messages."""

    @abstractmethod
    def check(self) -> None:
        """Raises UserError when the registry itself cannot be reached or does not exist."""

    @abstractmethod
    def read_pointer_text(self) -> str | None: ...

    @abstractmethod
    def write_pointer_text(self, text: str) -> None:
        """Replaces the pointer in one atomic step."""

    @abstractmethod
    def read_history_text(self) -> str: ...

    @abstractmethod
    def append_history_line(self, line: str) -> None: ...

    @abstractmethod
    def manifest_bytes(self, name: str) -> bytes | None:
        """The raw manifest of version `name`, None when the version is absent or incomplete."""

    @abstractmethod
    def names(self) -> list[str]:
        """Candidate version names (mpg-*), complete or not."""

    @abstractmethod
    def publish(self, bundle_dir, **options) -> Published:
        """Puts a verified copy of the bundle in, then points at it (pointer last)."""

    # -- shared rules -------------------------------------------------------------------------
    def pointer(self) -> Pointer | None:
        text = self.read_pointer_text()
        return None if text is None or not text.strip() else \
            parse_pointer(text, self.where(self.pointer_file))

    def current(self) -> str | None:
        """The current version's name, after checking its manifest against the pointer."""
        pointer = self.pointer()
        if pointer is None:
            return None
        manifest = self.manifest_bytes(pointer.name)
        if manifest is None:
            raise UserError(f"{self.where(self.pointer_file)} names {pointer.name}, which holds "
                            f"no {MANIFEST}")
        pointer.check(manifest, self.where(f"{pointer.name}/{MANIFEST}"),
                      self.where(self.pointer_file))
        return pointer.name

    def history(self) -> list[dict]:
        return parse_history(self.read_history_text(), self.where(self.history_file))

    def stack(self) -> list[str]:
        """Versions that were current, oldest first; the last one is the pointer's."""
        pointer = self.pointer()
        return replay(self.history(), pointer.name if pointer else None)

    def versions(self) -> list[Version]:
        """Every complete version in the registry, oldest first."""
        self.check()
        pointer = self.pointer()
        out = []
        for name in self.names():
            raw = self.manifest_bytes(name)
            if raw is None:
                continue
            try:
                out.append(version_row(name, json.loads(raw), pointer is not None
                                       and name == pointer.name))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"cannot read {self.where(f'{name}/{MANIFEST}')}: {exc}") from None
        return sorted(out, key=lambda v: (v.created, v.name))

    def activate(self, name: str) -> tuple[str | None, str]:
        """Points at an existing version (recorded as a push: rollback undoes it)."""
        self.check()
        name = check_name(name if name.startswith(PREFIX) else PREFIX + name, f"version {name!r}")
        if self.manifest_bytes(name) is None:
            have = ", ".join(v.name for v in self.versions()) or "none"
            raise UserError(f"{self.where(name)} holds no bundle ({MANIFEST} missing); versions "
                            f"in {self.where()}: {have}")
        pointer = self.pointer()
        self.make_current(name, "activate")
        return (pointer.name if pointer else None), name

    def rollback(self) -> tuple[str, str]:
        """Points back at the version that was current before this one. Returns (from, to)."""
        self.check()
        versions = self.stack()
        if not versions:
            raise UserError(f"{self.where()} has no {self.pointer_file} version; nothing to roll back")
        if len(versions) < 2:
            raise UserError(f"no previous version to roll back to: {versions[-1]} is the only "
                            f"version in {self.where(self.history_file)}; use `mpgpack versions` "
                            f"to list them and `mpgpack rollback --to NAME` to choose one")
        cur, prev = versions[-1], versions[-2]
        if self.manifest_bytes(prev) is None:
            raise UserError(f"the previous version {prev} is gone from {self.where()} (no "
                            f"{MANIFEST}); use `mpgpack rollback --to NAME` with one of "
                            f"`mpgpack versions`")
        self.make_current(prev, "rollback")
        return cur, prev

    def make_current(self, name: str, action: str) -> str:
        """Writes the pointer (name + manifest sha256), then records the change. Going back
        to a version (activate, rollback) also checks its manifest is the one recorded then."""
        raw = self.manifest_bytes(name)
        if raw is None:
            raise UserError(f"{self.where(name)} holds no {MANIFEST}; not making it current")
        sha = hashlib.sha256(raw).hexdigest()
        if action != "publish":
            self._unchanged_since_recorded(name, sha)
        self.write_pointer_text(Pointer(name, sha).text())
        self.append_history_line(history_line(action, name, sha))
        return sha

    def _unchanged_since_recorded(self, name: str, sha: str) -> None:
        """Refuses to point at a version whose manifest differs from the one recorded when it
        was last made current (edited in place since)."""
        recorded = [e.get("manifest_sha256") for e in self.history() if e["version"] == name]
        if recorded and recorded[-1] and recorded[-1] != sha:
            raise UserError(f"{self.where(f'{name}/{MANIFEST}')} does not match the sha256 "
                            f"recorded in {self.where(self.history_file)}; refusing it")


class LocalRegistry(Registry):
    """A registry folder: mpg-*/ folders, CURRENT (replaced by rename), HISTORY (appended)."""

    pointer_file = CURRENT_POINTER
    history_file = HISTORY

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.publish_hint = f"run `mpgpack build --out {self.root}`"

    def where(self, child: str = "") -> str:
        return str(self.root / child) if child else str(self.root)

    def check(self) -> None:
        if not self.root.is_dir():
            raise UserError(f"registry folder {self.root} does not exist; run `mpgpack build` first")

    def read_pointer_text(self) -> str | None:
        path = self.root / self.pointer_file
        return path.read_text() if path.is_file() else None

    def write_pointer_text(self, text: str) -> None:
        tmp = self.root / f".{self.pointer_file}.tmp-{os.getpid()}"
        tmp.write_text(text)
        os.replace(tmp, self.root / self.pointer_file)

    def read_history_text(self) -> str:
        path = self.root / self.history_file
        return path.read_text() if path.is_file() else ""

    def append_history_line(self, line: str) -> None:
        # One write of one short line with O_APPEND: lines from two writers do not interleave.
        fd = os.open(self.root / self.history_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def manifest_bytes(self, name: str) -> bytes | None:
        path = self.root / name / MANIFEST
        return path.read_bytes() if path.is_file() else None

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.glob(PREFIX + "*") if p.is_dir())

    def publish(self, bundle_dir, **options) -> Published:
        """Copies a bundle into a staging folder here, re-checks every sha256 of the copy, then
        renames it into place and moves CURRENT last."""
        local = open_bundle(bundle_dir)
        local.verify()
        name = f"{PREFIX}{local.version}"
        if local.path.resolve() == (self.root / name).resolve():
            raise UserError(f"{local.path} is already in {self.root}")
        previous = self.pointer()
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        try:
            shutil.copytree(local.path, staging, dirs_exist_ok=True)
            open_bundle(staging).verify()
            final = self.publish_staged(staging, name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Published(name, str(final), self.where(self.pointer_file),
                         previous.name if previous else None)

    def publish_staged(self, staging: Path, name: str) -> Path:
        """A finished staging folder inside the registry (what `mpgpack build` writes) goes in
        place by rename; then CURRENT points at it and HISTORY records it."""
        final = publish_folder(staging, self.root, name)
        self.make_current(name, "publish")
        return final


def set_current(registry: str | os.PathLike, name: str) -> None:
    """Moves a folder's CURRENT without a history entry, as an operator editing it by hand
    would (tests use it to switch versions under a running server)."""
    reg = LocalRegistry(registry)
    raw = reg.manifest_bytes(name)
    sha = hashlib.sha256(raw).hexdigest() if raw is not None else None
    reg.write_pointer_text(Pointer(name, sha).text())
