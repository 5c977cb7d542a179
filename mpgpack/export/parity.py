"""Parity: every artifact evaluated in its real runtime on the golden set, errors recorded."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.core.runtimes import LiteRTRunner, OnnxRunner
from mpgpack.core.verify import error_stats, holdout_mae

NODE_RUNNER = "node_predict.mjs"   # in the web target's Node project


def tfjs_node_predict(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """Runs the TF.js graph model with @tensorflow/tfjs in Node (the page's npm packages)."""
    from mpgpack.targets.web.node_project import node_binary, node_project
    node = node_binary()
    project = node_project()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        rows = [[None if np.isnan(v) else float(v) for v in row] for row in X]
        inp.write_text(json.dumps({"inputs": rows}))
        proc = subprocess.run([node, str(project / NODE_RUNNER), str(Path(model_dir).resolve()),
                               str(inp), str(out)], capture_output=True, text=True, cwd=project,
                              timeout=300)
        if proc.returncode != 0:
            raise UserError(f"TF.js in Node failed: {proc.stderr.strip().splitlines()[-1:]}")
        result = json.loads(out.read_text())
    return np.asarray(result["predictions"], dtype=np.float64), {
        "runtime": "tfjs-node", "version": result["tfjs"], "backend": result["backend"]}


def evaluate_artifacts(paths: dict[str, Path], X: np.ndarray, expected: np.ndarray,
                       actual: np.ndarray, tolerance: float, gated: set[str]) -> dict:
    """Parity of each artifact in its own runtime. `gated` artifacts must be within tolerance."""
    ref_mae = holdout_mae(expected, actual)
    report = {}
    for name, path in paths.items():
        if name == "onnx":
            runner = OnnxRunner(path)
            pred, info = runner.predict(X), {"runtime": runner.runtime, "version": runner.version}
        elif name.startswith("tflite"):
            runner = LiteRTRunner(path)
            pred, info = runner.predict(X), {"runtime": runner.runtime, "version": runner.version}
        elif name == "tfjs":
            pred, info = tfjs_node_predict(path, X)
        else:
            raise ValueError(f"no runtime for artifact {name}")
        entry = {**info, **error_stats(pred, expected), "tolerance": tolerance,
                 "gated": name in gated, "holdout_mae": holdout_mae(pred, actual),
                 "holdout_mae_change": holdout_mae(pred, actual) - ref_mae}
        entry["passed"] = entry["max_abs_error"] <= tolerance
        report[name] = entry
    return report
