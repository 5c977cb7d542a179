"""`mpgpack predict` (targets/api/client.py) against the real service."""
from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from tests.helpers import REPO, free_port, run_cli
from tests.helpers import running_server

CAR_ARGS = ["cylinders=8", "displacement=307", "horsepower=130", "weight=3504",
            "acceleration=12", "model_year=70", "origin=1"]
CAR = {"cylinders": 8, "displacement": 307, "horsepower": 130, "weight": 3504,
       "acceleration": 12, "model_year": 70, "origin": 1}


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    with running_server(bundle_dir, tmp_path_factory.mktemp("api-client")) as srv:
        yield srv


def _mpg_values(stdout: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^\s*\d+\s+([\d.]+)", stdout, re.M)]


def test_predict_one_car(server, manifest):
    expected = httpx.post(server.url + "/predict", json=CAR).json()["predictions"][0]["mpg"]
    result = run_cli("predict", "--url", server.url, "--car", *CAR_ARGS, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _mpg_values(result.stdout) == [round(expected, 2)]
    assert f"model {manifest['model']['version']}" in result.stdout


def test_predict_several_cars_with_warning(server):
    result = run_cli("predict", "--url", server.url + "/predict", "--car", *CAR_ARGS,
                     "--car", *CAR_ARGS[:2], "horsepower=null", *CAR_ARGS[3:6], "origin=3",
                     "--car", "cylinders=12", *CAR_ARGS[1:], timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(_mpg_values(result.stdout)) == 3
    assert "cylinders=12 is outside the training range" in result.stdout


def test_predict_json_output(server):
    result = run_cli("predict", "--url", server.url, "--json", "--car", *CAR_ARGS, timeout=60)
    assert result.returncode == 0
    import json
    answer = json.loads(result.stdout)
    assert answer["predictions"][0]["warnings"] == [] and answer["request_id"]


def test_predict_csv_in_batches(server, tmp_path):
    rows = ["mpg,cylinders,displacement,horsepower,weight,acceleration,model_year,origin,name"]
    for i in range(25):
        hp = "?" if i % 5 == 0 else str(90 + i)
        rows.append(f"20,4,{120 + i},{hp},{2500 + 10 * i},15,{70 + i % 13},{1 + i % 3},car {i}")
    csv = tmp_path / "cars.csv"
    csv.write_text("\n".join(rows) + "\n")
    result = run_cli("predict", "--url", server.url, "--csv", str(csv), timeout=60)
    assert result.returncode == 0, result.stderr
    values = _mpg_values(result.stdout)
    assert len(values) == 25 and all(10 < v < 50 for v in values)
    assert "ignoring columns that are not model features: mpg, name" in result.stderr


def test_standalone_script_uses_only_the_standard_library(server):
    """client.py runs as a plain script with `python -I -S` (no site-packages at all)."""
    script = REPO / "mpgpack" / "targets" / "api" / "client.py"
    result = subprocess.run([sys.executable, "-I", "-S", str(script), "--url", server.url,
                             "--car", *CAR_ARGS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(_mpg_values(result.stdout)) == 1


def test_refused_car_is_one_line(server):
    result = run_cli("predict", "--url", server.url, "--car", *CAR_ARGS[:2], "horsepower=9000",
                     *CAR_ARGS[3:], timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "422" in lines[0] and "horsepower: 9000" in lines[0]


def test_bad_value_and_unreachable_service(tmp_path):
    result = run_cli("predict", "--url", "http://127.0.0.1:1", "--car", "cylinders=four", timeout=60)
    assert result.returncode == 1 and "cylinders" in result.stderr and "not a number" in result.stderr
    result = run_cli("predict", "--url", f"http://127.0.0.1:{free_port()}", "--car", *CAR_ARGS, timeout=60)
    assert result.returncode == 1 and "cannot reach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
