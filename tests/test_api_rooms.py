"""The API's route table is the one source of its routing, its OpenAPI and /metadata's
`endpoints`; the settings reach the workers whole. In-process (no server started)."""
from __future__ import annotations

import argparse

import pytest
from fastapi.testclient import TestClient

from mpgpack.core.errors import UserError
from mpgpack.targets.api.app import create_app
from mpgpack.targets.api.cli import register
from mpgpack.targets.api.routes import ROUTES
from mpgpack.targets.api.settings import SETTINGS_ENV, ApiSettings


@pytest.fixture(scope="module")
def client(bundle_dir, tmp_path_factory):
    # Without the web page, so "/" is the table's own index route.
    settings = ApiSettings(bundle=str(bundle_dir), source=str(bundle_dir), reload_signal=False,
                           access_log=False, web_dir=str(tmp_path_factory.mktemp("no-web")))
    with TestClient(create_app(settings)) as c:
        yield c


def test_every_table_row_is_routed_documented_and_listed(client):
    spec = client.get("/openapi.json").json()
    listed = client.get("/metadata").json()["endpoints"]
    for row in ROUTES:
        for method in row.methods:
            if row.room == "fastapi":
                assert client.request(method, row.path).status_code == 200
                continue
            assert method.lower() in spec["paths"][row.path], row
            assert spec["paths"][row.path][method.lower()]["tags"] == [row.tag]
            assert spec["paths"][row.path][method.lower()]["summary"] == row.summary
    assert listed == [f"{m} {r.path.replace('{model_name}', 'mpg')}"
                      for r in ROUTES if r.listed for m in r.methods]
    assert set(spec["paths"]) == {r.path for r in ROUTES if r.room != "fastapi"}


def test_path_parameters_are_documented_from_the_path(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v2/models/{model_name}/versions/{model_version}/infer"]["post"]
    assert [p["name"] for p in op["parameters"]] == ["model_name", "model_version"]
    op = spec["paths"]["/v2/models/{model_name}"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["model_name"]


def test_routes_answer_only_their_methods(client):
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.head("/v2/health/ready").status_code == 405
    r = client.get("/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json() == {"error": "method GET is not allowed on /predict"}
    assert client.get("/").json()["docs"] == "/docs"


def _serve_args(*argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_settings_reach_the_workers_whole_but_not_the_token():
    args = _serve_args("--bundle", "reg", "--workers", "3", "--max-batch", "7",
                       "--prediction-log", "/tmp/p.jsonl", "--no-access-log")
    settings = ApiSettings.from_args(args, environ={"MPGPACK_ADMIN_TOKEN": "s3cret"})
    assert settings.prediction_log == "/tmp/p-{pid}.jsonl" and settings.source == "reg"
    settings = settings.with_(bundle="/b", metrics_dir="/m", reload_dir="/r")
    env = settings.worker_environ()
    assert "s3cret" not in str(env) and "s3cret" not in repr(settings)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/m"
    assert ApiSettings.from_env({**env, "MPGPACK_ADMIN_TOKEN": "s3cret"}) == settings
    with pytest.raises(UserError, match=SETTINGS_ENV):
        ApiSettings.from_env({})


@pytest.mark.parametrize("flags, message", [
    (("--workers", "0"), "--workers must be at least 1, got 0"),
    (("--max-body-bytes", "10"), "--max-batch must be >= 1 and --max-body-bytes >= 1024"),
    (("--drift-window", "5"), "--drift-window must be at least 100"),
])
def test_bad_settings_are_one_line(flags, message):
    with pytest.raises(UserError, match=message):
        ApiSettings.from_args(_serve_args(*flags), environ={})
