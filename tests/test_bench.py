"""`mpgpack bench --quick` runs every section, writes valid JSON, a report and the plots."""
from __future__ import annotations

import json

from tests.helpers import run_cli


def test_bench_quick_writes_every_section(bundle_dir, tmp_path):
    out = tmp_path / "bench"
    res = run_cli("bench", "--quick", "--bundle", str(bundle_dir), "--out", str(out), timeout=400)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {}
    for key in ("machine", "parity", "latency", "cold_start", "ratios", "browser", "service", "edge_csv"):
        assert results[key], key
    assert results["machine"]["cores"] >= 1 and results["machine"]["packages"]["onnxruntime"]
    # parity: every artifact in its runtime, float32 ones within tolerance
    parity = results["parity"]
    for key in ("onnx (onnxruntime)", "tflite_float32 (ai-edge-litert)", "tfjs (tfjs-node)",
                "HTTP API (onnxruntime)", "edge runner (LiteRT)", "tfjs in Chromium (cpu)",
                "tfjs in Chromium (wasm)", "sklearn_float32", "numpy_floor"):
        assert parity[key]["max_abs_error"] <= 1e-4, key
    for key in ("tflite_float16 (ai-edge-litert)", "tflite_int8 (ai-edge-litert)"):
        assert parity[key]["holdout_mae"] > 0
    # latency: each runtime at each batch size, with a median, a p99 and a throughput
    for runtime in ("sklearn", "onnxruntime", "litert", "numpy_floor"):
        batches = results["latency"][runtime]["batches"]
        assert set(batches) == {"1", "10", "100", "1000", "10000"}
        for b in batches.values():
            assert 0 < b["median_us"] <= b["p99_us"] and b["rows_per_s"] > 0
    cold = results["cold_start"]
    assert cold["sklearn (pickle)"]["peak_rss_mb"] > 50
    for name in ("API (mpgpack serve, 1 worker)", "edge runner (LiteRT)", "edge runner (full TensorFlow)"):
        assert 0 < cold[name]["first_output_s"] < 60 and cold[name]["peak_rss_mb"] > 5, name
    # the same runner, with and without TensorFlow: TF's footprint must show
    assert cold["edge runner (full TensorFlow)"]["peak_rss_mb"] > 2 * cold["edge runner (LiteRT)"]["peak_rss_mb"]
    servers = results["service"]["servers"]
    for server in ("mpgpack API", "Flask + sklearn baseline"):
        assert set(servers[server]) == {"1", "8", "32"}
        for run in servers[server].values():
            assert run["errors"] == 0 and run["requests"] > 0 and run["p50_ms"] <= run["p99_ms"]
    v2 = results["v2_protocols"]      # HTTP JSON, HTTP binary and gRPC on one server
    assert {(r["path"], r["cars_per_request"], r["clients"]) for r in v2["runs"]} == {
        (p, n, c) for p in ("HTTP JSON", "HTTP binary", "gRPC") for n in (1, 100) for c in (1, 8, 32)}
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in v2["runs"])
    assert v2["request_bytes"]["100"]["gRPC"] < v2["request_bytes"]["100"]["HTTP JSON"]
    for backend, b in results["browser"]["backends"].items():
        assert b["first_load"]["bytes_gzip"] < b["first_load"]["bytes_raw"]
        assert b["first_prediction_ms"] > 0 and b["predict_1_row_ms"] > 0, backend
    assert "API throughput vs baseline, single car, 32 clients" in results["ratios"]
    assert "edge cold start: LiteRT vs full TensorFlow" in results["ratios"]
    ratio = results["ratios"]["single-row latency: onnxruntime vs sklearn"]
    assert ratio["value"] > 1
    report = (out / "REPORT.md").read_text()
    assert ratio["text"] in report  # the report shows the run's own numbers
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"latency_vs_batch.png", "parity.png", "throughput_vs_concurrency.png"} <= set(results["plots"])


def _point(rps: float, p99: float = 5.0, cars: int = 1) -> dict:
    return {"requests_per_s": rps, "cars_per_s": rps * cars, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": p99,
            "max_ms": 9.0, "errors": 0, "repetitions": 2, "requests_per_s_each": [rps, rps]}


def test_ratios_and_report_compare_with_the_best_peer_per_point(tmp_path):
    """The peers' table: each mpgpack row is divided by the fastest peer at that point (which
    differs per point), never by the weakest; the report shows every endpoint and server."""
    from mpgpack.bench.ratios import ratios
    from mpgpack.bench.report import markdown
    server = {"setting": "s", "cold_start_s": 1.5, "golden_max_abs_error": 1e-6, "golden_cars": 9,
              "endpoints": [], "rss_total_mb": 300.0, "rss_max_process_mb": 120.0, "processes": 3}
    peers = {"tool": "wrk", "duration_s": 5, "repetitions": 2, "loadavg_at_end": (3.0, 3.0, 3.0),
             "notes": "interleaved.", "servers": {"mpgpack": server, "KServe": server},
             "endpoints": {"mpgpack /predict": {"1x8": _point(9000), "100x8": _point(3000, cars=100)},
                           "KServe V1": {"1x8": _point(3000), "100x8": _point(500, cars=100)},
                           "MLServer V2": {"1x8": _point(1000), "100x8": _point(1500, cars=100)}}}
    results = {"service": {"peers": peers}}
    out = ratios(results)
    one = out["mpgpack /predict vs best peer, 1 car/request, 8 clients"]
    hundred = out["mpgpack /predict vs best peer, 100 cars/request, 8 clients"]
    assert (one["best_peer"], one["value"]) == ("KServe V1", 3.0)
    assert (hundred["best_peer"], hundred["value"]) == ("MLServer V2", 2.0)
    results.update(ratios=out, seconds=1.0, quick=True, bundle={"version": "v"},
                   machine={"date": "d", "cpu": "c", "cores": 2, "memory_gib": 1, "python": "3"})
    report = markdown(results, [])
    assert "## Against the servers users would pick" in report
    assert "| MLServer V2 | 1,000 (1.0 / 5.0 ms) | 1,500 = 150k cars/s (1.0 / 5.0 ms) |" in report
    assert "| best peer | KServe V1 | MLServer V2 |" in report
    assert hundred["text"] in report


# Every path the build gates (float32 artifacts) and every target the benchmark drives; the
# float16 / int8 artifacts are measured too but are not held to the float32 tolerance.
GATED_PATHS = ("onnx (onnxruntime)", "tflite_float32 (ai-edge-litert)", "tfjs (tfjs-node)",
               "sklearn_float32", "HTTP API (onnxruntime)", "edge runner (LiteRT)",
               "tfjs in Chromium (cpu)", "tfjs in Chromium (wasm)")


def test_bench_quick_on_a_classifier_bundle(iris_bundle, tmp_path):
    """Any bundle, not only MPG: a 3-class classifier's probabilities and classes are checked
    in every runtime and over every target, and the service sections load it without errors."""
    from mpgpack.core.bundle import open_bundle
    bundle = open_bundle(iris_bundle)
    tolerance = bundle.golden().tolerance
    out = tmp_path / "bench"
    res = run_cli("bench", "--quick", "--bundle", str(iris_bundle), "--out", str(out), timeout=400)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {}
    for key in ("parity", "latency", "cold_start", "browser", "service", "v2_protocols", "edge_csv"):
        assert results[key], key
    assert results["model"]["task"] == "classification" and len(results["model"]["classes"]) == 3
    parity = results["parity"]
    for key in GATED_PATHS:
        p = parity[key]
        assert p["max_abs_error"] <= tolerance and p["decided_disagreements"] == 0, (key, p)
        assert p["passed"], key
    # the numpy floor is measured where the model is a few matrix products, else says why not
    assert ("numpy_floor" in parity) != ("numpy_floor" in results["not_applicable"])
    # the tutorial's cold start predicts the first golden row (the pipeline answers a class index)
    first = results["cold_start"]["sklearn (pickle)"]["first_line"]
    assert int(float(first)) == int(bundle.golden().expected[0].argmax())
    servers = results["service"]["servers"]
    for server in ("mpgpack API", "Flask + sklearn baseline"):
        assert set(servers[server]) == {"1", "8", "32"}
        assert all(r["errors"] == 0 and r["requests"] > 0 for r in servers[server].values())
    for runs in results["service"]["hundred_cars_per_request"].values():
        assert all(r["errors"] == 0 and r["requests"] > 0 for r in runs.values())
    v2 = results["v2_protocols"]
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in v2["runs"])
    assert v2["max_abs_diff_between_paths"] <= tolerance
    report = (out / "REPORT.md").read_text()
    assert "model iris (classification" in report and "class agreement" in report


def test_peers_refuse_a_model_other_than_mpg(iris_bundle, tmp_path):
    res = run_cli("bench", "--quick", "--peers", "--bundle", str(iris_bundle), "--out", str(tmp_path))
    assert res.returncode != 0
    assert "--peers measures the MPG showcase model only" in res.stderr
    assert "Traceback" not in res.stderr
