"""Prometheus metrics for the prediction log, the drift report and reloads.

The API calls `MonitorMetrics.update(...)` just before it renders /metrics. prometheus-client
(the API's dependency, not this package's) is imported when the class is built, so the rest of
targets.monitor stays stdlib + numpy. With several worker processes (prometheus-client's
multiprocess mode), the gauges keep one series per live worker ("liveall"): each worker has
its own window of recent requests; the counters are summed over workers.
"""
from __future__ import annotations


class MonitorMetrics:
    def __init__(self, registry=None):
        from prometheus_client import REGISTRY, Counter, Gauge
        r = registry if registry is not None else REGISTRY
        g = dict(registry=r, multiprocess_mode="liveall")
        self.drift_alarm = Gauge("mpg_drift_alarm", "1 if any drift test of the recent-input "
                                 "window alarms, else 0", ["model_version"], **g)
        self.drift_enough = Gauge("mpg_drift_enough_data", "1 if the window holds enough rows "
                                  "for the drift tests, else 0", ["model_version"], **g)
        self.window_rows = Gauge("mpg_drift_window_rows", "Rows in the drift window",
                                 ["model_version"], **g)
        self.feature_alarm = Gauge("mpg_drift_feature_alarm", "1 if this feature's drift test "
                                   "alarms", ["model_version", "feature"], **g)
        self.psi = Gauge("mpg_drift_psi", "Population stability index of the window vs training",
                         ["model_version", "feature"], **g)
        self.psi_threshold = Gauge("mpg_drift_psi_threshold", "PSI above which the feature "
                                   "alarms (for this window size)", ["model_version", "feature"], **g)
        self.ks = Gauge("mpg_drift_ks_statistic", "Two-sample Kolmogorov-Smirnov statistic, "
                        "window vs training sample", ["model_version", "feature"], **g)
        self.p_value = Gauge("mpg_drift_p_value", "p-value of the feature's drift test (KS, "
                             "chi-square or Fisher)", ["model_version", "feature"], **g)
        self.missing_rate = Gauge("mpg_drift_missing_rate", "Share of missing values in the window",
                                  ["model_version", "feature"], **g)
        self.serving = Gauge("mpg_model_serving", "1 for the model version this process serves, "
                             "0 for versions it served before a reload", ["model_version"], **g)
        self.log_failing = Gauge("mpg_prediction_log_failing", "1 while the prediction log "
                                 "cannot be written", **g)
        self.log_queued = Gauge("mpg_prediction_log_queued", "Records waiting to be written", **g)
        c = dict(registry=r)
        self.log_written = Counter("mpg_prediction_log_written", "Prediction records written", **c)
        self.log_dropped = Counter("mpg_prediction_log_dropped", "Prediction records lost (queue "
                                   "full or write failed)", **c)
        self.log_errors = Counter("mpg_prediction_log_errors", "Failed prediction-log writes", **c)
        self.reloads = Counter("mpg_model_reloads", "Model reloads", ["result"], **c)
        self._last = {"written": 0, "dropped": 0, "errors": 0, "reloads": 0, "failed": 0}
        self._versions: set[str] = set()      # every version this process has served
        self._drift_version: str | None = None
        self._drift_series: set[tuple] = set()  # (gauge, labels) set for _drift_version

    def _set(self, gauge, labels: tuple, value: float) -> None:
        gauge.labels(*labels).set(value)
        self._drift_series.add((gauge, labels))

    def _forget_drift_series(self) -> None:
        # After a reload the drift gauges follow the new version; the old version's series are
        # removed, so a dashboard does not show a frozen window as if it were live. (With
        # several workers prometheus-client keeps a removed series' last value in its files
        # until the worker restarts; mpg_model_serving says which version is live.)
        for gauge, labels in self._drift_series:
            try:
                gauge.remove(*labels)
            except KeyError:
                pass
        self._drift_series = set()

    def _advance(self, counter, key: str, value: int) -> None:
        # Our components keep plain totals; a Counter only goes up, so add the difference.
        delta = value - self._last[key]
        if delta > 0:
            counter.inc(delta)
            self._last[key] = value

    def update(self, drift_report: dict | None = None, log_stats: dict | None = None,
               slot=None) -> None:
        if drift_report is not None:
            v = str(drift_report.get("model_version"))
            if v != self._drift_version:
                self._forget_drift_series()
                self._drift_version = v
            self._set(self.drift_alarm, (v,), 1 if drift_report["alarm"] else 0)
            self._set(self.drift_enough, (v,), 0 if drift_report["status"] == "not enough data" else 1)
            self._set(self.window_rows, (v,), drift_report["n"])
            for name, f in drift_report["features"].items():
                self._set(self.feature_alarm, (v, name), 1 if f["alarm"] else 0)
                for gauge, key in ((self.psi, "psi"), (self.psi_threshold, "psi_threshold"),
                                   (self.ks, "ks_stat"), (self.p_value, "p_value")):
                    if f.get(key) is not None:
                        self._set(gauge, (v, name), f[key])
            for name, m in drift_report["missing"].items():
                if m["rate"] is not None:
                    self._set(self.missing_rate, (v, name), m["rate"])
                if m["p_value"] is not None:
                    self._set(self.p_value, (v, f"{name}_missing"), m["p_value"])
                self._set(self.feature_alarm, (v, f"{name}_missing"), 1 if m["alarm"] else 0)
        if log_stats is not None:
            self.log_failing.set(1 if log_stats["failing"] else 0)
            self.log_queued.set(log_stats["queued"])
            self._advance(self.log_written, "written", log_stats["written"])
            self._advance(self.log_dropped, "dropped", log_stats["dropped"])
            self._advance(self.log_errors, "errors", log_stats["errors"])
        if slot is not None:
            version = getattr(slot, "version", None)
            if version is not None:
                self._versions.add(version)
                for seen in self._versions:
                    self.serving.labels(seen).set(1 if seen == version else 0)
            self._advance(self.reloads.labels("ok"), "reloads", slot.reloads)
            self._advance(self.reloads.labels("failed"), "failed", slot.failed_reloads)
