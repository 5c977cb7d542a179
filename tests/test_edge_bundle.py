"""The edge tarballs: what `mpgpack edge bundle` writes, the offline install on this machine
(x86_64), and the emulated Raspberry Pi check (aarch64 under qemu-user), all real: real pip
wheels, the tarball's own install.sh, the installed runner on LiteRT.

The first run downloads the wheels (~70 MB, cached in ~/.cache/mpgpack/wheels) and builds the
aarch64 userland (cached in ~/.cache/mpgpack/aarch64); later runs need no network.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from mpgpack.core.bundle import open_bundle, sha256_file
from mpgpack.targets.edge import emulate
from mpgpack.core.runtimes import LiteRTRunner
from tests.helpers import run_cli

FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
            "origin"]
TOP_FILES = {"README.md", "SHA256SUMS", "TARGET", "install.sh", "mpg-edge.path",
             "mpg-edge.service", "bundle/golden.json", "bundle/manifest.json",
             "bundle/model.tflite"}
# Any attempt to reach the network during an "offline" install fails fast on this dead proxy.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}


@pytest.fixture(scope="module")
def edge_bundle(bundle_dir, tmp_path_factory) -> Path:
    """A private copy of the session bundle with both edge tarballs packed into it."""
    dst = tmp_path_factory.mktemp("edge") / bundle_dir.name
    shutil.copytree(bundle_dir, dst, ignore=shutil.ignore_patterns("*.tar.gz"))
    proc = run_cli("edge", "bundle", "--bundle", str(dst), timeout=900)
    assert proc.returncode == 0, proc.stderr
    return dst


@pytest.fixture(scope="module")
def golden(edge_bundle):
    return open_bundle(edge_bundle).golden()


@pytest.fixture(scope="module")
def host_litert(edge_bundle, golden) -> np.ndarray:
    return LiteRTRunner(open_bundle(edge_bundle).artifact("tflite_float32")).predict(golden.X)


def tarball(bundle: Path, arch: str) -> Path:
    return bundle / json.loads((bundle / "manifest.json").read_text())["packages"][f"edge_{arch}"]["path"]


def offline_env(**extra) -> dict:
    return {**os.environ, **OFFLINE, **extra}


@pytest.mark.parametrize("arch, tag", [("aarch64", "aarch64"), ("x86_64", "x86_64")])
def test_tarball_holds_runner_model_and_wheels_for_its_machine(edge_bundle, arch, tag):
    manifest = json.loads((edge_bundle / "manifest.json").read_text())
    entry = manifest["packages"][f"edge_{arch}"]
    path = edge_bundle / entry["path"]
    assert path.name == f"mpg-edge-{manifest['model']['version']}-{arch}.tar.gz"
    assert entry["bytes"] == path.stat().st_size and entry["sha256"] == sha256_file(path)
    with tarfile.open(path) as tar:
        top = f"mpg-edge-{manifest['model']['version']}-{arch}/"
        names = {m.name[len(top):] for m in tar.getmembers() if m.isfile()}
        files = {n: tar.extractfile(top + n).read() for n in ("TARGET", "SHA256SUMS",
                                                              "bundle/model.tflite")}
    assert TOP_FILES <= names
    wheels = {n.split("/")[1] for n in names if n.startswith("wheels/")}
    assert names == TOP_FILES | {f"wheels/{w}" for w in wheels}
    dists = {w.split("-")[0].lower() for w in wheels}
    assert {"numpy", "ai_edge_litert", "mpg_edge", "pip"} <= dists
    assert not dists & {"tensorflow", "onnxruntime", "scikit_learn", "pandas", "onnx", "keras"}
    binary = [w for w in wheels if not w.endswith("-none-any.whl")]
    assert binary and all(w.endswith(f"_{tag}.whl") for w in binary), binary
    assert any(w.startswith("numpy-2.1.3-cp311") for w in wheels)
    assert any(w.startswith("ai_edge_litert-2.3.0-cp311") for w in wheels)
    assert files["TARGET"].decode().split() == [arch, "cp311"]
    sums = dict(reversed(l.split("  ", 1)) for l in files["SHA256SUMS"].decode().splitlines())
    assert set(sums) == names - {"SHA256SUMS"}
    assert manifest["artifacts"]["tflite_float32"]["sha256"] == sums["bundle/model.tflite"]


def test_packing_again_is_cached_and_gives_the_same_bytes(edge_bundle):
    before = {a: sha256_file(tarball(edge_bundle, a)) for a in ("aarch64", "x86_64")}
    started = time.perf_counter()
    proc = run_cli("edge", "bundle", "--bundle", str(edge_bundle), timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "downloading" not in proc.stderr                 # wheels came from the cache
    assert {a: sha256_file(tarball(edge_bundle, a)) for a in before} == before
    print(f"repack of both tarballs: {time.perf_counter() - started:.1f} s")


def test_offline_install_and_run_on_this_machine(edge_bundle, golden, host_litert, tmp_path):
    top = emulate.unpack(tarball(edge_bundle, "x86_64"), tmp_path)
    prefix = tmp_path / "opt"
    python = shutil.which("python3.11") or sys.executable
    proc = subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(prefix), "--no-link"],
                          capture_output=True, text=True, timeout=600,
                          env=offline_env(PYTHON=python))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: OK" in proc.stdout and "runner files match their install record" in proc.stdout

    venv = prefix / "venv" / "bin"
    # The venv holds the runner, numpy, LiteRT and their small dependencies: no TensorFlow.
    freeze = subprocess.run([str(venv / "python"), "-c", "import importlib.metadata as m; "
                             "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
                             .replace("import importlib", "import json, importlib")],
                            capture_output=True, text=True)
    installed = {n.lower().replace("_", "-") for n in json.loads(freeze.stdout)}
    assert {"mpg-edge", "numpy", "ai-edge-litert"} <= installed
    assert not installed & {"tensorflow", "onnxruntime", "scikit-learn", "pandas", "pip"}

    csv = emulate.write_golden_csv(golden.X, FEATURES, tmp_path / "golden.csv")
    run = subprocess.run([str(venv / "mpg-edge"), "predict", "--input", str(csv)],
                         capture_output=True, text=True, timeout=120, env=offline_env())
    assert run.returncode == 0, run.stderr
    pred = emulate.read_predictions_csv(run.stdout)
    assert np.abs(pred - host_litert).max() <= 1e-6
    assert np.abs(pred.astype(np.float64) - golden.expected).max() <= golden.tolerance

    # The systemd units as install.sh --service writes them: systemd itself finds no fault
    # (unknown keys and bad values only warn, so the output must be empty too).
    units = tmp_path / "units"
    units.mkdir()
    for unit in ("mpg-edge.service", "mpg-edge.path"):
        (units / unit).write_text((top / unit).read_text().replace("@PREFIX@", str(prefix)))
    checked = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(units.iterdir()))],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stderr

    # An installed runner file changed after the install: verify names it.
    device_py = next(prefix.glob("venv/lib/python3.*/site-packages/mpgpack/targets/edge/device.py"))
    device_py.write_text(device_py.read_text() + "\n# changed\n")
    run = subprocess.run([str(venv / "mpg-edge"), "verify"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "mpgpack/targets/edge/device.py does not match its sha256" in run.stderr


def test_install_refuses_a_changed_file_before_touching_anything(edge_bundle, tmp_path):
    top = emulate.unpack(tarball(edge_bundle, "x86_64"), tmp_path)
    model = top / "bundle" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    proc = subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(tmp_path / "opt"),
                           "--no-link"], capture_output=True, text=True, timeout=120,
                          env=offline_env(PYTHON=shutil.which("python3.11") or sys.executable))
    assert proc.returncode == 1
    assert "bundle/model.tflite: FAILED" in proc.stdout + proc.stderr
    assert "differ from SHA256SUMS" in proc.stderr
    assert not (tmp_path / "opt").exists()


def test_install_refuses_the_wrong_machine(edge_bundle, tmp_path):
    top = emulate.unpack(tarball(edge_bundle, "aarch64"), tmp_path)
    proc = subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(tmp_path / "opt"),
                           "--no-link"], capture_output=True, text=True, timeout=120,
                          env=offline_env(PYTHON=shutil.which("python3.11") or sys.executable))
    assert proc.returncode == 1
    assert "these wheels are for aarch64 cp311, but" in proc.stderr and "x86_64 cp311" in proc.stderr


def test_emulated_raspberry_pi_installs_offline_and_matches(edge_bundle, golden, host_litert,
                                                            tmp_path):
    """aarch64 Debian 12 + Python 3.11 under qemu-user: install.sh offline, verify, predict."""
    started = time.perf_counter()
    userland = emulate.ensure_userland()
    top = emulate.unpack(tarball(edge_bundle, "aarch64"), tmp_path)
    prefix = tmp_path / "opt"
    proc = subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(prefix), "--no-link"],
                          capture_output=True, text=True, timeout=900,
                          env={**emulate.emulated_env(userland), **OFFLINE})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "on aarch64" in proc.stdout and "verify: OK" in proc.stdout

    # install.sh ended with `mpg-edge verify` on the emulated device: sha256s + golden vectors
    assert "python 3.11" in proc.stdout and "on aarch64" in proc.stdout
    assert float(proc.stdout.split("max abs error ")[1].split()[0]) <= golden.tolerance

    csv = emulate.write_golden_csv(golden.X, FEATURES, tmp_path / "golden.csv")
    run = emulate.run_runner(prefix, "predict", "--input", str(csv), userland=userland,
                             env=offline_env())
    assert run.returncode == 0, run.stderr
    pred = emulate.read_predictions_csv(run.stdout)
    vs_host = float(np.abs(pred - host_litert).max())
    vs_reference = float(np.abs(pred.astype(np.float64) - golden.expected).max())
    assert vs_host <= 1e-6
    assert vs_reference <= golden.tolerance

    # JSON lines on stdin, and a bad row, under emulation too
    stdin = json.dumps(dict(zip(FEATURES, [4, 97, None, 2130, 14.5, 71, 3]))) + "\n[4, 97]\n"
    run = emulate.run_runner(prefix, "predict", userland=userland, input=stdin, env=offline_env())
    assert run.returncode == 3 and "line 2: expected 7 values" in run.stderr
    assert json.loads(run.stdout)["line"] == 1
    print(f"emulated aarch64: max |aarch64 - x86_64 LiteRT| = {vs_host:.3g}, "
          f"max |aarch64 - reference| = {vs_reference:.3g}, "
          f"{time.perf_counter() - started:.0f} s")


def test_edge_command_help_and_errors(tmp_path):
    helped = run_cli("edge", "--help")
    assert helped.returncode == 0
    assert all(c in helped.stdout for c in ("bundle", "userland", "emulate"))
    proc = run_cli("edge", "bundle", "--bundle", str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "neither a bundle" in lines[0]
    proc = run_cli("edge", "bundle", "--arch", "sparc")
    assert proc.returncode == 2 and "invalid choice: 'sparc'" in proc.stderr
