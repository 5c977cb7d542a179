"""Presenting a drift report: a text table (terminal) and an HTML page with histograms.

The HTML page draws one PNG per feature with matplotlib (Agg backend, imported only when a
page is written: this is a tool for people, not part of the serving path) and inlines them as
base64, so the report is one self-contained file.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np


def _f(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table_rows(report: dict) -> list[list[str]]:
    """[feature, n, PSI, PSI limit, KS, p-value, status] per test, as strings."""
    rows = []
    for name, f in report["features"].items():
        if f["kind"] == "number":
            rows.append([name, str(f["n"]), _f(f["psi"], ".4f"), _f(f["psi_threshold"], ".4f"),
                         _f(f["ks_stat"], ".3f"), _f(f["p_value"], ".2e"), f["status"]])
        else:
            rows.append([f"{name} (shares)", str(f["n"]), _f(f["psi"], ".4f"), "-",
                         f"chi2 {_f(f['chi2'], '.1f')}", _f(f["p_value"], ".2e"), f["status"]])
    for name, m in report["missing"].items():
        rows.append([f"{name} missing", str(m["n"]),
                     f"{_f(m['rate'], '.3f')} vs {m['training_rate']:.3f}", "-", "Fisher",
                     _f(m["p_value"], ".2e"), m["status"]])
    return rows


HEADER = ["feature", "n", "PSI", "PSI limit", "KS D", "p-value", "status"]


def format_table(report: dict) -> str:
    rows = [HEADER, *table_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))).rstrip() for r in rows]
    t = report["thresholds"]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", f"window: {report['n']} rows (of {report['window']}); minimum {t['min_count']}; "
                  f"alpha per test {t['alpha_per_test']:.2e} = {t['family_alpha']} / {t['tests']} "
                  f"tests (Bonferroni)",
              f"overall: {report['status'].upper()}"
              + (f" — alarms: {', '.join(report['alarms'])}" if report["alarms"] else "")]
    return "\n".join(lines)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def feature_plots(report: dict, manifest: dict, X_recent: np.ndarray) -> dict[str, str]:
    """{feature: base64 PNG}: training vs recent, as densities over shared bins / shares."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = manifest["training_stats"]
    out = {}
    for i, feat in enumerate(manifest["schema"]["features"]):
        name = feat["name"]
        s, r = stats[name], report["features"][name]
        recent = X_recent[:, i].astype(np.float64)
        recent = recent[~np.isnan(recent)]
        fig, ax = plt.subplots(figsize=(5.2, 2.8))
        if feat["kind"] == "category":
            cats = sorted(s["shares"], key=float)
            labels = [feat.get("categories", {}).get(c, c) for c in cats]
            x = np.arange(len(cats))
            ax.bar(x - 0.2, [s["shares"][c] for c in cats], 0.4, label="training", color="#8aa")
            ax.bar(x + 0.2, [np.mean(recent == float(c)) if len(recent) else 0 for c in cats], 0.4,
                   label=f"recent (n={len(recent)})", color="#d62")
            ax.set_xticks(x, labels)
            ax.set_ylabel("share")
        else:
            train = np.asarray(s["sample"], dtype=np.float64)
            both = np.concatenate([train, recent])
            edges = np.histogram_bin_edges(both, bins=20)
            ax.hist(train, bins=edges, density=True, alpha=0.55, label=f"training (n={len(train)})",
                    color="#8aa")
            if len(recent):
                ax.hist(recent, bins=edges, density=True, alpha=0.55,
                        label=f"recent (n={len(recent)})", color="#d62")
            ax.set_xlabel(f"{name} ({feat['unit']})" if feat.get("unit") else name)
            ax.set_ylabel("density")
        ax.set_title(f"{name}: {r['status']}", color="#b00" if r["alarm"] else "#222")
        ax.legend(fontsize=8)
        out[name] = _png(fig)
        plt.close(fig)
    return out


def render_html(report: dict, manifest: dict, X_recent: np.ndarray, sources: list[str],
                notes: list[str]) -> str:
    e = html.escape
    plots = feature_plots(report, manifest, X_recent)
    rows = "".join(
        f"<tr class='{e(r[-1].replace(' ', '-'))}'>" + "".join(f"<td>{e(c)}</td>" for c in r)
        + "</tr>" for r in table_rows(report))
    head = "".join(f"<th>{e(h)}</th>" for h in HEADER)
    t = report["thresholds"]
    figures = "".join(f"<figure><img alt='{e(n)}: training vs recent' "
                      f"src='data:image/png;base64,{p}'></figure>" for n, p in plots.items())
    note_list = "".join(f"<li>{e(n)}</li>" for n in notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mpgpack drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .25rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.drift td {{ background: #fdd; }} tr.not-enough-data td {{ color: #888; }}
.status {{ font-size: 1.3rem; font-weight: bold; }}
figure {{ display: inline-block; margin: .5rem; }}
</style></head><body>
<h1>Input drift: recent requests vs training data</h1>
<p class="status" id="status">{e(report['status'].upper())}{e(' — alarms: ' + ', '.join(report['alarms'])) if report['alarms'] else ''}</p>
<p>Model version {e(str(report['model_version']))}; {report['n']} most recent rows (window {report['window']},
minimum {t['min_count']}) from {e(', '.join(sources))}.</p>
<table id="drift"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<p><small>{e(t['rule'])}. alpha per test = {t['alpha_per_test']:.2e} ({t['family_alpha']} over {t['tests']} tests).</small></p>
{f'<ul>{note_list}</ul>' if notes else ''}
<h2>Per feature: training vs recent</h2>
{figures}
</body></html>
"""
