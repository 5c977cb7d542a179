"""Prometheus exposition of the drift report, the prediction-log counters and reloads."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mpgpack.core.drift import DriftMonitor
from mpgpack.targets.monitor.metrics import MonitorMetrics


def samples(registry) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "model_version")))] = s.value
    return out


class FakeSlotCounts:      # only the two counters MonitorMetrics reads from a ModelSlot
    reloads, failed_reloads = 3, 1


def test_gauges_follow_the_report_and_counters_only_go_up(small_manifest, mpg_X):
    X = mpg_X[:300].copy()
    X[:, 3] *= 1.2
    mon = DriftMonitor(small_manifest)
    mon.observe(X)
    report = mon.report()
    registry = CollectorRegistry()
    mm = MonitorMetrics(registry)
    mm.update(report, {"written": 10, "dropped": 2, "errors": 1, "queued": 4, "failing": True},
              FakeSlotCounts())
    s = samples(registry)
    assert s[("mpg_drift_alarm", ())] == 1 and s[("mpg_drift_window_rows", ())] == 300
    assert s[("mpg_drift_feature_alarm", (("feature", "weight"),))] == 1
    assert s[("mpg_drift_psi", (("feature", "weight"),))] == report["features"]["weight"]["psi"]
    assert s[("mpg_drift_p_value", (("feature", "origin"),))] == report["features"]["origin"]["p_value"]
    assert s[("mpg_drift_missing_rate", (("feature", "horsepower"),))] == report["missing"]["horsepower"]["rate"]
    assert s[("mpg_prediction_log_written_total", ())] == 10
    assert s[("mpg_prediction_log_failing", ())] == 1
    assert s[("mpg_model_reloads_total", (("result", "ok"),))] == 3
    # the log's totals grow: the counters follow; a restarted log (smaller totals) never lowers them
    mm.update(None, {"written": 25, "dropped": 2, "errors": 1, "queued": 0, "failing": False})
    mm.update(None, {"written": 5, "dropped": 0, "errors": 0, "queued": 0, "failing": False})
    s = samples(registry)
    assert s[("mpg_prediction_log_written_total", ())] == 25
    assert s[("mpg_prediction_log_dropped_total", ())] == 2
    assert s[("mpg_prediction_log_failing", ())] == 0
