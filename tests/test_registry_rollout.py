"""Versions and roll-out: retrain on a new CSV into a registry, list, roll back, and swap the
served model atomically while requests run (ModelSlot), on a token-checked reload or SIGHUP.

One extra real build (from a CSV with some rows changed) per module, ~10 s.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mpgpack.core.registry import LocalRegistry, set_current
from mpgpack.core.errors import UserError
from mpgpack.targets.monitor.slot import ModelSlot, check_admin_token, install_reload_signal
from tests.helpers import run_cli


def write_changed_csv(path: Path) -> None:
    """The shipped data as a CSV with a header, 40 cars' mpg raised by 1.5 (so the data, and
    with it the content-addressed version, differ)."""
    from mpgpack.export.build import DEFAULT_DATA
    from mpgpack.train.data import load_dataset
    from mpgpack.train.schema import FEATURE_NAMES
    ds = load_dataset(DEFAULT_DATA)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mpg", *FEATURE_NAMES, "car_name"])
        for i, (x, y, name) in enumerate(zip(ds.X, ds.y, ds.names)):
            mpg = y + 1.5 if i % 10 == 0 else y
            w.writerow([f"{mpg:g}", *("" if np.isnan(v) else f"{v:g}" for v in x), name])


@pytest.fixture(scope="module")
def registry(bundle_dir, tmp_path_factory) -> dict:
    """A registry with version A (the session bundle, published) and B (retrained on a CSV)."""
    from mpgpack.export.build import build_bundle
    root = tmp_path_factory.mktemp("registry")
    dist = root / "dist"
    dist.mkdir()
    staging = dist / ".staging-a"
    shutil.copytree(bundle_dir, staging)
    a = LocalRegistry(dist).publish_staged(staging, bundle_dir.name)
    data = root / "new.csv"
    write_changed_csv(data)
    b = build_bundle(data=data, out=dist, packers=[])
    return {"dist": dist, "a": a.name, "b": b.name, "csv": data}


def manifest_of(dist: Path, name: str) -> dict:
    return json.loads((dist / name / "manifest.json").read_text())


def test_build_from_csv_registers_a_new_version(registry):
    dist, a, b = registry["dist"], registry["a"], registry["b"]
    assert a != b and LocalRegistry(dist).current() == b
    ma, mb = manifest_of(dist, a), manifest_of(dist, b)
    assert mb["data"]["sha256"] != ma["data"]["sha256"] and mb["data"]["rows"] == ma["data"]["rows"]
    assert mb["data"]["source"] == "new.csv"
    assert [e["version"] for e in LocalRegistry(dist).history()] == [a, b]
    assert LocalRegistry(dist).stack() == [a, b]


def test_versions_lists_both_with_cv_mae(registry):
    dist, a, b = registry["dist"], registry["a"], registry["b"]
    r = run_cli("versions", "--registry", str(dist))
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[1] if ln.startswith(("*", "<")) else ln.split()[0]: ln
             for ln in r.stdout.splitlines() if "mpg-" in ln}
    assert lines[b].startswith("* ") and lines[a].startswith("< ")
    for name in (a, b):
        m = manifest_of(dist, name)
        assert f"MAE {m['metrics']['chosen']['cv_mean']:.3f}" in lines[name]
        assert m["model"]["created"] in lines[name]


def test_rollback_and_back(registry):
    dist, a, b = registry["dist"], registry["a"], registry["b"]
    try:
        r = run_cli("rollback", "--registry", str(dist))
        assert r.returncode == 0, r.stderr
        assert f"{b} -> {a}" in r.stdout and LocalRegistry(dist).current() == a
        r = run_cli("rollback", "--registry", str(dist))     # nothing older than A
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert "no previous version" in r.stderr and LocalRegistry(dist).current() == a
        r = run_cli("rollback", "--registry", str(dist), "--to", b.removeprefix("mpg-"))
        assert r.returncode == 0 and LocalRegistry(dist).current() == b
        r = run_cli("rollback", "--registry", str(dist), "--to", "mpg-nosuchthing")
        assert r.returncode == 1 and "holds no bundle" in r.stderr and a in r.stderr
    finally:
        set_current(dist, b)


def test_history_replay_is_an_undo_stack(tmp_path):
    for name in ("mpg-a", "mpg-b", "mpg-c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    reg = LocalRegistry(tmp_path)
    for name in ("mpg-a", "mpg-b", "mpg-b", "mpg-c"):     # republishing b is not a new step
        reg.make_current(name, "publish")
    assert reg.stack() == ["mpg-a", "mpg-b", "mpg-c"]
    assert reg.rollback() == ("mpg-c", "mpg-b")
    assert reg.rollback() == ("mpg-b", "mpg-a")
    with pytest.raises(UserError, match="no previous version"):
        reg.rollback()
    set_current(tmp_path, "mpg-c")                        # CURRENT changed by hand
    assert reg.stack()[-2:] == ["mpg-a", "mpg-c"]
    assert reg.rollback() == ("mpg-c", "mpg-a")
    shutil.rmtree(tmp_path / "mpg-a")
    reg.activate("mpg-b")
    with pytest.raises(UserError, match="is gone"):
        reg.rollback()
    (tmp_path / "HISTORY").write_text("not json\n")
    with pytest.raises(UserError, match="HISTORY:1"):
        reg.stack()


# -- the model slot: atomic swap under load ----------------------------------------------------
@dataclass(frozen=True)
class Served:
    version: str
    runner: object


def load_served(path: Path) -> Served:
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.runtimes import OnnxRunner
    bundle = open_bundle(path)
    return Served(bundle.version, OnnxRunner(bundle.artifact("onnx")))


def test_reload_under_load_never_mixes_versions(registry):
    dist, a, b = registry["dist"], registry["a"], registry["b"]
    X = np.array([[4, 97, np.nan, 2130, 14.5, 70, 3], [8, 350, 165, 3693, 11.5, 70, 1]], np.float32)
    expected = {load_served(dist / n).version: load_served(dist / n).runner.predict(X) for n in (a, b)}
    assert not np.allclose(*expected.values())       # the two versions answer differently
    set_current(dist, a)
    slot = ModelSlot(load_served, dist)
    stop = threading.Event()
    seen, failures = {}, []

    def client():
        while not stop.is_set():
            model = slot.current                       # one read per request
            try:
                y = model.runner.predict(X)
                if not np.allclose(y, expected[model.version], atol=1e-5):
                    failures.append(f"{model.version} answered {y}")
                seen[model.version] = seen.get(model.version, 0) + 1
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        versions, seconds = [], []
        for target in (b, a, b, a, b, a):
            set_current(dist, target)
            result = slot.reload()
            versions.append(result.current)
            seconds.append(result.seconds)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        set_current(dist, b)
    print(f"6 reloads under 4 predicting threads: load+swap {min(seconds):.3f}-{max(seconds):.3f} s; "
          f"requests per version {seen}; failures {len(failures)}")
    assert failures == []
    assert versions == [manifest_of(dist, n)["model"]["version"] for n in (b, a, b, a, b, a)]
    assert set(seen) == set(expected) and min(seen.values()) > 0
    assert slot.reloads == 6


def test_reload_of_a_tampered_bundle_keeps_the_old_model(registry, tmp_path):
    dist = registry["dist"]
    slot = ModelSlot(load_served, dist / registry["b"])
    bad = tmp_path / registry["a"]
    shutil.copytree(dist / registry["a"], bad)
    with open(bad / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(UserError, match="sha256"):
        slot.reload(bad)
    assert slot.version == manifest_of(dist, registry["b"])["model"]["version"]
    assert slot.failed_reloads == 1


def test_sighup_reloads(registry):
    dist, a, b = registry["dist"], registry["a"], registry["b"]
    set_current(dist, b)
    slot = ModelSlot(load_served, dist)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        install_reload_signal(slot)
        set_current(dist, a)
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 30
        while slot.version != manifest_of(dist, a)["model"]["version"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slot.version == manifest_of(dist, a)["model"]["version"]
    finally:
        signal.signal(signal.SIGHUP, previous)
        set_current(dist, b)


def test_admin_token():
    env = {"MPGPACK_ADMIN_TOKEN": "s3cret-token"}
    assert check_admin_token(None, env)[0] == 401
    assert check_admin_token("Basic abc", env)[0] == 401
    assert check_admin_token("Bearer ", env)[0] == 401
    assert check_admin_token("Bearer wrong", env) == (403, "admin endpoint: wrong token")
    assert check_admin_token("Bearer s3cret-token", env) == (200, "ok")
    status, message = check_admin_token("Bearer s3cret-token", {})
    assert status == 403 and "MPGPACK_ADMIN_TOKEN" in message
