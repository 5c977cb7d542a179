"""The model report written into every bundle: `report/index.html` with its plots beside it.

Three parts: the data the model learned from, how the model was chosen (every candidate of the
search, from `metrics.tuning`), and where it is wrong (regression: predicted vs actual and
residuals; classification: per-class precision/recall and the confusion matrix; both: the
error per slice). Everything is driven by the model's TableSpec (its features, target, task
and classes), so any table the build can train gets the same report; the MPG showcase is one
of them. The figures go into the manifest under "report" and the HTML is rendered from the
manifest alone (train/report_html.py), so every number on the page is the manifest's number.

Called by `export/build.py` as a build stage right after the manifest is assembled, because it
needs the loaded data set and the search results, which a bundle does not hold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mpgpack.core.schema import CLASSIFICATION
from mpgpack.train.data import Dataset
from mpgpack.train.fit import TrainedModel
from mpgpack.train.report_slices import numeric_ranking, relevance
from mpgpack.train.table import TableSpec
from mpgpack.train.tune import predict_output

REPORT_DIR = "report"
IMG_DIR = "img"
# Section ids of the page, in order, by task; the tests check that each one is on the page.
COMMON_HEAD = ["summary", "data", "data-distributions", "data-missing"]
COMMON_TAIL = ["data-notes", "tuning", "tuning-table", "tuning-chosen", "errors"]
SECTIONS = {
    "regression": [*COMMON_HEAD, "data-correlation", "data-target", *COMMON_TAIL,
                   "errors-predicted", "errors-residuals", "errors-slices"],
    "classification": [*COMMON_HEAD, "data-classes", *COMMON_TAIL,
                       "errors-per-class", "errors-confusion", "errors-slices"],
}
N_RELATED = 2           # numeric features the target and the residuals are plotted against


def _summary(col: np.ndarray, feature=None) -> dict:
    present = col[~np.isnan(col)]
    out = {"kind": "category" if feature is not None and feature.is_category else "number",
           "present": int(len(present)), "missing": int(len(col) - len(present)),
           "missing_share": float((len(col) - len(present)) / len(col))}
    if out["kind"] == "category":
        out["levels"] = [{"code": int(code), "label": label, "count": int(np.sum(present == code))}
                         for code, label in sorted(feature.categories.items())]
    elif len(present):
        out.update(min=float(present.min()), max=float(present.max()),
                   mean=float(present.mean()), median=float(np.median(present)))
    return out


def _correlation(columns: list[np.ndarray]) -> list[list[float | None]]:
    n = len(columns)
    matrix = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            both = ~np.isnan(columns[i]) & ~np.isnan(columns[j])
            with np.errstate(invalid="ignore", divide="ignore"):   # a constant column
                matrix[i, j] = matrix[j, i] = np.corrcoef(columns[i][both], columns[j][both])[0, 1]
    # null where a column is constant (no correlation defined): JSON has no NaN
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def data_figures(ds: Dataset, spec: TableSpec) -> dict:
    """What the exploration section shows, over every loaded row (training and hold-out)."""
    features, target = spec.features, spec.target.name
    columns = {} if spec.task == CLASSIFICATION else {target: _summary(ds.y)}
    columns.update({f.name: _summary(ds.X[:, i], f) for i, f in enumerate(features)})
    order = numeric_ranking(ds.X, ds.y, features, spec.task)
    out = {"rows": len(ds), "task": spec.task, "target": target, "columns": columns,
           "related": {"method": "η² (correlation ratio) across classes"
                       if spec.task == CLASSIFICATION else "|Pearson r| with the target",
                       "features": [{"name": features[i].name,
                                     "value": relevance(ds.X[:, i], ds.y, spec.task)}
                                    for i in order]},
           "notes_count": len(ds.notes)}
    if spec.task == CLASSIFICATION:
        counts = np.bincount(ds.y.astype(int), minlength=len(spec.classes))
        out["classes"] = [{"label": label, "count": int(n), "share": float(n / len(ds))}
                          for label, n in zip(spec.classes, counts)]
    else:
        numeric = [i for i, f in enumerate(features) if not f.is_category]
        out["correlation"] = {"columns": [target] + [features[i].name for i in numeric],
                              "method": "Pearson, pairwise complete",
                              "matrix": _correlation([ds.y] + [ds.X[:, i] for i in numeric])}
    return out


def related_indices(spec: TableSpec, data: dict, n: int = N_RELATED) -> list[int]:
    names = [f.name for f in spec.features]
    return [names.index(r["name"]) for r in data["related"]["features"][:n]]


def error_sets(trained: TrainedModel) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (X, actual, prediction): honest predictions only, never in-sample ones.
    A prediction is values [n] or class probabilities [n, C]."""
    return {"cv": (trained.X_train, trained.y_train, trained.oof_pred),
            "holdout": (trained.X_holdout, trained.y_holdout,
                        predict_output(trained.pipeline, trained.X_holdout, trained.task))}


def candidate_label(c: dict) -> str:
    """"gbm: loss=huber, max_depth=2" ("gbm: default" for the family's default)."""
    params = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}"
                       for k, v in c["params"].items())
    return f"{c['family']}: {params or 'default'}"


def draw_plots(out: Path, ds: Dataset, trained: TrainedModel, figures: dict,
               metrics: dict) -> dict[str, Path]:
    from mpgpack.train import report_plots as rp
    spec, task = trained.spec, trained.task
    img = out / IMG_DIR
    sets = error_sets(trained)
    cands = metrics["tuning"]["candidates"]
    score = metrics["score"].replace("_", "-")
    plots = {
        # a classifier's target is a category feature whose codes are the class indices
        "distributions": rp.distributions([(spec.target, ds.y)] +
                                          [(f, ds.X[:, i]) for i, f in enumerate(spec.features)],
                                          img / "distributions.png"),
        "tuning": rp.tuning([candidate_label(c) for c in cands],
                            np.array([c["cv_mean"] for c in cands]),
                            np.array([c["cv_std"] for c in cands]),
                            metrics["tuning"]["chosen"], metrics["baseline"]["cv_mean"],
                            f"CV {score}", img / "tuning.png"),
    }
    slices = figures["slices"]
    if task == CLASSIFICATION:
        plots["confusion"] = rp.confusion(np.array(metrics["chosen"]["holdout"]["confusion"]),
                                          spec.classes, img / "confusion.png")
    else:
        related = related_indices(spec, figures["data"])
        colour_by = next((i for i, f in enumerate(spec.features) if f.is_category), None)
        corr = figures["data"]["correlation"]
        plots["correlation"] = rp.correlation(np.array(corr["matrix"], dtype=float),
                                              corr["columns"], img / "correlation.png")
        plots["target_vs_features"] = rp.target_against(
            ds.X, ds.y, related, spec.features, colour_by, spec.target,
            img / "target_vs_features.png")
        plots["predicted_vs_actual"] = rp.predicted_vs_actual(
            {k: (y, p) for k, (_, y, p) in sets.items()}, spec.target,
            img / "predicted_vs_actual.png")
        plots["residuals"] = rp.residuals({k: (X, p, p - y) for k, (X, y, p) in sets.items()},
                                          related, spec.features, spec.target,
                                          img / "residuals.png")
    plots["slices"] = rp.slices(slices["rows"], slices["overall"], slices["flag_ratio"],
                                slices["metric"], img / "slices.png")
    return plots


def write_report(bundle_dir: Path, manifest: dict, ds: Dataset, trained: TrainedModel) -> dict:
    """Writes bundle_dir/report/, sets manifest["report"], returns the manifest packages entry.
    Reads from the manifest: model (name, version, created, git), data (source, sha256, notes),
    metrics; the rest comes from the data set and the trained model."""
    from mpgpack.core.bundle_write import artifact_entry
    from mpgpack.train.report_html import render
    from mpgpack.train.report_slices import slice_errors

    spec = trained.spec
    out = bundle_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    data = data_figures(ds, spec)
    order = numeric_ranking(ds.X, ds.y, spec.features, spec.task)
    figures = {"data": data,
               "slices": slice_errors(ds.X, error_sets(trained), spec.features, spec.task, order)}
    family = trained.family
    figures["slices"]["sets"] = {
        "cv": f"out-of-fold predictions of the chosen model ({family}) on the training split "
              "(each row predicted by the fold model that did not see it)",
        "holdout": f"the fitted model ({family}) on the hold-out split (scored once)"}
    plots = draw_plots(out, ds, trained, figures, manifest["metrics"])
    manifest["report"] = {
        "path": f"{REPORT_DIR}/index.html",
        "task": spec.task,
        "sections": SECTIONS[spec.task],
        "plots": {name: p.relative_to(bundle_dir).as_posix() for name, p in plots.items()},
        "tuning_table": "metrics.tuning",
        "related_features": [spec.features[i].name for i in related_indices(spec, data)],
        **figures,
    }
    index = out / "index.html"
    index.write_text(render(manifest), encoding="utf-8")
    images = {name: artifact_entry(bundle_dir, p, "png") for name, p in plots.items()}
    return {"report": artifact_entry(bundle_dir, index, "report_html", images=images)}
