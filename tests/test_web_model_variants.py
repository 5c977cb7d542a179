"""The page's trimmed TF.js build (only the ops in graph_ops.json) runs every model shape the
lowering produces, not just the one in the bundle: other activations, deeper MLPs and the
Ridge baseline are exported by the real lowering + tensorflowjs converter, swapped into a copy
of the site, and checked in headless Chromium against the sklearn pipeline on both backends."""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from targets.web.chromium import launch, serve_bundle
from targets.web.pack import check_graph_ops



def _variants():
    from train.model import make_mlp_pipeline, make_ridge_pipeline
    return {
        "mlp-logistic": make_mlp_pipeline(0, activation="logistic", max_iter=200),
        "mlp-relu-32-16": make_mlp_pipeline(0, hidden_layer_sizes=(32, 16), max_iter=200),
        "ridge": make_ridge_pipeline(0),
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


def test_trimmed_tfjs_runs_every_lowered_model_shape(bundle_copy, tmp_path):
    from export.tf_graph import save_saved_model
    from export.tfjs_export import export_tfjs
    from train.data import load_dataset
    from export.build import DEFAULT_DATA

    ds = load_dataset(DEFAULT_DATA)
    golden = json.loads((bundle_copy / "golden.json").read_text())
    X = np.array([[np.nan if v is None else v for v in row] for row in golden["inputs"]])
    site_model = bundle_copy / "web" / "model"
    with serve_bundle(bundle_copy) as url, sync_playwright() as p:
        browser = launch(p)
        try:
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
        finally:
            browser.close()
