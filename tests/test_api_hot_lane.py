"""The prediction paths' hot lane (hot_lane.py) answers as the full stack would: the same
routes in metrics, the same path parameters, the same 4xx wording, and an unexpected error is
still the server-error middleware's 500. In-process (no server started)."""
from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from mpgpack.targets.api.app import create_app
from mpgpack.targets.api.settings import ApiSettings

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}
V2 = {"inputs": [{"name": "features", "shape": [1, 7], "datatype": "FP32",
                  "data": [8, 307, 130, 3504, 12, 70, 1]}]}


@pytest.fixture()
def app(bundle_dir, tmp_path):
    return create_app(ApiSettings(bundle=str(bundle_dir), source=str(bundle_dir),
                                  reload_signal=False, access_log=False,
                                  web_dir=str(tmp_path / "no-web")))


def test_hot_routes_are_labelled_and_parametrised_as_by_the_router(app):
    with TestClient(app) as c:
        assert c.post("/predict", json=CAR).status_code == 200
        assert c.post("/v2/models/mpg/infer", json=V2).status_code == 200
        version = c.get("/v2/models/mpg").json()["versions"][0]
        assert c.post(f"/v2/models/mpg/versions/{version}/infer", json=V2).status_code == 200
        wrong = c.post("/v2/models/other/infer", json=V2)
        assert wrong.status_code == 404
        assert wrong.json() == {"error": "model 'other' not found; this server serves 'mpg'"}
        bad = c.post("/predict", json={**CAR, "weight": -5})
        assert bad.status_code == 422 and "weight" in bad.json()["error"]
        assert c.get("/predict").status_code == 405        # not a POST: the full stack's answer
        metrics = c.get("/metrics").text
    for endpoint, status in (("/predict", "200"), ("/v2/models/{model_name}/infer", "200"),
                             ("/v2/models/{model_name}/versions/{model_version}/infer", "200"),
                             ("/v2/models/{model_name}/infer", "404"), ("/predict", "422")):
        assert f'endpoint="{endpoint}",method="POST",' in metrics
        assert any(f'endpoint="{endpoint}"' in line and f'status="{status}"' in line
                   for line in metrics.splitlines()), (endpoint, status)


class _Broken:
    def predict(self, X):
        raise RuntimeError("injected fault")


def test_an_unexpected_error_on_a_hot_route_is_still_a_logged_500(app, caplog):
    with TestClient(app, raise_server_exceptions=False) as c:
        slot = app.state.slot
        # Fault injection: a predictor that fails (no valid input can make the real one fail).
        slot._current = dataclasses.replace(slot.current, predictor=_Broken())
        r = c.post("/predict", json=CAR, headers={"X-Request-ID": "fault-1"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error (request id fault-1); see the server log"}
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)
