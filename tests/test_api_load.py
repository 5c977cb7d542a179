"""Short, bounded load on loopback (wrk, 3 s): zero errors. No speed assertions here; the
figures come from `python -m mpgpack.bench.api_load` (30 s runs, against the Flask baseline)."""
from __future__ import annotations

import httpx

from mpgpack.bench.api_load import request_bodies, wrk
from tests.helpers import running_server

CAR = {"cylinders": 4, "displacement": 97.0, "horsepower": 88.0, "weight": 2130.0,
       "acceleration": 14.5, "model_year": 70, "origin": 3}


def _counter(text: str, name: str, **labels) -> float:
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name + "{") and all(f'{k}="{v}"' in l for k, v in labels.items()))


def test_short_load_two_workers_zero_errors_and_metrics_summed(bundle_dir, tmp_path):
    bodies = request_bodies(bundle_dir, (1, 100))
    with running_server(bundle_dir, tmp_path, "--workers", "2") as srv:
        runs = {n: wrk(srv.url + "/predict", bodies[n], duration=3, connections=8, threads=1,
                       workdir=tmp_path) for n in (1, 100)}
        for n, r in runs.items():
            assert r["errors"] == 0, (n, r)
            assert r["requests"] > 50, (n, r)
        # Multiprocess metrics: whichever worker answers /metrics reports both workers' counts.
        with httpx.Client(base_url=srv.url) as http:
            for _ in range(20):
                assert http.post("/predict", json=CAR).status_code == 200
            text = http.get("/metrics").text
    total = sum(r["requests"] for r in runs.values()) + 20
    counted = _counter(text, "mpg_http_requests_total", endpoint="/predict", status="200")
    # wrk may count a request cut off at the end as not completed; the server counted it anyway.
    assert total <= counted <= total + 2 * 8, (total, counted)
    cars = _counter(text, "mpg_batch_size_sum", endpoint="/predict")
    assert cars >= runs[1]["requests"] + 100 * runs[100]["requests"] + 20
