"""Shared fixtures and the test tiers.

Fixtures: one bundle per test session, built by the real pipeline (set MPGPACK_TEST_BUNDLE=DIR to
reuse an existing bundle), and a small hand-made manifest (tests/fixtures/) for the tests that only
read a schema or training statistics. Helpers shared by test files are in tests/helpers.py.

Tiers: every test that needs the built bundle or TensorFlow, or fits models for seconds, is marked
`slow`; tests that need Chromium, qemu, SeaweedFS, Airflow, a load generator or a clean-venv install
carry that marker too (pyproject.toml lists them). The marks are given here, from the fixtures a
test uses and from the lists below, so test files need not repeat them. `make test-fast` runs the
rest.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import DATA, REPO

SMALL_BUNDLE = REPO / "tests" / "fixtures" / "mpg-manifest-only"

# A test using one of these fixtures (directly or through another fixture) gets the mark.
MARK_BY_FIXTURE = {
    "bundle_dir": "slow", "manifest": "slow", "bundle_copy": "slow",   # the built bundle
    "iris_bundle": "slow", "clinic_bundle": "slow",                    # bring-your-own-model
    "s3_server": "s3",
}
# Marks by test file, or by "file::test" for single tests, for what no fixture shows.
MARK_BY_NODE = {
    "test_lowering.py": ["slow"],                                   # TensorFlow itself
    # fits every family's first candidates twice (serial and parallel): seconds of scikit-learn
    "test_tune.py": ["slow"],
    "test_byom_tables.py": ["slow"],                                # three builds
    "test_byom_tables.py::test_the_page_answers_the_golden_rows": ["browser"],
    "test_web_browser.py": ["browser"],                             # Chromium via Playwright
    "test_edge_bundle.py::test_emulated_raspberry_pi_installs_offline_and_matches": ["emulated"],
    "test_edge_bundle.py::test_offline_install_and_run_on_this_machine": ["wheel"],
    "test_dag.py": ["airflow"],
    "test_api_load.py": ["load"],                                   # wrk
    "test_bench.py": ["load"],                                      # `mpgpack bench --quick`
}


# Files of slow tests only (marked above) that import scikit-learn when collected, which takes
# seconds: a run that leaves out the slow tier does not collect them at all.
SLOW_TO_COLLECT = {"test_lowering.py"}


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in SLOW_TO_COLLECT and _leaves_out(config, "slow"):
        return True
    return None


def _leaves_out(config, marker: str) -> bool:
    """Whether the run's -m expression deselects a test marked only with `marker`."""
    expr = config.getoption("markexpr")
    if not expr:
        return False
    try:   # pytest's own evaluator of -m expressions (not public API: on a change, collect)
        from _pytest.mark.expression import Expression
        return not Expression.compile(expr).evaluate(lambda name, **kw: name == marker)
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = {MARK_BY_FIXTURE[f] for f in item.fixturenames if f in MARK_BY_FIXTURE}
        file, _, name = item.nodeid.partition("::")
        base = f"{Path(file).name}::{name.split('[')[0]}"
        marks.update(MARK_BY_NODE.get(Path(file).name, []))
        marks.update(MARK_BY_NODE.get(base, []))
        for mark in sorted(marks):
            item.add_marker(mark)


# -- the built bundle (slow tier) -------------------------------------------------------------
@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    reuse = os.environ.get("MPGPACK_TEST_BUNDLE")
    if reuse:
        from mpgpack.core.bundle import resolve_bundle_path
        return resolve_bundle_path(reuse)
    from mpgpack.export.build import build_bundle
    return build_bundle(out=tmp_path_factory.mktemp("dist"), seed=0)


@pytest.fixture(scope="session")
def manifest(bundle_dir) -> dict:
    return json.loads((bundle_dir / "manifest.json").read_text())


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    """A private copy of the session bundle, for tests that tamper with it."""
    import shutil
    dst = tmp_path / bundle_dir.name
    shutil.copytree(bundle_dir, dst)
    return dst


# -- bring your own model: tables scikit-learn ships, built once per session (slow tier) --------
@pytest.fixture(scope="session")
def example_tables(tmp_path_factory) -> dict[str, Path]:
    """python -m mpgpack.data.examples: diabetes, iris, wine, breast_cancer, clinic (.csv)."""
    from mpgpack.data.examples import write_examples
    return write_examples(tmp_path_factory.mktemp("tables"))


def _build_table(tmp_path_factory, data: Path, target: str, model: str) -> Path:
    from mpgpack.export.build import BuildRequest, build_bundle
    return build_bundle(out=tmp_path_factory.mktemp(data.stem),
                        request=BuildRequest(data=data, target=target, model=model))


@pytest.fixture(scope="session")
def iris_bundle(tmp_path_factory, example_tables) -> Path:
    """A classifier (3 classes, string labels), the family chosen by the auto search."""
    return _build_table(tmp_path_factory, example_tables["iris"], "species", "auto")


@pytest.fixture(scope="session")
def clinic_bundle(tmp_path_factory, example_tables) -> Path:
    """A regressor with string categories and missing values, as gradient-boosted trees: the
    tree lowering through every target."""
    return _build_table(tmp_path_factory, example_tables["clinic"], "progression", "gbm")


# -- the small hand-made manifest (fast tier) -------------------------------------------------
@pytest.fixture(scope="session")
def small_bundle_dir() -> Path:
    """A folder holding only manifest.json (tests/fixtures/README.md): opens as a bundle, has no
    artifacts. Read-only: copy it to change it."""
    return SMALL_BUNDLE


@pytest.fixture
def small_manifest() -> dict:
    """The small manifest as a fresh dict for each test (a test may change it)."""
    return json.loads((SMALL_BUNDLE / "manifest.json").read_text())


@pytest.fixture(scope="session")
def mpg_X():
    """The shipped data's feature matrix (float32, NaN for a missing horsepower)."""
    import numpy as np

    from mpgpack.train.data import load_dataset
    return load_dataset(DATA).X.astype(np.float32)


# -- the session's S3-compatible server (s3 tier) ---------------------------------------------
# SeaweedFS on 127.0.0.1, shared by the S3 and DAG tests; each test keeps to its own key prefix.
ACCESS_KEY, SECRET_KEY = "mpgpack-test-key", "mpgpack-test-secret"
BUCKET = "lake"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from mpgpack.storage.seaweed import SeaweedS3
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"), ACCESS_KEY, SECRET_KEY).start()
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, tmp_path, monkeypatch) -> dict:
    """The standard AWS variables pointing at the test server, for this process and children."""
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
           "MPGPACK_CACHE": str(tmp_path / "cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return {**os.environ, **env}
