"""Rendering the report page from the manifest alone (no data, no model): a pure view.

Every number on the page is printed by `Page.num`, which reads it from the manifest by its
dotted path and writes that path and the exact value beside it (data-key, data-value), so a
test can check each printed figure against the manifest. No script, no fonts, no network:
the page is plain HTML with inline CSS and the PNGs beside it.
"""
from __future__ import annotations

import html
import json

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: white; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem;
margin-top: 2.4rem; } h3 { margin-top: 1.8rem; }
nav a { margin-right: 1rem; } .meta { color: #555; font-size: 13px; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen td { background: #fde2e2; font-weight: 600; } tr.default td { background: #e3f4e3; }
tr.flagged td { background: #fff1cc; } .flag { color: #b00; font-weight: 700; }
img { max-width: 100%; border: 1px solid #eee; margin: .4rem 0; }
.note { background: #f5f7fb; border-left: 4px solid #6b8cce; padding: .5rem .8rem; }
code { background: #f2f2f2; padding: 0 3px; }
"""


def lookup(manifest: dict, key: str):
    """The value at a dotted path ("metrics.tuning.candidates.3.cv_mae_mean")."""
    value = manifest
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class Page:
    def __init__(self, manifest: dict):
        self.m = manifest
        self.parts: list[str] = []

    def add(self, *chunks: str) -> None:
        self.parts.extend(chunks)

    def num(self, key: str, fmt: str = ".3f", scale: float = 1.0, suffix: str = "") -> str:
        value = lookup(self.m, key)
        attrs = f'class="num" data-key="{key}" data-value="{html.escape(json.dumps(value))}"'
        if scale != 1.0:
            attrs += f' data-scale="{scale:g}"'
        shown = value * scale if scale != 1.0 and value is not None else value
        text = "—" if value is None else format(shown, fmt) + suffix
        return f"<span {attrs}>{text}</span>"

    def img(self, plot: str, alt: str) -> str:
        path = self.m["report"]["plots"][plot]
        rel = path.split("/", 1)[1]             # report/img/x.png -> img/x.png
        return f'<img src="{html.escape(rel)}" alt="{html.escape(alt)}" data-plot="{plot}">'


def esc(text) -> str:
    return html.escape(str(text))


def _params_text(p: dict) -> str:
    return ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in p.items())


def _header(pg: Page) -> None:
    m = pg.m
    model, data = m["model"], m["data"]
    git = model.get("git", {}) or {}
    pg.add(f"<h1>Auto MPG model report — mpg-{esc(model['version'])}</h1>",
           f'<p class="meta">built {esc(model["created"])} · git {esc(git.get("commit") or "?")}'
           f'{" (dirty)" if git.get("dirty") else ""} · data <code>{esc(data["source"])}</code> '
           f'sha256 <code>{esc(data["sha256"][:16])}…</code> · {pg.num("data.rows", "d")} rows, '
           f'{pg.num("metrics.split.train_rows", "d")} for training, '
           f'{pg.num("metrics.split.holdout_rows", "d")} held out (seed '
           f'{pg.num("metrics.split.seed", "d")}), {pg.num("metrics.split.cv_folds", "d")}-fold CV '
           f'on the training split</p>',
           '<nav><a href="#summary">Summary</a><a href="#data">Data</a>'
           '<a href="#tuning">Tuning</a><a href="#errors">Where it is wrong</a></nav>')


def _summary(pg: Page) -> None:
    m = pg.m
    t = m["metrics"]["tuning"]
    default = f"metrics.tuning.candidates.{t['default']}"
    flagged = m["report"]["slices"]["flagged"]
    pg.add('<section id="summary"><h2>Summary</h2>',
           "<table><tr><th>model</th><th class='n'>CV MAE (mean ± std)</th>"
           "<th class='n'>hold-out MAE</th><th class='n'>hold-out RMSE</th></tr>",
           f"<tr class='chosen'><td>MLP, chosen settings</td><td class='n'>"
           f"{pg.num('metrics.mlp.cv_mae_mean')} ± {pg.num('metrics.mlp.cv_mae_std')}</td>"
           f"<td class='n'>{pg.num('metrics.mlp.holdout.mae')}</td>"
           f"<td class='n'>{pg.num('metrics.mlp.holdout.rmse')}</td></tr>",
           f"<tr class='default'><td>MLP, untuned default</td><td class='n'>"
           f"{pg.num(default + '.cv_mae_mean')} ± {pg.num(default + '.cv_mae_std')}</td>"
           "<td colspan='2'>not scored: only the chosen model sees the hold-out</td></tr>",
           f"<tr><td>Ridge baseline</td><td class='n'>"
           f"{pg.num('metrics.ridge_baseline.cv_mae_mean')} ± "
           f"{pg.num('metrics.ridge_baseline.cv_mae_std')}</td>"
           f"<td class='n'>{pg.num('metrics.ridge_baseline.holdout.mae')}</td>"
           f"<td class='n'>{pg.num('metrics.ridge_baseline.holdout.rmse')}</td></tr></table>",
           f"<p>The chosen MLP's CV MAE is "
           f"{pg.num('metrics.cv_mae_improvement_over_ridge', '.1f', 100, ' %')} below Ridge's, "
           f"and {pg.num('metrics.tuning.chosen_vs_default_cv_mae', '+.3f')} MPG against the "
           f"untuned default on the same folds. The search scored "
           f"{len(t['candidates'])} candidates in {pg.num('metrics.tuning.search_seconds', '.1f')} s.</p>",
           "<p>Flagged slices (MAE above "
           f"{pg.num('report.slices.flag_ratio', 'g')}× the overall MAE of the same set): "
           + (", ".join(f'<span class="flag">{esc(f)}</span>' for f in flagged) or "none")
           + ".</p></section>")


def _data(pg: Page) -> None:
    d = pg.m["report"]["data"]
    pg.add('<section id="data"><h2>The data it learned from</h2>',
           f"<p>All {pg.num('report.data.rows', 'd')} rows the loader kept (training and hold-out "
           "together; nothing here was used to choose the model).</p>",
           '<h3 id="data-distributions">Distributions</h3>',
           pg.img("distributions", "histogram of every column"),
           '<h3 id="data-missing">Missing values and ranges</h3>',
           "<table><tr><th>column</th><th class='n'>present</th><th class='n'>missing</th>"
           "<th class='n'>missing share</th><th class='n'>min</th><th class='n'>median</th>"
           "<th class='n'>mean</th><th class='n'>max</th></tr>")
    for name, col in d["columns"].items():
        k = f"report.data.columns.{name}"
        cls = " class='flagged'" if col["missing"] else ""
        pg.add(f"<tr{cls}><td>{esc(name)}</td><td class='n'>{pg.num(k + '.present', 'd')}</td>"
               f"<td class='n'>{pg.num(k + '.missing', 'd')}</td>"
               f"<td class='n'>{pg.num(k + '.missing_share', '.1f', 100, ' %')}</td>"
               f"<td class='n'>{pg.num(k + '.min', 'g')}</td>"
               f"<td class='n'>{pg.num(k + '.median', 'g')}</td>"
               f"<td class='n'>{pg.num(k + '.mean', '.2f')}</td>"
               f"<td class='n'>{pg.num(k + '.max', 'g')}</td></tr>")
    cols = d["correlation"]["columns"]
    pg.add("</table>", '<h3 id="data-correlation">Correlation matrix</h3>',
           pg.img("correlation", "correlation matrix heat map"),
           f"<p>{esc(d['correlation']['method'])}; origin is a category and is shown as colour "
           "below instead. Correlation with mpg:</p><table><tr>"
           + "".join(f"<th class='n'>{esc(c)}</th>" for c in cols[1:]) + "</tr><tr>"
           + "".join(f"<td class='n'>{pg.num(f'report.data.correlation.matrix.0.{j}', '+.2f')}</td>"
                     for j in range(1, len(cols)))
           + "</tr></table>",
           '<h3 id="data-mpg-weight">MPG against weight</h3>',
           pg.img("mpg_vs_weight", "scatter of mpg against weight coloured by origin"),
           '<h3 id="data-mpg-year">MPG against model year</h3>',
           pg.img("mpg_vs_model_year", "scatter of mpg against model year coloured by origin"),
           '<h3 id="data-notes">What the loader found</h3>')
    notes = pg.m["data"]["notes"]
    if not notes:
        pg.add(f"<p class='note'>Nothing odd: {pg.num('report.data.notes_count', 'd')} notes — "
               "no duplicate rows, no rows beyond the hard limits of the schema.</p>")
    else:
        shown = notes[:50]
        pg.add(f"<p class='note'>{pg.num('report.data.notes_count', 'd')} notes from the loader "
               "(duplicates are kept; rows beyond the hard limits are left out):</p><ul>",
               *(f"<li><code>{esc(n)}</code></li>" for n in shown),
               f"<li>… and {len(notes) - len(shown)} more in the manifest (data.notes)</li>"
               if len(notes) > len(shown) else "", "</ul>")
    pg.add("</section>")


def _tuning(pg: Page) -> None:
    t = pg.m["metrics"]["tuning"]
    cands = t["candidates"]
    folds = pg.m["metrics"]["split"]["cv_folds"]
    order = sorted(range(len(cands)), key=lambda i: (cands[i]["cv_mae_mean"], i))
    pg.add('<section id="tuning"><h2>How the settings were chosen</h2>',
           f"<p class='note'>{esc(t['method'])}.</p>",
           '<h3 id="tuning-table">Candidates</h3>',
           "<table><tr><th class='n'>rank</th><th class='n'>#</th><th>solver</th>"
           "<th>hidden layers</th><th class='n'>alpha</th><th class='n'>learning rate</th>"
           "<th class='n'>CV MAE mean</th><th class='n'>± std</th>"
           + "".join(f"<th class='n'>fold {f + 1}</th>" for f in range(folds))
           + "<th class='n'>CPU s</th><th></th></tr>")
    for rank, i in enumerate(order, start=1):
        c, k = cands[i], f"metrics.tuning.candidates.{i}"
        p = c["params"]
        mark = "chosen" if i == t["chosen"] else "default" if i == t["default"] else ""
        if i == t["chosen"] and i == t["default"]:
            mark = "chosen (the default)"
        lr = pg.num(k + ".params.learning_rate_init", "g") if p["solver"] != "lbfgs" \
            else "— (lbfgs)"
        pg.add(f"<tr class='{mark.split()[0] if mark else ''}' data-candidate='{i}'>"
               f"<td class='n'>{rank}</td><td class='n'>{i}</td><td>{esc(p['solver'])}</td>"
               f"<td>{esc(tuple(p['hidden_layer_sizes']))}</td>"
               f"<td class='n'>{pg.num(k + '.params.alpha', 'g')}</td><td class='n'>{lr}</td>"
               f"<td class='n'>{pg.num(k + '.cv_mae_mean')}</td>"
               f"<td class='n'>{pg.num(k + '.cv_mae_std')}</td>"
               + "".join(f"<td class='n'>{pg.num(f'{k}.cv_mae_folds.{f}')}</td>"
                         for f in range(folds))
               + f"<td class='n'>{pg.num(k + '.cpu_seconds', '.1f')}</td><td>{mark}</td></tr>")
    r = "metrics.ridge_baseline"
    pg.add(f"<tr data-candidate='ridge'><td></td><td></td><td colspan='4'>Ridge baseline "
           f"({esc(_params_text(pg.m['metrics']['ridge_baseline']['params']))})</td>"
           f"<td class='n'>{pg.num(r + '.cv_mae_mean')}</td><td class='n'>{pg.num(r + '.cv_mae_std')}</td>"
           + "".join(f"<td class='n'>{pg.num(f'{r}.cv_mae_folds.{f}')}</td>" for f in range(folds))
           + "<td></td><td>baseline</td></tr></table>",
           pg.img("tuning", "CV MAE of every candidate with its standard deviation"),
           f"<p>The search took {pg.num('metrics.tuning.search_seconds', '.1f')} s wall-clock, "
           f"{pg.num('metrics.tuning.search_cpu_seconds', '.1f')} s of CPU ({len(cands)} "
           f"candidates × {folds} folds in {pg.num('metrics.tuning.n_jobs', 'd')} worker "
           "processes; the wall-clock time grows with whatever else the machine runs).</p>",
           '<h3 id="tuning-chosen">Chosen settings</h3><table>')
    for name in pg.m["metrics"]["mlp"]["params"]:
        value = pg.m["metrics"]["mlp"]["params"][name]
        shown = pg.num(f"metrics.mlp.params.{name}", "g") \
            if isinstance(value, (int, float)) and not isinstance(value, bool) else esc(value)
        pg.add(f"<tr><th>{esc(name)}</th><td>{shown}</td></tr>")
    pg.add("</table>",
           f"<p>Candidate #{t['chosen']}: CV MAE {pg.num('metrics.mlp.cv_mae_mean')} against the "
           f"untuned default's {pg.num('metrics.tuning.default_cv_mae_mean')} on the same folds "
           f"(difference {pg.num('metrics.tuning.chosen_vs_default_cv_mae', '+.3f')}). Then fitted on "
           f"the whole training split ({pg.num('metrics.mlp.n_iter', 'd')} iterations) and scored "
           f"once on the hold-out: MAE {pg.num('metrics.mlp.holdout.mae')}, RMSE "
           f"{pg.num('metrics.mlp.holdout.rmse')}.</p>",
           "<p class='note'>The winner's CV MAE is slightly optimistic: it won a contest on those "
           "very folds. The hold-out MAE, which played no part in the choice, is the figure to "
           "quote.</p></section>")


def _errors(pg: Page) -> None:
    s = pg.m["report"]["slices"]
    sets = list(s["overall"])
    pg.add('<section id="errors"><h2>Where the model is wrong</h2>',
           "<p>Only honest predictions are shown: "
           + "; ".join(f"<b>{esc(n)}</b>: {esc(s['sets'][n])} (n={pg.num(f'report.slices.overall.{n}.count', 'd')}, "
                       f"MAE {pg.num(f'report.slices.overall.{n}.mae')})" for n in sets)
           + ".</p>",
           '<h3 id="errors-predicted">Predicted against actual</h3>',
           pg.img("predicted_vs_actual", "predicted against actual mpg"),
           '<h3 id="errors-residuals">Residuals against each feature</h3>',
           pg.img("residuals", "residuals against each feature"),
           '<h3 id="errors-slices">MAE per slice</h3>',
           f"<p>A slice is <span class='flag'>flagged</span> when its MAE is more than "
           f"{pg.num('report.slices.flag_ratio', 'g')}× the overall MAE of the same set. Small "
           "slices are noisy: read the count beside each MAE.</p>",
           "<table><tr><th>slice</th><th>value</th>"
           + "".join(f"<th class='n'>{esc(n)} n</th><th class='n'>{esc(n)} MAE</th>"
                     f"<th class='n'>× overall</th><th>flag</th>" for n in sets) + "</tr>")
    for i, row in enumerate(s["rows"]):
        flagged = any(row[n]["flagged"] for n in sets)
        cells = ""
        for n in sets:
            k = f"report.slices.rows.{i}.{n}"
            cells += (f"<td class='n'>{pg.num(k + '.count', 'd')}</td>"
                      f"<td class='n'>{pg.num(k + '.mae')}</td>"
                      f"<td class='n'>{pg.num(k + '.ratio', '.2f')}</td>"
                      f"<td>{'<span class=flag>FLAGGED</span>' if row[n]['flagged'] else ''}</td>")
        pg.add(f"<tr{' class=flagged' if flagged else ''} data-slice='{i}'><td>{esc(row['by'])}</td>"
               f"<td>{esc(row['label'])}</td>{cells}</tr>")
    pg.add("</table>", pg.img("slice_mae", "MAE per slice with counts"), "</section>")


def render(manifest: dict) -> str:
    pg = Page(manifest)
    pg.add("<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>mpg-{esc(manifest['model']['version'])} model report</title>",
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<style>{STYLE}</style></head><body><main>")
    _header(pg)
    _summary(pg)
    _data(pg)
    _tuning(pg)
    _errors(pg)
    pg.add("</main></body></html>")
    return "\n".join(pg.parts)
