"""Issue 15, items 7-9: every file of a bundle checked by its readers (verify, serve, `mpgpack
web`), reloads compared by content, and the smaller refusals (duplicate JSON keys, two
Authorization headers, a summary for thousands of range warnings)."""
from __future__ import annotations

import json
import os
import shutil
import time

import httpx
import pytest

from tests.helpers import run_cli, running_server

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}
TOKEN = "test-admin-token-15"


# -- item 7: every file checked, every failure names it ----------------------------------------
TAMPERED = ["web/app.js", "web/index.html", "web/model/model.json", "web/model/manifest.json",
            "report/index.html", "report/img/tuning.png", "golden.json"]


@pytest.mark.parametrize("rel", TAMPERED)
def test_verify_refuses_a_changed_file_anywhere(bundle_copy, rel):
    with open(bundle_copy / rel, "ab") as fh:
        fh.write(b" ")
    r = run_cli("verify", str(bundle_copy))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    # A file under web/ is named when the manifest lists web/'s files (new builds), or when it
    # is a copy of an artifact (web/model/*); otherwise the folder is.
    named = rel if not rel.startswith("web/") or rel.startswith("web/model/model") else "web/"
    assert named in line and "after the build" in line, line


def test_verify_names_the_web_file_with_a_listing(bundle_copy):
    """A bundle built now records web/'s per-file sha256s: the changed file is named."""
    from mpgpack.core.bundle import tree_sha256
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["packages"]["web"]["file_sha256"] = tree_sha256(bundle_copy / "web")[1]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    (bundle_copy / "web" / "app.js").write_text("alert(1)")
    r = run_cli("verify", str(bundle_copy))
    assert r.returncode != 0 and "web/app.js does not match its sha256" in r.stderr
    (bundle_copy / "web" / "app.js").unlink()
    (bundle_copy / "web" / "extra.js").write_text("alert(1)")
    r = run_cli("verify", str(bundle_copy))
    assert r.returncode != 0 and "web/app.js is missing" in r.stderr


def test_truncated_model_json_is_named(bundle_copy):
    path = bundle_copy / "tfjs" / "model.json"
    path.write_bytes(path.read_bytes()[:100])
    r = run_cli("verify", str(bundle_copy))
    assert r.returncode != 0 and "tfjs/model.json does not match its sha256" in r.stderr


def test_verify_says_unsigned_and_ok_on_a_clean_bundle(bundle_dir):
    r = run_cli("verify", str(bundle_dir))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "unsigned" in lines[0] and "nothing vouches for the manifest itself" in lines[0]
    assert "packages)" in lines[1] and lines[-1] == "verify: OK"


def test_serve_refuses_a_tampered_page(bundle_copy, tmp_path):
    (bundle_copy / "web" / "index.html").write_text("<h1>not the page that was built</h1>")
    r = run_cli("serve", "--bundle", str(bundle_copy), "--port", "1", timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    # A bundle built now lists every file's sha256 and the error names it; an older bundle (no
    # per-file listing) can only say that web/ as a whole changed.
    assert ("web/index.html does not match its sha256" in r.stderr
            or "a file in web/ was changed" in r.stderr), r.stderr


def test_web_refuses_a_tampered_report(bundle_copy):
    with open(bundle_copy / "report" / "img" / "residuals.png", "ab") as fh:
        fh.write(b"\0")
    r = run_cli("web", "--bundle", str(bundle_copy), "--port", "0", timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "report/img/residuals.png does not match its sha256" in r.stderr
    assert "unsigned" in r.stdout


# -- item 8: a reload compares content, not the version string --------------------------------
def _edited_copy(bundle_dir, dest):
    """The issue's edited copy: same version string, horsepower's hard limit 400 -> 4000."""
    shutil.copytree(bundle_dir, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    hp = next(f for f in manifest["schema"]["features"] if f["name"] == "horsepower")
    hp["maximum"] = 4000
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_reload_to_an_edited_copy_with_the_same_version_reaches_every_worker(bundle_dir, tmp_path):
    edited = _edited_copy(bundle_dir, tmp_path / "edited")
    car = {**CAR, "horsepower": 3000}
    env = {**os.environ, "MPGPACK_ADMIN_TOKEN": TOKEN}
    with running_server(bundle_dir, tmp_path, "--workers", "2", "--no-access-log",
                        env=env) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        assert {client.post("/predict", json=car).status_code for _ in range(20)} == {422}
        r = client.post("/admin/reload", json={"bundle": str(edited)},
                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["current"] == result["previous"] and result["changed"], result
        assert "warning" not in result, result
        assert {w["manifest_sha256"] for w in result["workers"].values()} == \
            {result["manifest_sha256"]}
        # Fresh connections spread over both workers: every one answers the edited copy.
        statuses = {httpx.post(srv.url + "/predict", json=car, timeout=30).status_code
                    for _ in range(30)}
        assert statuses == {200}


# -- item 9: duplicate keys, two Authorization headers, summarised warnings --------------------
@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    env = {**os.environ, "MPGPACK_ADMIN_TOKEN": TOKEN}
    with running_server(bundle_dir, tmp_path_factory.mktemp("integrity"), "--no-access-log",
                        env=env) as srv:
        yield srv


def _post(srv, path: str, raw: bytes, **headers) -> httpx.Response:
    return httpx.post(srv.url + path, content=raw, timeout=30,
                      headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("raw, key", [
    (b'{"cylinders":8,"displacement":307,"horsepower":130,"weight":3504,"acceleration":12,'
     b'"model_year":70,"origin":99,"origin":1}', "origin"),
    (b'{"instances":[{"cylinders":8,"displacement":307,"horsepower":130,"weight":3504,'
     b'"acceleration":12,"model_year":70,"origin":1,"weight" : 3000}]}', "weight"),
    (b'{"instances":[], "instances":[{"cylinders":8,"displacement":307,"horsepower":130,'
     b'"weight":3504,"acceleration":12,"model_year":70,"origin":1}]}', "instances"),
])
def test_predict_refuses_duplicate_keys(server, raw, key):
    r = _post(server, "/predict", raw)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == f"{key}: given twice in one JSON object; send each field once"


def test_strings_with_key_marks_are_not_duplicates(server):
    """The quick count can be fooled into a second look, never into a refusal."""
    body = {"id": 'a":b":c', "inputs": [{"name": "features", "shape": [1, 7], "datatype": "FP32",
                                        "data": [8, 307, 130, 3504, 12, 70, 1]}]}
    r = httpx.post(server.url + "/v2/models/mpg/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text


def test_v2_refuses_duplicate_keys(server):
    raw = (b'{"inputs":[{"name":"features","shape":[1,7],"datatype":"FP32","datatype":"FP32",'
           b'"data":[8,307,130,3504,12,70,1]}]}')
    r = _post(server, "/v2/models/mpg/infer", raw)
    assert r.status_code == 400 and r.json() == {
        "error": "datatype: given twice in one JSON object; send each field once"}


def test_two_authorization_headers_are_refused(server):
    headers = [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer other"),
               ("Content-Type", "application/json")]
    r = httpx.post(server.url + "/admin/reload", content=b"{}", headers=headers, timeout=30)
    assert r.status_code == 400
    assert r.json() == {"error": "header Authorization: sent 2 times; send it once"}


def test_a_big_batch_outside_the_training_range_is_summarised(server):
    """10,000 cars all outside the training range: the first 100 flagged rows worded, the rest
    counted and listed by index (the issue's 10.4 MB answer), and health checks stay quick."""
    batch = {"instances": [{**CAR, "weight": 6000 + i % 100, "horsepower": 300}
                           for i in range(10_000)]}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        t0 = time.perf_counter()
        r = client.post("/predict", json=batch)
        took = time.perf_counter() - t0
    assert r.status_code == 200
    body = r.json()
    summary = body["warnings_summary"]
    assert summary["rows_flagged"] == 10_000
    assert summary["by_field"] == {"horsepower": 10_000, "weight": 10_000}
    assert summary["detailed_rows"] == list(range(100))
    assert summary["other_flagged_rows"] == list(range(100, 10_000))
    assert len(body["predictions"][99]["warnings"]) == 2 and body["predictions"][100]["warnings"] == []
    print(f"\n10,000 flagged cars: {len(r.content) / 1e6:.2f} MB answer in {took * 1000:.0f} ms")
    assert len(r.content) < 1_000_000
    small = httpx.post(server.url + "/predict", json={"instances": [{**CAR, "weight": 6000}] * 3},
                       timeout=30).json()
    assert "warnings_summary" not in small and all(p["warnings"] for p in small["predictions"])


def test_v2_counts_flagged_rows_without_wording_them(server):
    rows = [8, 307, 300, 6000, 12, 70, 1] * 500
    body = {"inputs": [{"name": "features", "shape": [500, 7], "datatype": "FP32", "data": rows}]}
    r = httpx.post(server.url + "/v2/models/mpg/infer", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["parameters"] == {"rows_outside_training_range": 500}
