"""Daily retraining of the Auto MPG model (Airflow 3, TaskFlow API).

    find_new_data -> validate -> build -> verify_parity -> publish -> reload_api

It fails closed: bad data stops it in `validate`, a parity failure in `build` or
`verify_parity`, both before anything is published, with the reason in that task's log.
Data that is already the current version's training data skips the run (nothing new).

Settings (DAG params, defaulted from the environment of the Airflow worker):
  data      MPGPACK_DAG_DATA       folder or s3://BUCKET/PREFIX/ holding data files (*.csv, *.data);
                                   the newest one is the candidate
  registry  MPGPACK_DAG_REGISTRY   where releases go: s3://BUCKET/PREFIX/ or a local registry
                                   folder (default: dist/ of this checkout)
  api_url   MPGPACK_API_URL        a running `mpgpack serve` to POST /admin/reload to, with the
                                   token in MPGPACK_ADMIN_TOKEN; empty: skipped with a note
  seed      0
S3 credentials and endpoint come from the standard AWS environment (AWS_ENDPOINT_URL, ...).

Airflow lives in its own venv (.venv-airflow, scripts/setup_airflow.sh) with mpgpack[build,s3]
installed into it; the heavy imports happen inside the tasks, so parsing this file is cheap.
Run once by hand (no scheduler; SQLite metadata DB after `airflow db migrate`):
    .venv-airflow/bin/python dags/mpg_retrain.py
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pendulum
from airflow.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk import Param, dag, get_current_context, task

REPO = Path(__file__).resolve().parent.parent
DATA_SUFFIXES = (".csv", ".data")
log = logging.getLogger("mpgpack.dag")


def _fail(step: str, reason: str) -> AirflowFailException:
    """One clear line in the task log; AirflowFailException means: no retry, stop here."""
    message = f"{step} failed, nothing published: {reason}"
    log.error(message)
    return AirflowFailException(message)


def _work_dir() -> Path:
    ctx = get_current_context()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in ctx["run_id"])
    root = Path(os.environ.get("MPGPACK_DAG_WORK") or Path(tempfile.gettempdir()) / "mpgpack-dag")
    path = root / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def _newest_local(folder: Path) -> Path | None:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES]
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name)) if files else None


def _newest_s3(prefix: str) -> str | None:
    from mpgpack.storage.s3 import make_client, parse_s3_url, s3_errors
    url = parse_s3_url(prefix if prefix.endswith("/") else prefix + "/")
    client = make_client()
    objects = []
    with s3_errors(client, url, "listing"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=url.bucket,
                                                                     Prefix=url.key):
            objects += [o for o in page.get("Contents", []) if o["Key"].endswith(DATA_SUFFIXES)]
    if not objects:
        return None
    newest = max(objects, key=lambda o: (o["LastModified"], o["Key"]))
    return f"s3://{url.bucket}/{newest['Key']}"


def _current_data_sha256(registry: str) -> str | None:
    """The training-data sha256 of the registry's current version (None when it has none)."""
    from mpgpack.core.errors import UserError
    from mpgpack.storage.s3 import resolve_bundle_arg
    from mpgpack.core.bundle import open_bundle
    try:
        return open_bundle(resolve_bundle_arg(registry)).manifest["data"]["sha256"]
    except UserError as exc:
        log.info("the registry has no current version yet (%s)", exc)
        return None


def _publish(bundle: str, registry: str) -> dict:
    """Into S3 (pointer written last) or a local registry folder (CURRENT renamed last): the
    same registry interface, so `mpgpack rollback --registry REGISTRY` undoes it."""
    from mpgpack.storage.registry import open_registry
    t0 = time.perf_counter()
    result = open_registry(registry).publish(bundle)
    log.info("published %s; %s -> %s (was %s)", result.location, result.pointer, result.name,
             result.previous)
    log.info("publish took %.1f s", time.perf_counter() - t0)
    return {"registry": registry, "bundle": result.name}


# The tasks, in the order the DAG runs them; each fails closed with one clear line.
@task
def find_new_data(params=None) -> dict:
    """The newest data file under `data`, copied into this run's work folder."""
    from mpgpack.core.errors import UserError
    from mpgpack.storage.s3 import download_data, is_s3
    from mpgpack.core.bundle import sha256_file

    source = (params or {}).get("data", "")
    if not source:
        raise AirflowSkipException("no data source configured (param `data` or "
                                   "MPGPACK_DAG_DATA); nothing to do")
    work = _work_dir()
    try:
        if is_s3(source):
            newest = _newest_s3(source)
            if newest is None:
                raise AirflowSkipException(f"no *.csv or *.data object under {source}")
            local = download_data(newest, work / "data")
        else:
            folder = Path(source)
            if not folder.is_dir():
                raise _fail("find_new_data", f"{folder} is not a folder")
            found = _newest_local(folder)
            if found is None:
                raise AirflowSkipException(f"no *.csv or *.data file in {folder}")
            newest, local = str(found), found
    except UserError as exc:
        raise _fail("find_new_data", str(exc)) from None
    sha = sha256_file(local)
    if sha == _current_data_sha256(params["registry"]):
        raise AirflowSkipException(f"{newest} is the current version's training data "
                                   f"(sha256 {sha[:12]}…); nothing new")
    log.info("new data: %s (sha256 %s)", newest, sha)
    return {"source": newest, "local": str(local), "sha256": sha}


@task
def validate(found: dict) -> dict:
    """Against the feature schema: the same loader and checks `mpgpack build` uses."""
    from mpgpack.core.errors import UserError
    from mpgpack.train.data import load_dataset
    try:
        ds = load_dataset(found["local"])
    except UserError as exc:
        raise _fail("validate", f"{found['source']}: {exc}") from None
    for note in ds.notes[:20]:
        log.info("data note: %s", note)
    log.info("%s: %d valid rows, %d notes", found["source"], len(ds), len(ds.notes))
    return {**found, "rows": len(ds)}


@task
def build(valid: dict, params=None) -> str:
    from mpgpack.export.build import build_bundle, summary
    from mpgpack.core.errors import UserError
    import json
    out = _work_dir() / "builds"
    try:
        bundle = build_bundle(Path(valid["local"]), out, int(params["seed"]))
    except UserError as exc:        # includes "parity failed, bundle not written"
        raise _fail("build", str(exc)) from None
    log.info("built %s\n%s", bundle, summary(json.loads((bundle / "manifest.json").read_text())))
    return str(bundle)


@task
def verify_parity(bundle: str) -> str:
    """Re-checks every sha256 and re-runs the golden set in onnxruntime and LiteRT."""
    from mpgpack.core.errors import UserError
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.verify import verify_bundle
    try:
        rows, ok = verify_bundle(open_bundle(bundle))
    except UserError as exc:
        raise _fail("verify_parity", str(exc)) from None
    for r in rows:
        log.info("%-16s %-15s max abs err %.2e  %s", r["artifact"], r["runtime"],
                 r["max_abs_error"], "pass" if r["passed"] else
                 ("FAIL" if r["gated"] else "recorded (quantized)"))
    if not ok:
        failed = [r["artifact"] for r in rows if r["gated"] and not r["passed"]]
        raise _fail("verify_parity", f"{', '.join(failed)} exceed the tolerance")
    return bundle


@task
def publish(bundle: str, params=None) -> dict:
    from mpgpack.core.errors import UserError
    try:
        return _publish(bundle, params["registry"])
    except UserError as exc:
        raise _fail("publish", f"{exc} (the registry's current version is unchanged)") from None


@task
def reload_api(published: dict, params=None) -> str:
    """Asks the running API to follow the registry's pointer to the new version."""
    import json
    import urllib.error
    import urllib.request
    api = (params.get("api_url") or "").rstrip("/")
    if not api:
        note = (f"no API URL configured (param api_url / MPGPACK_API_URL): not asking an "
                f"API to reload; {published['bundle']} is current in {published['registry']}")
        log.info(note)
        return note
    token = os.environ.get("MPGPACK_ADMIN_TOKEN", "")
    if not token:
        raise AirflowFailException("MPGPACK_ADMIN_TOKEN is not set; the API's "
                                   "/admin/reload needs it (the new version IS published)")
    req = urllib.request.Request(f"{api}/admin/reload", method="POST", data=b"{}",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        raise AirflowFailException(f"{api}/admin/reload answered {exc.code}: "
                                   f"{exc.read().decode(errors='replace')[:300]}") from None
    except OSError as exc:
        raise AirflowFailException(f"cannot reach {api}/admin/reload: {exc}") from None
    log.info("%s/admin/reload: %s", api, body[:500])
    try:
        return json.dumps(json.loads(body))
    except ValueError:
        return body[:500]


@dag(
    dag_id="mpg_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,          # two runs publishing at once could race on the pointer
    tags=["mpgpack"],
    # One retry for the unexpected; a known failure (bad data, parity, S3 refusing) raises
    # AirflowFailException, which is never retried: retrying cannot fix it.
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    params={
        "data": Param(os.environ.get("MPGPACK_DAG_DATA", ""), type="string",
                      description="folder or s3://BUCKET/PREFIX/ with the new data files"),
        "registry": Param(os.environ.get("MPGPACK_DAG_REGISTRY", str(REPO / "dist")),
                          type="string", description="s3://BUCKET/PREFIX/ or a registry folder"),
        "api_url": Param(os.environ.get("MPGPACK_API_URL", ""), type="string",
                         description="running API to reload (empty: skip)"),
        "seed": Param(0, type="integer", minimum=0),
    },
    doc_md=__doc__,
)
def mpg_retrain():
    bundle = verify_parity(build(validate(find_new_data())))
    reload_api(publish(bundle))


dag_object = mpg_retrain()


if __name__ == "__main__":
    # One in-process run (no scheduler), e.g. for the tests: exit code 0 only on success.
    started = time.perf_counter()
    run = dag_object.test()
    print(f"mpg_retrain: run {run.run_id} finished {run.state} in "
          f"{time.perf_counter() - started:.1f} s")
    sys.exit(0 if str(run.state) in ("success", "DagRunState.SUCCESS") else 1)
