"""Lay out a bundle's model.onnx as a Triton model repository for the KServe InferenceService.

    python deploy/kserve/model_repository.py --bundle dist --out model-repo
    # then copy model-repo/ to the storage behind storageUri in inferenceservice.yaml

Writes <out>/mpg/1/model.onnx (copied only after its sha256 matched the manifest) and
<out>/mpg/config.pbtxt, which pins the tensor names, types and shapes the manifest declares, so
Triton serves exactly the V2 signature `mpgpack serve` does: `features` FP32 [N, 7] in,
`mpg` FP32 [N, 1] out. (One difference: JSON has no NaN and Triton's JSON reader takes no
null, so a missing horsepower cannot be sent to Triton over JSON; `mpgpack serve` accepts null.)
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run from a checkout

from mpgpack.core.bundle import open_bundle  # noqa: E402

CONFIG = """name: "{name}"
backend: "onnxruntime"
max_batch_size: 0
input [
  {{
    name: "{input}"
    data_type: TYPE_FP32
    dims: [ -1, {width} ]
  }}
]
output [
  {{
    name: "{output}"
    data_type: TYPE_FP32
    dims: [ -1, 1 ]
  }}
]
version_policy: {{ specific: {{ versions: [ 1 ] }} }}
parameters: {{ key: "mpgpack_model_version" value: {{ string_value: "{version}" }} }}
"""


def write_repository(bundle_path: str | None, out: Path) -> Path:
    bundle = open_bundle(bundle_path)
    io, name = bundle.manifest["model"]["io"], bundle.manifest["model"].get("name", "mpg")
    model_dir = out / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.artifact("onnx"), model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text(CONFIG.format(
        name=name, input=io["input"], output=io["output"], width=io["shape"][1],
        version=bundle.version))
    return model_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default=None, help="bundle or registry folder (default: dist)")
    p.add_argument("--out", type=Path, required=True, help="model repository folder to write")
    args = p.parse_args(argv)
    from mpgpack.core.errors import UserError
    try:
        print(f"wrote {write_repository(args.bundle, args.out)}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
