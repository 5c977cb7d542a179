"""ONNX straight from the fitted pipeline with skl2onnx.

The graph keeps the contract's one input and one output: features [None, F] float32, and
a regressor's [None, 1] values named after its target, or a classifier's [None, C]
probabilities named "probabilities" (no ZipMap, no label output: every target picks the class
from the probabilities with the same rule, core/outputs.py).
"""
from __future__ import annotations

from pathlib import Path

import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from mpgpack.core.schema import CLASSIFICATION, Schema
from mpgpack.export.fold_scaler import fold_scaler_into_trees
from mpgpack.export.onnx_trees import exact_thresholds
from mpgpack.export.tf_graph import io_names, task_of

TARGET_OPSET = 17  # supported by every onnxruntime of the last years, KServe and Triton included


def export_onnx(pipeline: Pipeline, path: Path, version: str, schema: Schema | None = None) -> Path:
    task = task_of(pipeline, schema)
    n_features, input_name, output_name, n_outputs = io_names(pipeline, schema)
    initial = [(input_name, FloatTensorType([None, n_features]))]
    opset = {"": TARGET_OPSET, "ai.onnx.ml": 3}
    # Trees read the raw input with thresholds that reproduce sklearn's float64 scaling exactly.
    pipeline = fold_scaler_into_trees(pipeline)
    if task == CLASSIFICATION:
        onx = convert_sklearn(pipeline, name="model", initial_types=initial, target_opset=opset,
                              options={id(pipeline.steps[-1][1]): {"zipmap": False}})
        _only_probabilities(onx, output_name, n_outputs)
    else:
        onx = convert_sklearn(pipeline, name="model", initial_types=initial, target_opset=opset,
                              final_types=[(output_name, FloatTensorType([None, 1]))])
    exact_thresholds(onx, pipeline.steps[-1][1])   # trees: sklearn's decisions, not nearest
    target = schema.target if schema is not None else output_name
    onx.doc_string = f"{target} {task}, mpgpack model version {version}"
    # skl2onnx lists the opset domains in set order, which changes with the process's string
    # hash seed: sort them so the same pipeline always gives the same bytes (and sha256).
    opsets = sorted(((o.domain, o.version) for o in onx.opset_import))
    del onx.opset_import[:]
    for domain, version_ in opsets:
        onx.opset_import.add(domain=domain, version=version_)
    onnx.checker.check_model(onx)
    path.write_bytes(onx.SerializeToString())
    return path


def _only_probabilities(onx: onnx.ModelProto, name: str, n_classes: int | None) -> None:
    """Keeps the probabilities tensor as the graph's one output, renamed to `name`.

    skl2onnx gives a classifier two outputs, the label then the probabilities. The label
    output is dropped from graph.output (its nodes stay: they feed nothing a caller sees and
    onnxruntime does not run what no output needs)."""
    graph = onx.graph
    probs = [o for o in graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    if len(probs) != 1:
        raise ValueError(f"expected one float probabilities output from skl2onnx, got "
                         f"{[o.name for o in graph.output]}")
    old = probs[0].name
    for node in graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    out = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, n_classes])
    del graph.output[:]
    graph.output.append(out)
