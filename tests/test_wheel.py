"""The wheel works outside the checkout: built once per session with `python -m build`, then
installed with one extra at a time into clean venvs far from the checkout (tests/clean_venv.py).

All marked slow (`pytest -m "not slow"` leaves them out); the `build` extra's run installs
TensorFlow (~1-3 min from a local index) and builds a bundle (~30 s).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mpgpack import __version__
from tests.clean_venv import TOP_LEVEL, CleanVenv, make_venv, mpgpack_serve
from tests.helpers import REPO
from tests.helpers import post_json

pytestmark = pytest.mark.slow

# Files each extra needs at run time, beside the Python modules.
DATA_FILES = [
    "mpgpack/data/auto-mpg.data", "mpgpack/data/README.md",                      # build
    "mpgpack/targets/web/package.json", "mpgpack/targets/web/package-lock.json",
    "mpgpack/targets/web/.npmrc", "mpgpack/targets/web/build.mjs",
    "mpgpack/targets/web/node_predict.mjs", "mpgpack/targets/web/src/index.html",
    "mpgpack/targets/web/src/sw.js", "mpgpack/targets/web/src/js/main.js",
    "mpgpack/targets/web/src/js/tfjs/graph_ops.json",
    "mpgpack/targets/edge/README.md", "mpgpack/targets/edge/device-constraints.txt",  # edge
    "mpgpack/targets/edge/device_files/install.sh",
    "mpgpack/targets/edge/device_files/mpg-edge.service",
    "mpgpack/targets/edge/device_files/mpg-edge.path",
]
CAR = {"cylinders": 4, "displacement": 97.0, "horsepower": None, "weight": 2130.0,
       "acceleration": 14.5, "model_year": 70, "origin": 3}


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked or new, not ignored): no node_modules, no dist/,
    and the build's egg-info lands in the copy, not in the checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, Path]:
    """{"wheel": ..., "sdist": ...} built by `python -m build` from a copy of the sources."""
    src = _source_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dists")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"wheel": next(out.glob("mpgpack-*.whl")), "sdist": next(out.glob("mpgpack-*.tar.gz"))}


def _venv_with(tmp_path_factory, dists, extra: str) -> CleanVenv:
    venv = make_venv(tmp_path_factory.mktemp(f"venv-{extra}"))
    venv.pip_install(f"{dists['wheel']}[{extra}]")
    assert venv.top_level_entries() == TOP_LEVEL
    return venv


@pytest.fixture(scope="session")
def api_venv(tmp_path_factory, dists) -> CleanVenv:
    return _venv_with(tmp_path_factory, dists, "api")


def test_wheel_holds_one_package_and_its_data_and_no_npm_packages(dists):
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    assert {n.split("/")[0] for n in names} == TOP_LEVEL
    assert not [n for n in names if "node_modules" in n or "__pycache__" in n]
    assert set(DATA_FILES) <= set(names)
    assert f"mpgpack-{__version__}.dist-info/licenses/LICENSE" in names
    meta = zipfile.ZipFile(dists["wheel"]).read(f"mpgpack-{__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta and "Project-URL: " in meta
    points = zipfile.ZipFile(dists["wheel"]).read(f"mpgpack-{__version__}.dist-info/entry_points.txt").decode()
    assert "mpg-edge = mpgpack.targets.edge.device:main" in points
    with tarfile.open(dists["sdist"]) as sdist:
        in_sdist = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert set(DATA_FILES) | {"LICENSE", "constraints.txt"} <= in_sdist
    assert not [n for n in in_sdist if "node_modules" in n]


def test_api_extra_serves_a_prediction(api_venv, bundle_dir, tmp_path):
    assert api_venv.run("mpgpack", "--help").returncode == 0
    with mpgpack_serve(api_venv, bundle_dir, tmp_path / "serve.log") as srv:
        status, body = post_json(srv.url + "/predict", CAR)
        assert status == 200 and 10 < body["predictions"][0]["mpg"] < 50, body
    probe = api_venv.run("python", "-c", "import mpgpack, sklearn")
    assert "No module named 'sklearn'" in probe.stderr       # really without the build stack


def test_api_extra_alone_names_the_build_extra(api_venv):
    proc = api_venv.run("mpgpack", "build", "--out", "dist")
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("mpgpack build needs the build extra: pip install 'mpgpack[build]'")


def test_edge_extra_runs_the_device_runner_on_golden_cars(tmp_path_factory, dists, bundle_dir):
    from mpgpack.core.bundle import open_bundle
    from mpgpack.targets.edge.emulate import read_predictions_csv, write_golden_csv
    venv = _venv_with(tmp_path_factory, dists, "edge")
    bundle = open_bundle(bundle_dir)
    golden = bundle.golden()
    csv = write_golden_csv(golden.X, [f["name"] for f in bundle.features], venv.cwd / "golden.csv")
    proc = venv.run("mpg-edge", "predict", "--input", str(csv), "--bundle", str(bundle_dir))
    assert proc.returncode == 0, proc.stderr
    predicted = read_predictions_csv(proc.stdout).astype(np.float64)
    assert predicted.shape == golden.expected.shape
    assert np.abs(predicted - golden.expected).max() <= golden.tolerance


def test_build_extra_builds_a_bundle_from_the_shipped_data(tmp_path_factory, dists):
    venv = _venv_with(tmp_path_factory, dists, "build")
    cache = venv.cwd.parent / "cache"      # npm packages installed here on first use
    proc = venv.run("mpgpack", "build", "--out", "dist", timeout=900, MPGPACK_CACHE=str(cache))
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = next((venv.cwd / "dist").glob("mpg-*/manifest.json")).parent
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["data"]["source"] == "mpgpack/data/auto-mpg.data"
    assert manifest["data"]["rows"] == 398
    assert manifest["parity"]["tfjs"]["passed"], manifest["parity"]["tfjs"]
    assert (bundle / "web" / "index.html").is_file() and list(cache.glob("npm/web-*/node_modules"))
    verify = venv.run("mpgpack", "verify", str(bundle))
    assert verify.returncode == 0 and "verify: OK" in verify.stdout, verify.stdout + verify.stderr
