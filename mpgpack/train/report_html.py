"""Rendering the report page from the manifest alone (no data, no model): a pure view.

Every number on the page is printed by `Page.num`, which reads it from the manifest by its
dotted path and writes that path and the exact value beside it (data-key, data-value), so a
test can check each printed figure against the manifest. A path's parts that come from the
user's CSV (feature names, class labels) are percent-encoded by `key` ("." as %2E), so any
label makes a path that reads back. Every text from the data is HTML-escaped. No script, no
fonts, no network: the page is plain HTML with inline CSS and the PNGs beside it.
"""
from __future__ import annotations

import html
import json
from urllib.parse import quote, unquote

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
tr.chosen td { background: #fde2e2; font-weight: 600; } tr.baseline td { background: #e3f4e3; }
tr.flagged td { background: #fff1cc; } .flag { color: #b00; font-weight: 700; }
td.diag { background: #e3f4e3; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; margin: .4rem 0; }
.note { background: #f5f7fb; border-left: 4px solid #6b8cce; padding: .5rem .8rem; }
code { background: #f2f2f2; padding: 0 3px; }
"""
CLASSIFICATION = "classification"
HEADLINE = {"regression": (("mae", "MAE"), ("rmse", "RMSE")),
            CLASSIFICATION: (("accuracy", "accuracy"), ("log_loss", "log-loss"))}


def key(*parts) -> str:
    """A dotted manifest path whose parts may hold any text (a label with a dot in it)."""
    return ".".join(quote(str(p), safe="").replace(".", "%2E") for p in parts)


def lookup(manifest: dict, path: str):
    """The value at a dotted path ("metrics.tuning.candidates.3.cv_mean")."""
    value = manifest
    for part in path.split("."):
        part = unquote(part)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class Page:
    def __init__(self, manifest: dict):
        self.m = manifest
        self.parts: list[str] = []
        self.task = manifest["metrics"]["task"]
        self.classifier = self.task == CLASSIFICATION

    def add(self, *chunks: str) -> None:
        self.parts.extend(chunks)

    def num(self, path: str, fmt: str = ".3f", scale: float = 1.0, suffix: str = "") -> str:
        value = lookup(self.m, path)
        attrs = f'class="num" data-key="{esc(path)}" data-value="{esc(json.dumps(value))}"'
        if scale != 1.0:
            attrs += f' data-scale="{scale:g}"'
        shown = value * scale if scale != 1.0 and value is not None else value
        text = "—" if value is None else format(shown, fmt) + suffix
        return f"<span {attrs}>{text}</span>"

    def metric(self, path: str, name: str) -> str:
        """A headline metric: accuracy as a percentage, the others as plain numbers."""
        return self.num(path, ".1f", 100, " %") if name == "accuracy" else self.num(path)

    def img(self, plot: str, alt: str) -> str:
        path = self.m["report"]["plots"][plot]
        rel = path.split("/", 1)[1]             # report/img/x.png -> img/x.png
        return f'<img src="{esc(rel)}" alt="{esc(alt)}" data-plot="{esc(plot)}">'


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _params_text(p: dict) -> str:
    return ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in p.items()) \
        or "default"


def _score_name(pg: Page) -> str:
    return pg.m["metrics"]["score"].replace("_", "-").replace("mae", "MAE")


def _header(pg: Page) -> None:
    m = pg.m
    model, data = m["model"], m["data"]
    git = model.get("git", {}) or {}
    target = m["report"]["data"]["target"]
    name = model.get("name", "mpg")
    pg.add(f"<h1>{esc(name)} model report — mpg-{esc(model['version'])}</h1>",
           f'<p class="meta">{esc(pg.task)} of <code>{esc(target)}</code>'
           + (f" into {len(m['schema']['target'].get('classes', []))} classes"
              if pg.classifier else "")
           + f' · built {esc(model["created"])} · git {esc(git.get("commit") or "?")}'
           f'{" (dirty)" if git.get("dirty") else ""} · data <code>{esc(data["source"])}</code> '
           f'sha256 <code>{esc(data["sha256"][:16])}…</code> · {pg.num("data.rows", "d")} rows, '
           f'{pg.num("metrics.split.train_rows", "d")} for training, '
           f'{pg.num("metrics.split.holdout_rows", "d")} held out '
           f'{"(stratified by class, " if m["metrics"]["split"].get("stratified") else "("}seed '
           f'{pg.num("metrics.split.seed", "d")}), {pg.num("metrics.split.cv_folds", "d")}-fold CV '
           f'on the training split</p>',
           '<nav><a href="#summary">Summary</a><a href="#data">Data</a>'
           '<a href="#tuning">Candidates</a><a href="#errors">Where it is wrong</a></nav>')


def _summary(pg: Page) -> None:
    m = pg.m["metrics"]
    t = m["tuning"]
    score = _score_name(pg)
    heads = HEADLINE[pg.task]
    flagged = pg.m["report"]["slices"]["flagged"]
    pg.add('<section id="summary"><h2>Summary</h2>',
           f"<table><tr><th>model</th><th>estimator</th><th class='n'>CV {esc(score)} "
           "(mean ± std)</th>"
           + "".join(f"<th class='n'>CV {label}</th>" for _, label in heads)
           + "".join(f"<th class='n'>hold-out {label}</th>" for _, label in heads) + "</tr>")
    for role, css in (("chosen", "chosen"), ("baseline", "baseline")):
        e, k = m[role], f"metrics.{role}"
        pg.add(f"<tr class='{css}' data-model='{role}'><td>{esc(e['family'])} ({role})</td>"
               f"<td>{esc(e['estimator'])}</td>"
               f"<td class='n'>{pg.num(k + '.cv_mean')} ± {pg.num(k + '.cv_std')}</td>"
               + "".join(f"<td class='n'>{pg.metric(f'{k}.cv.{h}', h)}</td>" for h, _ in heads)
               + "".join(f"<td class='n'>{pg.metric(f'{k}.holdout.{h}', h)}</td>"
                         for h, _ in heads) + "</tr>")
    pg.add("</table>",
           f"<p>The chosen model ({esc(m['chosen']['family'])}) has a CV {esc(score)} "
           f"{pg.num('metrics.improvement_over_baseline', '.1f', 100, ' %')} below the "
           f"baseline's ({esc(m['baseline']['family'])}, its default settings) on the same folds. "
           f"The search scored {len(t['candidates'])} candidates of "
           f"{esc(', '.join(t['families']))} in {pg.num('metrics.tuning.seconds', '.1f')} s.</p>",
           "<p>Flagged slices (error above "
           f"{pg.num('report.slices.flag_ratio', 'g')}× the overall error of the same set): "
           + (", ".join(f'<span class="flag">{esc(f)}</span>' for f in flagged) or "none")
           + ".</p></section>")


def _column_rows(pg: Page) -> None:
    d = pg.m["report"]["data"]
    pg.add("<table><tr><th>column</th><th>kind</th><th class='n'>present</th>"
           "<th class='n'>missing</th><th class='n'>missing share</th><th class='n'>min</th>"
           "<th class='n'>median</th><th class='n'>mean</th><th class='n'>max</th></tr>")
    for name, col in d["columns"].items():
        k = key("report", "data", "columns", name)
        cls = " class='flagged'" if col["missing"] else ""
        role = " (target)" if name == d["target"] else ""
        cells = (f"<tr{cls} data-column='{esc(name)}'><td>{esc(name)}{role}</td>"
                 f"<td>{esc(col['kind'])}</td><td class='n'>{pg.num(k + '.present', 'd')}</td>"
                 f"<td class='n'>{pg.num(k + '.missing', 'd')}</td>"
                 f"<td class='n'>{pg.num(k + '.missing_share', '.1f', 100, ' %')}</td>")
        if col["kind"] == "category":
            levels = ", ".join(f"{esc(lv['label'])} ({pg.num(f'{k}.levels.{j}.count', 'd')})"
                               for j, lv in enumerate(col["levels"]))
            cells += f"<td colspan='4'>{levels}</td>"
        elif "min" in col:
            cells += (f"<td class='n'>{pg.num(k + '.min', 'g')}</td>"
                      f"<td class='n'>{pg.num(k + '.median', 'g')}</td>"
                      f"<td class='n'>{pg.num(k + '.mean', '.2f')}</td>"
                      f"<td class='n'>{pg.num(k + '.max', 'g')}</td>")
        else:
            cells += "<td colspan='4'>no value present</td>"
        pg.add(cells + "</tr>")
    pg.add("</table>")


def _data(pg: Page) -> None:
    d = pg.m["report"]["data"]
    target = d["target"]
    pg.add('<section id="data"><h2>The data it learned from</h2>',
           f"<p>All {pg.num('report.data.rows', 'd')} rows the loader kept (training and hold-out "
           "together; nothing here was used to choose the model).</p>",
           '<h3 id="data-distributions">Distributions</h3>',
           pg.img("distributions", "histogram or bar chart of every column"),
           '<h3 id="data-missing">Columns: missing values, ranges, categories</h3>')
    _column_rows(pg)
    if pg.classifier:
        pg.add('<h3 id="data-classes">Class balance</h3>',
               "<table><tr><th>class</th><th class='n'>rows</th><th class='n'>share</th></tr>",
               *(f"<tr data-class='{j}'><td>{esc(c['label'])}</td>"
                 f"<td class='n'>{pg.num(f'report.data.classes.{j}.count', 'd')}</td>"
                 f"<td class='n'>{pg.num(f'report.data.classes.{j}.share', '.1f', 100, ' %')}</td>"
                 "</tr>" for j, c in enumerate(d["classes"])),
               "</table><p>The split and the CV folds are stratified by class, so every fold "
               "sees every class in about these shares.</p>")
    else:
        cols = d["correlation"]["columns"]
        related = pg.m["report"]["related_features"]
        pg.add('<h3 id="data-correlation">Correlation matrix</h3>',
               pg.img("correlation", "correlation matrix heat map"),
               f"<p>{esc(d['correlation']['method'])}, over the numeric columns (categories are "
               f"shown as colour below instead). Correlation with {esc(target)}:</p><table><tr>"
               + "".join(f"<th class='n'>{esc(c)}</th>" for c in cols[1:]) + "</tr><tr>"
               + "".join(f"<td class='n'>{pg.num(f'report.data.correlation.matrix.0.{j}', '+.2f')}"
                         "</td>" for j in range(1, len(cols)))
               + "</tr></table>",
               f'<h3 id="data-target">{esc(target)} against the features most related to it</h3>',
               f"<p>The numeric features with the highest {esc(d['related']['method'])}: "
               + (", ".join(f"<code>{esc(n)}</code>" for n in related) or "none") + ".</p>",
               pg.img("target_vs_features", f"scatter of {target} against its most related "
                                            "features"))
    pg.add('<h3 id="data-notes">What the loader found</h3>')
    notes = pg.m["data"]["notes"]
    if not notes:
        pg.add(f"<p class='note'>Nothing odd: {pg.num('report.data.notes_count', 'd')} notes — "
               "no duplicate rows, no rows beyond the hard limits of the schema, no row without "
               "a target.</p>")
    else:
        shown = notes[:50]
        pg.add(f"<p class='note'>{pg.num('report.data.notes_count', 'd')} notes from the loader "
               "(rows beyond the hard limits or without a target are left out):</p><ul>",
               *(f"<li><code>{esc(n)}</code></li>" for n in shown),
               f"<li>… and {len(notes) - len(shown)} more in the manifest (data.notes)</li>"
               if len(notes) > len(shown) else "", "</ul>")
    pg.add("</section>")


def _baseline_index(t: dict, baseline: dict) -> int | None:
    """The candidate that IS the baseline (the linear family's default), if it was searched."""
    return next((i for i, c in enumerate(t["candidates"])
                 if c["family"] == baseline["family"] and c["params"] == baseline["params"]), None)


def _tuning(pg: Page) -> None:
    m = pg.m["metrics"]
    t, score, heads = m["tuning"], _score_name(pg), HEADLINE[pg.task]
    cands = t["candidates"]
    folds = m["split"]["cv_folds"]
    base = _baseline_index(t, m["baseline"])
    order = sorted(range(len(cands)), key=lambda i: (cands[i]["cv_mean"], i))
    pg.add('<section id="tuning"><h2>How the model was chosen</h2>',
           f"<p class='note'>{esc(t['method'])}.</p>",
           '<h3 id="tuning-table">Candidates</h3>',
           "<table><tr><th class='n'>rank</th><th class='n'>#</th><th>family</th><th>settings</th>"
           f"<th class='n'>CV {esc(score)} mean</th><th class='n'>± std</th>"
           + "".join(f"<th class='n'>fold {f + 1}</th>" for f in range(folds))
           + "".join(f"<th class='n'>CV {label}</th>" for _, label in heads)
           + "<th class='n'>CPU s</th><th></th></tr>")

    def row(k: str, entry: dict, attrs: str, first: str, mark: str) -> str:
        return (f"<tr {attrs}>{first}<td>{esc(entry['family'])}</td>"
                f"<td>{esc(_params_text(entry['params']))}</td>"
                f"<td class='n'>{pg.num(k + '.cv_mean')}</td><td class='n'>{pg.num(k + '.cv_std')}</td>"
                + "".join(f"<td class='n'>{pg.num(f'{k}.cv_folds.{f}')}</td>" for f in range(folds))
                + "".join(f"<td class='n'>{pg.metric(f'{k}.cv.{h}', h)}</td>" for h, _ in heads)
                + f"<td class='n'>{pg.num(k + '.cpu_seconds', '.1f')}</td><td>{mark}</td></tr>")

    for rank, i in enumerate(order, start=1):
        marks = [w for w, on in (("chosen", i == t["chosen"]), ("baseline", i == base),
                                 ("family default", not cands[i]["params"])) if on]
        css = marks[0] if marks and marks[0] != "family default" else ""
        pg.add(row(f"metrics.tuning.candidates.{i}", cands[i],
                   f"class='{css}' data-candidate='{i}'",
                   f"<td class='n'>{rank}</td><td class='n'>{i}</td>", ", ".join(marks)))
    if base is None:        # the baseline was not a candidate (--model other than auto/linear)
        pg.add(row("metrics.baseline", m["baseline"], "class='baseline' data-candidate='baseline'",
                   "<td></td><td></td>", "baseline (not a candidate)"))
    pg.add("</table>",
           pg.img("tuning", f"CV {score} of every candidate with its standard deviation"),
           f"<p>The search took {pg.num('metrics.tuning.seconds', '.1f')} s wall-clock, "
           f"{pg.num('metrics.tuning.cpu_seconds', '.1f')} s of CPU ({len(cands)} "
           f"candidates × {folds} folds in {pg.num('metrics.tuning.n_jobs', 'd')} worker "
           "processes; the wall-clock time grows with whatever else the machine runs).</p>",
           '<h3 id="tuning-chosen">Chosen model</h3><table>',
           f"<tr><th>family</th><td>{esc(m['chosen']['family'])}</td></tr>",
           f"<tr><th>estimator</th><td>{esc(pg.m['model'].get('estimator') or m['chosen']['estimator'])}"
           "</td></tr>")
    params = m["chosen"]["params"]
    for name, value in params.items():
        shown = pg.num(key("metrics", "chosen", "params", name), "g") \
            if isinstance(value, (int, float)) and not isinstance(value, bool) else esc(value)
        pg.add(f"<tr><th>{esc(name)}</th><td>{shown}</td></tr>")
    if not params:
        pg.add("<tr><th>settings</th><td>the family's defaults</td></tr>")
    hold = " and ".join(f"{label} {pg.metric(f'metrics.chosen.holdout.{h}', h)}"
                        for h, label in heads)
    pg.add("</table>",
           f"<p>Candidate #{t['chosen']}: CV {esc(score)} {pg.num('metrics.chosen.cv_mean')} against "
           f"the baseline's {pg.num('metrics.baseline.cv_mean')} on the same folds. Then fitted on "
           f"the whole training split and scored once on the hold-out: {hold}.</p>",
           f"<p class='note'>The winner's CV {esc(score)} is slightly optimistic: it won a contest "
           f"on those very folds. The hold-out figures, which played no part in the choice, are "
           "the ones to quote.</p></section>")


def _per_class(pg: Page) -> None:
    classes = pg.m["schema"]["target"]["classes"]
    pg.add('<h3 id="errors-per-class">Precision and recall per class (hold-out)</h3>',
           "<table><tr><th>class</th><th class='n'>support</th><th class='n'>precision</th>"
           "<th class='n'>recall</th><th class='n'>baseline precision</th>"
           "<th class='n'>baseline recall</th></tr>")
    for j, label in enumerate(classes):
        c, b = (key("metrics", role, "holdout", "per_class", label) for role in ("chosen", "baseline"))
        pg.add(f"<tr data-class='{j}'><td>{esc(label)}</td>"
               f"<td class='n'>{pg.num(c + '.support', 'd')}</td>"
               f"<td class='n'>{pg.num(c + '.precision')}</td><td class='n'>{pg.num(c + '.recall')}</td>"
               f"<td class='n'>{pg.num(b + '.precision')}</td><td class='n'>{pg.num(b + '.recall')}</td>"
               "</tr>")
    pg.add("</table><p>Precision: of the rows predicted as the class, the share that are; "
           "recall: of the rows of the class, the share found. — where no row was predicted as "
           "(or is of) the class.</p>",
           '<h3 id="errors-confusion">Confusion matrix (hold-out)</h3>',
           "<table data-confusion='chosen'><tr><th>true ↓ / predicted →</th>"
           + "".join(f"<th class='n'>{esc(c)}</th>" for c in classes) + "</tr>")
    for i, label in enumerate(classes):
        pg.add(f"<tr data-true='{i}'><th>{esc(label)}</th>"
               + "".join(f"<td class='n{' diag' if i == j else ''}'>"
                         f"{pg.num(f'metrics.chosen.holdout.confusion.{i}.{j}', 'd')}</td>"
                         for j in range(len(classes))) + "</tr>")
    pg.add("</table>", pg.img("confusion", "confusion matrix of the chosen model on the hold-out"))


def _slices(pg: Page) -> None:
    s = pg.m["report"]["slices"]
    sets, metric = list(s["overall"]), s["metric"]
    label = "accuracy" if metric == "accuracy" else "MAE"
    pg.add(f'<h3 id="errors-slices">{label} per slice</h3>',
           f"<p>One slice per label of each category feature and per value or quantile bin of "
           f"the numeric features (a “missing” slice where a value may be missing). A slice is "
           f"<span class='flag'>flagged</span> when its {esc(s['error'].split(';')[0])} is more "
           f"than {pg.num('report.slices.flag_ratio', 'g')}× that of the whole set. Small slices "
           f"are noisy: read the count beside each figure.</p>",
           "<table><tr><th>feature</th><th>slice</th>"
           + "".join(f"<th class='n'>{esc(n)} n</th><th class='n'>{esc(n)} {label}</th>"
                     f"<th class='n'>error × overall</th><th>flag</th>" for n in sets) + "</tr>")
    for i, row in enumerate(s["rows"]):
        flagged = any(row[n]["flagged"] for n in sets)
        cells = ""
        for n in sets:
            k = f"report.slices.rows.{i}.{n}"
            cells += (f"<td class='n'>{pg.num(k + '.count', 'd')}</td>"
                      f"<td class='n'>{pg.metric(f'{k}.{metric}', metric)}</td>"
                      f"<td class='n'>{pg.num(k + '.ratio', '.2f')}</td>"
                      f"<td>{'<span class=flag>FLAGGED</span>' if row[n]['flagged'] else ''}</td>")
        pg.add(f"<tr{' class=flagged' if flagged else ''} data-slice='{i}'><td>{esc(row['by'])}</td>"
               f"<td>{esc(row['label'])}</td>{cells}</tr>")
    pg.add("</table>", pg.img("slices", f"{label} per slice with counts"))


def _errors(pg: Page) -> None:
    s = pg.m["report"]["slices"]
    metric = s["metric"]
    label = "accuracy" if metric == "accuracy" else "MAE"
    pg.add('<section id="errors"><h2>Where the model is wrong</h2>',
           "<p>Only honest predictions are shown: "
           + "; ".join(f"<b>{esc(n)}</b>: {esc(s['sets'][n])} "
                       f"(n={pg.num(f'report.slices.overall.{n}.count', 'd')}, {label} "
                       f"{pg.metric(f'report.slices.overall.{n}.{metric}', metric)})"
                       for n in s["overall"]) + ".</p>")
    if pg.classifier:
        _per_class(pg)
    else:
        related = pg.m["report"]["related_features"]
        pg.add('<h3 id="errors-predicted">Predicted against actual</h3>',
               pg.img("predicted_vs_actual", "predicted against actual"),
               '<h3 id="errors-residuals">Residuals</h3>',
               "<p>Against the prediction and against "
               + (", ".join(f"<code>{esc(n)}</code>" for n in related) or "no feature")
               + " (the numeric features most related to the target).</p>",
               pg.img("residuals", "residuals against the prediction and the most related "
                                   "features"))
    _slices(pg)
    pg.add("</section>")


def render(manifest: dict) -> str:
    pg = Page(manifest)
    name = manifest["model"].get("name", "mpg")
    pg.add("<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(name)} model report — mpg-{esc(manifest['model']['version'])}</title>",
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<style>{STYLE}</style></head><body><main>")
    _header(pg)
    _summary(pg)
    _data(pg)
    _tuning(pg)
    _errors(pg)
    pg.add("</main></body></html>")
    return "\n".join(pg.parts)
