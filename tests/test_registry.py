"""One registry interface, two homes: the same test body runs against a registry folder and
against an S3 prefix on a real S3-compatible server (SeaweedFS on 127.0.0.1).

The bundles are tiny and hand-made (a manifest with one small artifact and its sha256), so
the folder variant needs neither a built bundle nor TensorFlow and belongs in the fast tier;
select it alone with `-k folder`.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from mpgpack.core.bundle import open_bundle, resolve_bundle_path
from mpgpack.core.bundle_write import artifact_entry, write_manifest
from mpgpack.core.errors import UserError
from mpgpack.core.registry import LocalRegistry, Registry
from tests.conftest import BUCKET
from tests.helpers import run_cli

A, B = "mpg-00000000000a", "mpg-00000000000b"


def tiny_bundle(root: Path, name: str, cv_mae: float) -> Path:
    """A valid format-1 bundle: one artifact file and a manifest naming its sha256."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(name.encode() * 8)
    write_manifest(folder, {
        "model": {"name": "mpg", "version": name.removeprefix("mpg-"),
                  "created": f"2026-01-0{1 if name == A else 2}T00:00:00+00:00"},
        "data": {"source": "hand-made.csv", "rows": 3},
        "metrics": {"mlp": {"cv_mae_mean": cv_mae, "holdout": {"mae": cv_mae + 0.5}}},
        "artifacts": {"weights": artifact_entry(folder, folder / "weights.bin", "weights")},
    })
    return folder


@dataclass
class Home:
    """A registry plus the few things the test does from outside the interface."""
    registry: Registry
    location: str                               # what a user passes to --registry
    env: dict                                   # for the CLI
    edit_manifest: Callable[[str], None]        # tamper with a published version's manifest
    follow: Callable[[], Path]                  # what a server does: follow the pointer


def _folder_home(tmp_path: Path) -> Home:
    root = tmp_path / "dist"
    root.mkdir()                     # an empty registry, as an S3 prefix with nothing in it

    def edit(name: str) -> None:
        path = root / name / "manifest.json"
        path.write_text(path.read_text().replace('"rows": 3', '"rows": 4'))

    return Home(LocalRegistry(root), str(root), dict(os.environ), edit,
                lambda: open_bundle(root).path)


def _s3_home(request, tmp_path: Path) -> Home:
    server = request.getfixturevalue("s3_server")
    env = request.getfixturevalue("s3_env")
    from mpgpack.storage.registry import open_registry
    from mpgpack.storage.s3 import fetch_bundle
    location = f"s3://{BUCKET}/registry-{uuid.uuid4().hex[:8]}/"
    client = server.client()

    def edit(name: str) -> None:
        key = location.removeprefix(f"s3://{BUCKET}/") + f"{name}/manifest.json"
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        client.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b'"rows": 3', b'"rows": 4'))

    return Home(open_registry(location), location, {**os.environ, **env}, edit,
                lambda: fetch_bundle(location + "current", tmp_path / "fetched"))


@pytest.fixture(params=["folder", "s3"])
def home(request, tmp_path) -> Home:
    return _folder_home(tmp_path) if request.param == "folder" else _s3_home(request, tmp_path)


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_one_interface_on_both_homes(home, tmp_path):
    reg = home.registry
    a, b = tiny_bundle(tmp_path / "built", A, 2.1), tiny_bundle(tmp_path / "built", B, 1.9)
    assert reg.pointer() is None and reg.history() == []
    with pytest.raises(UserError, match="nothing to roll back"):
        reg.rollback()

    # publish two versions: each becomes current, the pointer carries the manifest's sha256
    first = reg.publish(a)
    assert (first.name, first.previous) == (A, None) and reg.current() == A
    second = reg.publish(b)
    assert (second.name, second.previous) == (B, A) and reg.current() == B
    assert reg.pointer().manifest_sha256 == sha((b / "manifest.json").read_bytes())
    assert home.follow().name == B

    rows = reg.versions()
    assert [(v.name, v.current, v.cv) for v in rows] == [(A, False, 2.1), (B, True, 1.9)]
    entries = reg.history()
    assert [(e["action"], e["version"]) for e in entries] == [("publish", A), ("publish", B)]
    assert entries[0]["manifest_sha256"] == sha((a / "manifest.json").read_bytes())

    # the CLI, the same words on both homes
    r = run_cli("versions", "--registry", home.location, env=home.env)
    assert r.returncode == 0, r.stderr
    marks = {ln.split()[1]: ln[0] for ln in r.stdout.splitlines() if ln[:1] in "*<" and "mpg-" in ln}
    assert marks == {B: "*", A: "<"} and "2.100" in r.stdout
    r = run_cli("rollback", "--registry", home.location, env=home.env)
    assert r.returncode == 0, r.stderr
    assert f"{B} -> {A}" in r.stdout and reg.current() == A and home.follow().name == A

    # rollback past the first version: refused, one clear line, nothing moved
    r = run_cli("rollback", "--registry", home.location, env=home.env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "no previous version to roll back to" in r.stderr and reg.current() == A
    with pytest.raises(UserError, match="no previous version"):
        reg.rollback()

    # activate by version (with or without the mpg- prefix); rollback undoes it
    assert reg.activate(B.removeprefix("mpg-")) == (A, B) and reg.current() == B
    with pytest.raises(UserError, match="holds no bundle"):
        reg.activate("mpg-0000000000ff")
    assert [e["action"] for e in reg.history()] == ["publish", "publish", "rollback", "activate"]
    assert reg.rollback() == (B, A)
    r = run_cli("rollback", "--registry", home.location, "--to", B, env=home.env)
    assert r.returncode == 0 and reg.current() == B


def test_a_manifest_changed_after_publishing_is_refused(home, tmp_path):
    reg = home.registry
    for name, mae in ((A, 2.1), (B, 1.9)):
        reg.publish(tiny_bundle(tmp_path / "built", name, mae))

    # the pointer names B with its manifest's sha256; B's manifest is edited in place
    home.edit_manifest(B)
    with pytest.raises(UserError, match="does not match the sha256 recorded in"):
        reg.current()
    with pytest.raises(UserError, match="does not match the sha256 recorded in"):
        home.follow()

    # rolling back away from it works; going back to it is refused, nothing moves
    assert reg.rollback() == (B, A) and reg.current() == A
    with pytest.raises(UserError, match="does not match the sha256 recorded in"):
        reg.activate(B)
    assert reg.current() == A and home.follow().name == A


# -- folder only: registries written before the pointer carried a sha256 -------------------

def test_an_old_name_only_current_is_still_read(tmp_path):
    root = tmp_path / "dist"
    for name, mae in ((A, 2.1), (B, 1.9)):
        tiny_bundle(root, name, mae)
    (root / "CURRENT").write_text(f"{A}\n")                 # as mpgpack wrote it before
    (root / "HISTORY").write_text(json.dumps({"time": "2026-01-01T00:00:00+00:00",
                                              "action": "publish", "version": A}) + "\n")
    reg = LocalRegistry(root)
    assert reg.current() == A and resolve_bundle_path(root) == root / A
    assert reg.activate(B) == (A, B)
    assert (root / "CURRENT").read_text().startswith(f"{B}\nmanifest-sha256 ")
    assert reg.rollback() == (B, A) and resolve_bundle_path(root) == root / A


def test_a_pointer_that_names_no_version_is_one_clear_error(tmp_path):
    root = tmp_path / "dist"
    tiny_bundle(root, A, 2.1)
    (root / "CURRENT").write_text("../../etc\n")
    with pytest.raises(UserError, match="does not name a bundle"):
        LocalRegistry(root).current()
    with pytest.raises(UserError, match="does not name a bundle"):
        resolve_bundle_path(root)
    (root / "CURRENT").write_text(f"{B}\nmanifest-sha256 {'0' * 64}\n")
    with pytest.raises(UserError, match=f"names {B}, which holds no manifest.json"):
        resolve_bundle_path(root)
