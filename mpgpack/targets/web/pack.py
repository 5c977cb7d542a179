"""The web packer: writes the static site into `<bundle>/web/` during `mpgpack build`.

Registered in mpgpack.export.build.PACKERS as "mpgpack.targets.web.pack:pack_site". The site is self-contained
(servable by any static host): the page, its JavaScript bundled by esbuild from the npm packages
pinned in targets/web/package-lock.json (TF.js trimmed to the ops the model uses), the wasm
binaries of TF.js, and the model files copied from the bundle after their sha256 was checked.
"""
from __future__ import annotations

import gzip
import html
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from mpgpack.core.errors import UserError
from mpgpack.core.bundle import Bundle, sha256_file, tree_sha256
from mpgpack.targets.web.node_project import node_binary, node_project

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
SITE_DIR = "web"
# Measured in headless Chromium (benchmarks/web_browser.py, see targets/web/README.md): wasm
# runs a 1,000-row batch ~10x faster; cpu is ~140 KB (gzipped) lighter and reaches the first
# prediction sooner. The page predicts one car per keystroke, so the lighter one is the default;
# `?backend=wasm` picks the other.
DEFAULT_BACKEND = "cpu"
STATIC_FILES = ("style.css", "icon.svg")
# The wasm binary a browser with SIMD but without cross-origin isolation (no threads) loads.
WASM_FOR_OFFLINE = "tfjs-backend-wasm-simd.wasm"
BUILD_TIMEOUT_S = 300


def supported_graph_ops() -> set[str]:
    return set(json.loads((SRC / "js" / "tfjs" / "graph_ops.json").read_text())["ops"])


def check_graph_ops(model_json: dict) -> None:
    """Refuses a model that uses a TF op the trimmed TF.js build of the page cannot run."""
    used = {node["op"] for node in model_json["modelTopology"]["node"]}
    missing = sorted(used - supported_graph_ops())
    if missing:
        raise UserError(f"the web page's TF.js build does not include the graph op(s) {', '.join(missing)} "
                        f"used by the model; add them to targets/web/src/js/tfjs/ (graph_ops.json, ops.js "
                        f"and the backend kernel lists)")


def run_esbuild(out: Path) -> dict:
    """Bundles the page's JS with esbuild (node build.mjs); returns build.mjs's summary."""
    node = node_binary()
    project = node_project()   # the checkout's folder, or a cache copy with its npm packages
    try:
        proc = subprocess.run([node, str(project / "build.mjs"), str(out)], cwd=project,
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"bundling the web page took over {BUILD_TIMEOUT_S} s; gave up") from None
    if proc.returncode != 0:
        raise UserError(f"bundling the web page failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_load_js(outputs: dict, backend: str) -> list[str]:
    """The JS files the page fetches on a first visit with `backend`: app.js, its static
    imports, and the chunk of the backend module with its own static imports."""
    backend_chunk = next(name for name, o in outputs.items()
                         if o["entry"] == f"backend_{backend}.js")
    seen: list[str] = []

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.append(name)
        for imp in outputs[name]["imports"]:
            if imp["kind"] == "import-statement":
                walk(imp["path"])

    walk("app.js")
    walk(backend_chunk)
    return seen


def _headline(metrics: dict) -> tuple[str, dict]:
    """The task and the chosen model's hold-out figures; older bundles (the MLP only, before
    any model could be packed) record them under "mlp"."""
    if "chosen" in metrics:
        chosen = metrics["chosen"]
        return metrics["task"], {"family": chosen["family"], "score": metrics["score"],
                                 "cv_mean": chosen["cv_mean"], "holdout": chosen["holdout"]}
    mlp = metrics["mlp"]
    return "regression", {"family": "mlp", "score": "mae", "cv_mean": mlp["cv_mae_mean"],
                          "holdout": mlp["holdout"]}


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def page_words(manifest: dict, task: str) -> dict:
    """What the page calls its model and its output, from the manifest alone (the page names
    nothing of its own): the target's description (its first clause) or else its column name."""
    target = manifest["schema"]["target"]
    about = (target.get("description") or "").split(",")[0].split(";")[0].strip()
    output = about or target["name"].replace("_", " ")
    classifier = task == "classification"
    title = f"{manifest['model']['name']}: predict {output[:1].lower() + output[1:]}"
    return {"title": title, "heading": f"Predict {output[:1].lower() + output[1:]}",
            "output": _sentence_case(output),
            "unit": "" if classifier else (target.get("unit") or ""),
            "description": (f"{_sentence_case(output)} from {len(manifest['schema']['features'])} "
                            f"inputs, computed in your browser, offline, with TensorFlow.js.")}


def _default(feature: dict, stats: dict):
    """The form's starting value: a category's most common code, else the training median
    (a whole one for a whole-number feature)."""
    if feature.get("kind") == "category" and stats.get("shares"):
        return int(float(max(stats["shares"], key=lambda c: stats["shares"][c])))
    median = stats["median"]
    return round(median) if feature.get("integer") else median


def page_info(manifest: dict, hashes: dict[str, str], backends: list[str]) -> dict:
    """The subset of manifest.json the page reads (model/manifest.json)."""
    stats = manifest["training_stats"]
    task, headline = _headline(manifest["metrics"])
    holdout = {k: v for k, v in headline["holdout"].items()
               if k in ("mae", "rmse", "accuracy", "log_loss")}
    return {
        "model": {"task": task, **{k: manifest["model"][k] for k in ("name", "version", "created")}},
        "schema": manifest["schema"],
        "page": page_words(manifest, task),
        "defaults": {f["name"]: _default(f, stats[f["name"]]) for f in manifest["schema"]["features"]},
        "metrics": {"task": task, **headline, "holdout": holdout,
                    # the names the page read before any model could be packed
                    **({"holdout_mae": holdout["mae"], "holdout_rmse": holdout["rmse"],
                        "cv_mae_mean": headline["cv_mean"]} if "mae" in holdout else {})},
        "web": {"default_backend": DEFAULT_BACKEND, "backends": backends, "model_sha256": hashes},
    }


def _gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def pack_site(bundle_dir: Path, manifest: dict) -> dict:
    bundle = Bundle(Path(bundle_dir), manifest)
    arts = manifest["artifacts"]
    model_names = [n for n, a in arts.items() if a["kind"] in ("tfjs_graph_model", "tfjs_weights")]
    golden = bundle.artifact("golden")
    model_files = {Path(arts[n]["path"]).name: bundle.artifact(n) for n in model_names}
    check_graph_ops(json.loads(model_files["model.json"].read_text()))

    site = Path(bundle_dir) / SITE_DIR
    if site.exists():
        shutil.rmtree(site)
    (site / "model").mkdir(parents=True)
    built = run_esbuild(site.resolve())
    backends = sorted(o["entry"][len("backend_"):-len(".js")] for o in built["outputs"].values()
                      if (o["entry"] or "").startswith("backend_"))

    for name, path in model_files.items():
        shutil.copyfile(path, site / "model" / name)
    shutil.copyfile(golden, site / "model" / "golden.json")
    hashes = {Path(arts[n]["path"]).name: arts[n]["sha256"] for n in model_names}
    info = page_info(manifest, hashes, backends)
    (site / "model" / "manifest.json").write_text(json.dumps(info, indent=1))
    for name in STATIC_FILES:
        shutil.copyfile(SRC / name, site / name)
    _write_webmanifest(site, info["page"])

    js = first_load_js(built["outputs"], DEFAULT_BACKEND)
    _write_index(site, js, info["page"])
    first_load = _write_service_worker(site, js, model_files, manifest["model"]["version"])

    files = sorted(p for p in site.rglob("*") if p.is_file())
    listing, file_hashes = tree_sha256(site)
    return {"web": {
        "path": SITE_DIR, "kind": "static_site",
        "bytes": sum(p.stat().st_size for p in files),
        "files": len(files),
        # sha256 over the sorted lines "relative/path <sha256 of the file>"
        "sha256": listing,
        "file_sha256": file_hashes,     # so a check names the changed file (Bundle.verify_packages)
        "default_backend": DEFAULT_BACKEND, "backends": backends,
        "first_load": first_load,
        "first_load_bytes": sum((site / f).stat().st_size for f in first_load),
        "first_load_gzip_bytes": sum(_gzip_size(site / f) for f in first_load),
    }}


def _write_webmanifest(site: Path, words: dict) -> None:
    """The install name and description are the model's (app.webmanifest is a template)."""
    app = json.loads((SRC / "app.webmanifest").read_text())
    app.update(name=words["title"], short_name=words["output"][:12], description=words["description"])
    (site / "app.webmanifest").write_text(json.dumps(app, indent=2, ensure_ascii=False) + "\n")


def _write_index(site: Path, js: list[str], words: dict) -> None:
    preload = "\n".join(f'<link rel="modulepreload" href="{name}">' for name in js if name != "app.js")
    # The page checks model/manifest.json against this (data.js), and the server checks
    # index.html against the bundle's manifest at start: a chain from the manifest to the page.
    preload += (f'\n<meta name="mpg-manifest-sha256" '
                f'content="{sha256_file(site / "model" / "manifest.json")}">')
    page = (SRC / "index.html").read_text().replace("<!--preload-->", preload)
    # The words a visitor sees before the script runs (title, heading) are the model's.
    for key in ("title", "heading", "description"):
        page = page.replace(f"__{key.upper()}__", html.escape(words[key]))
    (site / "index.html").write_text(page)


def _write_service_worker(site: Path, js: list[str], model_files: dict, version: str) -> list[str]:
    """Writes sw.js; returns what a first visit fetches. The service worker caches the same
    list (plus the wasm binary and golden.json, so the other backend and the self-test work
    offline too), under a cache name that changes with any of those files."""
    first_load = ["index.html", "style.css", *js, "model/manifest.json",
                  *(f"model/{n}" for n in model_files), "icon.svg", "app.webmanifest"]
    precache = ["./", *first_load, "model/golden.json"]
    if DEFAULT_BACKEND == "wasm":
        first_load.append(WASM_FOR_OFFLINE)
    precache_hash = hashlib.sha256()
    for rel in sorted(set(precache) - {"./"}):
        precache_hash.update(f"{rel} {sha256_file(site / rel)}\n".encode())
    cache_name = f"mpg-{version}-{precache_hash.hexdigest()[:12]}"
    (site / "sw.js").write_text((SRC / "sw.js").read_text()
                                .replace("__CACHE_NAME__", cache_name)
                                .replace("__PRECACHE__", json.dumps(precache)))
    return first_load
