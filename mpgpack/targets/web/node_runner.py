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


def tfjs_node_run(model_dir: Path, X: np.ndarray, time_single_row_ms: float = 0
                  ) -> tuple[np.ndarray, dict]:
    """Runs the TF.js graph model with @tensorflow/tfjs in Node (the page's npm packages):
    its whole output [N, K] (as core.runtimes' run), and runtime info. With
    `time_single_row_ms`, also the median time of predicting X's first row alone, repeated for
    about that long (info["single_row_us"])."""
    node = node_binary()
    project = node_project()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        rows = [[None if np.isnan(v) else float(v) for v in row] for row in X]
        inp.write_text(json.dumps({"inputs": rows}))
        proc = subprocess.run([node, str(project / NODE_RUNNER), str(Path(model_dir).resolve()),
                               str(inp), str(out), str(float(time_single_row_ms))],
                              capture_output=True, text=True, cwd=project,
                              timeout=300)
        if proc.returncode != 0:
            raise UserError(f"TF.js in Node failed: {proc.stderr.strip().splitlines()[-1:]}")
        result = json.loads(out.read_text())
    out = np.asarray(result["outputs"], dtype=np.float64)
    info = {"runtime": "tfjs-node", "version": result["tfjs"], "backend": result["backend"]}
    if "single_row_ms" in result:
        info["single_row_us"] = 1e3 * result["single_row_ms"]
    return out.reshape(len(X), -1), info
