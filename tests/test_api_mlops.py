"""The MLOps loop over HTTP: a real `mpgpack serve` with the prediction log, the drift monitor and
zero-downtime reloads (POST /admin/reload, SIGHUP, `mpgpack rollback`), on 127.0.0.1.

One extra real build per module (version B, from a CSV with some rows changed, ~10 s); every
server test gets its own copy of that two-version registry.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from mpgpack.core.registry import LocalRegistry, set_current
from tests.helpers import running_server
from tests.test_registry_rollout import write_changed_csv
from tests.helpers import run_cli

TOKEN = "test-admin-token-7"
CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}
FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]


@pytest.fixture(scope="module")
def two_versions(bundle_dir, tmp_path_factory) -> dict:
    """A registry with A (the session bundle, published) and B (retrained on changed data),
    CURRENT = B, and each version's own answer for CAR (from ONNX Runtime directly)."""
    from mpgpack.export.build import build_bundle
    from mpgpack.core.bundle import open_bundle
    from mpgpack.core.runtimes import OnnxRunner
    root = tmp_path_factory.mktemp("mlops")
    dist = root / "dist"
    dist.mkdir()
    staging = dist / ".staging-a"
    shutil.copytree(bundle_dir, staging)
    a = LocalRegistry(dist).publish_staged(staging, bundle_dir.name).name
    data = root / "new.csv"
    write_changed_csv(data)
    b = build_bundle(data=data, out=dist, packers=[]).name
    X = np.array([[CAR[f] for f in FEATURES]], np.float32)
    answers, versions = {}, {}
    for name in (a, b):
        bundle = open_bundle(dist / name)
        versions[name] = bundle.version
        answers[bundle.version] = float(OnnxRunner(bundle.artifact("onnx")).predict(X)[0])
    assert versions[a] != versions[b] and abs(answers[versions[a]] - answers[versions[b]]) > 1e-3
    return {"dist": dist, "a": a, "b": b, "va": versions[a], "vb": versions[b], "answers": answers}


@pytest.fixture
def registry(two_versions, tmp_path) -> Path:
    """A private copy of the two-version registry (CURRENT = B)."""
    dist = tmp_path / "dist"
    shutil.copytree(two_versions["dist"], dist)
    set_current(dist, two_versions["b"])
    return dist


def server_env(**extra) -> dict:
    return {**os.environ, "MPGPACK_ADMIN_TOKEN": TOKEN, **extra}


def admin(client: httpx.Client, body=None, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/admin/reload", json=body, headers=headers, timeout=60)


def metric(text: str, name: str, **labels) -> float | None:
    found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if (line.startswith(name + "{") or line.startswith(name + " "))
             and all(f'{k}="{v}"' in line for k, v in labels.items())]
    return sum(found) if found else None


def training_cars(n: int, seed: int, heavier: float = 1.0) -> list[dict]:
    """n cars sampled (with replacement) from the shipped data; weight scaled by `heavier`."""
    from mpgpack.export.build import DEFAULT_DATA
    from mpgpack.train.data import load_dataset
    X = load_dataset(DEFAULT_DATA).X
    rows = X[np.random.default_rng(seed).integers(0, len(X), n)]
    cars = []
    for row in rows:
        car = {f: (None if np.isnan(v) else float(v)) for f, v in zip(FEATURES, row)}
        car["weight"] = round(car["weight"] * heavier, 1)
        cars.append(car)
    return cars


# -- THE test: reload under load, two workers ---------------------------------------------------
class LoadClients:
    """Threads sending one-car POST /predict continuously over keep-alive connections
    (http.client), recording (start, end, status, version, mpg) or the exception."""

    def __init__(self, url: str, threads: int, limit_seconds: float):
        self.host, self.port = url.removeprefix("http://").split(":")
        self.results: list[tuple] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + limit_seconds
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        self.body = json.dumps(CAR).encode()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        out = []
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                t0 = time.monotonic()
                try:
                    conn.request("POST", "/predict", self.body, {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                    t1 = time.monotonic()
                    if resp.status != 200:
                        self.failures.append(f"{resp.status}: {data[:200]!r}")
                        continue
                    body = json.loads(data)
                    if resp.getheader("x-model-version") != body["model_version"]:
                        self.failures.append(f"header {resp.getheader('x-model-version')} != "
                                             f"body {body['model_version']}")
                    out.append((t0, t1, body["model_version"], body["predictions"][0]["mpg"]))
                except Exception as exc:      # a failed request: exactly what must not happen
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        finally:
            conn.close()
            self.results.extend(out)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def probe_version(url: str) -> str:
    """The version answering a request on a NEW connection (so any worker may take it)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/predict", json.dumps(CAR).encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.getheader("x-model-version")
    finally:
        conn.close()


def test_reload_under_load_two_workers_zero_failures(two_versions, registry, tmp_path):
    """Clients send requests continuously while the registry switches A <-> B six times with
    `mpgpack rollback`, alternately applied by POST /admin/reload and by SIGHUP to the serve
    process: zero failed requests, every answer is one of the two versions and equals that
    version's own prediction, and after a POST reload returns every new request gets the new
    version (on both workers)."""
    va, vb, answers = two_versions["va"], two_versions["vb"], two_versions["answers"]
    a, b = two_versions["a"], two_versions["b"]
    with running_server(registry, tmp_path, "--workers", "2", "--no-access-log",
                        "--prediction-log", str(tmp_path / "pred.jsonl"), env=server_env()) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        assert probe_version(srv.url) == vb
        steps = []
        with LoadClients(srv.url, threads=4, limit_seconds=15) as load:
            time.sleep(0.5)
            for i, (target, version) in enumerate([(a, va), (b, vb)] * 3):
                if target == a:
                    r = run_cli("rollback", "--registry", str(registry))
                else:
                    r = run_cli("rollback", "--registry", str(registry), "--to", b)
                assert r.returncode == 0, r.stderr
                assert (registry / "CURRENT").read_text().split()[0] == target
                start = time.monotonic()
                if i % 2 == 0:
                    resp = admin(client)
                    done = time.monotonic()
                    assert resp.status_code == 200, resp.text
                    result = resp.json()
                    assert result["previous"] != version and result["current"] == version
                    # both workers confirmed before the answer
                    assert len(result["workers"]) == 2, result
                    assert {w["version"] for w in result["workers"].values()} == {version}, result
                    steps.append(("POST", version, start, done, result["seconds"]))
                else:
                    srv.proc.send_signal(signal.SIGHUP)
                    # applied when 10 requests in a row on new connections get the new version
                    streak, deadline = 0, time.monotonic() + 20
                    while streak < 10 and time.monotonic() < deadline:
                        streak = streak + 1 if probe_version(srv.url) == version else 0
                    done = time.monotonic()
                    assert streak >= 10, f"SIGHUP did not switch to {version}"
                    steps.append(("SIGHUP", version, start, done, None))
                time.sleep(0.4)
            time.sleep(0.3)
        metrics_text = client.get("/metrics").text

    results, failures = load.results, load.failures
    seen = {v: sum(1 for r in results if r[2] == v) for v in (va, vb)}
    wrong = [r for r in results if r[2] not in answers or abs(r[3] - answers[r[2]]) > 1e-4]
    # After a POST reload returned (both workers confirmed), no request may get the old version.
    stale = []
    for k, (how, version, _, done, _) in enumerate(steps):
        if how == "POST":
            until = steps[k + 1][2] if k + 1 < len(steps) else float("inf")
            stale += [r for r in results if done <= r[0] and r[1] < until and r[2] != version]
    reload_windows = [(s[2], s[3]) for s in steps]
    during = [r[1] - r[0] for r in results if any(r[0] < e and r[1] > s for s, e in reload_windows)]
    lat = np.array([r[1] - r[0] for r in results]) * 1000
    post = [s for s in steps if s[0] == "POST"]
    hup = [s for s in steps if s[0] == "SIGHUP"]
    print(f"\nreload under load (2 workers, 4 keep-alive clients, {len(results)} requests in "
          f"{results[-1][1] - results[0][0]:.1f} s): failures {len(failures)}; per version {seen}; "
          f"POST /admin/reload: load+check {min(s[4] for s in post):.3f}-{max(s[4] for s in post):.3f} s, "
          f"answered (both workers switched) in {min(s[3] - s[2] for s in post):.3f}-"
          f"{max(s[3] - s[2] for s in post):.3f} s; SIGHUP to serve: switched (10 probes in a row) "
          f"in {min(s[3] - s[2] for s in hup):.3f}-{max(s[3] - s[2] for s in hup):.3f} s; "
          f"request latency p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
          f"max {lat.max():.1f} ms; max during reloads {max(during) * 1000:.1f} ms "
          f"({len(during)} requests overlapped a reload)")
    assert failures == [], failures[:5]
    assert wrong == [], wrong[:5]
    assert stale == [], stale[:5]
    assert min(seen.values()) > 50, seen
    assert metric(metrics_text, "mpg_model_reloads_total", result="ok") >= 6
    assert metric(metrics_text, "mpg_model_reloads_total", result="failed") == 0
    # the prediction log (one file per worker) holds both versions
    logged = [json.loads(line) for p in tmp_path.glob("pred-*.jsonl") for line in p.read_text().splitlines()]
    assert len(list(tmp_path.glob("pred-*.jsonl"))) == 2
    assert {r["model_version"] for r in logged} == {va, vb}
    assert len(logged) >= len(results)   # + the probes; written out at shutdown


# -- the rest on one worker --------------------------------------------------------------------
def test_unwritable_prediction_log_never_fails_a_prediction(two_versions, tmp_path):
    """A directory as the log path (EISDIR): predictions are 200, /metrics and the server log
    say the log fails, and records are counted as dropped."""
    log_dir = tmp_path / "a-directory"
    log_dir.mkdir()
    with running_server(two_versions["dist"] / two_versions["b"], tmp_path,
                        "--prediction-log", str(log_dir), env=server_env()) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as client:
        for i in range(20):
            r = client.post("/predict", json={**CAR, "weight": 3000 + i})
            assert r.status_code == 200 and r.json()["model_version"] == two_versions["vb"]
        r = client.post("/v2/models/mpg/infer", json={"inputs": [
            {"name": "features", "shape": [1, 7], "datatype": "FP32", "data": [CAR[f] for f in FEATURES]}]})
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = client.get("/metrics").text
            if (metric(text, "mpg_prediction_log_dropped_total") or 0) >= 21:
                break
            time.sleep(0.2)
        assert metric(text, "mpg_prediction_log_failing") == 1
        assert metric(text, "mpg_prediction_log_errors_total") >= 1
        assert metric(text, "mpg_prediction_log_dropped_total") == 21
        assert metric(text, "mpg_prediction_log_written_total") == 0
        stats = client.get("/monitoring/drift").json()["prediction_log"]
        assert stats["failing"] and "EISDIR" in stats["last_error"]
        assert client.post("/predict", json=CAR).status_code == 200
    lines = [ln for ln in srv.log_lines() if '"mpgpack.predlog"' in ln]
    assert len(lines) == 1 and "EISDIR" in lines[0], lines     # said once, not per request


def test_drift_over_http_not_enough_data_then_ok_then_shifted(two_versions, tmp_path):
    """/monitoring/drift and the gauges: "not enough data" below the minimum, no alarm on
    training-like traffic, an alarm on `weight` when every car is 20 % heavier."""
    va = two_versions["va"]
    with running_server(two_versions["dist"] / two_versions["a"], tmp_path, "--drift-window", "200",
                        "--no-access-log", env=server_env()) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        report = client.get("/monitoring/drift").json()
        assert report["status"] == "not enough data" and report["n"] == 0 and not report["alarm"]
        assert report["model_version"] == va and report["window"] == 200
        assert metric(client.get("/metrics").text, "mpg_drift_enough_data", model_version=va) == 0

        cars = training_cars(200, seed=7)
        assert client.post("/predict", json={"instances": cars[:60]}).status_code == 200
        report = client.get("/monitoring/drift").json()
        assert report["status"] == "not enough data" and report["n"] == 60
        # the rest half through V2 (both routes feed the window)
        flat = [v for car in cars[60:] for v in (car[f] for f in FEATURES)]
        r = client.post("/v2/models/mpg/infer", json={"inputs": [
            {"name": "features", "shape": [140, 7], "datatype": "FP32", "data": flat}]})
        assert r.status_code == 200
        report = client.get("/monitoring/drift").json()
        assert report["n"] == 200 and report["status"] == "ok" and report["alarms"] == [], report["alarms"]
        text = client.get("/metrics").text
        assert metric(text, "mpg_drift_enough_data", model_version=va) == 1
        assert metric(text, "mpg_drift_alarm", model_version=va) == 0

        heavy = training_cars(200, seed=8, heavier=1.2)
        for i in range(0, 200, 50):
            assert client.post("/predict", json={"instances": heavy[i:i + 50]}).status_code == 200
        report = client.get("/monitoring/drift").json()
        print(f"\ndrift over HTTP, 200-row window: training-like -> ok; 20 % heavier -> "
              f"alarms {report['alarms']}, weight PSI {report['features']['weight']['psi']:.3f} "
              f"(threshold {report['features']['weight']['psi_threshold']:.3f}), "
              f"KS p {report['features']['weight']['p_value']:.2e}")
        assert report["status"] == "drift" and report["alarm"] and "weight" in report["alarms"]
        text = client.get("/metrics").text
        assert metric(text, "mpg_drift_alarm", model_version=va) == 1
        assert metric(text, "mpg_drift_feature_alarm", model_version=va, feature="weight") == 1
        assert metric(text, "mpg_drift_window_rows", model_version=va) == 200


def test_reload_auth_refusals_and_a_tampered_bundle(two_versions, registry, tmp_path):
    """401/403 on the reload endpoint; bad bodies are 422; a tampered new bundle (CURRENT
    pointing at it) is refused with 409 naming the file, the old version keeps answering;
    then a good reload switches, and the labels on /metrics follow the new version."""
    va, vb = two_versions["va"], two_versions["vb"]
    bad = registry / "mpg-tampered"
    shutil.copytree(registry / two_versions["a"], bad)
    with open(bad / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with running_server(registry, tmp_path, env=server_env()) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        assert admin(client, token=None).status_code == 401
        r = client.post("/admin/reload", headers={"Authorization": "Basic eDp5"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        r = admin(client, token="wrong")
        assert r.status_code == 403 and r.json() == {"error": "admin endpoint: wrong token"}
        r = admin(client, {"colour": "red"})
        assert r.status_code == 422 and "colour: unknown field" in r.json()["error"]
        r = admin(client, {"version": "nosuchthing"})
        assert r.status_code == 422 and "holds no mpg-nosuchthing" in r.json()["error"]
        r = client.post("/admin/reload", content=b"[1", headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]

        set_current(registry, "mpg-tampered")
        r = admin(client)
        assert r.status_code == 409, r.text
        assert "model.onnx does not match its sha256" in r.json()["error"] and r.json()["serving"] == vb
        r = client.post("/predict", json=CAR)
        assert r.status_code == 200 and r.json()["model_version"] == vb
        assert r.headers["x-model-version"] == vb
        srv.proc.send_signal(signal.SIGHUP)       # the same refusal by signal: logged, still B
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("reload on signal failed" in ln
                                                       for ln in srv.log_lines()):
            time.sleep(0.1)
        assert any("reload on signal failed" in ln and "sha256" in ln for ln in srv.log_lines())
        assert client.post("/predict", json=CAR).json()["model_version"] == vb
        text = client.get("/metrics").text
        assert metric(text, "mpg_model_reloads_total", result="failed") == 2

        set_current(registry, two_versions["b"])
        r = admin(client, {"version": va})          # an explicit version, CURRENT unchanged
        assert r.status_code == 200 and r.json()["current"] == va and r.json()["changed"]
        body = client.post("/predict", json=CAR).json()
        assert body["model_version"] == va
        assert abs(body["predictions"][0]["mpg"] - two_versions["answers"][va]) <= 1e-4
        assert client.get("/metadata").json()["model"]["version"] == va
        assert client.get("/v2/models/mpg").json()["versions"] == [va]
        assert client.get("/monitoring/drift").json()["model_version"] == va
        text = client.get("/metrics").text
        assert metric(text, "mpg_model_serving", model_version=va) == 1
        assert metric(text, "mpg_model_serving", model_version=vb) == 0
        assert metric(text, "mpg_http_requests_total", model_version=va, endpoint="/predict") == 1
        assert metric(text, "mpg_drift_window_rows", model_version=va) == 1
        assert metric(text, "mpg_drift_window_rows", model_version=vb) is None   # old series gone
        r = admin(client)                           # follows CURRENT (B) again
        assert r.status_code == 200 and r.json()["current"] == vb


def test_serve_help_and_bad_drift_window():
    r = run_cli("serve", "--help")
    assert r.returncode == 0 and "--prediction-log" in r.stdout and "--drift-window" in r.stdout
    r = run_cli("serve", "--drift-window", "10")
    assert r.returncode == 1 and "--drift-window must be at least 100" in r.stderr
    assert "Traceback" not in r.stderr
