"""The web page end to end: the built site served by the real `mpgpack web`, driven in real
headless Chromium (Debian's /usr/bin/chromium through Playwright). One browser per session;
each test gets a fresh context (own cache, storage and service workers).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from mpgpack.core.bundle import open_bundle
from mpgpack.targets.web.chromium import PHONE, launch, serve_bundle
from mpgpack.targets.web.pack import check_graph_ops
from tests.helpers import DATA, record_site


READY_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def golden(bundle_dir):
    g = open_bundle(bundle_dir).golden()
    rows = [[None if math.isnan(v) else float(v) for v in row] for row in g.X.tolist()]
    return {"rows": rows, "expected": g.expected.tolist(), "groups": g.groups, "tolerance": g.tolerance}


@pytest.fixture(scope="session")
def site_url(bundle_dir):
    with serve_bundle(bundle_dir) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Visit:
    """A browser context on one origin that records every request and every page error."""

    def __init__(self, browser, origin, **context_args):
        self.origin = origin.rstrip("/")
        self.context = browser.new_context(**context_args)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, query: str = ""):
        self.page.goto(f"{self.origin}/{query}")
        return self.page.evaluate("window.mpg.ready")

    def foreign_requests(self):
        return [u for u in self.requests if not (u.startswith(self.origin + "/") or u.startswith("blob:")
                                                 or u.startswith("data:"))]

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, site_url):
    v = Visit(browser, site_url)
    v.page.set_default_timeout(READY_TIMEOUT_MS)
    yield v
    try:
        assert v.foreign_requests() == [], "the page reached beyond its own origin"
        assert v.errors == []
    finally:
        v.close()


def fill_form(page, row):
    """Types one car into the form, as a person would; None leaves the field empty."""
    names = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]
    for name, value in zip(names, row):
        if name == "origin":
            page.select_option("select[name=origin]", str(int(value)))
        else:
            page.fill(f"input[name={name}]", "" if value is None else repr(value).removesuffix(".0"))


def shown_prediction(page, row) -> float:
    """Waits until #prediction shows the answer for exactly `row`, then returns it."""
    page.wait_for_function(
        "row => { const o = document.querySelector('#prediction');"
        " return o.dataset.for === JSON.stringify(row) && o.dataset.state === 'ok'; }", arg=row)
    out = page.locator("#prediction")
    value = float(out.get_attribute("data-value"))
    assert out.inner_text() == f"{value:.1f}"
    return value


def pick_rows(golden, per_group=3):
    picked = {}
    for i, g in enumerate(golden["groups"]):
        picked.setdefault(g, [])
        if len(picked[g]) < per_group:
            picked[g].append(i)
    return [i for idx in picked.values() for i in idx]


def test_form_predicts_the_golden_outputs(visit, golden):
    facts = visit.open()
    assert facts["version"] and facts["sha256Verified"] is True
    rows = pick_rows(golden)
    assert any(golden["rows"][i][2] is None for i in rows), "no row with a missing horsepower"
    for i in rows:
        row = golden["rows"][i]
        fill_form(visit.page, row)
        got = shown_prediction(visit.page, row)
        assert abs(got - golden["expected"][i]) <= golden["tolerance"], (golden["groups"][i], row, got)


def test_predict_api_matches_the_whole_golden_set(visit, golden):
    visit.open()
    got = visit.page.evaluate("rows => window.mpg.predict(rows)", golden["rows"])
    assert len(got) == len(golden["expected"]) > 1000
    errors = [abs(a - b) for a, b in zip(got, golden["expected"])]
    assert max(errors) <= golden["tolerance"], max(errors)


def test_predict_api_refuses_bad_rows_naming_the_field(visit):
    visit.open()
    message = visit.page.evaluate("""() => window.mpg.predict([[4, 120, 90, 99999, 15, 76, 1]])
        .then(() => 'resolved', (e) => e.message)""")
    assert "row 0" in message and "weight" in message and "1000 to 7000" in message
    message = visit.page.evaluate("() => window.mpg.predict([[4, 120]]).then(() => 'resolved', (e) => e.message)")
    assert "7 values" in message and "cylinders, displacement" in message


@pytest.mark.parametrize("field, text, says", [
    ("weight", "heavy", '"heavy" is not a number'),
    ("weight", "9000", "outside the allowed range"),
    ("cylinders", "", "cylinders is required"),
    ("cylinders", "4.5", "not a whole number"),
    ("model_year", "1976", "outside the allowed range"),
])
def test_invalid_value_shows_a_message_and_no_number(visit, field, text, says):
    visit.open()
    page = visit.page
    page.fill(f"input[name={field}]", text)
    error = page.locator(f"[data-field={field}] .error")
    error.wait_for(state="visible")
    assert says in error.inner_text() and field in error.inner_text()
    out = page.locator("#prediction")
    assert out.get_attribute("data-state") == "invalid"
    assert out.get_attribute("data-value") is None
    assert not re.search(r"\d", out.inner_text())
    assert "Fix the highlighted value" in page.inner_text("#form-message")
    # Fixing it brings a number back.
    page.fill(f"input[name={field}]", {"weight": "3000", "cylinders": "4", "model_year": "76"}[field])
    page.wait_for_function("document.querySelector('#prediction').dataset.state === 'ok'")
    assert re.fullmatch(r"\d+\.\d", out.inner_text())
    assert error.is_hidden()


def test_outside_training_range_warns_but_predicts(visit):
    visit.open()
    page = visit.page
    assert page.locator("#how-sure").is_hidden()
    page.fill("input[name=weight]", "6000")      # allowed (<= 7000) but trained on <= 5140
    page.wait_for_function("!document.querySelector('#how-sure').hidden")
    note = page.inner_text("#how-sure")
    assert "weight 6000 lb" in note and "outside the training data" in note
    assert page.locator("#prediction").get_attribute("data-state") == "ok"


def test_page_shows_model_version_defaults_and_ranges(visit, manifest):
    visit.open()
    page = visit.page
    assert manifest["model"]["version"] in page.inner_text("header")
    stats = manifest["training_stats"]
    for f in manifest["schema"]["features"]:
        control = page.locator(f"[name={f['name']}]")
        assert control.count() == 1
        assert float(control.input_value()) == stats[f["name"]]["median"]
        if f["kind"] == "number":
            lo, hi = f["training_range"]
            hint = page.inner_text(f"#f-{f['name']}-hint")
            assert f"Trained on {lo:g}–{hi:g}" in hint
    options = page.locator("select[name=origin] option")
    assert options.all_inner_texts() == ["USA", "Europe", "Japan"]


def test_batch_csv_table_and_download(visit, golden, tmp_path):
    visit.open()
    page = visit.page
    idx = pick_rows(golden, per_group=2)
    lines = ["name,cylinders,displacement,horsepower,weight,acceleration,model_year,origin"]
    for i in idx:
        r = golden["rows"][i]
        cells = ["" if v is None else repr(v) for v in r[:6]] + [["USA", "Europe", "Japan"][int(r[6]) - 1]]
        lines.append(",".join([f"car {i}", *cells]))
    lines.append("broken,4,100,,abc,15,76,1")
    path = tmp_path / "cars.csv"
    path.write_text("\n".join(lines) + "\n")
    page.set_input_files("#csv-file", str(path))
    page.locator("#batch-download").wait_for(state="visible")
    assert f"{len(idx)} of {len(idx) + 1} rows predicted" in page.inner_text("#batch-status")
    assert page.locator("#batch-table tbody tr").count() == len(idx) + 1
    assert "not a number" in page.inner_text("#batch-table tbody tr.bad")
    with page.expect_download() as dl:
        page.click("#batch-download")
    out = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert len(out) == len(idx) + 1
    for rec, i in zip(out, idx):
        assert rec["name"] == f"car {i}" and rec["error"] == ""
        assert abs(float(rec["mpg_predicted"]) - golden["expected"][i]) <= golden["tolerance"]
    assert out[-1]["mpg_predicted"] == "" and "weight" in out[-1]["error"]


def test_batch_csv_without_required_column_says_which(visit, tmp_path):
    visit.open()
    path = tmp_path / "bad.csv"
    path.write_text("cylinders,displacement\n4,100\n")
    visit.page.set_input_files("#csv-file", str(path))
    visit.page.wait_for_function("document.querySelector('#batch-status').classList.contains('bad')")
    status = visit.page.inner_text("#batch-status")
    assert "no column weight, acceleration, model_year, origin" in status
    assert "horsepower may be left out" in status


def test_selftest_url_runs_golden_vectors_and_passes(visit, golden):
    visit.open("?selftest")
    result = visit.page.locator("#selftest-result")
    visit.page.wait_for_function("document.querySelector('#selftest-result').dataset.passed !== undefined")
    assert result.get_attribute("data-passed") == "true", result.inner_text()
    assert float(result.get_attribute("data-max-abs-error")) <= golden["tolerance"]
    assert result.inner_text().startswith(f"PASS: {len(golden['rows'])} golden rows")


def test_selftest_button(visit):
    visit.open()
    visit.page.click("#selftest-button")
    visit.page.wait_for_function("document.querySelector('#selftest-result').dataset.passed === 'true'")


def test_both_backends_agree_with_golden(visit, golden):
    for backend in ("cpu", "wasm"):
        facts = visit.open(f"?backend={backend}")
        assert facts["backend"] == backend
        got = visit.page.evaluate("rows => window.mpg.predict(rows)", golden["rows"])
        assert max(abs(a - b) for a, b in zip(got, golden["expected"])) <= golden["tolerance"], backend


def test_offline_reload_still_predicts(browser, site_url, golden):
    v = Visit(browser, site_url)
    try:
        v.open()
        # The service worker is installed, active and has cached the site.
        v.page.evaluate("navigator.serviceWorker.ready")
        v.page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=READY_TIMEOUT_MS)
        v.page.wait_for_function("""async () => {
            const keys = await caches.keys();
            if (!keys.length) return false;
            const cache = await caches.open(keys[0]);
            return (await cache.keys()).length >= 10; }""", timeout=READY_TIMEOUT_MS)
        v.context.set_offline(True)
        v.page.reload()
        facts = v.page.evaluate("window.mpg.ready")
        assert facts["version"]
        row = golden["rows"][0]
        fill_form(v.page, row)
        assert abs(shown_prediction(v.page, row) - golden["expected"][0]) <= golden["tolerance"]
        # A navigation with a query (the self-test) works offline too.
        v.page.goto(site_url + "?selftest")
        v.page.wait_for_function("document.querySelector('#selftest-result').dataset.passed === 'true'",
                                 timeout=READY_TIMEOUT_MS)
        assert v.errors == []
    finally:
        v.context.set_offline(False)
        v.close()


def test_phone_viewport(browser, site_url, golden):
    v = Visit(browser, site_url, **PHONE)
    try:
        v.open()
        page = v.page
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px screen"
        for name in ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]:
            box = page.locator(f"[name={name}]").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 100, (name, box)
        # The result sits above the form on a phone, visible without scrolling.
        result = page.locator("#prediction").bounding_box()
        assert result["y"] + result["height"] <= 844
        row = golden["rows"][1]
        page.locator("input[name=weight]").tap()
        fill_form(page, row)
        assert abs(shown_prediction(page, row) - golden["expected"][1]) <= golden["tolerance"]
        assert v.errors == [] and v.foreign_requests() == []
    finally:
        v.close()


def test_tampered_model_is_refused(browser, bundle_copy):
    shard = next((bundle_copy / "web" / "model").glob("*.bin"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    # Changed after the server's start check (a cache or a proxy on the way): the page's own
    # check must catch it.
    record_site(bundle_copy)
    with serve_bundle(bundle_copy) as url:
        v = Visit(browser, url)
        try:
            v.page.goto(url)
            message = v.page.evaluate("window.mpg.ready.then(() => 'resolved', (e) => e.message)")
            assert "does not match its sha256" in message and shard.name in message
            assert v.page.locator("#fatal").is_visible()
            assert "does not match its sha256" in v.page.inner_text("#fatal")
        finally:
            v.close()


@pytest.fixture
def repacked(bundle_copy) -> Path:
    """A copy of the bundle whose site is packed by this tree's pack.py (the session bundle may
    predate the page's manifest check)."""
    from mpgpack.targets.web.pack import pack_site
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["packages"].update(pack_site(bundle_copy, manifest))
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return bundle_copy


def _rename_a_feature(site: Path) -> str:
    path = site / "model" / "manifest.json"
    path.write_text(path.read_text().replace('"horsepower"', '"horsepowre"', 1))
    return "model/manifest.json does not match its sha256 in index.html"


def _truncate_model_json(site: Path) -> str:
    path = site / "model" / "model.json"
    path.write_bytes(path.read_bytes()[:200])
    return "model file model.json does not match its sha256"


@pytest.mark.parametrize("tamper", [_rename_a_feature, _truncate_model_json])
def test_page_refuses_its_own_changed_files_naming_them(browser, repacked, tamper):
    """Changed after the server's start check (a cache, a proxy): the page's own checks catch
    the page manifest (a renamed feature) and a truncated model.json, naming the file."""
    expected = tamper(repacked / "web")
    record_site(repacked)
    with serve_bundle(repacked) as url:
        v = Visit(browser, url)
        try:
            v.page.goto(url)
            message = v.page.evaluate("window.mpg.ready.then(() => 'resolved', (e) => e.message)")
            assert expected in message, message
            assert expected in v.page.inner_text("#fatal")
        finally:
            v.close()


def test_repacked_page_passes_its_checks(browser, repacked, golden):
    with serve_bundle(repacked) as url:
        v = Visit(browser, url)
        try:
            v.page.goto(url)
            facts = v.page.evaluate("window.mpg.ready")
            assert facts["sha256Verified"] is True
            assert v.page.evaluate("window.mpg.selfTest()")["passed"]
        finally:
            v.close()


def test_report_link_appears_when_the_bundle_has_a_report(browser, bundle_copy):
    shutil.rmtree(bundle_copy / "report", ignore_errors=True)
    record_site(bundle_copy)          # served only as the manifest records it
    with serve_bundle(bundle_copy) as url:
        visit_without = Visit(browser, url)
        try:
            visit_without.open()
            visit_without.page.wait_for_timeout(300)
            assert visit_without.page.locator("#report-link").is_hidden()
        finally:
            visit_without.close()
    (bundle_copy / "report").mkdir()
    (bundle_copy / "report" / "index.html").write_text("<!doctype html><title>report</title><h1>Report</h1>")
    record_site(bundle_copy)
    with serve_bundle(bundle_copy) as url:
        v = Visit(browser, url)
        try:
            v.open()
            link = v.page.locator("#report-link")
            link.wait_for(state="visible")
            link.click()
            v.page.wait_for_url("**/report/index.html")
            assert v.page.inner_text("h1") == "Report"
        finally:
            v.close()


# --- the trimmed TF.js build against other model shapes -----------------------------------

def _variants():
    from mpgpack.train.families import make_pipeline
    from mpgpack.train.schema import mpg_spec
    schema = mpg_spec().schema
    return {
        "mlp-logistic": make_pipeline(schema, "mlp", 0, {"activation": "logistic", "max_iter": 200}),
        "mlp-relu-32-16": make_pipeline(schema, "mlp", 0, {"hidden_layer_sizes": (32, 16),
                                                           "max_iter": 200}),
        "ridge": make_pipeline(schema, "linear", 0),
    }


def _swap_model(site_model: Path, tfjs_dir: Path, golden: dict) -> None:
    for old in site_model.glob("*.bin"):
        old.unlink()
    hashes = {}
    for f in tfjs_dir.iterdir():
        shutil.copyfile(f, site_model / f.name)
        hashes[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    info = json.loads((site_model / "manifest.json").read_text())
    info["web"]["model_sha256"] = hashes
    (site_model / "manifest.json").write_text(json.dumps(info))
    (site_model / "golden.json").write_text(json.dumps(golden))
    # index.html names the page manifest's sha256 (the page checks it): follow the swap.
    index = site_model.parent / "index.html"
    sha = hashlib.sha256((site_model / "manifest.json").read_bytes()).hexdigest()
    index.write_text(re.sub(r'(name="mpg-manifest-sha256" content=")[0-9a-f]+', rf"\g<1>{sha}",
                            index.read_text()))


def test_trimmed_tfjs_runs_every_lowered_model_shape(browser, bundle_copy, tmp_path):
    """The page's trimmed TF.js build (only the ops in graph_ops.json) runs every model shape the
    lowering produces, not just the bundle's: other activations, deeper MLPs and the Ridge
    baseline are exported by the real lowering + tensorflowjs converter, swapped into a copy of
    the site, and self-tested against their sklearn pipeline on both backends."""
    from mpgpack.export.tf_graph import save_saved_model
    from mpgpack.export.tfjs_export import export_tfjs
    from mpgpack.train.data import load_dataset

    ds = load_dataset(DATA)
    golden = json.loads((bundle_copy / "golden.json").read_text())
    X = np.array([[np.nan if v is None else v for v in row] for row in golden["inputs"]])
    site_model = bundle_copy / "web" / "model"
    with serve_bundle(bundle_copy) as url:
        for name, pipeline in _variants().items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # short fits stop at max_iter: fine here
                pipeline.fit(ds.X, ds.y)
            model_json = export_tfjs(save_saved_model(pipeline, tmp_path / name / "saved"),
                                     tmp_path / name / "tfjs")
            check_graph_ops(json.loads(model_json.read_text()))
            _swap_model(site_model, model_json.parent,
                        {**golden, "expected": pipeline.predict(X).tolist()})
            for backend in ("cpu", "wasm"):
                context = browser.new_context()
                try:
                    page = context.new_page()
                    page.goto(f"{url}?backend={backend}&nosw")
                    page.evaluate("window.mpg.ready")
                    result = page.evaluate("window.mpg.selfTest()")
                    assert result["passed"], (name, backend, result)
                    assert result["rows"] == len(golden["inputs"])
                finally:
                    context.close()


# --- any model the manifest describes: a classifier's page ---------------------------------

@pytest.fixture(scope="session")
def classifier_bundle(request) -> Path:
    """conftest's iris classifier (3 string classes), or MPGPACK_TEST_CLASSIFIER_BUNDLE=DIR to
    reuse a built one (as MPGPACK_TEST_BUNDLE does for the MPG bundle)."""
    reuse = os.environ.get("MPGPACK_TEST_CLASSIFIER_BUNDLE")
    return Path(reuse) if reuse else request.getfixturevalue("iris_bundle")


@pytest.fixture(scope="session")
def classifier(classifier_bundle):
    manifest = json.loads((classifier_bundle / "manifest.json").read_text())
    golden = json.loads((classifier_bundle / "golden.json").read_text())
    with serve_bundle(classifier_bundle) as url:
        # golden.json's own "features" (the names) gives way to the manifest's entries
        yield {**golden, "url": url, "manifest": manifest,
               "features": manifest["schema"]["features"],
               "classes": manifest["schema"]["target"]["classes"],
               "target": manifest["schema"]["target"]["name"]}


@pytest.fixture
def cvisit(browser, classifier):
    v = Visit(browser, classifier["url"])
    v.page.set_default_timeout(READY_TIMEOUT_MS)
    yield v
    try:
        assert v.foreign_requests() == [], "the page reached beyond its own origin"
        assert v.errors == []
    finally:
        v.close()


def fill_row(page, features, row):
    """Types one row into a form built from any schema: a category by its code (an unknown
    one as the empty choice), a number as written; None leaves a field empty."""
    for f, value in zip(features, row):
        if f["kind"] == "category":
            page.select_option(f"select[name={f['name']}]", "" if value is None else str(int(value)))
        else:
            page.fill(f"input[name={f['name']}]", "" if value is None else repr(value).removesuffix(".0"))


def first_class(p):
    return max(range(len(p)), key=lambda i: (p[i], -i))      # argmax, the first on a tie


def decided(p, tolerance):
    top = sorted(p, reverse=True)
    return top[0] - top[1] > 2 * tolerance


def test_classifier_form_shows_the_class_and_probability_bars(cvisit, classifier):
    cvisit.open()
    page, tol, classes = cvisit.page, classifier["tolerance"], classifier["classes"]
    rows = list(range(0, len(classifier["inputs"]), max(1, len(classifier["inputs"]) // 5)))[:5]
    for i in rows:
        row, want = classifier["inputs"][i], classifier["expected"][i]
        fill_row(page, classifier["features"], row)
        page.wait_for_function(
            "row => { const o = document.querySelector('#prediction');"
            " return o.dataset.for === JSON.stringify(row) && o.dataset.state === 'ok'; }", arg=row)
        got = json.loads(page.get_attribute("#prediction", "data-probabilities"))
        assert max(abs(a - b) for a, b in zip(got, want)) <= tol, (i, got, want)
        shown = page.inner_text("#prediction")
        assert shown == classes[first_class(got)]
        if decided(want, tol):
            assert shown == classes[first_class(want)]
        bars = page.locator("#probabilities li")
        assert bars.count() == len(classes)
        for k, c in enumerate(classes):
            bar = bars.nth(k)
            text = bar.inner_text().replace("\u00a0", " ")
            # label and percentage as text, not only as a bar's width
            assert c in text and f"{100 * got[k]:.1f} %" in text, text
            assert abs(float(bar.get_attribute("data-p")) - want[k]) <= tol
        assert page.locator("#probabilities li[aria-current=true]").get_attribute("data-class") == shown


def test_classifier_selftest_passes_with_class_agreement(cvisit, classifier):
    cvisit.open("?selftest")
    page = cvisit.page
    page.wait_for_function("document.querySelector('#selftest-result').dataset.passed !== undefined")
    box = page.locator("#selftest-result")
    assert box.get_attribute("data-passed") == "true", box.inner_text()
    assert float(box.get_attribute("data-max-abs-error")) <= classifier["tolerance"]
    assert float(box.get_attribute("data-class-agreement")) >= 0.99
    assert box.inner_text().startswith(f"PASS: {len(classifier['inputs'])} golden rows")


def test_classifier_predict_gives_rows_and_classify_labels(cvisit, classifier):
    cvisit.open()
    got = cvisit.page.evaluate("rows => window.mpg.predict(rows)", classifier["inputs"])
    C = len(classifier["classes"])
    assert len(got) == len(classifier["expected"]) and all(len(r) == C for r in got)
    err = max(abs(a - b) for g, w in zip(got, classifier["expected"]) for a, b in zip(g, w))
    assert err <= classifier["tolerance"], err
    answers = cvisit.page.evaluate("rows => window.mpg.classify(rows)", classifier["inputs"][:20])
    for a, g in zip(answers, got):
        assert a["class"] == classifier["classes"][first_class(g)] and a["index"] == first_class(g)


def test_classifier_batch_csv_has_class_and_probability_columns(cvisit, classifier, tmp_path):
    cvisit.open()
    page, features, classes = cvisit.page, classifier["features"], classifier["classes"]
    idx = list(range(min(6, len(classifier["inputs"]))))
    lines = ["id," + ",".join(f["name"] for f in features)]
    for i in idx:
        cells = []
        for f, v in zip(features, classifier["inputs"][i]):
            if v is None:
                cells.append("")
            elif f["kind"] == "category":
                cells.append(f["categories"][str(int(v))])         # by label, as a person writes it
            else:
                cells.append(repr(v))
        lines.append(",".join([f"row {i}", *cells]))
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    page.set_input_files("#csv-file", str(path))
    page.locator("#batch-download").wait_for(state="visible")
    head = page.locator("#batch-table thead th").all_inner_texts()
    predicted = f"{classifier['target']}_predicted"
    assert head[-len(classes) - 1:] == [predicted, *(f"p_{c}" for c in classes)]
    with page.expect_download() as dl:
        page.click("#batch-download")
    out = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert len(out) == len(idx)
    for rec, i in zip(out, idx):
        want = classifier["expected"][i]
        probs = [float(rec[f"p_{c}"]) for c in classes]
        assert max(abs(a - b) for a, b in zip(probs, want)) <= classifier["tolerance"]
        assert rec[predicted] == classes[first_class(probs)] and rec["error"] == ""


def test_classifier_page_names_only_what_its_manifest_says(cvisit, classifier):
    """The heading and the result's label come from the manifest (model name, target); nothing
    of the MPG showcase is left on a page for another model."""
    cvisit.open()
    page = cvisit.page
    target = classifier["target"].replace("_", " ")
    assert target.lower() in page.inner_text("h1").lower()
    assert classifier["manifest"]["model"]["name"] in page.title()
    text = page.inner_text("body") + page.title()
    assert not re.search(r"\b(mpg|cars?|horsepower|fuel)\b", text, re.IGNORECASE), text
    labels = page.locator("form label").all_inner_texts()
    assert [lab.split(" (")[0].lower() for lab in labels] == \
        [f["name"].replace("_", " ").lower() for f in classifier["features"]]


# --- a tree ensemble with text categories and missing values: the clinic regressor --------

@pytest.mark.parametrize("backend", ["cpu", "wasm"])
def test_tree_regressor_page_answers_the_golden_set(browser, clinic_bundle, backend):
    """Gradient-boosted trees (the tree lowering's LessEqual/GatherV2/MatMul in the trimmed
    TF.js build), a form with text categories and optional fields: every golden row through
    window.mpg.predict within the bundle's tolerance, and the page's own self-test."""
    golden = json.loads((clinic_bundle / "golden.json").read_text())
    manifest = json.loads((clinic_bundle / "manifest.json").read_text())
    assert manifest["model"]["family"] == "gbm"
    with serve_bundle(clinic_bundle) as url:
        v = Visit(browser, url)
        v.page.set_default_timeout(READY_TIMEOUT_MS)
        try:
            v.open(f"?backend={backend}&nosw")
            got = v.page.evaluate("(rows) => window.mpg.predict(rows)", golden["inputs"])
            err = max(abs(g - e) for g, e in zip(got, golden["expected"]))
            assert err <= golden["tolerance"], err
            result = v.page.evaluate("window.mpg.selfTest()")
            assert result["passed"] and result["rows"] == len(golden["inputs"]), result
            for f in manifest["schema"]["features"]:
                if f["categories"]:        # a select of the text labels, "unknown" if optional
                    labels = v.page.eval_on_selector_all(
                        f"select[name={f['name']}] option", "os => os.map(o => o.textContent)")
                    assert set(f["categories"].values()) <= set(labels), labels
            assert "mpg" not in v.page.inner_text("body").lower().replace("mpgpack", "")
            assert v.errors == [] and v.foreign_requests() == []
        finally:
            v.close()
