"""Writes results.json, REPORT.md and the PNG plots from one run's results. No typed-in numbers."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt_us(us: float) -> str:
    return f"{us:,.1f} µs" if us < 1000 else f"{us / 1000:,.2f} ms"


def _plots(results: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    lat = results.get("latency")
    if lat:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
        for name, r in lat.items():
            ns = [int(n) for n in r["batches"]]
            ax[0].plot(ns, [r["batches"][str(n)]["median_us"] for n in ns], marker="o", label=name)
            ax[1].plot(ns, [r["batches"][str(n)]["rows_per_s"] for n in ns], marker="o", label=name)
        for a, title, unit in ((ax[0], "Latency per call (median)", "µs"),
                               (ax[1], "Throughput", "rows/s")):
            a.set_xscale("log"), a.set_yscale("log"), a.set_xlabel("batch size (rows)")
            a.set_ylabel(unit), a.set_title(title), a.grid(True, which="both", alpha=0.3)
        ax[0].legend()
        fig.tight_layout()
        fig.savefig(out / "latency_vs_batch.png", dpi=110)
        plt.close(fig)
        written.append("latency_vs_batch.png")
    parity = results.get("parity")
    if parity:
        names = list(parity)
        fig, ax = plt.subplots(figsize=(10, 4.2))
        vals = [max(parity[n]["max_abs_error"], 1e-9) for n in names]
        model = results.get("model") or {"unit": "MPG", "tolerance": 1e-4}
        ax.bar(names, vals, color=["#c44" if v > model["tolerance"] else "#48a" for v in vals])
        unit = f" {model['unit']}" if model.get("unit") else ""
        what = "probability" if model.get("task") == "classification" else "output"
        ax.axhline(model["tolerance"], color="k", ls="--", lw=1,
                   label=f"float32 tolerance {model['tolerance']:g}{unit}")
        ax.set_yscale("log"), ax.set_ylabel(f"max abs error vs float64 sklearn ({unit.strip() or what})")
        ax.set_title("Parity per artifact and runtime"), ax.legend()
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        fig.tight_layout()
        fig.savefig(out / "parity.png", dpi=110)
        plt.close(fig)
        written.append("parity.png")
    service = results.get("service")
    if service and service.get("servers"):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for server, runs in service["servers"].items():
            conc = sorted(int(c) for c in runs)
            ax.plot(conc, [runs[str(c)]["requests_per_s"] for c in conc], marker="o", label=server)
        ax.set_xscale("log", base=2), ax.set_yscale("log"), ax.set_xlabel("concurrent clients")
        ax.set_ylabel("requests/s"), ax.set_title(f"HTTP throughput, single {_noun(results)} per request")
        ax.grid(True, which="both", alpha=0.3), ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput_vs_concurrency.png", dpi=110)
        plt.close(fig)
        written.append("throughput_vs_concurrency.png")
    return written


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _headline(results: dict) -> list[str]:
    if not results.get("ratios"):
        return []
    return ["## Headline", ""] + _table(["comparison", "value"],
                                        [[k, v["text"]] for k, v in results["ratios"].items()])


def _parity(results: dict) -> list[str]:
    if not results.get("parity"):
        return []
    model = results.get("model") or {}
    if model.get("task") == "classification":     # errors over every probability, and classes
        rows = [[n, p.get("runtime", ""), f"{p['max_abs_error']:.2e}", f"{p['mean_abs_error']:.2e}",
                 f"{p['class_agreement']:.2%}" if p.get("class_agreement") is not None else "",
                 f"{p['holdout_accuracy']:.4f}" if p.get("holdout_accuracy") is not None else "",
                 p.get("rows", "")] for n, p in results["parity"].items()]
        head = ["artifact / path", "runtime", "max abs err (probabilities)", "mean abs err",
                "class agreement", "hold-out accuracy", "rows"]
    else:
        rows = [[n, p.get("runtime", ""), f"{p['max_abs_error']:.2e}", f"{p['mean_abs_error']:.2e}",
                 f"{p['holdout_mae']:.4f}" if p.get("holdout_mae") is not None else "",
                 p.get("rows", "")] for n, p in results["parity"].items()]
        head = ["artifact / path", "runtime", "max abs err", "mean abs err", "hold-out MAE", "rows"]
    return (["## Parity against the float64 scikit-learn reference (golden set)", ""]
            + _table(head, rows) + _not_applicable(results))


def _not_applicable(results: dict) -> list[str]:
    """Paths this model has none of (the numpy floor of a tree ensemble), and why."""
    skipped = results.get("not_applicable") or {}
    return [f"{name}: {why}." for name, why in skipped.items()] + ([""] if skipped else [])


def _latency(results: dict) -> list[str]:
    lat = results.get("latency")
    if not lat:
        return []
    batches = list(next(iter(lat.values()))["batches"])
    header = ["runtime"] + [f"{b} rows" for b in batches]
    times = [[n] + [f"{_fmt_us(r['batches'][b]['median_us'])} / {_fmt_us(r['batches'][b]['p99_us'])}"
                    for b in batches] for n, r in lat.items()]
    rates = [[n] + [f"{r['batches'][b]['rows_per_s']:,.0f}" for b in batches] for n, r in lat.items()]
    return (["## In-process latency (median / p99 per call; warm-up excluded)", ""]
            + _table(header, times) + ["Rows per second (median):", ""] + _table(header, rates)
            + _not_applicable(results))


def _cold_start(results: dict) -> list[str]:
    if not results.get("cold_start"):
        return []
    rows = [[n, f"{c['first_output_s']:.3f} s", f"{c['peak_rss_mb']:.0f} MB", c.get("what", "")]
            for n, c in results["cold_start"].items()]
    return (["## Cold start (process start to first prediction) and peak RSS, pinned to one core", ""]
            + _table(["process", "cold start", "peak RSS", "what"], rows))


def _service(results: dict) -> list[str]:
    lines = []
    s = results.get("service")
    if s:
        rows = [[server, conc, f"{r['requests_per_s']:,.0f}", f"{r['p50_ms']:.2f} ms",
                 f"{r['p99_ms']:.2f} ms", r.get("errors", 0)]
                for server, runs in s.get("servers", {}).items() for conc, r in runs.items()]
        lines += ["## HTTP service on loopback", ""]
        lines += _table(["server", "clients", "req/s", "p50", "p99", "errors"], rows)
        lines += [s["notes"], ""] if s.get("notes") else []
    batch = _get(results, "service", "hundred_cars_per_request") or {}
    if batch:
        rows = [[server, conc, f"{r['requests_per_s']:,.0f}", f"{r['cars_per_s']:,.0f}",
                 f"{r['p50_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms", r.get("errors", 0)]
                for server, runs in batch.items() for conc, r in runs.items()]
        noun = _noun(results)
        lines += [f"100 {noun}s per request:", ""]
        lines += _table(["server", "clients", "req/s", f"{noun}s/s", "p50", "p99", "errors"], rows)
    return lines


def _noun(results: dict) -> str:
    """What one input row is called: a car for the MPG model (its report unchanged), else a row."""
    return "car" if (results.get("model") or {"name": "mpg"})["name"] == "mpg" else "row"


def _unit(results: dict) -> str:
    unit = (results.get("model") or {"unit": "MPG"}).get("unit")
    return f" {unit}" if unit else ""


def _v2_protocols(results: dict) -> list[str]:
    p = results.get("v2_protocols")
    if not p:
        return []
    rows = [[r["path"], r["cars_per_request"], r["clients"], f"{r['requests_per_s']:,.0f}",
             f"{r['p50_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms", r["request_bytes"], r.get("errors", 0)]
            for r in p["runs"]]
    return (["## V2 protocol: HTTP JSON, HTTP binary and gRPC on one server", ""]
            + _table(["path", f"{_noun(results)}s/request", "clients", "req/s", "p50", "p99", "request bytes",
                      "errors"], rows)
            + [f"{p['notes']} Outputs of the three paths agree within "
               f"{p['max_abs_diff_between_paths']:.1e}{_unit(results)}.", ""])


def _peers(results: dict) -> list[str]:
    p = _get(results, "service", "peers")
    if not p:
        return []
    from mpgpack.bench.peer_load import best_peer
    points = list(next(iter(p["endpoints"].values())))
    head = [f"{c.split('x')[0]} car{'s' if c.split('x')[0] != '1' else ''}: "
            f"{c.split('x')[1]} client{'s' if c.split('x')[1] != '1' else ''}" for c in points]

    def cell(r: dict, cars: int) -> str:
        rate = f"{r['requests_per_s']:,.0f}" + (f" = {r['cars_per_s'] / 1000:,.0f}k cars/s"
                                                if cars > 1 else "")
        errors = f", {r['errors']} errors" if r["errors"] else ""
        return f"{rate} ({r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms{errors})"

    rows = [[label] + [cell(pts[c], int(c.split("x")[0])) for c in points]
            for label, pts in p["endpoints"].items()]
    rows.append(["best peer"] + [(best_peer(p, c) or ("",))[0] for c in points])
    servers = [[name, s["setting"], f"{s['cold_start_s']:.2f} s", f"{s['rss_total_mb']:.0f} MB",
                s["processes"], f"{s['rss_max_process_mb']:.0f} MB", f"{s['golden_max_abs_error']:.1e}"]
               for name, s in p["servers"].items()]
    return (["## Against the servers users would pick (same model.onnx, interleaved)", "",
             "req/s per endpoint (p50 / p99 latency); with 100 cars per request also cars/s "
             "(req/s × 100). The binary rows send the V2 binary tensor extension, as "
             "tritonclient does by default.", ""]
            + _table(["endpoint"] + head, rows)
            + _table(["server", "setting", "cold start (to first prediction)", "RSS (tree)",
                      "processes", "largest process", "golden max abs err"], servers)
            + [p["notes"] + f" Load average at end: {p['loadavg_at_end'][0]:.1f}.", ""])


def _edge_csv(results: dict) -> list[str]:
    if not results.get("edge_csv"):
        return []
    rows = [[n, f"{r['rows']:,}", f"{r['wall_s']:.2f} s", f"{r['rows_per_s_wall']:,.0f}",
             f"{r['rows_per_s_runner']:,.0f}"] for n, r in results["edge_csv"].items()]
    return (["## Edge runner, CSV throughput", ""]
            + _table(["runner (one core)", "rows", "wall, start to exit", "rows/s (wall)",
                      "rows/s (runner's own count)"], rows))


def _browser(results: dict) -> list[str]:
    b = results.get("browser")
    if not b:
        return []
    rows = [[name, r["first_load"]["requests"], f"{r['first_load']['bytes_gzip'] / 1024:,.1f} KB",
             f"{r['first_load']['bytes_raw'] / 1024:,.1f} KB", f"{r['first_prediction_ms']:.0f} ms",
             f"{r['model_load_ms']:.0f} ms", f"{r['predict_1_row_ms']:.3f} ms",
             f"{r['predict_1000_rows_ms']:.2f} ms"] for name, r in b["backends"].items()]
    repeat_ms = b.get("repeat_visit", {}).get("first_prediction_ms", float("nan"))
    return ([f"## Browser: TF.js in headless {b.get('browser', 'Chromium')}", ""]
            + _table(["backend", "requests", "first load (gzip)", "raw",
                      "navigation → first prediction", "model load", "1 prediction (median)",
                      "1,000 rows (median)"], rows)
            + [f"Default backend: {b.get('default_backend')}. Repeat visit through the service "
               f"worker: first prediction in {repeat_ms:.0f} ms.", ""])


def _failed_sections(results: dict) -> list[str]:
    if not results.get("errors"):
        return []
    return ["## Sections that failed", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()] + [""]


# The report's sections in order; each returns its Markdown lines ([] when the run has no data).
SECTIONS = [_headline, _parity, _latency, _cold_start, _service, _peers, _v2_protocols, _edge_csv,
            _browser,
            _failed_sections]


def _model_text(results: dict) -> str:
    """", model iris (classification: setosa, versicolor, virginica)"; nothing for older results."""
    model = results.get("model")
    if not model:
        return ""
    what = (f"classification: {', '.join(model['classes'])}" if model["task"] == "classification"
            else f"regression of {model['target']}")
    return f", model {model['name']} ({what}, {model['features']} features)"


def markdown(results: dict, plots: list[str]) -> str:
    m = results["machine"]
    lines = ["# mpgpack benchmark report", "",
             f"Run {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
             f"Python {m['python']}; bundle `mpg-{results['bundle']['version']}`{_model_text(results)}; "
             f"mode: {'quick' if results['quick'] else 'full'}; took {results['seconds']:.0f} s. "
             "Every number below was measured by this run (`mpgpack bench`).", ""]
    for section in SECTIONS:
        lines += section(results)
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    lines += ["## Machine", "", "```json", json.dumps(m, indent=1), "```", ""]
    return "\n".join(lines)


def write_report(results: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(results, out)
    results["plots"] = plots
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "REPORT.md").write_text(markdown(results, plots))
    return out / "REPORT.md"
