"""The model report written into every bundle: `report/index.html` with its plots beside it.

Three parts: the data the model learned from, how its settings were chosen (the tuning table
from `metrics.tuning`), and where it is wrong (predicted vs actual, residuals, MAE per slice).
The figures go into the manifest under "report" and the HTML is rendered from the manifest
alone (train/report_html.py), so every number on the page is the manifest's number.

Called by `export/build.py` as a build stage right after the manifest is assembled, because it
needs the loaded data set and the search results, which a bundle does not hold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mpgpack.train.data import Dataset
from mpgpack.train.fit import TrainedModel
from mpgpack.train.schema import FEATURE_NAMES, FEATURES, TARGET

REPORT_DIR = "report"
IMG_DIR = "img"
# Section ids of the page, in order; the tests check that each one is on the page.
SECTIONS = ["summary", "data", "data-distributions", "data-missing", "data-correlation",
            "data-mpg-weight", "data-mpg-year", "data-notes", "tuning", "tuning-table",
            "tuning-chosen", "errors", "errors-predicted", "errors-residuals", "errors-slices"]
# Correlation is over numbers: origin is a category (shown as colour in the scatter plots).
CORRELATION_COLUMNS = [TARGET] + [f.name for f in FEATURES if f.kind == "number"]


def data_figures(ds: Dataset) -> dict:
    """What the exploration section shows, over every loaded row (training and hold-out)."""
    columns = {TARGET: ds.y, **{name: ds.X[:, i] for i, name in enumerate(FEATURE_NAMES)}}
    summary = {}
    for name, col in columns.items():
        present = col[~np.isnan(col)]
        summary[name] = {"present": int(len(present)), "missing": int(len(col) - len(present)),
                         "missing_share": float((len(col) - len(present)) / len(col)),
                         "min": float(present.min()), "max": float(present.max()),
                         "mean": float(present.mean()), "median": float(np.median(present))}
    table = np.column_stack([columns[c] for c in CORRELATION_COLUMNS])
    n = len(CORRELATION_COLUMNS)
    matrix = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            both = ~np.isnan(table[:, i]) & ~np.isnan(table[:, j])
            with np.errstate(invalid="ignore", divide="ignore"):   # a constant column
                matrix[i, j] = matrix[j, i] = np.corrcoef(table[both, i], table[both, j])[0, 1]
    return {"rows": len(ds), "columns": summary,
            # null where a column is constant (no correlation defined): JSON has no NaN
            "correlation": {"columns": CORRELATION_COLUMNS, "method": "Pearson, pairwise complete",
                            "matrix": [[None if np.isnan(v) else float(v) for v in row]
                                       for row in matrix]},
            "notes_count": len(ds.notes)}


def error_sets(trained: TrainedModel) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (X, actual, predicted): honest predictions only, never in-sample ones."""
    return {"cv": (trained.X_train, trained.y_train, trained.oof_pred),
            "holdout": (trained.X_holdout, trained.y_holdout,
                        trained.pipeline.predict(trained.X_holdout))}


def _candidate_label(params: dict) -> str:
    hidden = "×".join(str(h) for h in params["hidden_layer_sizes"])
    lr = f", lr {params['learning_rate_init']:g}" if params["solver"] != "lbfgs" else ""
    return f"{params['solver']} ({hidden}), α {params['alpha']:g}{lr}"


def draw_plots(out: Path, ds: Dataset, trained: TrainedModel, figures: dict,
               metrics: dict) -> dict[str, Path]:
    from mpgpack.train import report_plots as rp
    sets = error_sets(trained)
    tuning = metrics["tuning"]
    cands = tuning["candidates"]
    img = out / IMG_DIR
    return {
        "distributions": rp.distributions(ds.X, ds.y, img / "distributions.png"),
        "correlation": rp.correlation(np.array(figures["data"]["correlation"]["matrix"],
                                               dtype=float),
                                      CORRELATION_COLUMNS, img / "correlation.png"),
        "mpg_vs_weight": rp.mpg_against(ds.X, ds.y, FEATURE_NAMES.index("weight"),
                                        img / "mpg_vs_weight.png"),
        "mpg_vs_model_year": rp.mpg_against(ds.X, ds.y, FEATURE_NAMES.index("model_year"),
                                            img / "mpg_vs_model_year.png", jitter=0.25),
        "tuning": rp.tuning([_candidate_label(c["params"]) for c in cands],
                            np.array([c["cv_mae_mean"] for c in cands]),
                            np.array([c["cv_mae_std"] for c in cands]),
                            tuning["chosen"], tuning["default"],
                            metrics["ridge_baseline"]["cv_mae_mean"], img / "tuning.png"),
        "predicted_vs_actual": rp.predicted_vs_actual(
            {k: (y, p) for k, (_, y, p) in sets.items()}, img / "predicted_vs_actual.png"),
        "residuals": rp.residuals({k: (X, p - y) for k, (X, y, p) in sets.items()},
                                  img / "residuals.png"),
        "slice_mae": rp.slice_mae(figures["slices"]["rows"], figures["slices"]["overall"],
                                  figures["slices"]["flag_ratio"], img / "slice_mae.png"),
    }


def write_report(bundle_dir: Path, manifest: dict, ds: Dataset, trained: TrainedModel) -> dict:
    """Writes bundle_dir/report/, sets manifest["report"], returns the manifest packages entry."""
    from mpgpack.core.bundle_write import artifact_entry
    from mpgpack.train.report_html import render
    from mpgpack.train.report_slices import slice_errors

    out = bundle_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    figures = {"data": data_figures(ds),
               "slices": slice_errors(ds.X, error_sets(trained))}
    figures["slices"]["sets"] = {
        "cv": "out-of-fold predictions of the chosen MLP on the training split "
              "(each row predicted by the fold model that did not see it)",
        "holdout": "the fitted MLP on the hold-out split (scored once)"}
    plots = draw_plots(out, ds, trained, figures, manifest["metrics"])
    manifest["report"] = {
        "path": f"{REPORT_DIR}/index.html",
        "sections": SECTIONS,
        "plots": {name: p.relative_to(bundle_dir).as_posix() for name, p in plots.items()},
        "tuning_table": "metrics.tuning",
        **figures,
    }
    index = out / "index.html"
    index.write_text(render(manifest), encoding="utf-8")
    images = {name: artifact_entry(bundle_dir, p, "png") for name, p in plots.items()}
    return {"report": artifact_entry(bundle_dir, index, "report_html", images=images)}
