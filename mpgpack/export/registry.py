"""The model registry: `dist/` holds one folder per version, `CURRENT` names the served one,
and `HISTORY` records every change of CURRENT, so a rollback knows the previous version.

HISTORY is JSON lines: {"time", "action": "publish"|"rollback"|"activate", "version"}.
Replaying it gives a stack of versions: a publish (or activate) pushes a version, a rollback
pops the current one. So after publishing A, B, C: rollback -> B, rollback -> A, rollback ->
error (nothing older), as an editor's undo. Stdlib only (no build stack): the API host can
roll back.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.core.bundle import CURRENT_POINTER, MANIFEST

HISTORY = "HISTORY"
PREFIX = "mpg-"


def now_iso() -> str:
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def record(registry: Path, name: str, action: str) -> None:
    """Appends one history line (one write of one short line: appends from two builds do not
    interleave within a line)."""
    line = json.dumps({"time": now_iso(), "action": action, "version": name}) + "\n"
    fd = os.open(registry / HISTORY, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def history(registry: Path) -> list[dict]:
    path = Path(registry) / HISTORY
    if not path.is_file():
        return []
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entry["version"], entry["action"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path}:{lineno}: not a history entry: {line[:80]!r}") from None
        out.append(entry)
    return out


def current(registry: Path) -> str | None:
    pointer = Path(registry) / CURRENT_POINTER
    return pointer.read_text().strip() or None if pointer.is_file() else None


def stack(registry: Path) -> list[str]:
    """Versions that were current, oldest first; the last one is CURRENT."""
    versions: list[str] = []
    for entry in history(registry):
        if entry["action"] == "rollback":
            if versions:
                versions.pop()
            if not versions or versions[-1] != entry["version"]:
                versions.append(entry["version"])   # history was incomplete: trust the entry
        elif not versions or versions[-1] != entry["version"]:
            versions.append(entry["version"])
    cur = current(registry)
    if cur is not None and (not versions or versions[-1] != cur):
        versions.append(cur)   # CURRENT set by hand or before HISTORY existed
    return versions


def _check_registry(registry: Path) -> None:
    if not registry.is_dir():
        raise UserError(f"registry folder {registry} does not exist; run `mpgpack build` first")


def _check_version(registry: Path, name: str) -> None:
    if not (registry / name / MANIFEST).is_file():
        have = ", ".join(v.name for v in list_versions(registry)) or "none"
        raise UserError(f"{registry / name} holds no bundle ({MANIFEST} missing); versions "
                        f"in {registry}: {have}")


def rollback(registry: Path) -> tuple[str, str]:
    """Points CURRENT back at the version before it. Returns (from, to)."""
    from mpgpack.export.bundle_writer import set_current
    registry = Path(registry)
    _check_registry(registry)
    versions = stack(registry)
    if not versions:
        raise UserError(f"{registry} has no CURRENT version; nothing to roll back")
    if len(versions) < 2:
        raise UserError(f"no previous version to roll back to: {versions[-1]} is the only "
                        f"version in {registry / HISTORY}; use `mpgpack versions` to list the "
                        f"folders and `mpgpack rollback --to NAME` to choose one")
    cur, prev = versions[-1], versions[-2]
    if not (registry / prev / MANIFEST).is_file():
        raise UserError(f"the previous version {prev} is gone from {registry} (no {MANIFEST}); "
                        f"use `mpgpack rollback --to NAME` with one of `mpgpack versions`")
    set_current(registry, prev)
    record(registry, prev, "rollback")
    return cur, prev


def activate(registry: Path, name: str) -> tuple[str | None, str]:
    """Points CURRENT at an existing version (recorded as a push: rollback undoes it)."""
    from mpgpack.export.bundle_writer import set_current
    registry = Path(registry)
    _check_registry(registry)
    name = name if name.startswith(PREFIX) else PREFIX + name
    _check_version(registry, name)
    cur = current(registry)
    set_current(registry, name)
    record(registry, name, "activate")
    return cur, name


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    created: str
    cv_mae: float | None
    holdout_mae: float | None
    data: str
    rows: int | None
    current: bool


def list_versions(registry: Path) -> list[Version]:
    """Every bundle folder in the registry, oldest first."""
    registry = Path(registry)
    cur = current(registry)
    out = []
    for folder in sorted(registry.glob(PREFIX + "*")):
        path = folder / MANIFEST
        if not folder.is_dir() or not path.is_file():
            continue
        try:
            m = json.loads(path.read_text())
            mlp = m.get("metrics", {}).get("mlp", {})
            out.append(Version(folder.name, m["model"]["version"], m["model"].get("created", ""),
                               mlp.get("cv_mae_mean"), mlp.get("holdout", {}).get("mae"),
                               m.get("data", {}).get("source", ""), m.get("data", {}).get("rows"),
                               folder.name == cur))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read {path}: {exc}") from None
    return sorted(out, key=lambda v: (v.created, v.name))
