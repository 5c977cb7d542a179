"""`mpgpack build`: data -> fitted pipeline -> ONNX/TFLite/TF.js -> parity -> bundle.

Each stage prints one progress line to stderr; the bundle is assembled in a staging folder
and published by rename only when every gated parity check passed.
"""
from __future__ import annotations

import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from mpgpack import __version__
from mpgpack.core.errors import UserError
from mpgpack.core.pointer import DEFAULT_REGISTRY

from mpgpack.data import AUTO_MPG as DEFAULT_DATA

# The folder that holds the mpgpack package: the checkout, or site-packages in an install.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
GATED = {"onnx", "tflite_float32", "tfjs"}   # float32 artifacts: must be within tolerance
# Packers add derived outputs (web site, edge tarballs) to a bundle; each is
# "module:function" taking (bundle_dir: Path, manifest: dict) and returning {name: entry}.
PACKERS: list[str] = [
    "mpgpack.targets.web.pack:pack_site",      # web/: the offline TF.js page
]


class Progress:
    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.step, self.stream = total, 0, stream

    @contextmanager
    def stage(self, text: str):
        self.step += 1
        print(f"[{self.step}/{self.total}] {text} …", end="", file=self.stream, flush=True)
        t0 = time.perf_counter()
        with _quiet_stderr():
            yield
        print(f" {time.perf_counter() - t0:.1f} s", file=self.stream, flush=True)


@contextmanager
def _quiet_stderr():
    """Holds back the C++ log lines TF, absl and TF-DF print on import and conversion.

    They go to file descriptor 2 directly, so sys.stderr cannot catch them. On an error the
    held-back text is replayed, so nothing that explains a failure is lost.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace")[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _libraries() -> dict:
    names = ["scikit-learn", "numpy", "skl2onnx", "onnx", "onnxruntime", "tensorflow",
             "tensorflowjs", "ai-edge-litert"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def build_bundle(data: Path | None = None, out: Path = Path(DEFAULT_REGISTRY), seed: int = 0,
                 packers: list[str] | None = None) -> Path:
    from mpgpack.core.bundle_write import write_manifest
    from mpgpack.core.registry import LocalRegistry
    from mpgpack.export.bundle_writer import model_version
    from mpgpack.train.data import load_dataset
    from mpgpack.train.fit import train_model
    from mpgpack.train.tune import candidate_params

    packers = PACKERS if packers is None else packers
    progress = Progress(10 + len(packers))
    started = time.perf_counter()
    data = Path(data) if data else DEFAULT_DATA

    with progress.stage(f"loading {data}"):
        ds = load_dataset(data)
    with progress.stage(f"tuning the MLP ({len(candidate_params())} candidates) and the Ridge "
                        f"baseline on the same 5 CV folds, then fitting ({len(ds)} rows)"):
        trained = train_model(ds, seed)
    config = _training_config(trained, seed)
    version = model_version(ds.sha256, {k: repr(v) for k, v in config.items()})
    name = f"mpg-{version}"
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    try:
        golden = _write_golden_and_reference(progress, trained, seed, staging)
        paths = _export_artifacts(progress, trained.pipeline, staging, version)
        parity = _check_parity(progress, paths, golden)
        manifest = _manifest(staging, paths, golden, parity, ds, trained, config, version, data)
        write_manifest(staging, manifest)
        # Not a packer: the report needs the loaded data and the search, which a bundle lacks.
        with progress.stage("writing the model report (data, tuning, errors by slice)"):
            from mpgpack.train.report import write_report
            manifest["packages"].update(write_report(staging, manifest, ds, trained))
        _run_packers(progress, packers, staging, manifest)
        manifest["build_seconds"] = round(time.perf_counter() - started, 1)
        write_manifest(staging, manifest)
        with progress.stage(f"publishing {out / name}"):
            final = LocalRegistry(out).publish_staged(staging, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _training_config(trained, seed: int) -> dict:
    """What decides the model, hashed into its version. The grid is part of it; the chosen
    settings follow from it."""
    from mpgpack.train.model import RIDGE_PARAMS
    from mpgpack.train.tune import MLP_GRID
    return {"seed": seed, "mlp": trained.metrics["mlp"]["params"], "mlp_grid": MLP_GRID,
            "ridge": RIDGE_PARAMS, "split": trained.metrics["split"],
            "sklearn": metadata.version("scikit-learn"), "format": 1}


def _write_golden_and_reference(progress: Progress, trained, seed: int, staging: Path):
    from mpgpack.export.golden import build_golden, write_golden
    with progress.stage("building the golden set"):
        golden = build_golden(trained, seed)
        write_golden(golden, staging / "golden.json")
        (staging / "reference").mkdir()
        with open(staging / "reference" / "pipeline.pkl", "wb") as fh:
            pickle.dump(trained.pipeline, fh)
    return golden


def _export_artifacts(progress: Progress, pipeline, staging: Path, version: str) -> dict[str, Path]:
    """ONNX from the pipeline; TFLite and TF.js from its lowering to TensorFlow ops.
    Returns {artifact name: path} (the TF.js entry is its model.json)."""
    with progress.stage("exporting ONNX (skl2onnx)"):
        from mpgpack.export.onnx_export import export_onnx
        paths = {"onnx": export_onnx(pipeline, staging / "model.onnx", version)}
    with progress.stage("lowering the pipeline to TensorFlow ops"):
        from mpgpack.export.tf_graph import save_saved_model
        tmp = Path(tempfile.mkdtemp(prefix="mpg-savedmodel-"))
        saved = save_saved_model(pipeline, tmp / "saved_model")
    try:
        with progress.stage("converting to TFLite (float32, float16, int8)"):
            from mpgpack.export.tflite_export import export_tflite
            paths.update(export_tflite(saved, staging))
        with progress.stage("converting to a TF.js graph model"):
            from mpgpack.export.tfjs_export import export_tfjs
            paths["tfjs"] = export_tfjs(saved, staging / "tfjs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def _check_parity(progress: Progress, paths: dict[str, Path], golden) -> dict:
    """Runs the golden set through every artifact in its real runtime; refuses the build when a
    gated (float32) artifact is off by more than the tolerance."""
    from mpgpack.export.golden import TOLERANCE
    from mpgpack.export.parity import evaluate_artifacts
    with progress.stage("checking parity in onnxruntime, LiteRT and TF.js (Node)"):
        runtime_paths = {**paths, "tfjs": paths["tfjs"].parent}
        parity = evaluate_artifacts(runtime_paths, golden.X, golden.expected, golden.actual,
                                    TOLERANCE, GATED)
    failed = [f"{n} (max abs error {r['max_abs_error']:.2e})" for n, r in parity.items()
              if r["gated"] and not r["passed"]]
    if failed:
        raise UserError(f"parity failed, bundle not written: {', '.join(failed)} "
                        f"exceed {TOLERANCE:g} MPG")
    return parity


def _artifact_entries(staging: Path, paths: dict[str, Path], golden) -> dict:
    from mpgpack.core.bundle_write import artifact_entry
    from mpgpack.export.golden import TOLERANCE
    from mpgpack.export.tflite_export import weight_dtypes
    artifacts = {"onnx": artifact_entry(staging, paths["onnx"], "onnx")}
    for variant, path in paths.items():
        if variant.startswith("tflite_"):
            artifacts[variant] = artifact_entry(staging, path, "tflite",
                                                weight_dtypes=weight_dtypes(path))
    artifacts["tfjs"] = artifact_entry(staging, paths["tfjs"], "tfjs_graph_model")
    for shard in sorted(paths["tfjs"].parent.glob("*.bin")):
        artifacts[f"tfjs_weights_{shard.stem}"] = artifact_entry(staging, shard, "tfjs_weights")
    artifacts["golden"] = artifact_entry(staging, staging / "golden.json", "golden",
                                         rows=len(golden.expected), tolerance=TOLERANCE)
    artifacts["reference_pickle"] = artifact_entry(
        staging, staging / "reference" / "pipeline.pkl", "sklearn_pickle",
        note="the fitted sklearn pipeline, for benchmarks and baselines only; "
             "no serving path unpickles it")
    return artifacts


def _manifest(staging: Path, paths: dict[str, Path], golden, parity: dict, ds, trained,
              config: dict, version: str, data: Path) -> dict:
    from mpgpack.core.schema import INPUT_NAME, OUTPUT_NAME
    from mpgpack.core.bundle_write import now_iso
    from mpgpack.export.bundle_writer import git_commit
    from mpgpack.train.schema import FEATURES, schema_json
    from mpgpack.train.stats import feature_stats, training_range
    try:
        data_source = str(data.resolve().relative_to(SOURCE_ROOT))
    except ValueError:
        data_source = data.name
    return {
        "model": {"name": "mpg", "version": version, "created": now_iso(),
                  "mpgpack": __version__, "git": git_commit(SOURCE_ROOT),
                  "estimator": "Pipeline(ColumnTransformer(StandardScaler; SimpleImputer(median)"
                               "+StandardScaler on horsepower; OneHotEncoder(origin)), "
                               "MLPRegressor)",
                  "config": config, "libraries": _libraries(),
                  "io": {"input": INPUT_NAME, "output": OUTPUT_NAME, "dtype": "float32",
                         "shape": [None, len(FEATURES)]}},
        "data": {"source": data_source, "sha256": ds.sha256, "rows": len(ds),
                 "notes": ds.notes},
        "schema": schema_json(training_range(trained.X_train)),
        "training_stats": feature_stats(trained.X_train),
        "metrics": trained.metrics,
        "artifacts": _artifact_entries(staging, paths, golden),
        "parity": parity,
        "packages": {},
    }


def _run_packers(progress: Progress, packers: list[str], staging: Path, manifest: dict) -> None:
    for spec in packers:
        module, func = spec.split(":")
        with progress.stage(f"packing {module.rsplit('.', 2)[-2]}"):
            fn = getattr(__import__(module, fromlist=[func]), func)
            manifest["packages"].update(fn(staging, manifest))


def _tuning_summary(m: dict) -> list[str]:
    t = m.get("tuning")
    if not t:
        return []
    p = m["mlp"]["params"]
    return [f"MLP settings: candidate #{t['chosen']} of {len(t['candidates'])} "
            f"(hidden {tuple(p['hidden_layer_sizes'])}, alpha {p['alpha']:g}, {p['solver']}); "
            f"untuned default's CV MAE {t['default_cv_mae_mean']:.3f}; search "
            f"{t['search_seconds']} s ({t['search_cpu_seconds']} s CPU)"]


def summary(manifest: dict) -> str:
    """The short table printed at the end of a build."""
    m = manifest["metrics"]
    mlp, ridge = m["mlp"], m["ridge_baseline"]
    lines = [f"bundle mpg-{manifest['model']['version']}  (built in {manifest['build_seconds']} s)",
             "",
             f"{'model':<8} {'CV MAE (5-fold)':>18} {'hold-out MAE':>13} {'hold-out RMSE':>14}",
             f"{'MLP':<8} {mlp['cv_mae_mean']:>9.3f} ± {mlp['cv_mae_std']:.3f} "
             f"{mlp['holdout']['mae']:>13.3f} {mlp['holdout']['rmse']:>14.3f}",
             f"{'Ridge':<8} {ridge['cv_mae_mean']:>9.3f} ± {ridge['cv_mae_std']:.3f} "
             f"{ridge['holdout']['mae']:>13.3f} {ridge['holdout']['rmse']:>14.3f}",
             f"MLP CV MAE is {100 * m['cv_mae_improvement_over_ridge']:.1f} % below Ridge's",
             *_tuning_summary(m), "",
             f"{'artifact':<16} {'runtime':<15} {'bytes':>7} {'max abs err':>12} "
             f"{'mean abs err':>12} {'hold-out MAE':>12}  parity"]
    arts = manifest["artifacts"]
    for name, p in manifest["parity"].items():
        size = arts[name]["bytes"] + sum(a["bytes"] for k, a in arts.items()
                                         if name == "tfjs" and a["kind"] == "tfjs_weights")
        verdict = ("pass" if p["passed"] else "FAIL") if p["gated"] else "recorded"
        lines.append(f"{name:<16} {p['runtime']:<15} {size:>7} {p['max_abs_error']:>12.2e} "
                     f"{p['mean_abs_error']:>12.2e} {p['holdout_mae']:>12.4f}  {verdict}")
    for name, pkg in manifest.get("packages", {}).items():
        lines.append(f"{name:<16} {'package':<15} {pkg['bytes']:>7}")
    return "\n".join(lines)
