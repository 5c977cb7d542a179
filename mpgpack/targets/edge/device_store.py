"""The device's model folder: verified versions, the `current` and `previous` links, state.json.

    PREFIX/versions/mpg-<v>/   a version that passed every check (manifest, model, golden)
    PREFIX/current             symlink -> versions/mpg-<v>: what predict and drain serve
    PREFIX/previous            symlink -> versions/mpg-<u>: what `mpg-edge rollback` goes back to
    PREFIX/staging/            downloads in progress (emptied on every start)
    PREFIX/state.json          the last update attempt (time, version, outcome, reason)

Why it survives a power cut at any instant: a version enters versions/ only by renaming a
staging folder whose files were fsync'd after every check passed, and a link changes only by
os.replace of a fresh symlink, then an fsync of the folder. So `current` names either the old
verified folder or the new one, never a half-written one. Leftovers of an interrupted update
(staging folders, a version renamed in but never linked) are removed on the next start.
Stdlib only: device code.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.core.pointer import check_name

CURRENT, PREVIOUS, STATE = "current", "previous", "state.json"
VERSIONS, STAGING = "versions", "staging"
KILL_AT_ENV = "MPG_EDGE_TEST_KILL_AT"   # test hook: SIGKILL this process at the named step


def kill_point(step: str) -> None:
    """Where an update can be cut: the tests set $MPG_EDGE_TEST_KILL_AT to a step name and the
    process dies there with SIGKILL, as on a power cut (no cleanup, no finally blocks)."""
    if os.environ.get(KILL_AT_ENV) == step:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_path(path) -> None:
    """Flushes a file or a folder (a folder: its entries, i.e. renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flushes every file, then every folder of root to disk (before it is renamed into use)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fsync_path(os.path.join(folder, name))
        fsync_path(folder)


def now_iso() -> str:
    import datetime as dt      # here: every mpg-edge start imports this module
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class DeviceStore:
    def __init__(self, prefix: str | os.PathLike):
        self.root = Path(prefix)
        self.versions = self.root / VERSIONS
        self.staging = self.root / STAGING

    # -- reading -------------------------------------------------------------------------------
    def link_name(self, link: str) -> str | None:
        """The version a link names, None when there is no such link."""
        path = self.root / link
        if not path.is_symlink():
            return None
        return check_name(Path(os.readlink(path)).name, str(path))

    def serving_path(self) -> Path:
        """The folder predict and drain serve from; one clear line when there is none yet."""
        name = self.link_name(CURRENT)
        if name is None:
            raise UserError(f"{self.root} holds no model yet (no {CURRENT} link); run "
                            f"`mpg-edge follow URL --prefix {self.root}` first")
        return self.versions / name

    def read_state(self) -> dict:
        try:
            return json.loads((self.root / STATE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            return {"outcome": "unknown", "reason": f"cannot read {STATE}: {exc}"}

    # -- writing -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Makes the folders and removes what an interrupted update left behind."""
        self.versions.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir()
        self.prune()
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def new_staging(self, name: str) -> Path:
        path = self.staging / name
        path.mkdir()
        return path

    def install(self, staged: Path, name: str) -> None:
        """A checked staging folder becomes versions/<name> (flushed first, then renamed)."""
        fsync_tree(staged)
        final = self.versions / name
        if final.exists():             # an unlinked leftover: prepare() normally removed it
            shutil.rmtree(final)
        os.rename(staged, final)
        fsync_path(self.versions)

    def switch(self, name: str) -> str | None:
        """Serves versions/<name>; the version served until now becomes `previous`.
        Returns the previous version's name."""
        old = self.link_name(CURRENT)
        if old is not None and old != name:
            self._set_link(PREVIOUS, old)
            kill_point("switch-previous")
        self._set_link(CURRENT, name)
        kill_point("switch-current")
        self.prune()
        return old

    def rollback(self) -> tuple[str, str]:
        """Swaps current and previous. Returns (from, to)."""
        cur, prev = self.link_name(CURRENT), self.link_name(PREVIOUS)
        if cur is None:
            raise UserError(f"{self.root} holds no model yet; nothing to roll back")
        if prev is None or not (self.versions / prev).is_dir():
            raise UserError(f"no previous version to roll back to in {self.root}: {cur} is the "
                            f"only one on this device")
        self._set_link(CURRENT, prev)
        self._set_link(PREVIOUS, cur)
        return cur, prev

    def prune(self) -> None:
        """Removes every version folder but the current and the previous one."""
        keep = {self.link_name(CURRENT), self.link_name(PREVIOUS)}
        for folder in self.versions.iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def write_state(self, state: dict) -> None:
        self._replace(STATE, lambda tmp: tmp.write_text(json.dumps(state, indent=1) + "\n"))

    def _set_link(self, link: str, name: str) -> None:
        self._replace(link, lambda tmp: os.symlink(f"{VERSIONS}/{name}", tmp))

    def _replace(self, name: str, write) -> None:
        """Writes a temporary file or link beside `name`, flushes it, renames it over `name`
        and flushes the folder: readers and a power cut see the old one or the new one."""
        tmp = self.root / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        write(tmp)
        if not tmp.is_symlink():
            fsync_path(tmp)
        os.replace(tmp, self.root / name)
        fsync_path(self.root)
