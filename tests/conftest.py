"""Shared fixtures: one bundle per test session, built by the real pipeline, shared by all tests.

Set MPGPACK_TEST_BUNDLE=DIR to reuse an existing bundle while iterating on one target's tests.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


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
    import json
    return json.loads((bundle_dir / "manifest.json").read_text())


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    """A private copy of the session bundle, for tests that tamper with it."""
    import shutil
    dst = tmp_path / bundle_dir.name
    shutil.copytree(bundle_dir, dst)
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Runs the installed `mpgpack` console script as a user would."""
    return subprocess.run([str(VENV_BIN / "mpgpack"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=kw.pop("cwd", REPO), **kw)


# The session's S3-compatible server (SeaweedFS on 127.0.0.1), shared by the S3 and DAG tests;
# each test keeps to its own key prefix in the bucket.
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
