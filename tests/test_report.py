"""The model report written by every build: sections, plots, numbers equal to the manifest's,
tuning that is honest (same folds, training split only, chosen <= default), slices and flags."""
from __future__ import annotations

import json
import re
import stat
from html.parser import HTMLParser

import numpy as np
import pytest

from mpgpack.core.bundle import sha256_file
from tests.helpers import REPO, run_cli

SECTIONS = {"summary", "data", "data-distributions", "data-missing", "data-correlation",
            "data-mpg-weight", "data-mpg-year", "data-notes", "tuning", "tuning-table",
            "tuning-chosen", "errors", "errors-predicted", "errors-residuals", "errors-slices"}
# plot -> the (sub)section it must be shown in
PLOTS = {"distributions": "data-distributions", "correlation": "data-correlation",
         "mpg_vs_weight": "data-mpg-weight", "mpg_vs_model_year": "data-mpg-year",
         "tuning": "tuning-table", "predicted_vs_actual": "errors-predicted",
         "residuals": "errors-residuals", "slice_mae": "errors-slices"}


class ReportPage(HTMLParser):
    """Collects ids, images (with the section they sit in), printed numbers and table rows."""

    def __init__(self, text: str):
        super().__init__()
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
            self._row = {**a, "text": ""}

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


def lookup(manifest: dict, key: str):
    value = manifest
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.fixture(scope="module")
def report(bundle_dir, manifest):
    path = bundle_dir / manifest["report"]["path"]
    return ReportPage(path.read_text(encoding="utf-8"))


def test_build_writes_the_report_with_hashed_files(bundle_dir, manifest):
    entry = manifest["packages"]["report"]
    assert entry["path"] == manifest["report"]["path"] == "report/index.html"
    index = bundle_dir / entry["path"]
    assert index.is_file() and sha256_file(index) == entry["sha256"]
    assert set(entry["images"]) == set(PLOTS) == set(manifest["report"]["plots"])
    for name, img in entry["images"].items():
        png = bundle_dir / img["path"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size == img["bytes"] > 5000, name   # a real figure, not an empty one
        assert sha256_file(png) == img["sha256"], name


def test_each_section_and_each_plot_is_on_the_page(bundle_dir, manifest, report):
    assert SECTIONS <= set(report.ids)
    assert set(manifest["report"]["sections"]) == SECTIONS
    shown = {img["data-plot"]: img for img in report.imgs}
    assert set(shown) == set(PLOTS)
    for name, img in shown.items():
        assert img["section"] == PLOTS[name], f"plot {name} is in section {img['section']}"
        # Resolved like a browser would: relative to the page, inside the bundle.
        target = (bundle_dir / "report" / img["src"]).resolve()
        assert target == (bundle_dir / manifest["report"]["plots"][name]).resolve()
        assert target.is_file() and img["alt"]


def test_page_is_self_contained(bundle_dir, manifest, report):
    text = (bundle_dir / manifest["report"]["path"]).read_text(encoding="utf-8")
    assert report.scripts == 0
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), "page references the network"
    assert all(link.startswith("#") for link in report.links)
    assert "@import" not in text and "url(" not in text


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def test_every_number_on_the_page_is_the_manifests(manifest, report):
    assert len(report.nums) > 150
    for num in report.nums:
        value = lookup(manifest, num["data-key"])
        assert json.loads(num["data-value"]) == value, num["data-key"]
        text = num["text"].strip().removesuffix(" %")
        if value is None:
            assert text == "—"
            continue
        scale = float(num.get("data-scale", 1))
        shown = float(text)
        if "e" in text:
            assert shown == pytest.approx(value * scale, rel=1e-5), num["data-key"]
        else:
            assert abs(shown - value * scale) <= 0.5 * 10 ** -_decimals(text) + 1e-9, \
                (num["data-key"], text, value)
    keys = {n["data-key"] for n in report.nums}
    t = manifest["metrics"]["tuning"]
    for i in range(len(t["candidates"])):
        for field in ("cv_mae_mean", "cv_mae_std", *(f"cv_mae_folds.{f}" for f in range(5))):
            assert f"metrics.tuning.candidates.{i}.{field}" in keys
    for field in ("cv_mae_mean", "cv_mae_std", "holdout.mae", "holdout.rmse"):
        assert f"metrics.mlp.{field}" in keys and f"metrics.ridge_baseline.{field}" in keys
    for name, value in manifest["metrics"]["mlp"]["params"].items():
        if isinstance(value, (int, float)):
            assert f"metrics.mlp.params.{name}" in keys
    for i, row in enumerate(manifest["report"]["slices"]["rows"]):
        for s in ("cv", "holdout"):
            assert {f"report.slices.rows.{i}.{s}.count", f"report.slices.rows.{i}.{s}.mae"} <= keys
    for name in manifest["report"]["data"]["columns"]:
        assert f"report.data.columns.{name}.missing" in keys


def test_tuning_table_and_chosen_settings(manifest, report):
    from mpgpack.train.model import MLP_PARAMS
    m = manifest["metrics"]
    t = m["tuning"]
    cands = t["candidates"]
    assert len(cands) >= 8
    default = cands[t["default"]]
    assert default["params"] == {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in MLP_PARAMS.items()}
    means = [c["cv_mae_mean"] for c in cands]
    assert t["chosen"] == int(np.argmin(means))
    chosen = cands[t["chosen"]]
    assert chosen["cv_mae_mean"] <= default["cv_mae_mean"]
    assert m["mlp"]["params"] == chosen["params"]
    assert m["mlp"]["cv_mae_folds"] == chosen["cv_mae_folds"]
    assert manifest["model"]["config"]["mlp"] == chosen["params"]
    # The build pipeline's gates still hold for the chosen model.
    assert m["mlp"]["cv_mae_mean"] <= 2.0
    assert m["cv_mae_improvement_over_ridge"] >= 0.15
    # The search space covers hidden sizes, regularisation and the learning rate.
    searched = {k: {json.dumps(c["params"][k]) for c in cands if k in c["params"]}
                for k in ("hidden_layer_sizes", "alpha", "learning_rate_init", "solver")}
    assert all(len(v) >= 2 for v in searched.values()), searched
    # One table row per candidate plus the baseline, the chosen one marked.
    rows = [r for r in report.rows if "data-candidate" in r]
    assert sorted(r["data-candidate"] for r in rows) == \
        sorted([str(i) for i in range(len(cands))] + ["ridge"])
    marked = [r for r in rows if r.get("class") == "chosen"]
    assert [r["data-candidate"] for r in marked] == [str(t["chosen"])]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_cv_is_on_the_training_split_with_the_same_folds(bundle_dir, manifest):
    """Re-scores the default, the chosen model and Ridge with plain sklearn on the seeded split
    and folds: the fold MAEs must be the manifest's, fold by fold."""
    from sklearn.model_selection import KFold, cross_val_score, train_test_split

    from mpgpack.train.data import load_dataset
    from mpgpack.train.model import make_mlp_pipeline, make_ridge_pipeline
    from mpgpack.train.tune import single_threaded_blas

    split = manifest["metrics"]["split"]
    ds = load_dataset(REPO / manifest["data"]["source"])
    assert ds.sha256 == manifest["data"]["sha256"]
    X_tr, _, y_tr, _ = train_test_split(ds.X, ds.y, test_size=split["holdout_fraction"],
                                        random_state=split["seed"])
    folds = KFold(split["cv_folds"], shuffle=True, random_state=split["seed"])
    t = manifest["metrics"]["tuning"]

    def params(c):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in c["params"].items()}

    for name, pipe, expected in [
        ("default", make_mlp_pipeline(split["seed"], **params(t["candidates"][t["default"]])),
         t["candidates"][t["default"]]["cv_mae_folds"]),
        ("chosen", make_mlp_pipeline(split["seed"], **params(t["candidates"][t["chosen"]])),
         manifest["metrics"]["mlp"]["cv_mae_folds"]),
        ("ridge", make_ridge_pipeline(split["seed"]),
         manifest["metrics"]["ridge_baseline"]["cv_mae_folds"])]:
        with single_threaded_blas():   # as in the build; also far faster on 2 busy cores
            got = -cross_val_score(pipe, X_tr, y_tr, cv=folds, scoring="neg_mean_absolute_error")
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=name)


def test_search_is_reproducible_and_independent_of_parallelism():
    from mpgpack.train.data import load_dataset
    from mpgpack.train.tune import make_folds, search_mlp

    ds = load_dataset(REPO / "mpgpack" / "data" / "auto-mpg.data")
    X, y = ds.X[:200], ds.y[:200]
    grid = [{"solver": ["lbfgs"], "hidden_layer_sizes": [(8,)], "alpha": [1.0, 30.0]}]
    folds = make_folds(len(y), 5, seed=3)
    a = search_mlp(X, y, folds, seed=3, grid=grid, n_jobs=1)
    b = search_mlp(X, y, folds, seed=3, grid=grid, n_jobs=2)
    assert len(a.candidates) == 3 and a.default == 0
    for ca, cb in zip(a.candidates, b.candidates):
        assert ca.params == cb.params
        np.testing.assert_array_equal(ca.fold_mae, cb.fold_mae)
        np.testing.assert_array_equal(ca.oof_pred, cb.oof_pred)
    assert a.chosen == b.chosen == int(np.argmin([c.mean for c in a.candidates]))
    # Out-of-fold predictions cover every row once, and give back the fold MAEs.
    best = a.best
    assert not np.isnan(best.oof_pred).any()
    for f, (_, test_idx) in enumerate(folds):
        assert np.mean(np.abs(best.oof_pred[test_idx] - y[test_idx])) == \
            pytest.approx(best.fold_mae[f], abs=1e-12)


def test_slices_counts_flags_and_holdout_maes(bundle_dir, manifest, report):
    """Slice counts add up, flags follow the 1.5x rule, and the hold-out MAEs agree with an
    independent computation from golden.json's hold-out rows (reference predictions)."""
    from mpgpack.core.bundle import open_bundle

    s = manifest["report"]["slices"]
    split = manifest["metrics"]["split"]
    assert s["flag_ratio"] == 1.5
    families = {r["by"] for r in s["rows"]}
    assert families == {"origin", "cylinders", "model_year", "horsepower"}
    for fam in families:
        rows = [r for r in s["rows"] if r["by"] == fam]
        assert sum(r["cv"]["count"] for r in rows) == split["train_rows"], fam
        assert sum(r["holdout"]["count"] for r in rows) == split["holdout_rows"], fam
    assert s["overall"]["holdout"]["mae"] == pytest.approx(manifest["metrics"]["mlp"]["holdout"]["mae"],
                                                           abs=1e-12)
    flagged = []
    for r in s["rows"]:
        for name in ("cv", "holdout"):
            cell = r[name]
            want = cell["mae"] is not None and cell["mae"] > 1.5 * s["overall"][name]["mae"]
            assert cell["flagged"] == want
            if want:
                flagged.append(f"{r['by']}={r['label']} ({name}, n={cell['count']})")
    assert s["flagged"] == flagged
    # The page marks exactly the flagged slice rows.
    page_rows = {int(r["data-slice"]): r for r in report.rows if "data-slice" in r}
    assert len(page_rows) == len(s["rows"])
    for i, r in enumerate(s["rows"]):
        n_flags = page_rows[i]["text"].count("FLAGGED")
        assert n_flags == sum(r[n]["flagged"] for n in ("cv", "holdout")), r

    golden = open_bundle(bundle_dir).golden()
    rows = np.array([g == "holdout" for g in golden.groups])
    X, err = golden.X[rows].astype(np.float64), golden.expected[rows] - golden.actual[rows]
    origin = manifest["schema"]["features"][6]["categories"]
    for r in s["rows"]:
        if r["by"] == "origin":
            code = float(next(k for k, v in origin.items() if v == r["label"]))
            mask = X[:, 6] == code
        elif r["by"] == "cylinders":
            mask = X[:, 0] == float(r["label"])
        elif r["by"] == "model_year":
            lo, _, hi = r["label"].partition("–")
            mask = (X[:, 5] >= float(lo)) & (X[:, 5] <= float(hi or lo))
        else:
            mask = np.isnan(X[:, 2]) == (r["label"] == "missing")
        assert int(mask.sum()) == r["holdout"]["count"], r
        if mask.any():
            # golden's expected values come from float32 inputs: agree to 1e-4 MPG
            assert np.mean(np.abs(err[mask])) == pytest.approx(r["holdout"]["mae"], abs=1e-4), r


def test_data_section_matches_the_data(manifest):
    from mpgpack.train.data import load_dataset
    from mpgpack.train.schema import FEATURE_NAMES

    ds = load_dataset(REPO / manifest["data"]["source"])
    d = manifest["report"]["data"]
    assert d["rows"] == len(ds) == manifest["data"]["rows"]
    for i, name in enumerate(FEATURE_NAMES):
        assert d["columns"][name]["missing"] == int(np.isnan(ds.X[:, i]).sum())
    assert d["columns"]["horsepower"]["missing"] == 6
    assert d["notes_count"] == len(manifest["data"]["notes"])
    corr = np.array(d["correlation"]["matrix"])
    cols = d["correlation"]["columns"]
    assert cols[0] == "mpg"
    w = FEATURE_NAMES.index("weight")
    assert corr[0, cols.index("weight")] == pytest.approx(np.corrcoef(ds.y, ds.X[:, w])[0, 1])
    np.testing.assert_allclose(corr, corr.T)


def test_cli_prints_and_opens_the_report(bundle_dir, tmp_path):
    index = (bundle_dir / "report" / "index.html").resolve()
    r = run_cli("report", str(bundle_dir), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == str(index)
    assert "flagged slices:" in r.stdout
    # --open goes through the standard $BROWSER hook; here a script that records its argument.
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    r = run_cli("report", str(bundle_dir), "--open", timeout=60,
                env={"PATH": "/usr/bin:/bin", "BROWSER": f"{browser} %s"})
    assert r.returncode == 0, r.stderr
    assert opened.read_text().strip() == index.as_uri()


def test_cli_refuses_a_tampered_or_missing_report(bundle_copy):
    png = bundle_copy / "report" / "img" / "residuals.png"
    png.write_bytes(png.read_bytes() + b"x")
    r = run_cli("report", str(bundle_copy), timeout=60)
    assert r.returncode == 1
    assert "report/img/residuals.png does not match its sha256" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1

    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    del manifest["packages"]["report"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    r = run_cli("report", str(bundle_copy), timeout=60)
    assert r.returncode == 1 and "has no model report" in r.stderr
    assert "Traceback" not in r.stderr


def test_figures_on_odd_data_stay_valid_json():
    """A constant column has no correlation (null, not NaN); an empty slice has no MAE and is
    never flagged; a slice far worse than the rest is."""
    from mpgpack.train.data import Dataset
    from mpgpack.train.report import data_figures
    from mpgpack.train.report_slices import slice_errors

    rng = np.random.default_rng(0)
    n = 60
    X = np.column_stack([np.full(n, 4.0), rng.uniform(70, 300, n), rng.uniform(50, 200, n),
                         rng.uniform(1800, 4500, n), rng.uniform(10, 20, n),
                         rng.integers(70, 83, n).astype(float), np.where(np.arange(n) < 50, 1.0, 3.0)])
    y = rng.uniform(10, 40, n)
    figures = data_figures(Dataset(X, y, [""] * n, "0" * 64, "synthetic"))
    json.dumps(figures, allow_nan=False)
    cols = figures["correlation"]["columns"]
    assert figures["correlation"]["matrix"][0][cols.index("cylinders")] is None
    assert figures["columns"]["horsepower"]["missing"] == 0

    pred = y + np.where(X[:, 6] == 3, 5.0, 0.5)          # Japan (10 rows) is 10x worse
    s = slice_errors(X, {"cv": (X, y, pred)})
    json.dumps(s, allow_nan=False)
    rows = {(r["by"], r["label"]): r["cv"] for r in s["rows"]}
    assert rows[("origin", "Europe")] == {"count": 0, "mae": None, "ratio": None, "flagged": False}
    assert rows[("horsepower", "missing")]["count"] == 0
    assert rows[("origin", "Japan")]["flagged"] and not rows[("origin", "USA")]["flagged"]
    assert rows[("origin", "Japan")]["mae"] == pytest.approx(5.0)
    assert s["overall"]["cv"]["mae"] == pytest.approx((50 * 0.5 + 10 * 5.0) / 60)
    assert s["flagged"] == ["origin=Japan (cv, n=10)"]
