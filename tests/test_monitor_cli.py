"""`mpgpack monitor`: a real prediction log (rotated) in, the drift table and an HTML report out."""
from __future__ import annotations

import base64
import re

import numpy as np

from mpgpack.core.predlog import PredictionLog
from tests.helpers import run_cli


def write_log(path, manifest, X, per_request=3, max_bytes=32 * 1024):
    names = [f["name"] for f in manifest["schema"]["features"]]
    log = PredictionLog(path, names, max_bytes=max_bytes, backups=10)
    for i in range(0, len(X), per_request):
        chunk = X[i:i + per_request]
        log.record(chunk, np.full(len(chunk), 25.0), manifest["model"]["version"], f"r{i}", 0.4)
    log.close()
    assert log.stats()["written"] == len(X)
    return log.stats()


def table(stdout: str) -> dict[str, list[str]]:
    return {ln.split()[0]: ln.split() for ln in stdout.splitlines()
            if ln and ln.split()[0] in {"cylinders", "displacement", "horsepower", "weight",
                                        "acceleration", "model_year", "origin"}}


def test_heavier_cars_show_as_drift_with_a_report(tmp_path, small_bundle_dir, small_manifest,
                                                  mpg_X):
    rng = np.random.default_rng(7)
    X = mpg_X[rng.integers(0, len(mpg_X), 600)].copy()
    X[-500:, 3] *= 1.2          # the last 500 requests: cars 20 % heavier
    log = tmp_path / "pred.jsonl"
    assert write_log(log, small_manifest, X)["rotations"] >= 2     # the records span 3+ files
    (tmp_path / "pred.jsonl.1").open("a").write("{not json\n")   # a torn line is skipped
    out = tmp_path / "report" / "drift.html"
    r = run_cli("monitor", str(log), "--bundle", str(small_bundle_dir), "--out", str(out),
                timeout=300)
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert rows["weight"][-1] == "drift" and rows["weight"][1] == "500"
    assert "overall: DRIFT" in r.stdout and "1 malformed line(s) skipped" in r.stdout
    assert "600 records in" in r.stdout
    page = out.read_text()
    assert "<table id=\"drift\">" in page and "DRIFT" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 7
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)


def test_training_like_log_is_ok_and_small_log_is_not_enough(tmp_path, small_bundle_dir,
                                                             small_manifest, mpg_X):
    rng = np.random.default_rng(8)
    log = tmp_path / "ok.jsonl"
    write_log(log, small_manifest, mpg_X[rng.integers(0, len(mpg_X), 500)], max_bytes=1 << 20)
    r = run_cli("monitor", str(log), "--bundle", str(small_bundle_dir), "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert "overall: OK" in r.stdout
    assert all(row[-1] == "ok" for row in table(r.stdout).values())
    small = tmp_path / "small.jsonl"
    names = [f["name"] for f in small_manifest["schema"]["features"]]
    plog = PredictionLog(small, names)
    plog.record(mpg_X[:40], np.zeros(40), "v", "r", 0.1)
    plog.close()
    r = run_cli("monitor", str(small), "--bundle", str(small_bundle_dir), timeout=300)
    assert r.returncode == 0 and "overall: NOT ENOUGH DATA" in r.stdout
    assert "model version(s) v" in r.stdout


def test_missing_log_is_one_clear_line(tmp_path, small_bundle_dir):
    r = run_cli("monitor", str(tmp_path / "nope.jsonl"), "--bundle", str(small_bundle_dir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    r = run_cli("monitor", str(empty), "--bundle", str(small_bundle_dir))
    assert r.returncode == 1 and "no prediction records" in r.stderr
