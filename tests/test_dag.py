"""The retraining DAG, run for real: Airflow 3 from its own venv (.venv-airflow), one
in-process `dag.test()` run per test against a SQLite metadata DB (`airflow db migrate` first),
AIRFLOW_HOME in a temp folder, data and registry in a real S3 server or a local folder.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ACCESS_KEY, BUCKET, SECRET_KEY
from tests.helpers import REPO, run_cli
from tests.test_s3 import assert_predicts_golden, served, served_version

AIRFLOW_VENV = REPO / ".venv-airflow" / "bin"
DAG_FILE = REPO / "dags" / "mpg_retrain.py"
ADMIN_TOKEN = "dag-test-admin-token"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict:
    assert (AIRFLOW_VENV / "airflow").is_file(), \
        "the Airflow environment is missing: bash scripts/setup_airflow.sh"
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "AWS_", "MPGPACK_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # no usage reporting to outside addresses
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true",
        "PATH": f"{AIRFLOW_VENV}:{env.get('PATH', '')}",
    })
    proc = subprocess.run([str(AIRFLOW_VENV / "airflow"), "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (home / "airflow.db").is_file()        # the SQLite metadata database
    return env


def _run_dag(env: dict, log_path: Path) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run([str(AIRFLOW_VENV / "python"), str(DAG_FILE)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, timeout=1200, cwd=REPO)
    seconds = time.perf_counter() - t0
    return proc.returncode, log_path.read_text(errors="replace"), seconds


def _task_states(log: str) -> str:
    return "\n".join(line for line in log.splitlines()
                     if "mpg_retrain.py" in line or "DagRun Finished" in line)[-4000:]


def _write_csv(path: Path, rows: list[list], header: list[str]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _shipped_rows() -> tuple[list[str], list[list]]:
    from mpgpack.train.data import load_dataset
    from mpgpack.train.schema import FEATURE_NAMES
    ds = load_dataset(REPO / "mpgpack" / "data" / "auto-mpg.data")
    rows = [[f"{y:g}", *("" if v != v else f"{v:g}" for v in x)] for x, y in zip(ds.X, ds.y)]
    return ["mpg", *FEATURE_NAMES], rows


def test_dag_retrains_on_new_s3_data_and_publishes_a_version_that_serves(
        airflow_env, s3_server, bundle_dir, manifest, tmp_path, monkeypatch):
    from mpgpack.storage.s3_registry import publish
    aws = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for k, v in aws.items():
        monkeypatch.setenv(k, v)
    s3 = s3_server.client()
    registry = f"s3://{BUCKET}/models/mpg/"
    publish(bundle_dir, registry)                      # what is serving today
    old = f"mpg-{manifest['model']['version']}"

    # The lake's landing prefix: last month's file (today's training data) and a new one.
    s3.put_object(Bucket=BUCKET, Key="incoming/2026-01-auto-mpg.data",
                  Body=(REPO / "mpgpack" / "data" / "auto-mpg.data").read_bytes())
    header, rows = _shipped_rows()
    new_csv = _write_csv(tmp_path / "2026-02-auto-mpg.csv", rows[: len(rows) - 20], header)
    s3.put_object(Bucket=BUCKET, Key="incoming/2026-02-auto-mpg.csv", Body=new_csv.read_bytes())

    env = {**airflow_env, **aws, "MPGPACK_DAG_DATA": f"s3://{BUCKET}/incoming/",
           "MPGPACK_DAG_REGISTRY": registry, "MPGPACK_DAG_WORK": str(tmp_path / "work"),
           "MPGPACK_CACHE": str(tmp_path / "cache")}
    # The API serves today's version straight from S3 while the DAG runs; the DAG asks it to
    # reload (POST /admin/reload) and it must then serve the new version.
    api_env = {**os.environ, **aws, "MPGPACK_CACHE": str(tmp_path / "api-cache"),
               "MPGPACK_ADMIN_TOKEN": ADMIN_TOKEN}
    with served(f"{registry}current", api_env) as (base, _):
        assert served_version(base) == manifest["model"]["version"]
        env.update({"MPGPACK_API_URL": base, "MPGPACK_ADMIN_TOKEN": ADMIN_TOKEN})
        rc, log, seconds = _run_dag(env, tmp_path / "dag.log")
        print(f"DAG run (S3 data -> build -> verify -> S3 publish): {seconds:.1f} s")
        assert rc == 0, _task_states(log) + log[-4000:]
        assert f"new data: s3://{BUCKET}/incoming/2026-02-auto-mpg.csv" in log

        current = s3.get_object(Bucket=BUCKET, Key="models/mpg/current")["Body"].read().decode()
        new = current.split("\n")[0]
        assert new != old and new.startswith("mpg-")
        assert f"-> {new} (was {old})" in log

        # the published version is the one trained on the new file, and it verifies from S3
        proc = run_cli("verify", f"{registry}current",
                       env={**os.environ, **aws, "MPGPACK_CACHE": str(tmp_path / "verify-cache")})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "verify: OK" in proc.stdout
        fetched = tmp_path / "verify-cache" / "s3" / BUCKET / "models" / "mpg" / new
        published = json.loads((fetched / "manifest.json").read_text())
        assert published["data"]["sha256"] == hashlib.sha256(new_csv.read_bytes()).hexdigest()
        assert published["data"]["rows"] == len(rows) - 20
        assert f"{base}/admin/reload: " in log
        assert served_version(base) == published["model"]["version"]
        assert_predicts_golden(base, fetched)

    # Run again: the newest file is now the current version's data, so nothing new: skipped.
    rc, log, _ = _run_dag(env, tmp_path / "dag-again.log")
    assert rc == 0, _task_states(log)
    assert "is the current version's training data" in log and "nothing new" in log
    assert s3.get_object(Bucket=BUCKET, Key="models/mpg/current")["Body"].read().decode() == current


def test_dag_with_bad_data_fails_closed_and_publishes_nothing(airflow_env, bundle_dir, tmp_path):
    from mpgpack.core.registry import LocalRegistry
    registry = tmp_path / "registry"
    LocalRegistry(registry).publish(bundle_dir)
    before = sorted(p.name for p in registry.iterdir())
    pointer = (registry / "CURRENT").read_text()

    header, rows = _shipped_rows()
    rows[41][header.index("horsepower")] = "fast"        # line 43 of the file
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _write_csv(incoming / "bad.csv", rows, header)

    env = {**airflow_env, "MPGPACK_DAG_DATA": str(incoming), "MPGPACK_DAG_REGISTRY": str(registry),
           "MPGPACK_DAG_WORK": str(tmp_path / "work")}
    rc, log, seconds = _run_dag(env, tmp_path / "dag.log")
    print(f"DAG run with bad data (stops in validate): {seconds:.1f} s")
    assert rc == 1, _task_states(log)
    assert ("validate failed, nothing published: " f"{incoming / 'bad.csv'}:") in log
    assert "bad.csv:43: horsepower: 'fast' is not a number" in log
    assert "[DAG TEST] starting task_id=build" not in log
    assert "[DAG TEST] starting task_id=publish" not in log
    assert sorted(p.name for p in registry.iterdir()) == before
    assert (registry / "CURRENT").read_text() == pointer
    assert not list((tmp_path / "work").rglob("manifest.json"))
