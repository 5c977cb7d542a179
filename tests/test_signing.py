"""Signed bundles (mpgpack/core/signing.py): keys, what a signature covers, and every target
that is given a trusted key (`mpgpack verify --trust`, `mpgpack serve --trust`, `mpg-edge
verify --trust`) accepting a good signature and refusing the rest with the reason.

The first half runs on a tiny hand-made bundle (the manifest-only fixture plus one artifact
file): fast tier. The matrix at the end needs the built bundle's models: slow tier.
The device has no `cryptography`: "openssl" runs the checker with that package hidden (a
package of the same name that fails to import, first on PYTHONPATH), so the openssl CLI does
the check, as on a Raspberry Pi.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mpgpack.core import signing
from mpgpack.core.bundle import open_bundle, sha256_file
from mpgpack.core.errors import UserError
from tests.helpers import REPO, free_port, run_cli



# -- helpers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two key pairs: "trusted" (its .pub is what targets are given) and "other"."""
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("trusted", "other"):
        key, pub, _ = signing.generate_keypair(folder / name)
        out[name], out[f"{name}.pub"] = key, pub
    return out


@pytest.fixture(scope="module")
def no_cryptography(tmp_path_factory) -> Path:
    """A PYTHONPATH entry that makes `import cryptography` fail, as on the device."""
    folder = tmp_path_factory.mktemp("hide")
    (folder / "cryptography").mkdir()
    (folder / "cryptography" / "__init__.py").write_text(
        "raise ImportError('cryptography hidden: the device has none')\n")
    return folder


def env_with(*paths: Path, **extra) -> dict:
    entries = [*map(str, paths), str(REPO)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(entries), **extra}


@pytest.fixture
def tiny_bundle(small_bundle_dir, tmp_path) -> Path:
    """The manifest-only fixture with one real artifact and a "packages" entry."""
    folder = tmp_path / "mpg-tiny"
    folder.mkdir()
    manifest = json.loads((small_bundle_dir / "manifest.json").read_text())
    (folder / "model.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "site.html").write_text("<p>page</p>\n")
    manifest["artifacts"] = {"model": _entry(folder, "model.bin")}
    manifest["packages"] = {"web": _entry(folder, "site.html")}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def _entry(folder: Path, rel: str) -> dict:
    return {"path": rel, "bytes": (folder / rel).stat().st_size,
            "sha256": sha256_file(folder / rel)}


def flip_byte(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def flip_signature_byte(bundle: Path, name: str = signing.CORE) -> None:
    doc = json.loads((bundle / signing.SIGNATURE_FILE).read_text())
    raw = bytearray(base64.b64decode(doc["signatures"][name]))
    raw[10] ^= 0x01
    doc["signatures"][name] = base64.b64encode(bytes(raw)).decode()
    (bundle / signing.SIGNATURE_FILE).write_text(json.dumps(doc))


def check_in_subprocess(bundle: Path, pub: Path, *hide: Path,
                        **env) -> subprocess.CompletedProcess:
    """verify_bundle_signature in a fresh interpreter (so `cryptography` can be hidden)."""
    code = ("import sys\nfrom mpgpack.core.errors import UserError\n"
            "from mpgpack.core.signing import verify_bundle_signature as v\n"
            "try:\n    print(v(sys.argv[1], sys.argv[2]).line())\n"
            "except UserError as e:\n    print('refused:', e); sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", code, str(bundle), str(pub)],
                          capture_output=True, text=True, timeout=60, env=env_with(*hide, **env))


# -- keys ------------------------------------------------------------------------------------
def test_keygen_writes_a_private_key_only_its_owner_reads_and_refuses_to_overwrite(tmp_path):
    r = run_cli("keygen", str(tmp_path / "k"))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in (tmp_path / "k").read_bytes()
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    again = run_cli("keygen", str(tmp_path / "k"))
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "exists; refusing to overwrite" in again.stderr


def test_the_private_key_or_a_bad_file_as_trusted_key_is_one_clear_line(tiny_bundle, keys, tmp_path):
    signing.sign_bundle(tiny_bundle, keys["trusted"])
    with pytest.raises(UserError, match="is a private key; give the public key"):
        signing.verify_bundle_signature(tiny_bundle, keys["trusted"])
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    with pytest.raises(UserError, match="cannot read public key .*not a PEM public key"):
        signing.verify_bundle_signature(tiny_bundle, junk)
    with pytest.raises(UserError, match="cannot read public key .*missing.pub"):
        signing.verify_bundle_signature(tiny_bundle, tmp_path / "missing.pub")


# -- what is signed (tiny bundle, both checkers) ---------------------------------------------
@pytest.mark.parametrize("checker", ["cryptography", "openssl"])
def test_each_tampering_is_refused_with_its_reason(tiny_bundle, keys, no_cryptography, checker):
    hide = [no_cryptography] if checker == "openssl" else []
    pub = keys["trusted.pub"]
    unsigned = check_in_subprocess(tiny_bundle, pub, *hide)
    assert unsigned.returncode == 1 and "is not signed (no signature.json)" in unsigned.stdout

    signing.sign_bundle(tiny_bundle, keys["trusted"])
    good = check_in_subprocess(tiny_bundle, pub, *hide)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"checked with {checker}" in good.stdout and "manifest and packages" in good.stdout

    saved = (tiny_bundle / signing.SIGNATURE_FILE).read_bytes()
    flip_signature_byte(tiny_bundle)
    bad = check_in_subprocess(tiny_bundle, pub, *hide)
    assert bad.returncode == 1 and "bad signature: manifest.json does not match" in bad.stdout
    (tiny_bundle / signing.SIGNATURE_FILE).write_bytes(saved)

    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["metrics"]["changed"] = 1                 # an edit after signing
    (tiny_bundle / "manifest.json").write_text(json.dumps(manifest))
    edited = check_in_subprocess(tiny_bundle, pub, *hide)
    assert edited.returncode == 1 and "bad signature" in edited.stdout

    signing.sign_bundle(tiny_bundle, keys["other"])    # re-signed by someone else
    other = check_in_subprocess(tiny_bundle, pub, *hide)
    assert other.returncode == 1 and "is signed by another key" in other.stdout


def test_a_flipped_artifact_byte_passes_the_signature_and_fails_its_sha256(tiny_bundle, keys):
    """The signature vouches for the sha256s; the targets' hash check catches the file."""
    signing.sign_bundle(tiny_bundle, keys["trusted"])
    flip_byte(tiny_bundle / "model.bin")
    signing.verify_bundle_signature(tiny_bundle, keys["trusted.pub"])
    with pytest.raises(UserError, match="model.bin does not match its sha256"):
        open_bundle(tiny_bundle).verify()


def test_a_forged_key_id_is_still_a_bad_signature(tiny_bundle, keys):
    signing.sign_bundle(tiny_bundle, keys["other"])
    doc = json.loads((tiny_bundle / signing.SIGNATURE_FILE).read_text())
    trusted_id = signing.key_id(signing.public_key_der(keys["trusted.pub"].read_bytes(), "t"))
    doc["key_id"] = trusted_id
    (tiny_bundle / signing.SIGNATURE_FILE).write_text(json.dumps(doc))
    with pytest.raises(UserError, match="bad signature"):
        signing.verify_bundle_signature(tiny_bundle, keys["trusted.pub"])


def test_packages_added_after_signing_are_named_and_the_device_manifest_still_verifies(
        tiny_bundle, keys, tmp_path):
    """`mpgpack edge bundle` after `build --sign-key`: the whole-manifest signature is stale,
    the one the device checks (manifest less packages, as the tarball ships it) is not."""
    signing.sign_bundle(tiny_bundle, keys["trusted"])
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["packages"]["edge_aarch64"] = {"path": "x.tar.gz", "sha256": "0" * 64}
    (tiny_bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    with pytest.raises(UserError, match="packages .* changed after signing.*`mpgpack sign`"):
        signing.verify_bundle_signature(tiny_bundle, keys["trusted.pub"])

    device = tmp_path / "device-bundle"            # what targets/edge/pack.py stages
    device.mkdir()
    shipped = {k: v for k, v in manifest.items() if k != "packages"}
    (device / "manifest.json").write_text(json.dumps(shipped, indent=1))   # re-indented
    (device / signing.SIGNATURE_FILE).write_text(json.dumps(signing.device_signature(tiny_bundle)))
    check = signing.verify_bundle_signature(device, keys["trusted.pub"])
    assert check.checked == (signing.CORE,)


def test_without_openssl_or_cryptography_the_check_says_what_to_install(
        tiny_bundle, keys, no_cryptography, tmp_path):
    signing.sign_bundle(tiny_bundle, keys["trusted"])
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    r = check_in_subprocess(tiny_bundle, keys["trusted.pub"], no_cryptography, PATH=str(empty_path))
    assert r.returncode == 1 and "the openssl command (OpenSSL >= 3.0) is not installed" in r.stdout


def test_sign_cli_writes_the_signature_and_a_bad_key_is_one_line(tiny_bundle, keys, tmp_path):
    r = run_cli("sign", str(tiny_bundle), "--key", str(keys["trusted"]))
    assert r.returncode == 0 and "signed" in r.stdout, r.stderr
    signing.verify_bundle_signature(tiny_bundle, keys["trusted.pub"])
    bad = run_cli("sign", str(tiny_bundle), "--key", str(keys["trusted.pub"]))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "cannot read private key" in bad.stderr


def test_publish_sign_key_publishes_a_signed_bundle(tiny_bundle, keys, tmp_path):
    registry = tmp_path / "registry"
    r = run_cli("publish", str(tiny_bundle), str(registry), "--sign-key", str(keys["trusted"]))
    assert r.returncode == 0, r.stderr
    published = next(registry.glob("mpg-*"))
    assert signing.verify_bundle_signature(published, keys["trusted.pub"]).checked == (
        signing.CORE, signing.FULL)


def test_build_with_a_bad_sign_key_fails_before_training(tmp_path):
    r = run_cli("build", "--out", str(tmp_path / "dist"), "--sign-key", str(tmp_path / "nokey"),
                timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot read private key" in r.stderr
    assert not (tmp_path / "dist").exists()


# -- every target, on the built bundle (slow tier) -------------------------------------------
CASES = ["good", "artifact byte flipped", "signature byte flipped", "re-signed by another key",
         "no signature"]
EXPECTED = {"good": None,
            "artifact byte flipped": "does not match its sha256",
            "signature byte flipped": "bad signature",
            "re-signed by another key": "is signed by another key",
            "no signature": "is not signed (no signature.json)"}


@pytest.fixture(scope="module")
def cases(bundle_dir, keys, tmp_path_factory) -> dict[str, Path]:
    """One copy of the built bundle per case, signed by the trusted key unless the case says."""
    root = tmp_path_factory.mktemp("cases")
    out = {}
    for i, case in enumerate(CASES):
        folder = root / f"case{i}" / bundle_dir.name
        shutil.copytree(bundle_dir, folder, ignore=shutil.ignore_patterns(signing.SIGNATURE_FILE))
        if case != "no signature":
            signing.sign_bundle(folder, keys["trusted"])
        if case == "artifact byte flipped":            # the model each target loads
            flip_byte(folder / "model.onnx")
            flip_byte(folder / "model.tflite")
        elif case == "signature byte flipped":
            flip_signature_byte(folder)
        elif case == "re-signed by another key":       # a swapped model, its sha256 updated
            manifest = json.loads((folder / "manifest.json").read_text())
            flip_byte(folder / "model.onnx")
            flip_byte(folder / "model.tflite")
            for name in ("onnx", "tflite_float32"):
                entry = manifest["artifacts"][name]
                entry["sha256"] = sha256_file(folder / entry["path"])
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
            signing.sign_bundle(folder, keys["other"])
        out[case] = folder
    return out


def _outcome(returncode: int, text: str, case: str) -> None:
    expected = EXPECTED[case]
    if expected is None:
        assert returncode == 0, text
        assert "signature: OK" in text, text
    else:
        assert returncode != 0 and expected in text, text
        assert "Traceback" not in text


@pytest.mark.parametrize("case", CASES)
def test_mpgpack_verify_with_a_trusted_key(cases, keys, case):
    r = run_cli("verify", str(cases[case]), "--trust", str(keys["trusted.pub"]), timeout=300)
    _outcome(r.returncode, r.stdout + r.stderr, case)


@pytest.mark.parametrize("checker", ["cryptography", "openssl"])
@pytest.mark.parametrize("case", CASES)
def test_edge_runner_verify_with_a_trusted_key(cases, keys, no_cryptography, case, checker):
    hide = [no_cryptography] if checker == "openssl" else []
    r = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "verify",
                        "--bundle", str(cases[case]), "--trust", str(keys["trusted.pub"])],
                       capture_output=True, text=True, timeout=300, env=env_with(*hide))
    _outcome(r.returncode, r.stdout + r.stderr, case)
    if case == "good":
        assert f"checked with {checker}" in r.stdout


def test_edge_runner_predict_refuses_before_predicting(cases, keys, no_cryptography):
    r = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "predict",
                        "--bundle", str(cases["no signature"]), "--trust",
                        str(keys["trusted.pub"])], input='{"cylinders": 4}\n',
                       capture_output=True, text=True, timeout=120, env=env_with(no_cryptography))
    assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "is not signed" in r.stderr


def test_without_a_key_every_target_says_the_bundle_is_unverified(cases, tmp_path):
    r = run_cli("verify", str(cases["no signature"]), timeout=300)
    assert r.returncode == 0 and "signature: not checked" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "verify",
                        "--bundle", str(cases["no signature"])], capture_output=True, text=True,
                       timeout=120, env=env_with())
    assert r.returncode == 0 and "signature: not checked" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mpgpack.targets.edge.device", "predict",
                        "--bundle", str(cases["no signature"])], input='{"cylinders": 4}\n',
                       capture_output=True, text=True, timeout=120, env=env_with())
    assert r.returncode == 3 and "mpg-edge: signature: not checked" in r.stderr


def test_api_with_a_trusted_key_refuses_each_bad_bundle_on_reload_and_keeps_serving(
        cases, keys, tmp_path):
    import httpx

    from tests.helpers import running_server
    token = "test-token-signing"
    env = {**os.environ, "MPGPACK_ADMIN_TOKEN": token}
    refused_start = run_cli("serve", "--bundle", str(cases["no signature"]), "--trust",
                            str(keys["trusted.pub"]), "--port", str(free_port()), timeout=120)
    assert refused_start.returncode == 1 and "is not signed" in refused_start.stderr
    with running_server(cases["good"], tmp_path, "--trust", str(keys["trusted.pub"]),
                        env=env) as server, httpx.Client(base_url=server.url) as client:
        assert any("signature: OK" in line for line in server.log_lines())
        version = client.get("/metadata").json()["model"]["version"]
        for case in CASES:
            r = client.post("/admin/reload", json={"bundle": str(cases[case])},
                            headers={"Authorization": f"Bearer {token}"}, timeout=120)
            if EXPECTED[case] is None:
                assert r.status_code == 200, r.text
            else:
                assert r.status_code == 409 and EXPECTED[case] in r.json()["error"], r.text
            assert client.get("/metadata").json()["model"]["version"] == version
            assert client.get("/metadata").json()["signature"].startswith("signature: OK")


@pytest.mark.wheel
def test_signed_tarball_installs_its_key_and_the_device_refuses_a_bad_signature(
        cases, keys, tmp_path):
    """`edge bundle --trust`: the tarball carries the signature and the key; install.sh puts the
    key beside the bundle; the installed runner (no cryptography in its venv: openssl) checks
    it at every start."""
    from mpgpack.targets.edge import emulate
    bundle = tmp_path / "signed" / cases["good"].name
    shutil.copytree(cases["good"], bundle, ignore=shutil.ignore_patterns("*.tar.gz"))
    wrong = run_cli("edge", "bundle", "--bundle", str(bundle), "--arch", "x86_64",
                    "--trust", str(keys["other.pub"]), timeout=900)
    assert wrong.returncode == 1 and "is signed by another key" in wrong.stderr
    packed = run_cli("edge", "bundle", "--bundle", str(bundle), "--arch", "x86_64",
                     "--trust", str(keys["trusted.pub"]), timeout=900)
    assert packed.returncode == 0, packed.stderr
    entry = json.loads((bundle / "manifest.json").read_text())["packages"]["edge_x86_64"]
    top = emulate.unpack(bundle / entry["path"], tmp_path)
    prefix = tmp_path / "opt"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    installed = subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(prefix),
                                "--no-link"], capture_output=True, text=True, timeout=600,
                               env={**env, "PYTHON": sys.executable, "PIP_NO_INDEX": "1"})
    assert installed.returncode == 0, installed.stderr
    assert "signature: OK" in installed.stdout and "checked with openssl" in installed.stdout
    assert (prefix / "trust.pub").read_bytes() == keys["trusted.pub"].read_bytes()

    flip_signature_byte(prefix / "bundle")
    run = subprocess.run([str(prefix / "venv" / "bin" / "mpg-edge"), "predict"],
                         input='{"cylinders": 4}\n', capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 1 and run.stdout == "" and "bad signature" in run.stderr
