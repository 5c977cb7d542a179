"""The model report for any trained model: sections, plots, numbers equal to the manifest's,
every candidate of the search with the chosen one and the baseline marked, regression errors
(MAE/RMSE, residuals) and classification errors (accuracy, log-loss, per-class precision/recall,
the confusion matrix), slices and flags, and labels from the CSV escaped.

The report is written in-process from a TrainedModel and a manifest built like
export/build.py's (model, data, schema, metrics), each family at its default settings only so
the fits take seconds: the MPG showcase (regression) and iris with hostile labels
(classification)."""
from __future__ import annotations

import csv
import html
import json
import os
import re
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from mpgpack.core.bundle import sha256_file
from tests.helpers import REPO, run_cli

slow = pytest.mark.slow          # each report fixture fits five model families
COMMON = {"summary", "data", "data-distributions", "data-missing", "data-notes", "tuning",
          "tuning-table", "tuning-chosen", "errors", "errors-slices"}
SECTIONS = {"regression": COMMON | {"data-correlation", "data-target", "errors-predicted",
                                    "errors-residuals"},
            "classification": COMMON | {"data-classes", "errors-per-class", "errors-confusion"}}
# plot -> the (sub)section it must be shown in
PLOTS = {"regression": {"distributions": "data-distributions", "correlation": "data-correlation",
                        "target_vs_features": "data-target", "tuning": "tuning-table",
                        "predicted_vs_actual": "errors-predicted",
                        "residuals": "errors-residuals", "slices": "errors-slices"},
         "classification": {"distributions": "data-distributions", "tuning": "tuning-table",
                            "confusion": "errors-confusion", "slices": "errors-slices"}}
# Labels a user's CSV may hold: markup, quotes, an ampersand, a dot (a manifest path separator).
HOSTILE_CLASS = '<b>setosa</b> & "co"'
HOSTILE_SHADES = ("<i>pale</i>", "dark.blue")


class ReportPage(HTMLParser):
    """Collects ids, images (with the section they sit in), printed numbers and table rows."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.ids: list[str] = []
        self.imgs: list[dict] = []
        self.nums: list[dict] = []
        self.rows: list[dict] = []
        self.links: list[str] = []
        self.scripts = 0
        self._section = None
        self._num = None
        self._row = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
            if tag in ("section", "h3"):
                self._section = a["id"]
        if tag == "img":
            self.imgs.append({**a, "section": self._section})
        if tag in ("a", "link") and "href" in a:
            self.links.append(a["href"])
        if tag == "script":
            self.scripts += 1
        if tag == "span" and "data-key" in a:
            self._num = {**a, "text": ""}
        if tag == "tr":
            self._row = {**a, "text": "", "keys": []}
        if self._row is not None and self._num is not None and tag == "span":
            self._row["keys"].append(a["data-key"])

    def handle_endtag(self, tag):
        if tag == "span" and self._num is not None:
            self.nums.append(self._num)
            self._num = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._num is not None:
            self._num["text"] += data
        if self._row is not None:
            self._row["text"] += data

    def keys(self) -> set[str]:
        return {n["data-key"] for n in self.nums}


def lookup(manifest: dict, key: str):
    """A dotted path whose parts are percent-encoded (as the page writes them)."""
    value = manifest
    for part in key.split("."):
        part = unquote(part)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@dataclass
class Report:
    bundle: Path
    manifest: dict
    page: ReportPage
    ds: object
    trained: object


def _write(bundle: Path, ds, trained) -> Report:
    """The report of a trained model, with a manifest as export/build.py's _manifest makes it."""
    from mpgpack.core.bundle_write import write_manifest
    from mpgpack.train.fit import describe
    from mpgpack.train.report import write_report
    from mpgpack.train.stats import training_range

    spec = trained.spec
    manifest = {
        "model": {"name": spec.name, "version": "0123456789ab", "created": "2024-01-01T00:00:00Z",
                  "git": {"commit": "abc1234", "dirty": False}, "task": spec.task,
                  "family": trained.family, "estimator": describe(trained.pipeline)},
        "data": {"source": ds.source, "sha256": ds.sha256, "rows": len(ds), "notes": ds.notes},
        "schema": spec.manifest_schema(training_range(trained.X_train, spec.schema)),
        "metrics": trained.metrics, "packages": {}}
    bundle.mkdir(parents=True, exist_ok=True)
    manifest["packages"].update(write_report(bundle, manifest, ds, trained))
    write_manifest(bundle, manifest)
    manifest = json.loads((bundle / "manifest.json").read_text())    # as a reader sees it
    page = ReportPage((bundle / manifest["report"]["path"]).read_text(encoding="utf-8"))
    return Report(bundle, manifest, page, ds, trained)


def _fast_grid() -> dict:
    from mpgpack.train.family_names import FAMILY_NAMES
    return {f: [{}] for f in FAMILY_NAMES}


@pytest.fixture(scope="module")
def mpg(tmp_path_factory) -> Report:
    from mpgpack.train.data import load_dataset
    from mpgpack.train.fit import train_model
    from mpgpack.train.schema import mpg_spec

    ds = load_dataset(REPO / "mpgpack" / "data" / "auto-mpg.data")
    trained = train_model(ds, mpg_spec(), 0, "auto", grid=_fast_grid())
    return _write(tmp_path_factory.mktemp("mpg") / "mpg-0123456789ab", ds, trained)


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> Report:
    """iris from the example tables, one class renamed to markup and a category column with
    hostile labels added."""
    from mpgpack.data.examples import main as examples
    from mpgpack.train.fit import train_model
    from mpgpack.train.table import infer_spec, load_table

    tmp = tmp_path_factory.mktemp("iris")
    assert examples([str(tmp / "data")]) == 0
    with open(tmp / "data" / "iris.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    path = tmp / "hostile_iris.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0] + ["shade"])
        for i, row in enumerate(rows[1:]):
            w.writerow([HOSTILE_CLASS if c == "setosa" else c for c in row]
                       + [HOSTILE_SHADES[i % 2]])
    spec = infer_spec(path, "species")
    assert spec.task == "classification" and HOSTILE_CLASS in spec.classes
    ds = load_table(path, spec)
    trained = train_model(ds, spec, 0, "auto", grid=_fast_grid())
    return _write(tmp / "mpg-0123456789ab", ds, trained)


def _reports(request, names=("mpg", "iris")) -> list[Report]:
    return [request.getfixturevalue(n) for n in names]


# -- both reports ----------------------------------------------------------------------------
@slow
@pytest.mark.parametrize("name", ["mpg", "iris"])
def test_report_files_sections_and_plots(request, name):
    r = request.getfixturevalue(name)
    task = r.manifest["model"]["task"]
    entry = r.manifest["packages"]["report"]
    assert entry["path"] == r.manifest["report"]["path"] == "report/index.html"
    index = r.bundle / entry["path"]
    assert index.is_file() and sha256_file(index) == entry["sha256"]
    assert set(entry["images"]) == set(PLOTS[task]) == set(r.manifest["report"]["plots"])
    for plot, img in entry["images"].items():
        png = r.bundle / img["path"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
        assert png.stat().st_size == img["bytes"] > 5000, plot   # a real figure, not an empty one
        assert sha256_file(png) == img["sha256"], plot
    assert SECTIONS[task] <= set(r.page.ids)
    assert set(r.manifest["report"]["sections"]) == SECTIONS[task]
    shown = {img["data-plot"]: img for img in r.page.imgs}
    assert set(shown) == set(PLOTS[task])
    for plot, img in shown.items():
        assert img["section"] == PLOTS[task][plot], f"plot {plot} is in section {img['section']}"
        target = (r.bundle / "report" / img["src"]).resolve()
        assert target == (r.bundle / r.manifest["report"]["plots"][plot]).resolve()
        assert target.is_file() and img["alt"]
    # self-contained: no script, nothing from the network
    assert r.page.scripts == 0
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", r.page.text)
    assert all(link.startswith("#") for link in r.page.links)
    assert "@import" not in r.page.text and "url(" not in r.page.text


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


@slow
@pytest.mark.parametrize("name", ["mpg", "iris"])
def test_every_number_on_the_page_is_the_manifests(request, name):
    r = request.getfixturevalue(name)
    m, keys = r.manifest, r.page.keys()
    assert len(r.page.nums) > 100
    for num in r.page.nums:
        value = lookup(m, num["data-key"])
        assert json.loads(num["data-value"]) == value, num["data-key"]
        text = num["text"].strip().removesuffix(" %")
        if value is None:
            assert text == "—"
            continue
        shown, scale = float(text), float(num.get("data-scale", 1))
        assert abs(shown - value * scale) <= 0.5 * 10 ** -_decimals(text) + 1e-9, \
            (num["data-key"], text, value)
    # every candidate: its CV score, its folds and its headline CV metrics
    heads = ("accuracy", "log_loss") if m["metrics"]["task"] == "classification" else ("mae", "rmse")
    folds = m["metrics"]["split"]["cv_folds"]
    for i in range(len(m["metrics"]["tuning"]["candidates"])):
        k = f"metrics.tuning.candidates.{i}"
        assert {f"{k}.cv_mean", f"{k}.cv_std", *(f"{k}.cv_folds.{f}" for f in range(folds)),
                *(f"{k}.cv.{h}" for h in heads)} <= keys, k
    for role in ("chosen", "baseline"):
        assert {f"metrics.{role}.cv_mean", *(f"metrics.{role}.holdout.{h}" for h in heads)} <= keys
    for i, row in enumerate(m["report"]["slices"]["rows"]):
        for s in ("cv", "holdout"):
            assert f"report.slices.rows.{i}.{s}.count" in keys


@slow
@pytest.mark.parametrize("name", ["mpg", "iris"])
def test_candidates_table_marks_the_chosen_and_the_baseline(request, name):
    r = request.getfixturevalue(name)
    m = r.manifest["metrics"]
    t = m["tuning"]
    cands = t["candidates"]
    assert [c["family"] for c in cands] == ["linear", "mlp", "gbm", "forest", "hgb"]
    assert t["chosen"] == int(np.argmin([c["cv_mean"] for c in cands]))
    # each candidate's headline CV metrics are its out-of-fold predictions' scores
    from mpgpack.train.fit import scores
    for c, s in zip(cands, r.trained.search.candidates):
        got = scores(s.oof_pred, r.trained.y_train, r.trained.spec)
        for h, v in c["cv"].items():
            assert v == pytest.approx(got[h], abs=1e-12)
    rows = [row for row in r.page.rows if "data-candidate" in row]
    assert sorted(row["data-candidate"] for row in rows) == sorted(str(i) for i in range(len(cands)))
    assert [row["data-candidate"] for row in rows if row.get("class") == "chosen"] == \
        [str(t["chosen"])]
    base = next(row for row in rows if row["data-candidate"] == "0")      # linear's default
    assert "baseline" in base["text"] and cands[0]["cv_mean"] == m["baseline"]["cv_mean"]
    assert "chosen" in next(row for row in rows if row["data-candidate"] == str(t["chosen"]))["text"]


@slow
@pytest.mark.parametrize("name", ["mpg", "iris"])
def test_slices_cover_every_row_and_flags_follow_the_rule(request, name):
    r = request.getfixturevalue(name)
    s, split = r.manifest["report"]["slices"], r.manifest["metrics"]["split"]
    metric = s["metric"]
    features = {f.name for f in r.trained.spec.features}
    assert {row["by"] for row in s["rows"]} == features          # every feature is sliced
    for feature in features:
        rows = [row for row in s["rows"] if row["by"] == feature]
        assert sum(row["cv"]["count"] for row in rows) == split["train_rows"], feature
        assert sum(row["holdout"]["count"] for row in rows) == split["holdout_rows"], feature
    holdout = r.manifest["metrics"]["chosen"]["holdout"]
    assert s["overall"]["holdout"][metric] == pytest.approx(holdout[metric], abs=1e-12)

    def error(cell_or_overall):
        v = cell_or_overall[metric]
        return None if v is None else (1 - v if metric == "accuracy" else v)

    flagged = []
    for row in s["rows"]:
        for n in ("cv", "holdout"):
            e, overall = error(row[n]), error(s["overall"][n])
            want = e is not None and e > 0 and e > 1.5 * overall
            assert row[n]["flagged"] == want, row
            if want:
                flagged.append(f"{row['by']}={row['label']} ({n}, n={row[n]['count']})")
    assert s["flagged"] == flagged
    page_rows = {int(row["data-slice"]): row for row in r.page.rows if "data-slice" in row}
    assert len(page_rows) == len(s["rows"])
    for i, row in enumerate(s["rows"]):
        assert page_rows[i]["text"].count("FLAGGED") == sum(row[n]["flagged"] for n in ("cv", "holdout"))


# -- regression: the MPG showcase ------------------------------------------------------------
@slow
def test_mpg_report_shows_the_mlp_the_baseline_and_the_chosen_model(mpg):
    m, keys = mpg.manifest["metrics"], mpg.page.keys()
    assert m["task"] == "regression" and m["score"] == "mae"
    assert m["baseline"]["family"] == "linear" and m["baseline"]["estimator"] == "Ridge"
    mlp = next(i for i, c in enumerate(m["tuning"]["candidates"]) if c["family"] == "mlp")
    assert {f"metrics.tuning.candidates.{mlp}.cv_mean", f"metrics.tuning.candidates.{mlp}.cv.mae",
            f"metrics.tuning.candidates.{mlp}.cv.rmse"} <= keys
    for role in ("chosen", "baseline"):
        assert {f"metrics.{role}.holdout.mae", f"metrics.{role}.holdout.rmse"} <= keys
    summary = [row for row in mpg.page.rows if "data-model" in row]
    assert [row["data-model"] for row in summary] == ["chosen", "baseline"]
    assert summary[0]["text"].startswith(f"{m['chosen']['family']} (chosen)")
    # the hold-out MAE is the chosen pipeline's, computed here independently
    t = mpg.trained
    pred = t.pipeline.predict(t.X_holdout)
    assert m["chosen"]["holdout"]["mae"] == pytest.approx(np.mean(np.abs(pred - t.y_holdout)))
    # the build's quality gates still hold for the showcase
    assert m["chosen"]["cv_mean"] <= 2.0 and m["improvement_over_baseline"] >= 0.15
    assert "mpg model report" in mpg.page.text


@slow
def test_mpg_data_section_and_related_features(mpg):
    from mpgpack.train.schema import FEATURE_NAMES

    ds, d = mpg.ds, mpg.manifest["report"]["data"]
    assert d["rows"] == len(ds) == mpg.manifest["data"]["rows"]
    assert list(d["columns"])[0] == "mpg"
    for i, name in enumerate(FEATURE_NAMES):
        assert d["columns"][name]["missing"] == int(np.isnan(ds.X[:, i]).sum())
    assert d["columns"]["horsepower"]["missing"] == 6
    assert [lv["label"] for lv in d["columns"]["origin"]["levels"]] == ["USA", "Europe", "Japan"]
    assert sum(lv["count"] for lv in d["columns"]["origin"]["levels"]) == len(ds)
    corr, cols = np.array(d["correlation"]["matrix"]), d["correlation"]["columns"]
    assert cols[0] == "mpg" and "origin" not in cols
    w = FEATURE_NAMES.index("weight")
    assert corr[0, cols.index("weight")] == pytest.approx(np.corrcoef(ds.y, ds.X[:, w])[0, 1])
    np.testing.assert_allclose(corr, corr.T)
    # residuals are plotted against the two numeric features most correlated with mpg
    r = {c: abs(corr[0, j]) for j, c in enumerate(cols) if j}
    assert mpg.manifest["report"]["related_features"] == sorted(r, key=r.get, reverse=True)[:2]
    assert mpg.manifest["report"]["related_features"][0] == "weight"


@slow
def test_mpg_cv_is_on_the_training_split_with_the_same_folds(mpg):
    """Re-scores the chosen model and the baseline with plain sklearn on the seeded split and
    folds: the fold MAEs must be the manifest's, fold by fold."""
    from sklearn.model_selection import KFold, cross_val_score, train_test_split

    from mpgpack.train.families import make_pipeline
    from mpgpack.train.tune import single_threaded_blas

    m, split = mpg.manifest["metrics"], mpg.manifest["metrics"]["split"]
    X_tr, _, y_tr, _ = train_test_split(mpg.ds.X, mpg.ds.y, test_size=split["holdout_fraction"],
                                        random_state=split["seed"])
    folds = KFold(split["cv_folds"], shuffle=True, random_state=split["seed"])
    schema = mpg.trained.spec.schema
    for role in ("chosen", "baseline"):
        e = m[role]
        pipe = make_pipeline(schema, e["family"], split["seed"], e["params"])
        with single_threaded_blas():
            got = -cross_val_score(pipe, X_tr, y_tr, cv=folds, scoring="neg_mean_absolute_error")
        np.testing.assert_allclose(got, e["cv_folds"], rtol=0, atol=1e-9, err_msg=role)


# -- classification: iris with hostile labels ------------------------------------------------
@slow
def test_classification_report_numbers_are_the_metrics(iris):
    from sklearn.metrics import confusion_matrix

    from mpgpack.core.outputs import class_index

    m, keys, t = iris.manifest["metrics"], iris.page.keys(), iris.trained
    classes = iris.manifest["schema"]["target"]["classes"]
    holdout = m["chosen"]["holdout"]
    assert m["task"] == "classification" and m["score"] == "log_loss"
    # accuracy: on the page, and the chosen pipeline's own on the hold-out
    assert {"metrics.chosen.holdout.accuracy", "metrics.chosen.holdout.log_loss"} <= keys
    pred = class_index(t.pipeline.predict_proba(t.X_holdout))
    assert holdout["accuracy"] == pytest.approx(np.mean(pred == t.y_holdout.astype(int)))
    # confusion matrix: every cell on the page, counts summing to the hold-out rows
    confusion = np.array(holdout["confusion"])
    np.testing.assert_array_equal(confusion, confusion_matrix(t.y_holdout.astype(int), pred,
                                                              labels=range(len(classes))))
    assert confusion.sum() == m["split"]["holdout_rows"] == len(t.y_holdout)
    cells = [row for row in iris.page.rows if "data-true" in row]
    assert len(cells) == len(classes)
    page_total = 0
    for i, row in enumerate(cells):
        want = [f"metrics.chosen.holdout.confusion.{i}.{j}" for j in range(len(classes))]
        assert row["keys"] == want
        page_total += sum(lookup(iris.manifest, k) for k in want)
    assert page_total == m["split"]["holdout_rows"]
    # per class: recall is the confusion diagonal over its row, precision over its column
    from mpgpack.train.report_html import key
    for c, label in enumerate(classes):
        pc = holdout["per_class"][label]
        assert pc["recall"] == pytest.approx(confusion[c, c] / confusion[c].sum())
        assert pc["precision"] == pytest.approx(confusion[c, c] / confusion[:, c].sum())
        assert pc["support"] == confusion[c].sum()
        k = key("metrics", "chosen", "holdout", "per_class", label)
        assert {f"{k}.recall", f"{k}.precision", f"{k}.support"} <= keys
    # class balance
    balance = iris.manifest["report"]["data"]["classes"]
    assert [b["label"] for b in balance] == classes and [b["count"] for b in balance] == [50] * 3


@slow
def test_labels_from_the_csv_are_escaped(iris):
    from mpgpack.train.report_html import key

    text = iris.page.text
    for label in (HOSTILE_CLASS, HOSTILE_SHADES[0]):
        assert label not in text, label
        assert html.escape(label, quote=True) in text, label
    assert "<b>setosa" not in text and "<i>" not in text
    # the dotted label is a slice and a per-column level; the markup class's per-class figures
    # are on the page under a key that reads back (checked with every number above)
    s = iris.manifest["report"]["slices"]
    assert {row["label"] for row in s["rows"] if row["by"] == "shade"} == set(HOSTILE_SHADES)
    levels = iris.manifest["report"]["data"]["columns"]["shade"]["levels"]
    assert sorted(lv["label"] for lv in levels) == sorted(HOSTILE_SHADES)
    k = key("metrics", "chosen", "holdout", "per_class", HOSTILE_CLASS, "recall")
    assert k in iris.page.keys() and "<" not in k and '"' not in k
    assert lookup(iris.manifest, k) == \
        iris.manifest["metrics"]["chosen"]["holdout"]["per_class"][HOSTILE_CLASS]["recall"]
    assert lookup(iris.manifest, key("report", "data", "columns", "shade")) is not None
    assert "dark%2Eblue" == key("dark.blue")


# -- the CLI and the odd cases ---------------------------------------------------------------
def _env(**extra) -> dict:
    env = {"PATH": "/usr/bin:/bin", **extra}
    if os.environ.get("PYTHONPATH"):          # the worktree under test
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


@slow
def test_cli_prints_and_opens_the_report(iris, tmp_path):
    index = (iris.bundle / "report" / "index.html").resolve()
    r = run_cli("report", str(iris.bundle), timeout=60, env=_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == str(index)
    m = iris.manifest["metrics"]
    assert lines[1].startswith(f"model hostile_iris (bundle mpg-0123456789ab): "
                               f"{m['chosen']['family']}, CV log-loss")
    assert f"hold-out accuracy {m['chosen']['holdout']['accuracy']:.3f}" in lines[1]
    assert "flagged slices:" in lines[1]
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    r = run_cli("report", str(iris.bundle), "--open", timeout=60,
                env=_env(BROWSER=f"{browser} %s"))
    assert r.returncode == 0, r.stderr
    assert opened.read_text().strip() == index.as_uri()


@slow
def test_cli_refuses_a_tampered_or_missing_report(mpg, tmp_path):
    import shutil
    copy = tmp_path / mpg.bundle.name
    shutil.copytree(mpg.bundle, copy)
    png = copy / "report" / "img" / "residuals.png"
    png.write_bytes(png.read_bytes() + b"x")
    r = run_cli("report", str(copy), timeout=60, env=_env())
    assert r.returncode == 1
    assert "report/img/residuals.png does not match its sha256" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1

    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["packages"]["report"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    r = run_cli("report", str(copy), timeout=60, env=_env())
    assert r.returncode == 1 and "has no model report" in r.stderr
    assert "Traceback" not in r.stderr


def test_figures_on_odd_data_stay_valid_json():
    """A constant column has no correlation (null, not NaN); an empty slice has no MAE and is
    never flagged; a slice far worse than the rest is."""
    from mpgpack.train.data import Dataset
    from mpgpack.train.report import data_figures
    from mpgpack.train.report_slices import numeric_ranking, slice_errors
    from mpgpack.train.schema import FEATURES, mpg_spec

    rng = np.random.default_rng(0)
    n = 60
    X = np.column_stack([np.full(n, 4.0), rng.uniform(70, 300, n), rng.uniform(50, 200, n),
                         rng.uniform(1800, 4500, n), rng.uniform(10, 20, n),
                         rng.integers(70, 83, n).astype(float), np.where(np.arange(n) < 50, 1.0, 3.0)])
    y = rng.uniform(10, 40, n)
    spec = mpg_spec()
    figures = data_figures(Dataset(X, y, [""] * n, "0" * 64, "synthetic"), spec)
    json.dumps(figures, allow_nan=False)
    cols = figures["correlation"]["columns"]
    assert figures["correlation"]["matrix"][0][cols.index("cylinders")] is None
    assert figures["columns"]["horsepower"]["missing"] == 0

    pred = y + np.where(X[:, 6] == 3, 5.0, 0.5)          # Japan (10 rows) is 10x worse
    s = slice_errors(X, {"cv": (X, y, pred)}, FEATURES, "regression",
                     numeric_ranking(X, y, FEATURES, "regression"))
    json.dumps(s, allow_nan=False)
    rows = {(r["by"], r["label"]): r["cv"] for r in s["rows"]}
    assert rows[("origin", "Europe")] == {"count": 0, "mae": None, "ratio": None, "flagged": False}
    assert rows[("horsepower", "missing")]["count"] == 0
    assert rows[("cylinders", "4")]["count"] == n                 # one value: one slice
    assert rows[("origin", "Japan")]["flagged"] and not rows[("origin", "USA")]["flagged"]
    assert rows[("origin", "Japan")]["mae"] == pytest.approx(5.0)
    assert s["overall"]["cv"]["mae"] == pytest.approx((50 * 0.5 + 10 * 5.0) / 60)
    # (a numeric bin may hold enough Japanese rows by chance to be flagged too)
    assert "origin=Japan (cv, n=10)" in s["flagged"]
    assert not any(f.startswith(("origin=USA", "cylinders=")) for f in s["flagged"])


def test_classification_slices_flag_a_worse_class_region():
    """Accuracy per slice: a slice where every row is wrong is flagged; a perfect one is not;
    with a perfect model nothing is flagged (no division by a zero error)."""
    from mpgpack.core.schema import Feature
    from mpgpack.train.report_slices import slice_errors

    features = (Feature("colour", "", "", "category", 0, 1, integer=True,
                        categories={0: "red", 1: "<blue>"}),)
    X = np.array([[0.0]] * 8 + [[1.0]] * 2)
    y = np.zeros(10)
    right, wrong = [0.9, 0.1], [0.2, 0.8]
    probs = np.array([right] * 8 + [wrong] * 2)
    s = slice_errors(X, {"holdout": (X, y, probs)}, features, "classification", [])
    rows = {r["label"]: r["holdout"] for r in s["rows"]}
    assert s["metric"] == "accuracy" and s["overall"]["holdout"]["accuracy"] == pytest.approx(0.8)
    assert rows["red"] == {"count": 8, "accuracy": 1.0, "ratio": 0.0, "flagged": False}
    assert rows["<blue>"]["accuracy"] == 0.0 and rows["<blue>"]["flagged"]
    perfect = slice_errors(X, {"holdout": (X, y, np.array([right] * 10))}, features,
                           "classification", [])
    assert perfect["flagged"] == [] and all(r["holdout"]["ratio"] is None for r in perfect["rows"])
