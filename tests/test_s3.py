"""S3 data lake and registry against a real S3-compatible server (SeaweedFS on 127.0.0.1).

The server checks request signatures against an identity file, so wrong credentials are
refused by the server itself, as on AWS. Started once per session, SIGKILLed at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from mpgpack.core.errors import UserError
from tests.conftest import BUCKET
from tests.helpers import REPO, VENV_BIN, free_port, run_cli

@pytest.fixture
def s3(s3_server):
    return s3_server.client()


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _other_version(bundle_dir: Path, dst: Path, version: str) -> Path:
    """A copy of the session bundle that claims another version: a second, distinct release
    for the registry (storage only reads the version; every sha256 still matches)."""
    shutil.copytree(bundle_dir, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["model"]["version"] = version
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dst


def _pointer(s3, prefix: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=f"{prefix}current")["Body"].read().decode().split("\n")[0]


# --- addresses ---------------------------------------------------------------------------------

def test_parse_s3_url_and_registry_prefix():
    from mpgpack.storage.s3 import parse_s3_url, registry_of
    u = parse_s3_url("s3://lake/models/mpg/current")
    assert (u.bucket, u.key) == ("lake", "models/mpg/current")
    assert str(registry_of(u)) == "s3://lake/models/mpg/"
    assert str(registry_of(parse_s3_url("s3://lake/models/mpg/mpg-0123456789ab/"))) == "s3://lake/models/mpg/"
    assert str(registry_of(parse_s3_url("s3://lake/models/mpg"))) == "s3://lake/models/mpg/"
    for bad, why in [("/tmp/x", "not an S3 address"), ("s3://A_B/k", "not a valid bucket name"),
                     ("s3://lake/a/../b", "'..' are not allowed")]:
        with pytest.raises(UserError, match=why):
            parse_s3_url(bad)


def test_without_boto3_the_message_names_the_extra():
    # boto3 made unimportable in a child interpreter: what a user without the s3 extra sees.
    code = ("import sys; sys.modules['boto3'] = None; from mpgpack.cli import main; "
            "sys.exit(main(['fetch', 's3://lake/models/current']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    line = _one_line_error(proc)
    assert "mpgpack[s3]" in line and "boto3" in line


# --- publish, fetch, serve ---------------------------------------------------------------------

def test_publish_then_fetch_and_serve_round_trip(bundle_dir, manifest, s3_env, s3, tmp_path):
    from mpgpack.core.bundle import sha256_file
    prefix = "roundtrip/mpg/"
    name = f"mpg-{manifest['model']['version']}"

    proc = run_cli("publish", str(bundle_dir), f"s3://{BUCKET}/{prefix}", env=s3_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {e["path"]: e for e in manifest["artifacts"].values()}
    package_files = [rel for rel in _paths(manifest.get("packages", {}))
                     if (bundle_dir / rel).is_file()]
    checked = len(listed) + len(set(package_files) - set(listed)) + 1   # + the manifest
    assert f"re-read {checked} sha256s from S3: all match" in proc.stdout
    assert f"s3://{BUCKET}/{prefix}current -> {name} (was unset)" in proc.stdout
    assert proc.stderr.count("uploaded ") >= len(listed)

    # every artifact is in S3 byte for byte, and the pointer names the version and its manifest
    for rel, entry in listed.items():
        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}{name}/{rel}")["Body"].read()
        assert len(body) == entry["bytes"]
    pointer = s3.get_object(Bucket=BUCKET, Key=f"{prefix}current")["Body"].read().decode()
    assert pointer == f"{name}\nmanifest-sha256 {sha256_file(bundle_dir / 'manifest.json')}\n"

    # cold fetch through the CLI into an empty cache, then every runtime re-checks parity
    cache = tmp_path / "fetch-cache"
    t0 = time.perf_counter()
    proc = run_cli("fetch", f"s3://{BUCKET}/{prefix}current", "--cache", str(cache), env=s3_env)
    print(f"cold fetch via CLI: {time.perf_counter() - t0:.2f} s")
    assert proc.returncode == 0, proc.stderr
    fetched = Path(proc.stdout.strip())
    assert fetched == cache / BUCKET / prefix.rstrip("/") / name
    for rel in listed:
        assert sha256_file(fetched / rel) == sha256_file(bundle_dir / rel), rel

    proc = run_cli("verify", f"s3://{BUCKET}/{prefix}current", env=s3_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: OK" in proc.stdout

    # `mpgpack serve --bundle s3://…/current` with an empty cache: the cold start from S3
    with served(f"s3://{BUCKET}/{prefix}current",
                {**s3_env, "MPGPACK_CACHE": str(tmp_path / "serve-cache")}) as (base, seconds):
        print(f"cold serve from S3 (start -> ready): {seconds:.2f} s")
        assert served_version(base) == manifest["model"]["version"]
        assert_predicts_golden(base, fetched)
    assert (tmp_path / "serve-cache" / "s3" / BUCKET / prefix.rstrip("/") / name / "model.onnx").is_file()


def _paths(node):
    """Every `path` of an entry with a sha256, at any depth (packages nest their files)."""
    if isinstance(node, dict):
        if isinstance(node.get("path"), str) and "sha256" in node:
            yield node["path"]
        for v in node.values():
            yield from _paths(v)
    elif isinstance(node, list):
        for v in node:
            yield from _paths(v)


def _numbers(obj):
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


@contextmanager
def served(bundle_arg: str, env: dict, extra_env: dict | None = None):
    """The real API server (`mpgpack serve`) on a loopback port; yields (base URL, seconds
    from start to ready)."""
    port = free_port()
    log = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(VENV_BIN / "mpgpack"), "serve", "--bundle", bundle_arg,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**env, **(extra_env or {})}, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"mpgpack serve exited: {log.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "the API did not become ready in 90 s"
            time.sleep(0.2)
        yield base, time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def served_version(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metadata", timeout=10) as r:
        return json.loads(r.read())["model"]["version"]


def assert_predicts_golden(base: str, bundle: Path) -> None:
    """One golden car through POST /predict: the answer matches the reference model."""
    from mpgpack.core.bundle import open_bundle
    b = open_bundle(bundle)
    golden = b.golden()
    names = [f["name"] for f in b.features]
    row = next(i for i in range(len(golden.X)) if not any(v != v for v in golden.X[i]))
    car = {n: float(v) for n, v in zip(names, golden.X[row])}
    req = urllib.request.Request(f"{base}/predict", data=json.dumps(car).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.loads(r.read())
    expected = golden.expected[row]
    assert any(abs(v - expected) <= 1e-3 for v in _numbers(answer)), (answer, expected)


def test_fetch_reuses_a_verified_cache_and_repairs_a_damaged_one(bundle_dir, s3_env, tmp_path):
    from mpgpack.storage.s3 import fetch_bundle
    from mpgpack.storage.s3_registry import publish
    publish(bundle_dir, f"s3://{BUCKET}/cache-test/")
    cache = tmp_path / "c"
    first = fetch_bundle(f"s3://{BUCKET}/cache-test/current", cache)
    onnx = first / "model.onnx"
    stamp = onnx.stat().st_mtime_ns
    assert fetch_bundle(f"s3://{BUCKET}/cache-test/", cache) == first
    assert onnx.stat().st_mtime_ns == stamp            # reused, not downloaded again
    onnx.write_bytes(b"damaged on local disk")
    again = fetch_bundle(f"s3://{BUCKET}/cache-test/current", cache)
    assert again == first
    assert onnx.read_bytes() == (bundle_dir / "model.onnx").read_bytes()


def test_build_reads_training_data_from_s3(bundle_dir, manifest, s3_env, s3, tmp_path):
    # The shipped data file, put in the lake: a content-addressed build from it must give the
    # very version the session bundle (built from the same bytes, seed 0) has.
    data = REPO / "mpgpack" / "data" / "auto-mpg.data"
    s3.put_object(Bucket=BUCKET, Key="data/auto-mpg.data", Body=data.read_bytes())
    proc = run_cli("build", "--data", f"s3://{BUCKET}/data/auto-mpg.data",
                   "--out", str(tmp_path / "dist"), env=s3_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads((tmp_path / "dist" / f"mpg-{manifest['model']['version']}" /
                        "manifest.json").read_text())
    assert built["data"]["sha256"] == manifest["data"]["sha256"]

    proc = run_cli("build", "--data", f"s3://{BUCKET}/data/no-such-file.csv",
                   "--out", str(tmp_path / "dist"), env=s3_env)
    line = _one_line_error(proc)
    assert f"s3://{BUCKET}/data/no-such-file.csv: no such object" in line


# --- what goes wrong ---------------------------------------------------------------------------

def test_wrong_credentials_are_one_clear_line(bundle_dir, s3_env, s3):
    env = {**s3_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    line = _one_line_error(run_cli("publish", str(bundle_dir), f"s3://{BUCKET}/creds/", env=env))
    assert "refused the credentials" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="creds/").get("KeyCount", 0) == 0

    env = {**s3_env, "AWS_ACCESS_KEY_ID": "nobody"}
    line = _one_line_error(run_cli("fetch", f"s3://{BUCKET}/roundtrip/mpg/current", env=env))
    assert "refused the credentials (InvalidAccessKeyId)" in line


def test_missing_bucket_is_refused_not_created(bundle_dir, s3_env, s3):
    line = _one_line_error(run_cli("publish", str(bundle_dir), "s3://no-such-bucket/m/", env=s3_env))
    assert "bucket 'no-such-bucket' does not exist" in line
    assert "no-such-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    line = _one_line_error(run_cli("fetch", "s3://no-such-bucket/m/current", env=s3_env))
    assert "bucket 'no-such-bucket' does not exist" in line


def test_nothing_published_and_unreachable_endpoint(s3_env):
    line = _one_line_error(run_cli("fetch", f"s3://{BUCKET}/never-published/current", env=s3_env))
    assert f"s3://{BUCKET}/never-published/current: no such object" in line
    env = {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    line = _one_line_error(run_cli("fetch", f"s3://{BUCKET}/m/current", env=env))
    assert "cannot reach the S3 endpoint" in line and "AWS_ENDPOINT_URL" in line


def test_interrupted_upload_leaves_the_old_version_current(bundle_dir, manifest, s3_env, s3,
                                                           tmp_path):
    from mpgpack.storage.s3 import fetch_bundle
    from mpgpack.storage.s3_registry import publish
    from mpgpack.core.bundle import open_bundle
    prefix = "interrupted/"
    old = f"mpg-{manifest['model']['version']}"
    publish(bundle_dir, f"s3://{BUCKET}/{prefix}")
    new_bundle = _other_version(bundle_dir, tmp_path / "new", "0123456789ab")

    class Interrupted(Exception):
        pass

    uploaded = []

    def fail_after_three(key, nbytes):
        uploaded.append(key)
        if len(uploaded) == 3:
            raise Interrupted("the connection dropped half way")

    with pytest.raises(Interrupted):
        publish(new_bundle, f"s3://{BUCKET}/{prefix}", on_upload=fail_after_three)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}mpg-0123456789ab/")["Contents"]]
    assert len(keys) == 3 and not any(k.endswith("manifest.json") for k in keys)
    assert _pointer(s3, prefix) == old
    served = fetch_bundle(f"s3://{BUCKET}/{prefix}current", tmp_path / "cache")
    assert served.name == old
    open_bundle(served).verify()
    with pytest.raises(UserError, match="manifest.json: no such object"):
        fetch_bundle(f"s3://{BUCKET}/{prefix}mpg-0123456789ab/", tmp_path / "cache")

    # A publish killed outright (SIGKILL, no clean-up) after its second object: same story.
    other = _other_version(bundle_dir, tmp_path / "other", "abcdef012345")
    proc = subprocess.Popen([str(VENV_BIN / "mpgpack"), "publish", str(other),
                             f"s3://{BUCKET}/{prefix}"], stderr=subprocess.PIPE, text=True,
                            env=s3_env, cwd=REPO)
    seen = 0
    for line in proc.stderr:
        seen += line.lstrip().startswith("uploaded ")
        if seen == 2:
            proc.kill()
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _pointer(s3, prefix) == old
    assert fetch_bundle(f"s3://{BUCKET}/{prefix}", tmp_path / "cache").name == old

    # Publishing again completes the interrupted version and only then moves the pointer.
    result = publish(new_bundle, f"s3://{BUCKET}/{prefix}")
    assert result.previous == old and _pointer(s3, prefix) == "mpg-0123456789ab"
    assert fetch_bundle(f"s3://{BUCKET}/{prefix}current", tmp_path / "cache").name == "mpg-0123456789ab"


def test_rollback_on_s3_and_the_api_follows_it(bundle_dir, manifest, s3_env, tmp_path):
    """`mpgpack rollback --registry s3://…` moves `current` back; a server started on
    s3://…/current switches on its next reload (it re-reads the pointer)."""
    from mpgpack.storage.s3_registry import publish
    url = f"s3://{BUCKET}/rollback/"
    old, new = manifest["model"]["version"], "0123456789ac"
    publish(bundle_dir, url)
    publish(_other_version(bundle_dir, tmp_path / "new", new), url)
    token = "rollback-test-token"
    with served(url + "current", {**s3_env, "MPGPACK_ADMIN_TOKEN": token}) as (base, _):
        assert served_version(base) == new
        proc = run_cli("rollback", "--registry", url, env=s3_env)
        assert proc.returncode == 0, proc.stderr
        assert f"{url}current: mpg-{new} -> mpg-{old}" in proc.stdout
        assert served_version(base) == new               # only a reload switches
        req = urllib.request.Request(f"{base}/admin/reload", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert json.loads(r.read())["current"] == old
        assert served_version(base) == old
    proc = run_cli("rollback", "--registry", url, env=s3_env)      # nothing older than old
    assert "no previous version to roll back to" in _one_line_error(proc)


def test_a_tampered_object_is_refused(bundle_dir, manifest, s3_env, s3, tmp_path):
    from mpgpack.storage.s3 import fetch_bundle
    from mpgpack.storage.s3_registry import publish
    prefix = "tampered/"
    name = f"mpg-{manifest['model']['version']}"
    publish(bundle_dir, f"s3://{BUCKET}/{prefix}")
    key = f"{prefix}{name}/model.onnx"
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original[:-16] + b"\0" * 16)

    line = _one_line_error(run_cli("fetch", f"s3://{BUCKET}/{prefix}current",
                                   "--cache", str(tmp_path / "cache"), env=s3_env))
    assert f"s3://{BUCKET}/{key} does not match its sha256 in the manifest" in line
    assert not (tmp_path / "cache" / BUCKET / prefix / name).exists()   # nothing half-kept
    line = _one_line_error(run_cli("verify", f"s3://{BUCKET}/{prefix}current", env=s3_env))
    assert "model.onnx does not match its sha256" in line

    # re-publishing over a tampered version refuses too, instead of pointing at it again
    with pytest.raises(UserError, match=f"{key} does not match its sha256"):
        publish(bundle_dir, f"s3://{BUCKET}/{prefix}")

    # a manifest rewritten to match a tampered file is caught by the pointer's manifest sha256
    s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    m = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}{name}/manifest.json")["Body"].read())
    m["metrics"]["note"] = "edited"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}{name}/manifest.json", Body=json.dumps(m).encode())
    with pytest.raises(UserError, match="does not match the sha256 recorded in"):
        fetch_bundle(f"s3://{BUCKET}/{prefix}current", tmp_path / "cache2")


def test_publish_to_a_local_registry_folder(bundle_dir, manifest, tmp_path):
    from mpgpack.core.bundle import open_bundle
    proc = run_cli("publish", str(bundle_dir), str(tmp_path / "registry"))
    assert proc.returncode == 0, proc.stderr
    name = f"mpg-{manifest['model']['version']}"
    assert (tmp_path / "registry" / "CURRENT").read_text().split()[0] == name
    assert open_bundle(tmp_path / "registry").verify()


def test_s3_benchmark_prints_its_figures(bundle_dir):
    proc = subprocess.run([sys.executable, "-m", "mpgpack.storage.bench", str(bundle_dir), "--repeat", "1"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("  ")[0].strip(): line.split()[-3:] for line in proc.stdout.splitlines()[2:]}
    assert set(rows) == {"publish", "cold fetch", "warm fetch", "cold serve (start -> ready)"}
    assert all(0 < float(v) < 120 for values in rows.values() for v in values)
