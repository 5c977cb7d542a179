"""What the benchmark reads from a bundle's schema: its model's name, how a target's answer
holds the output, and the one parity rule (core.verify.parity_entry) for every path.

Every section compares the WHOLE output [N, K] with the golden set: a regressor's values, a
classifier's probabilities (and its classes, by core.outputs' rule), so any bundle is measured
the same way the build gated it.
"""
from __future__ import annotations

import numpy as np

from mpgpack.core.bundle import Bundle
from mpgpack.core.errors import UserError
from mpgpack.core.schema import Schema
from mpgpack.core.verify import holdout_accuracy, holdout_mae, parity_entry

SHOWCASE = "mpg"      # the Auto MPG model: the one the peers (`--peers`) know how to serve


def schema_of(bundle: Bundle) -> Schema:
    return Schema.from_manifest(bundle.manifest)


def model_name(bundle: Bundle) -> str:
    """The manifest's model name (the V2 model name); older bundles are the MPG model."""
    return bundle.manifest["model"].get("name") or SHOWCASE


def is_showcase(bundle: Bundle) -> bool:
    schema = schema_of(bundle)
    return model_name(bundle) == SHOWCASE and not schema.is_classifier and schema.target == SHOWCASE


def refuse_peers(bundle: Bundle) -> None:
    """The peers' servers and request bodies (`--peers`) are written for the MPG model only."""
    if not is_showcase(bundle):
        raise UserError(f"--peers measures the MPG showcase model only; bundle {bundle.path} holds "
                        f"'{model_name(bundle)}' (run `mpgpack bench` without --peers)")


def output_of_answers(schema: Schema, answers: list[dict]) -> np.ndarray:
    """[N, K] from the friendly answers of the API or the edge runner: a regressor's value
    under its target's name, a classifier's probabilities in manifest class order."""
    if schema.is_classifier:
        return np.array([[a["probabilities"][c] for c in schema.classes] for a in answers],
                        dtype=np.float64)
    return np.array([[a[schema.target]] for a in answers], dtype=np.float64)


def parity(bundle: Bundle, out: np.ndarray, runtime: str) -> dict:
    """One parity row: the output [N, K] (or a regressor's [N]) against the golden set."""
    golden = bundle.golden()
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    return {"runtime": runtime, **parity_entry(out, golden.expected, golden.actual,
                                               golden.tolerance, schema_of(bundle).task)}


def reference_row(bundle: Bundle) -> dict:
    """The float64 scikit-learn reference itself: zero error, its hold-out score."""
    golden = bundle.golden()
    row = {"runtime": "scikit-learn", "max_abs_error": 0.0, "mean_abs_error": 0.0,
           "rows": int(len(golden.expected)), "tolerance": golden.tolerance}
    if schema_of(bundle).is_classifier:
        row.update(class_agreement=1.0, holdout_accuracy=holdout_accuracy(golden.expected, golden.actual))
    else:
        row["holdout_mae"] = holdout_mae(golden.expected, golden.actual)
    return row


def describe(bundle: Bundle) -> dict:
    """What the report names: the model, its task, the output's unit and the tolerance."""
    schema = schema_of(bundle)
    target = bundle.manifest["schema"].get("target", {})
    unit = "" if schema.is_classifier else (target.get("unit") or schema.target)
    return {"name": model_name(bundle), "task": schema.task, "target": schema.target,
            "output": schema.output_name, "classes": list(schema.classes),
            "unit": "MPG" if is_showcase(bundle) else unit,
            "tolerance": bundle.golden().tolerance, "features": len(schema)}
