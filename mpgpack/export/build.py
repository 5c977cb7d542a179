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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mpgpack import __version__
from mpgpack.core.errors import UserError
from mpgpack.core.pointer import DEFAULT_REGISTRY

from mpgpack.data import AUTO_MPG as DEFAULT_DATA

# The folder that holds the mpgpack package: the checkout, or site-packages in an install.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
GATED = {"onnx", "tflite_float32", "tfjs"}
METRIC_NAMES = {"mae": "MAE", "rmse": "RMSE", "accuracy": "accuracy", "log_loss": "log-loss"}   # float32 artifacts: must be within tolerance
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
        try:
            with _quiet_stderr():
                yield
        except BaseException:
            print(" failed", file=self.stream, flush=True)     # the error on its own line
            raise
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


@dataclass(frozen=True)
class BuildRequest:
    """What to build: the data, what it predicts, which model families to try.

    No `target`: the Auto MPG showcase with its built-in schema (the shipped data by default).
    With a `target`: any CSV; its schema comes from `schema` (a file `mpgpack schema` wrote and
    the user edited) or is inferred from the data."""
    data: Path | None = None
    target: str | None = None
    task: str | None = None
    schema: Path | None = None
    model: str = "auto"
    seed: int = 0

    def spec(self):
        from mpgpack.train.schema import mpg_spec
        from mpgpack.train.table import infer_spec, read_spec
        if self.schema is not None:
            spec = read_spec(self.schema)
            if self.target is not None and self.target != spec.target.name:
                raise UserError(f"--target {self.target} differs from the schema file's target "
                                f"{spec.target.name!r}")
            if self.task is not None and self.task != spec.task:
                raise UserError(f"--task {self.task} differs from the schema file's task "
                                f"{spec.task!r}")
            return spec
        if self.target is None:
            return mpg_spec()
        return infer_spec(self.data, self.target, self.task)

    def load(self, spec):
        from mpgpack.train.data import load_dataset
        from mpgpack.train.table import load_table
        if self.target is None and self.schema is None:
            return load_dataset(self.data or DEFAULT_DATA)
        return load_table(self.data, spec)


def build_bundle(data: Path | None = None, out: Path = Path(DEFAULT_REGISTRY), seed: int = 0,
                 packers: list[str] | None = None, request: BuildRequest | None = None) -> Path:
    from mpgpack.core.bundle_write import write_manifest
    from mpgpack.core.registry import LocalRegistry
    from mpgpack.export.bundle_writer import model_version
    from mpgpack.export.support import check_families
    from mpgpack.train.families import families_for
    from mpgpack.train.fit import train_model

    request = request or BuildRequest(data=Path(data) if data else None, seed=seed)
    if request.target is not None and request.data is None and request.schema is None:
        raise UserError("--target needs --data FILE.csv (the table that holds that column)")
    seed = request.seed
    packers = PACKERS if packers is None else packers
    progress = Progress(10 + len(packers))
    started = time.perf_counter()
    try:
        families = families_for(request.model)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    with progress.stage(f"loading {request.data or DEFAULT_DATA}"):
        spec = request.spec()
        # Every family's estimators must lower to every format: refused now, not after training.
        check_families(spec.schema, families, seed)
        ds = request.load(spec)
    with progress.stage(f"searching {', '.join(families)} on the same {5} CV folds, then "
                        f"fitting the best ({len(ds)} rows, {spec.task})"):
        trained = train_model(ds, spec, seed, request.model)
    config = _training_config(trained, seed)
    version = model_version(ds.sha256, {k: repr(v) for k, v in config.items()})
    name = f"mpg-{version}"
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    try:
        golden = _write_golden_and_reference(progress, trained, seed, staging)
        paths = _export_artifacts(progress, trained, staging, version)
        parity = _check_parity(progress, paths, golden, spec.task)
        manifest = _manifest(staging, paths, golden, parity, ds, trained, config, version,
                             request.data or DEFAULT_DATA)
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
    """What decides the model, hashed into its version: the schema, the families searched and
    their grids; the chosen settings follow from them."""
    from mpgpack.train.families import FAMILIES
    spec = trained.spec
    families = trained.metrics["tuning"]["families"]
    return {"seed": seed, "task": spec.task, "spec": spec.to_json(),
            "chosen": {"family": trained.family, "params": trained.metrics["chosen"]["params"]},
            "grids": {f: FAMILIES[f].grid(spec.task) for f in families},
            "split": trained.metrics["split"],
            "sklearn": metadata.version("scikit-learn"), "format": 2}


def _write_golden_and_reference(progress: Progress, trained, seed: int, staging: Path):
    from mpgpack.export.golden import build_golden, write_golden
    with progress.stage("building the golden set"):
        golden = build_golden(trained, seed)
        write_golden(golden, staging / "golden.json")
        (staging / "reference").mkdir()
        with open(staging / "reference" / "pipeline.pkl", "wb") as fh:
            pickle.dump(trained.pipeline, fh)
    return golden


def _export_artifacts(progress: Progress, trained, staging: Path, version: str) -> dict[str, Path]:
    """ONNX from the pipeline; TFLite and TF.js from its lowering to TensorFlow ops.
    Returns {artifact name: path} (the TF.js entry is its model.json)."""
    pipeline, schema = trained.pipeline, trained.spec.schema
    with progress.stage("exporting ONNX (skl2onnx)"):
        from mpgpack.export.onnx_export import export_onnx
        paths = {"onnx": export_onnx(pipeline, staging / "model.onnx", version, schema)}
    with progress.stage("lowering the pipeline to TensorFlow ops"):
        from mpgpack.export.lowering import UnsupportedStepError
        from mpgpack.export.tf_graph import save_saved_model
        tmp = Path(tempfile.mkdtemp(prefix="mpg-savedmodel-"))
        try:
            saved = save_saved_model(pipeline, tmp / "saved_model", schema)
        except UnsupportedStepError as exc:    # a setting only the fitted model shows
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"cannot export the {trained.family} model: {exc}") from None
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


def _check_parity(progress: Progress, paths: dict[str, Path], golden, task: str) -> dict:
    """Runs the golden set through every artifact in its real runtime; refuses the build when a
    gated (float32) artifact is off by more than the tolerance."""
    from mpgpack.export.parity import evaluate_artifacts
    with progress.stage("checking parity in onnxruntime, LiteRT and TF.js (Node)"):
        runtime_paths = {**paths, "tfjs": paths["tfjs"].parent}
        parity = evaluate_artifacts(runtime_paths, golden.X, golden.expected, golden.actual,
                                    golden.tolerance, GATED, task)
    failed = [f"{n} (max abs error {r['max_abs_error']:.2e}"
              + (f", {r['decided_disagreements']} rows of another class"
                 if r.get("decided_disagreements") else "") + ")"
              for n, r in parity.items() if r["gated"] and not r["passed"]]
    if failed:
        unit = "per probability" if task == "classification" else "in the output's unit"
        raise UserError(f"parity failed, bundle not written: {', '.join(failed)}; allowed: "
                        f"{golden.tolerance:.3g} {unit} and the reference's class on every row")
    return parity


def _artifact_entries(staging: Path, paths: dict[str, Path], golden) -> dict:
    from mpgpack.core.bundle_write import artifact_entry
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
                                         rows=len(golden.expected), tolerance=golden.tolerance)
    artifacts["reference_pickle"] = artifact_entry(
        staging, staging / "reference" / "pipeline.pkl", "sklearn_pickle",
        note="the fitted sklearn pipeline, for benchmarks and baselines only; "
             "no serving path unpickles it")
    return artifacts


def _manifest(staging: Path, paths: dict[str, Path], golden, parity: dict, ds, trained,
              config: dict, version: str, data: Path) -> dict:
    from mpgpack.core.bundle_write import now_iso
    from mpgpack.export.bundle_writer import git_commit
    from mpgpack.train.fit import describe
    from mpgpack.train.stats import feature_stats, training_range
    spec, schema = trained.spec, trained.spec.schema
    try:
        data_source = str(data.resolve().relative_to(SOURCE_ROOT))
    except ValueError:
        data_source = data.name
    return {
        "model": {"name": spec.name, "version": version, "created": now_iso(),
                  "mpgpack": __version__, "git": git_commit(SOURCE_ROOT),
                  "task": spec.task, "family": trained.family,
                  "estimator": describe(trained.pipeline),
                  "config": config, "libraries": _libraries(),
                  "io": {"input": schema.input_name, "output": schema.output_name,
                         "dtype": "float32", "shape": [None, len(schema)],
                         "output_shape": [None, schema.n_outputs]}},
        "data": {"source": data_source, "sha256": ds.sha256, "rows": len(ds),
                 "notes": ds.notes},
        "schema": spec.manifest_schema(training_range(trained.X_train, schema)),
        "training_stats": feature_stats(trained.X_train, schema),
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


def summary(manifest: dict) -> str:
    """The short table printed at the end of a build."""
    m = manifest["metrics"]
    model = manifest["model"]
    chosen, base = m["chosen"], m["baseline"]
    classifier = m["task"] == "classification"
    cols = ("accuracy", "log_loss") if classifier else ("mae", "rmse")
    score = "log-loss" if classifier else "MAE"
    t = m["tuning"]
    cv_head = f"CV {score} ({m['split']['cv_folds']}-fold)"
    lines = [f"bundle mpg-{model['version']}  ({model['name']}, {m['task']}, built in "
             f"{manifest['build_seconds']} s)", "",
             f"{'model':<22} {cv_head:>22} "
             + " ".join(f"{'hold-out ' + METRIC_NAMES[c]:>17}" for c in cols)]
    for label, entry in ((f"{chosen['family']} (chosen)", chosen), (f"{base['family']} (baseline)", base)):
        lines.append(f"{label:<22} {entry['cv_mean']:>13.3f} ± {entry['cv_std']:.3f} "
                     + " ".join(f"{entry['holdout'][c]:>17.3f}" for c in cols))
    gain = m["improvement_over_baseline"]
    lines += [f"chosen CV {score} is {100 * abs(gain):.1f} % {'below' if gain >= 0 else 'above'} "
              f"the baseline's; {len(t['candidates'])} candidates of {', '.join(t['families'])} in "
              f"{t['seconds']} s ({t['cpu_seconds']} s CPU)", "",
              f"{'artifact':<16} {'runtime':<15} {'bytes':>7} {'max abs err':>12} "
              f"{'mean abs err':>12} {'classes agree' if classifier else 'hold-out MAE':>13}  parity"]
    arts = manifest["artifacts"]
    for name, p in manifest["parity"].items():
        size = arts[name]["bytes"] + sum(a["bytes"] for k, a in arts.items()
                                         if name == "tfjs" and a["kind"] == "tfjs_weights")
        verdict = ("pass" if p["passed"] else "FAIL") if p["gated"] else "recorded"
        last = f"{100 * p['class_agreement']:>12.2f}%" if classifier else f"{p['holdout_mae']:>13.4f}"
        lines.append(f"{name:<16} {p['runtime']:<15} {size:>7} {p['max_abs_error']:>12.2e} "
                     f"{p['mean_abs_error']:>12.2e} {last}  {verdict}")
    for name, pkg in manifest.get("packages", {}).items():
        lines.append(f"{name:<16} {'package':<15} {pkg['bytes']:>7}")
    return "\n".join(lines)
