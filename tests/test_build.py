"""The bundle written by `mpgpack build`: manifest, golden set, parity per runtime, verify, determinism."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mpgpack.export.parity import evaluate_artifacts, tfjs_node_predict
from mpgpack.core.bundle import open_bundle, sha256_file
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
from mpgpack.train.schema import FEATURE_NAMES, FEATURES
from tests.helpers import run_cli

FLOAT32_ARTIFACTS = ("onnx", "tflite_float32", "tfjs")


def test_manifest_describes_the_model(bundle_dir, manifest):
    assert manifest["format_version"] == 1
    version = manifest["model"]["version"]
    assert bundle_dir.name == f"mpg-{version}" and len(version) == 12
    assert manifest["data"]["sha256"] == "48b830e11feee5572525f8f1691ddb9d38d3d7b7063edcd8fca672c2a5e17d8d"
    assert manifest["model"]["created"].endswith("+00:00")
    assert "commit" in manifest["model"]["git"]
    feats = manifest["schema"]["features"]
    assert [f["name"] for f in feats] == list(FEATURE_NAMES)
    for f, spec in zip(feats, FEATURES):
        lo, hi = f["training_range"]
        assert f["minimum"] == spec.minimum <= lo <= hi <= spec.maximum == f["maximum"]
        stats = manifest["training_stats"][f["name"]]
        assert stats["min"] == lo and stats["max"] == hi and stats["count"] == manifest["metrics"]["split"]["train_rows"]
    assert manifest["schema"]["features"][2]["nullable"] is True
    assert manifest["schema"]["features"][6]["categories"] == {"1": "USA", "2": "Europe", "3": "Japan"}
    assert sum(manifest["training_stats"]["origin"]["shares"].values()) == pytest.approx(1.0)
    assert sum(manifest["training_stats"]["weight"]["bin_counts"]) == manifest["metrics"]["split"]["train_rows"]


def test_metrics_meet_the_bar(manifest):
    m = manifest["metrics"]
    chosen, base = m["chosen"], m["baseline"]
    assert m["task"] == manifest["model"]["task"] == "regression" and m["score"] == "mae"
    assert m["split"]["cv_folds"] == 5 and len(chosen["cv_folds"]) == 5
    assert chosen["cv_mean"] <= 2.0
    assert base["family"] == "linear" and chosen["cv_mean"] <= 0.85 * base["cv_mean"]
    assert m["improvement_over_baseline"] >= 0.15
    assert 0 < chosen["holdout"]["mae"] < chosen["holdout"]["rmse"] < 4
    # auto: every family was searched on the same folds and the lowest CV MAE won
    cands = m["tuning"]["candidates"]
    assert {c["family"] for c in cands} == {"linear", "mlp", "gbm", "forest", "hgb"}
    assert chosen["cv_mean"] == min(c["cv_mean"] for c in cands)
    assert manifest["model"]["family"] == chosen["family"]
    assert m["split"]["train_rows"] + m["split"]["holdout_rows"] == manifest["data"]["rows"] == 398


def test_every_artifact_hash_and_size_match(bundle_dir, manifest):
    expected = {"onnx", "tflite_float32", "tflite_float16", "tflite_int8", "tfjs", "golden",
                "reference_pickle"}
    assert expected <= set(manifest["artifacts"])
    assert any(a["kind"] == "tfjs_weights" for a in manifest["artifacts"].values())
    for name, a in manifest["artifacts"].items():
        path = bundle_dir / a["path"]
        assert path.stat().st_size == a["bytes"], name
        assert sha256_file(path) == a["sha256"], name


def test_golden_set_covers_what_it_must(bundle_dir, manifest):
    from mpgpack.export.golden import N_RANDOM, TOLERANCE   # imports scikit-learn: not at collection
    raw = json.loads((bundle_dir / "golden.json").read_text())
    groups = raw["groups"]
    assert groups.count("random") >= N_RANDOM
    assert groups.count("holdout") == manifest["metrics"]["split"]["holdout_rows"]
    for g in ("missing_horsepower", "origin", "extremes"):
        assert g in groups
    hp = FEATURE_NAMES.index("horsepower")
    missing_rows = [r for r, g in zip(raw["inputs"], groups) if g == "missing_horsepower"]
    assert missing_rows and all(r[hp] is None for r in missing_rows)  # JSON has no NaN
    assert "NaN" not in (bundle_dir / "golden.json").read_text()
    origins = {r[6] for r in raw["inputs"]}
    assert origins == {1.0, 2.0, 3.0}
    extremes = [r for r, g in zip(raw["inputs"], groups) if g == "extremes"]
    for i, f in enumerate(FEATURES):  # the hard limits of every number feature appear
        if f.is_category:
            continue
        assert any(r[i] == f.minimum for r in extremes) and any(r[i] == f.maximum for r in extremes)
    assert raw["tolerance"] == TOLERANCE == 1e-4


@pytest.mark.parametrize("name, runner", [("onnx", OnnxRunner), ("tflite_float32", LiteRTRunner)])
def test_python_runtime_parity(bundle_dir, name, runner):
    bundle = open_bundle(bundle_dir)
    golden = bundle.golden()
    pred = runner(bundle.artifact(name)).predict(golden.X)
    err = np.abs(pred - golden.expected)
    assert err.max() <= 1e-4
    assert pred.shape == (len(golden.expected),)
    # NaN horsepower is imputed inside the artifact, not propagated
    assert np.isfinite(pred).all()


def test_tfjs_parity_in_node(bundle_dir):
    golden = open_bundle(bundle_dir).golden()
    pred, info = tfjs_node_predict(bundle_dir / "tfjs", golden.X)
    assert info["runtime"] == "tfjs-node" and info["version"] == "4.22.0"
    assert np.abs(pred - golden.expected).max() <= 1e-4


def test_parity_report_in_manifest(manifest):
    parity = manifest["parity"]
    for name in FLOAT32_ARTIFACTS:
        assert parity[name]["gated"] and parity[name]["passed"]
        assert parity[name]["max_abs_error"] <= 1e-4
    for name in ("tflite_float16", "tflite_int8"):
        assert not parity[name]["gated"]
        assert "holdout_mae_change" in parity[name] and parity[name]["rows"] > 1000
    assert manifest["artifacts"]["tflite_float16"]["weight_dtypes"].get("float16", 0) > 0


def test_parity_gate_fails_beyond_tolerance(bundle_dir):
    bundle = open_bundle(bundle_dir)
    golden = bundle.golden()
    report = evaluate_artifacts({"onnx": bundle.artifact("onnx")}, golden.X,
                                golden.expected + 1e-3, golden.actual, 1e-4, {"onnx"})
    assert report["onnx"]["passed"] is False and report["onnx"]["max_abs_error"] > 9e-4


def test_verify_passes_then_names_a_tampered_file(bundle_copy):
    ok = run_cli("verify", str(bundle_copy))
    assert ok.returncode == 0, ok.stderr
    assert "verify: OK" in ok.stdout and "onnxruntime" in ok.stdout and "ai-edge-litert" in ok.stdout

    model = bundle_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    bad = run_cli("verify", str(bundle_copy))
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.onnx does not match its sha256" in lines[0]
    assert "Traceback" not in bad.stderr


def test_verify_detects_a_tampered_tfjs_shard(bundle_copy):
    shard = next((bundle_copy / "tfjs").glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")
    bad = run_cli("verify", str(bundle_copy))
    assert bad.returncode == 1 and f"tfjs/{shard.name} does not match" in bad.stderr


def test_verify_of_a_missing_bundle_is_one_clear_line(tmp_path):
    res = run_cli("verify", str(tmp_path / "nowhere"))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "neither a bundle" in res.stderr


def test_build_with_bad_data_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.data"
    bad.write_text("18.0 8 307.0 130.0 3504. 12.0 70\n")
    res = run_cli("build", "--data", str(bad), "--out", str(tmp_path / "dist"))
    assert res.returncode == 1
    assert f"{bad}:1: expected 9 fields" in res.stderr and "Traceback" not in res.stderr
    assert not list((tmp_path / "dist").glob("mpg-*"))  # nothing half-written


def test_same_seed_same_version_other_seed_other_version(manifest, tmp_path):
    from mpgpack.export.build import build_bundle
    again = build_bundle(out=tmp_path / "a", seed=0, packers=[])
    m2 = json.loads((again / "manifest.json").read_text())
    assert m2["model"]["version"] == manifest["model"]["version"]
    for name in ("onnx", "golden", "tflite_float32"):
        assert m2["artifacts"][name]["sha256"] == manifest["artifacts"][name]["sha256"], name
    assert (tmp_path / "a" / "CURRENT").read_text().split()[0] == again.name
    other = build_bundle(out=tmp_path / "b", seed=1, packers=[])
    assert other.name != again.name
