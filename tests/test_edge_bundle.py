"""The edge tarballs: what `mpgpack edge bundle` writes, the offline install on this machine
(x86_64), and the emulated Raspberry Pi check (aarch64 under qemu-user), all real: real pip
wheels, the tarball's own install.sh, the installed runner on LiteRT.

The aarch64 tarball is checked on both Raspberry Pi OS releases it serves: the same file is
installed in an emulated Debian 12 "bookworm" (Python 3.11) and 13 "trixie" (Python 3.13).
The first run downloads the wheels (~140 MB, cached in ~/.cache/mpgpack/wheels) and builds the
aarch64 userlands (cached in ~/.cache/mpgpack/aarch64-<release>); later runs need no network.
"""
from __future__ import annotations

import glob
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
from mpgpack.targets.edge.pack import PYTHON_VERSIONS, RELEASE_PYTHONS
from tests.helpers import run_cli

FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
            "origin"]
TOP_FILES = {"README.md", "SHA256SUMS", "TARGET", "install.sh", "mpg-edge.path",
             "mpg-edge.service", "mpg-edge-follow.service", "mpg-edge-follow.timer", "bundle/golden.json", "bundle/manifest.json",
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


def host_python(version: str) -> str | None:
    """A CPython `version` on this machine (PATH, then pyenv's folders), or None."""
    candidates = [shutil.which(f"python{version}"),
                  *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))]
    if version == "3.11":
        candidates.append(sys.executable)
    for exe in filter(None, candidates):
        proc = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip() == version:
            return exe
    return None


def install_here(top: Path, prefix: Path, python: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(top / "install.sh"), "--prefix", str(prefix), "--no-link"],
                          capture_output=True, text=True, timeout=600,
                          env=offline_env(PYTHON=python))


@pytest.mark.parametrize("arch, tag", [("aarch64", "aarch64"), ("x86_64", "x86_64")])
def test_tarball_holds_runner_model_and_wheels_for_its_machine(edge_bundle, arch, tag):
    manifest = json.loads((edge_bundle / "manifest.json").read_text())
    entry = manifest["packages"][f"edge_{arch}"]
    path = edge_bundle / entry["path"]
    top = f"mpg-edge-{manifest['model']['version']}-{arch}-py311-py313"
    assert path.name == f"{top}.tar.gz" and entry["python"] == ["cp311", "cp313"]
    assert entry["bytes"] == path.stat().st_size and entry["sha256"] == sha256_file(path)
    with tarfile.open(path) as tar:
        top += "/"
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
    for abi in ("cp311", "cp313"):            # both Pythons' wheels, side by side
        assert any(w.startswith(f"numpy-2.1.3-{abi}-{abi}-") for w in wheels)
        assert any(w.startswith(f"ai_edge_litert-2.3.0-{abi}-{abi}-") for w in wheels)
    assert [w for w in wheels if w.startswith("mpg_edge-")] == ["mpg_edge-0.1.0-py3-none-any.whl"]
    assert files["TARGET"].decode().split() == [arch, "cp311", "cp313"]
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


@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_offline_install_and_run_on_this_machine(edge_bundle, golden, host_litert, tmp_path,
                                                 version):
    python = host_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    top = emulate.unpack(tarball(edge_bundle, "x86_64"), tmp_path)
    prefix = tmp_path / "opt"
    proc = install_here(top, prefix, python)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: OK" in proc.stdout and "runner files match their install record" in proc.stdout
    assert f"python {version}." in proc.stdout

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


def test_install_refuses_the_wrong_machine_in_one_line(edge_bundle, tmp_path):
    """The aarch64 tarball on this x86_64 host: refused first, one line, nothing written."""
    top = emulate.unpack(tarball(edge_bundle, "aarch64"), tmp_path)
    python = host_python("3.11")
    proc = install_here(top, tmp_path / "opt", python)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"install.sh: error: this tarball is for aarch64, but {python} runs on x86_64; needed: "
        f"a 64-bit ARM OS with Python 3.11 or 3.13 (Raspberry Pi OS 12 or 13, 64-bit)"]
    assert not (tmp_path / "opt").exists()


@pytest.mark.parametrize("version", ["3.12", "3.10"])
def test_install_refuses_another_python_in_one_line(edge_bundle, tmp_path, version):
    """The x86_64 tarball (for 3.11 and 3.13) with a real Python 3.12 / 3.10 of this host."""
    python = host_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    top = emulate.unpack(tarball(edge_bundle, "x86_64"), tmp_path)
    proc = install_here(top, tmp_path / "opt", python)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"install.sh: error: this tarball is for Python 3.11 or 3.13, but {python} is Python "
        f"{version}; needed: an x86_64 machine with Python 3.11 or 3.13"]
    assert not (tmp_path / "opt").exists()


@pytest.mark.parametrize("release", list(RELEASE_PYTHONS))
def test_emulated_raspberry_pi_installs_offline_and_matches(edge_bundle, golden, host_litert,
                                                            tmp_path, release):
    """The same aarch64 tarball on Raspberry Pi OS 12 and 13 (arm64 Debian + its Python, on an
    emulated Cortex-A72): its install.sh offline, verify on the device, the golden set.

    Held to the golden tolerance, not bit for bit: on the emulated Cortex-A72 LiteRT's XNNPACK
    picks other kernels than on x86, so the last float32 bits differ."""
    started = time.perf_counter()
    path = tarball(edge_bundle, "aarch64")
    check = emulate.check_release(path, release, golden, host_litert, FEATURES, tmp_path,
                                  env=OFFLINE)
    out = check.install.stdout
    assert "verify: OK" in out and "on aarch64" in out
    assert f"python {RELEASE_PYTHONS[release]}." in out
    # install.sh ended with `mpg-edge verify` on the emulated device: sha256s + golden vectors
    assert float(out.split("max abs error ")[1].split()[0]) <= golden.tolerance
    assert check.vs_reference <= golden.tolerance
    assert check.vs_host <= golden.tolerance

    # JSON lines on stdin, and a bad row, under emulation too
    stdin = json.dumps(dict(zip(FEATURES, [4, 97, None, 2130, 14.5, 71, 3]))) + "\n[4, 97]\n"
    run = emulate.run_runner(check.prefix, "predict", userland=check.userland, input=stdin,
                             env=offline_env())
    assert run.returncode == 3 and "line 2: expected 7 values" in run.stderr
    assert json.loads(run.stdout)["line"] == 1
    print(f"emulated {release} (Python {RELEASE_PYTHONS[release]}) from {path.name} "
          f"({path.stat().st_size / 1e6:.1f} MB): install {check.install_seconds:.0f} s, "
          f"installed {check.installed_bytes / 1e6:.0f} MB; golden max abs error vs reference "
          f"{check.vs_reference:.3g} MPG, vs x86_64 LiteRT {check.vs_host:.3g} MPG "
          f"(tolerance {golden.tolerance:g}); {time.perf_counter() - started:.0f} s in all")


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
    proc = run_cli("edge", "emulate", "--release", "buster")
    assert proc.returncode == 2 and "invalid choice: 'buster'" in proc.stderr
    proc = run_cli("edge", "userland", str(tmp_path / "u"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "mpgpack edge: error: a userland folder holds one release: give --release bookworm|trixie with DIR"]
