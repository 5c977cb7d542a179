"""TF.js in Node: the graph model run by @tensorflow/tfjs (the page's npm packages), for the
build's parity check and the benchmarks."""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mpgpack.core.errors import UserError
from mpgpack.targets.web.node_project import node_binary, node_project

NODE_RUNNER = "node_predict.mjs"   # in the Node project (node_project.py)


def tfjs_node_run(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """Runs the TF.js graph model with @tensorflow/tfjs in Node (the page's npm packages):
    its whole output [N, K] (as core.runtimes' run), and runtime info."""
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
    out = np.asarray(result["outputs"], dtype=np.float64)
    return out.reshape(len(X), -1), {
        "runtime": "tfjs-node", "version": result["tfjs"], "backend": result["backend"]}


def tfjs_node_predict(model_dir: Path, X: np.ndarray) -> tuple[np.ndarray, dict]:
    """A regressor's values [N] (column 0, as core.runtimes' predict); a classifier's whole
    [N, C] probabilities."""
    out, info = tfjs_node_run(model_dir, X)
    return (out[:, 0] if out.shape[1] == 1 else out), info
