"""`mpg-edge follow`: a device that follows a real registry and never serves a bad version.

Registries: SeaweedFS (the session's S3 server) read over plain HTTP through a public-read
bucket policy, as a device would, and a registry folder. The device is the real runner as a
subprocess (`python -m mpgpack.targets.edge.device`). Distinct versions are copies of the
session bundle with another model version in the manifest (and consistent sha256s), signed
with a test key; a power cut is SIGKILL at each named step of an update
($MPG_EDGE_TEST_KILL_AT) and at random times.
"""
from __future__ import annotations

import http.server
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mpgpack.core.bundle import sha256_file
from mpgpack.core.registry import LocalRegistry
from tests.helpers import REPO

DEVICE = [sys.executable, "-m", "mpgpack.targets.edge.device"]
PUBLIC_BUCKET = "edge-public"
STEPS = ["download", "downloaded", "verified", "installed", "switch-previous", "switch-current"]


def device(*args, env: dict | None = None, timeout: float = 120,
           **kw) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MPG_EDGE_")}
    return subprocess.run([*DEVICE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**full_env, **(env or {})}, **kw)


def status(prefix: Path, *extra) -> dict:
    out = prefix.parent / f"{prefix.name}-status.json"
    run = device("status", "--prefix", prefix, "--json", out, *extra)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


def serving(prefix: Path) -> str | None:
    link = prefix / "current"
    return Path(os.readlink(link)).name if link.is_symlink() else None


# -- versions -------------------------------------------------------------------------------
def _rewrite_artifact(bundle: Path, manifest: dict, name: str, data: bytes) -> None:
    entry = manifest["artifacts"][name]
    path = bundle / entry["path"]
    path.write_bytes(data)
    entry["sha256"], entry["bytes"] = sha256_file(path), len(data)


def make_release(src: Path, dst: Path, version: str, key: Path | None,
                 golden_shift: float = 0.0) -> Path:
    """A copy of the bundle claiming `version`; golden_shift moves every expected golden value
    (a model that fails the device's golden check, with a manifest that matches its files)."""
    shutil.copytree(src, dst)
    (dst / "signature.json").unlink(missing_ok=True)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["model"]["version"] = version
    if golden_shift:
        golden = json.loads((dst / "golden.json").read_text())
        golden["expected"] = [v + golden_shift for v in golden["expected"]]
        _rewrite_artifact(dst, manifest, "golden", json.dumps(golden).encode())
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if key is not None:
        from mpgpack.core.signing import sign_bundle
        sign_bundle(dst, key)
    return dst


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    from mpgpack.core.signing import generate_keypair
    key, pub, _ = generate_keypair(tmp_path_factory.mktemp("keys") / "fleet")
    return {"key": key, "pub": pub}


@pytest.fixture(scope="module")
def releases(bundle_dir, keys, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("releases")
    return {
        "v1": make_release(bundle_dir, root / "v1", "follow1", keys["key"]),
        "v2": make_release(bundle_dir, root / "v2", "follow2", keys["key"]),
        "v3": make_release(bundle_dir, root / "v3", "follow3", keys["key"]),        # tampered later
        "v4": make_release(bundle_dir, root / "v4", "follow4", None),               # unsigned
        "v5": make_release(bundle_dir, root / "v5", "follow5", keys["key"], golden_shift=0.5),
    }


def flipped(data: bytes, at: int = 200) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


# -- two registries, one scenario -------------------------------------------------------------
class FolderHome:
    def __init__(self, root: Path):
        self.registry, self.url = LocalRegistry(root), str(root)

    def publish(self, bundle: Path) -> None:
        self.registry.publish(bundle)

    def tamper(self, name: str, rel: str) -> None:
        path = self.registry.root / name / rel
        path.write_bytes(flipped(path.read_bytes()))


class S3Home:
    """The S3 prefix `mpgpack publish` writes, read by the device over plain HTTP."""

    def __init__(self, server, prefix: str):
        from mpgpack.storage.s3_registry import S3Registry
        self.client = server.client()
        self.prefix = prefix
        self.registry = S3Registry(f"s3://{PUBLIC_BUCKET}/{prefix}", client=self.client)
        self.url = f"{server.endpoint}/{PUBLIC_BUCKET}/{prefix}"

    def publish(self, bundle: Path) -> None:
        self.registry.publish(bundle)

    def tamper(self, name: str, rel: str) -> None:
        key = f"{self.prefix}{name}/{rel}"
        body = self.client.get_object(Bucket=PUBLIC_BUCKET, Key=key)["Body"].read()
        self.client.put_object(Bucket=PUBLIC_BUCKET, Key=key, Body=flipped(body))


@pytest.fixture(scope="module")
def public_bucket(s3_server):
    """A bucket anyone may GET from (the S3 policy a fleet's registry would carry)."""
    client = s3_server.client()
    client.create_bucket(Bucket=PUBLIC_BUCKET)
    client.put_bucket_policy(Bucket=PUBLIC_BUCKET, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{PUBLIC_BUCKET}/*"]}]}))
    return s3_server


def test_a_public_read_prefix_needs_no_credentials_and_others_stay_closed(public_bucket):
    import urllib.error
    import urllib.request
    client = public_bucket.client()
    client.put_object(Bucket=PUBLIC_BUCKET, Key="probe/current", Body=b"x")
    with urllib.request.urlopen(f"{public_bucket.endpoint}/{PUBLIC_BUCKET}/probe/current") as r:
        assert r.read() == b"x"
    client.put_object(Bucket="lake", Key="edge-follow-probe", Body=b"x")
    with pytest.raises(urllib.error.HTTPError) as err:      # the other bucket: credentials
        urllib.request.urlopen(f"{public_bucket.endpoint}/lake/edge-follow-probe")
    assert err.value.code == 403


def run_scenario(home, releases: dict[str, Path], pub: Path, prefix: Path) -> list[str]:
    """publish v1 -> serves v1; v2 -> switches in one poll; tampered v3, unsigned v4, v5 that
    misses its golden vectors -> each refused, v2 serving; rollback -> v1. Returns the reasons."""
    def follow() -> subprocess.CompletedProcess:
        return device("follow", home.url, "--prefix", prefix, "--once", "--trust", pub)

    for name in ("v1", "v2"):
        home.publish(releases[name])
        run = follow()
        assert run.returncode == 0, run.stderr + run.stdout
        assert serving(prefix) == f"mpg-follow{name[1]}", run.stdout
        assert "signature: OK" in run.stdout
    assert (prefix / "previous").resolve().name == "mpg-follow1"

    reasons = []
    expected = {"v3": "model.tflite does not match its sha256",
                "v4": "is not signed (no signature.json in the registry)",
                "v5": "the golden vectors miss on this device"}
    for name in ("v3", "v4", "v5"):
        home.publish(releases[name])
        if name == "v3":                 # a byte flipped in the registry after publishing
            home.tamper("mpg-follow3", "model.tflite")
        run = follow()
        assert run.returncode == 1, run.stdout + run.stderr
        assert serving(prefix) == "mpg-follow2"
        state = status(prefix)
        last = state["last_attempt"]
        assert (last["version"], last["outcome"]) == (f"mpg-follow{name[1]}", "refused")
        assert expected[name] in last["reason"], last["reason"]
        assert state["serving"]["name"] == "mpg-follow2"
        reasons.append(f"{name}: {last['reason']}")
    assert device("verify", "--prefix", prefix).returncode == 0
    assert sorted(p.name for p in (prefix / "versions").iterdir()) == ["mpg-follow1", "mpg-follow2"]
    assert list((prefix / "staging").iterdir()) == []

    run = device("rollback", "--prefix", prefix)
    assert run.returncode == 0 and serving(prefix) == "mpg-follow1", run.stderr
    home.registry.activate("mpg-follow2")        # the registry still names the rolled-back one
    run = follow()
    assert run.returncode == 0 and serving(prefix) == "mpg-follow1", run.stdout
    assert status(prefix)["last_attempt"]["outcome"] == "held"
    return reasons


def test_follow_over_http_from_s3(public_bucket, releases, keys, tmp_path):
    home = S3Home(public_bucket, "fleet/")
    reasons = run_scenario(home, releases, keys["pub"], tmp_path / "device")
    print("\n".join(reasons))


def test_follow_a_registry_folder(releases, keys, tmp_path):
    run_scenario(FolderHome(tmp_path / "registry"), releases, keys["pub"], tmp_path / "device")


# -- power cuts -------------------------------------------------------------------------------
def check_serves_a_verified_version(prefix: Path, allowed: set[str]) -> str:
    name = serving(prefix)
    assert name in allowed, name
    run = device("verify", "--prefix", prefix)
    assert run.returncode == 0 and "verify: OK" in run.stdout, run.stdout + run.stderr
    return name


def test_kill_9_at_every_step_never_leaves_the_device_without_a_verified_model(
        releases, keys, tmp_path):
    home = FolderHome(tmp_path / "registry")
    prefix = tmp_path / "device"
    home.publish(releases["v1"])
    home.publish(releases["v2"])
    a, b = "mpg-follow1", "mpg-follow2"
    home.registry.activate(a)
    assert device("follow", home.url, "--prefix", prefix, "--once").returncode == 0
    trials = 0
    for step in STEPS:
        for _ in range(2):
            cur = serving(prefix)
            target = b if cur == a else a
            home.registry.activate(target)
            run = device("follow", home.url, "--prefix", prefix, "--once",
                         env={"MPG_EDGE_TEST_KILL_AT": step})
            assert run.returncode == -signal.SIGKILL, (step, run.stdout, run.stderr)
            after = check_serves_a_verified_version(prefix, {cur, target})
            # killed after the link swap the new version serves, before it the old one
            assert after == (target if step == "switch-current" else cur), step
            run = device("follow", home.url, "--prefix", prefix, "--once")
            assert run.returncode == 0 and serving(prefix) == target, run.stdout + run.stderr
            assert list((prefix / "staging").iterdir()) == []
            assert {p.name for p in (prefix / "versions").iterdir()} <= {a, b}
            trials += 1
    # and at random instants of a whole update
    rng = random.Random(14)
    for _ in range(12):
        cur = serving(prefix)
        target = b if cur == a else a
        home.registry.activate(target)
        proc = subprocess.Popen([*DEVICE, "follow", home.url, "--prefix", str(prefix), "--once"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.8))
        proc.kill()
        proc.wait()
        check_serves_a_verified_version(prefix, {cur, target})
        trials += 1
    print(f"\n{trials} kill -9 trials ({len(STEPS)} named steps x 2, 12 at random times): "
          f"a verified version served after each")
    assert trials == len(STEPS) * 2 + 12


class CutDownloads(http.server.SimpleHTTPRequestHandler):
    """Serves a registry folder, but sends only half of every model.tflite (announcing it
    whole), then drops the connection: a download cut in the middle."""

    def do_GET(self):
        if not self.path.endswith("/model.tflite"):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_cut_download_and_a_full_disk_keep_the_old_version(releases, tmp_path):
    home = FolderHome(tmp_path / "registry")
    prefix = tmp_path / "device"
    home.publish(releases["v1"])
    assert device("follow", home.url, "--prefix", prefix, "--once").returncode == 0
    home.publish(releases["v2"])

    def handler(*args, **kw):
        return CutDownloads(*args, directory=str(home.registry.root), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        run = device("follow", url, "--prefix", prefix, "--once")
    finally:
        server.shutdown()
    assert run.returncode == 1 and "was cut" in run.stdout, run.stdout + run.stderr
    assert serving(prefix) == "mpg-follow1"
    assert status(prefix)["last_attempt"]["outcome"] == "error"

    def small_disk():   # files over 64 KiB cannot be written (golden.json is ~125 KB)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    run = device("follow", home.url, "--prefix", prefix, "--once", preexec_fn=small_disk)
    assert run.returncode == 1 and "cannot write" in run.stdout, run.stdout + run.stderr
    assert serving(prefix) == "mpg-follow1"
    assert list((prefix / "staging").iterdir()) == []
    check_serves_a_verified_version(prefix, {"mpg-follow1"})
    assert device("follow", home.url, "--prefix", prefix, "--once").returncode == 0
    assert serving(prefix) == "mpg-follow2"


# -- reporting back -------------------------------------------------------------------------
def test_prediction_log_and_status_report_version_attempt_and_drift(releases, tmp_path):
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge import emulate
    home = FolderHome(tmp_path / "registry")
    prefix = tmp_path / "device"
    home.publish(releases["v1"])
    assert device("follow", home.url, "--prefix", prefix, "--once").returncode == 0
    bundle = open_bundle(releases["v1"])
    names = [f["name"] for f in bundle.features]
    csv = emulate.write_golden_csv(bundle.golden().X, names, tmp_path / "cars.csv")
    log = tmp_path / "predictions.jsonl"
    run = device("predict", "--prefix", prefix, "--input", csv, "--prediction-log", log,
                 "--quiet")
    assert run.returncode == 0, run.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == len(bundle.golden().X)
    first = json.loads(lines[0])
    assert first["model_version"] == "follow1" and set(first["inputs"]) == set(names)

    info = status(prefix, "--prediction-log", log)
    assert info["serving"]["name"] == "mpg-follow1"
    assert info["last_attempt"]["outcome"] == "updated"
    assert info["prediction_log"]["records"] == len(lines)
    assert info["prediction_log"]["by_version"] == {"follow1": len(lines)}
    assert info["drift"]["n"] == 500 and info["drift"]["status"] in ("ok", "drift")
    text = device("status", "--prefix", prefix, "--prediction-log", log).stdout
    assert "serving: mpg-follow1" in text and "drift:" in text and "horsepower" in text


def test_without_a_model_the_device_says_what_to_run(tmp_path):
    run = device("predict", "--prefix", tmp_path / "none", "--input", "x.csv")
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "holds no model yet" in run.stderr and "mpg-edge follow URL" in run.stderr
    run = device("follow", "s3://bucket/prefix/", "--prefix", tmp_path / "dev", "--once")
    assert run.returncode == 1 and "not s3://" in run.stdout
    run = device("follow", "http://127.0.0.1:9/registry/", "--prefix", tmp_path / "dev", "--once")
    assert run.returncode == 1 and "cannot reach" in run.stdout and "serving nothing" in run.stdout
    assert json.loads((tmp_path / "dev" / "state.json").read_text())["outcome"] == "error"


def test_follow_units_pass_systemd_analyze(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units_dir = REPO / "mpgpack" / "targets" / "edge" / "device_files"
    prefix = tmp_path / "opt"
    runner = prefix / "venv" / "bin" / "mpg-edge"       # systemd checks the command exists
    runner.parent.mkdir(parents=True)
    runner.write_text("#!/bin/sh\n")
    runner.chmod(0o755)
    out = tmp_path / "units"
    out.mkdir()
    for unit in ("mpg-edge-follow.service", "mpg-edge-follow.timer"):
        (out / unit).write_text((units_dir / unit).read_text().replace("@PREFIX@", str(prefix)))
    checked = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(out.iterdir()))],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stderr
