"""Reading a bundle: its manifest, sha256-checked artifacts and golden vectors.

Used by every runtime target (API, edge runner, `mpgpack verify`), so it needs only the
standard library and numpy, and it never unpickles anything.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.pointer import DEFAULT_REGISTRY as DEFAULT_REGISTRY_NAME, parse_pointer

MANIFEST = "manifest.json"
CURRENT_POINTER = "CURRENT"      # in the registry folder: the current bundle (core.pointer)
DEFAULT_REGISTRY = Path(DEFAULT_REGISTRY_NAME)
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(folder: Path) -> tuple[str, dict[str, str]]:
    """A folder's sha256 as the manifest records a package folder (web/): over the sorted lines
    "relative/path <sha256 of the file>"; and the per-file sha256s it was made of."""
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file()}
    listing = hashlib.sha256()
    for rel in sorted(files):
        listing.update(f"{rel} {files[rel]}\n".encode())
    return listing.hexdigest(), files


def package_entries(node) -> list[dict]:
    """Every {"path", "sha256"} entry under manifest["packages"] (a package and, nested, its
    parts: the report's images)."""
    out = []
    if isinstance(node, dict):
        if isinstance(node.get("path"), str) and isinstance(node.get("sha256"), str):
            out.append(node)
        for value in node.values():
            out.extend(package_entries(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(package_entries(value))
    return out


@dataclass(frozen=True)
class Golden:
    X: np.ndarray          # float32 [N, 7], NaN where missing
    expected: np.ndarray   # float64 [N], the sklearn pipeline's prediction
    groups: list[str]
    actual: np.ndarray     # float64 [N], true MPG for hold-out rows, NaN elsewhere
    tolerance: float


class Bundle:
    """An opened bundle folder. Artifacts are handed out only after their sha256 matched."""

    def __init__(self, path: Path, manifest: dict, manifest_sha256: str | None = None):
        self.path = path
        self.manifest = manifest
        # What the bundle IS (two edited copies may share a version string): the sha256 of
        # manifest.json as read, which names every file's sha256 in turn.
        self.manifest_sha256 = manifest_sha256
        self._verified: set[str] = set()

    @property
    def version(self) -> str:
        return self.manifest["model"]["version"]

    @property
    def features(self) -> list[dict]:
        return self.manifest["schema"]["features"]

    def artifact(self, name: str) -> Path:
        """Path of artifact `name`, checked against its manifest sha256 first."""
        if name not in self._verified:
            self.verify([name])
        return self.path / self.manifest["artifacts"][name]["path"]

    def verify(self, names: list[str] | None = None) -> list[str]:
        """Re-hashes artifacts; raises UserError naming the first file that does not match."""
        artifacts = self.manifest["artifacts"]
        for name in names if names is not None else list(artifacts):
            if name not in artifacts:
                raise UserError(f"bundle {self.path}: manifest lists no artifact '{name}'")
            entry = artifacts[name]
            file = self.path / entry["path"]
            if not file.is_file():
                raise UserError(f"bundle {self.path}: artifact file {entry['path']} is missing")
            self._check(entry["path"], entry["sha256"], sha256_file(file))
            self._verified.add(name)
        return sorted(self._verified)

    def verify_packages(self, names: list[str] | None = None) -> list[str]:
        """Re-hashes the packages the manifest records (web/ and report/ with its images, an
        edge tarball): every file a reader serves or ships. Raises UserError naming the file
        (or, for a folder recorded by one listing hash, the folder and what differs).
        Returns the paths checked."""
        packages = self.manifest.get("packages") or {}
        checked = []
        for name in names if names is not None else list(packages):
            if name not in packages:      # not built into this bundle: nothing to serve or check
                continue
            for entry in package_entries(packages[name]):
                target = self.path / entry["path"]
                if target.is_dir():
                    self._verify_folder(entry)
                elif not target.is_file():
                    raise UserError(f"bundle {self.path}: package file {entry['path']} is missing")
                else:
                    self._check(entry["path"], entry["sha256"], sha256_file(target))
                checked.append(entry["path"])
        return checked

    def _verify_folder(self, entry: dict) -> None:
        digest, files = tree_sha256(self.path / entry["path"])
        if digest == entry["sha256"]:
            return
        base = entry["path"].rstrip("/")
        listed = entry.get("file_sha256") if isinstance(entry.get("file_sha256"), dict) else {}
        # Name the file: from a per-file listing if the manifest has one, else the copies of
        # artifacts (web/model/*), else the folder with what is known of it.
        copies = {Path(a["path"]).name: a["sha256"] for a in self.manifest["artifacts"].values()}
        for rel in sorted(set(files) | set(listed)):
            want = listed.get(rel) or (copies.get(Path(rel).name) if rel.startswith("model/") else None)
            if want is not None and rel not in files:
                raise UserError(f"bundle {self.path}: package file {base}/{rel} is missing")
            if want is not None:
                self._check(f"{base}/{rel}", want, files[rel])
            elif listed:
                raise UserError(f"bundle {self.path}: {base}/{rel} is not part of the build "
                                "(not in the manifest's listing)")
        count = entry.get("files")
        extra = (f"; it holds {len(files)} files, the build wrote {count}"
                 if isinstance(count, int) and count != len(files) else "")
        raise UserError(f"bundle {self.path}: a file in {base}/ was changed, added or removed after "
                        f"the build (its listing does not match the sha256 in the manifest: "
                        f"expected {entry['sha256'][:12]}…, found {digest[:12]}…{extra})")

    def _check(self, rel: str, expected: str, found: str) -> None:
        if found != expected:
            raise UserError(f"bundle {self.path}: {rel} does not match its sha256 in the manifest "
                            f"(expected {expected[:12]}…, found {found[:12]}…); the file was "
                            "changed after the build")

    def golden_cars(self) -> list[dict]:
        """The golden inputs as named cars, as a client sends them (null for missing, whole
        numbers for integer features)."""
        feats = self.features
        return [{f["name"]: None if v != v else (int(v) if f.get("integer") else v)
                 for f, v in zip(feats, row)} for row in self.golden().X.tolist()]

    def golden(self) -> Golden:
        data = json.loads(self.artifact("golden").read_text())
        X = np.array([[np.nan if v is None else v for v in row] for row in data["inputs"]],
                     dtype=np.float32)
        actual = np.array([np.nan if v is None else v for v in data["actual"]], dtype=np.float64)
        return Golden(X, np.asarray(data["expected"], dtype=np.float64), data["groups"],
                      actual, float(data["tolerance"]))


def resolve_bundle_path(path: str | os.PathLike | None) -> Path:
    """A bundle folder, or a registry folder whose CURRENT names one; default: ./dist."""
    folder, pointer, pointer_file = _resolve(path)
    if pointer is not None:
        pointer.check((folder / MANIFEST).read_bytes(), str(folder / MANIFEST), str(pointer_file))
    return folder


def _resolve(path: str | os.PathLike | None):
    """(bundle folder, the registry pointer that named it or None, the pointer's file)."""
    p = Path(path) if path is not None else DEFAULT_REGISTRY
    if (p / MANIFEST).is_file():
        return p, None, None
    pointer_file = p / CURRENT_POINTER
    if pointer_file.is_file():
        pointer = parse_pointer(pointer_file.read_text(), str(pointer_file))
        target = p / pointer.name
        if not (target / MANIFEST).is_file():
            raise UserError(f"{pointer_file} names {target.name}, which holds no {MANIFEST}")
        return target, pointer, pointer_file
    if path is None:
        raise UserError("no bundle found in ./dist; run `mpgpack build` first or pass --bundle DIR")
    raise UserError(f"{p} is neither a bundle (no {MANIFEST}) nor a registry (no {CURRENT_POINTER})")


def open_bundle(path: str | os.PathLike | None = None) -> Bundle:
    """Opens a bundle (or the current one of a registry) and reads its manifest: once, so the
    bytes checked against a registry's pointer are the bytes served."""
    p, pointer, pointer_file = _resolve(path)
    try:
        raw = (p / MANIFEST).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {p / MANIFEST}: {exc}") from None
    if pointer is not None:
        pointer.check(raw, str(p / MANIFEST), str(pointer_file))
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"cannot read {p / MANIFEST}: {exc}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{p / MANIFEST}: format_version {manifest.get('format_version')!r} is "
                        f"not supported (this mpgpack reads {FORMAT_VERSION})")
    return Bundle(p, manifest, hashlib.sha256(raw).hexdigest())
