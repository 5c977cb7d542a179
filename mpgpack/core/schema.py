"""The typed view of a bundle's feature schema, and the tensor names every artifact uses.

The manifest's `schema.features` list is where the rules travel with the model (the web page
reads the same JSON keys). Here each entry becomes a `Feature`, and the ordered list a
`Schema`, so Python code asks `feature.nullable` instead of `f.get("nullable")` and the
wording of limits and categories comes from one place. Standard library + numpy only.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Iterable, Iterator

import numpy as np

# Tensor names of every artifact: input [N, n_features] float32; one output, float32:
# a regressor's [N, 1] named after its target (the MPG model's "mpg"), a classifier's class
# probabilities [N, n_classes] named PROBABILITIES (no ZipMap, no label tensor: the class is
# the index of the highest probability, the first on a tie, in every target).
INPUT_NAME = "features"
OUTPUT_NAME = "mpg"
PROBABILITIES = "probabilities"
REGRESSION = "regression"
CLASSIFICATION = "classification"
TASKS = (REGRESSION, CLASSIFICATION)


def tensor_name(name: str) -> str:
    """A column name as a tensor/output name: letters, digits and _ only ("sepal length (cm)"
    -> "sepal_length_cm")."""
    out = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "output"
    return out if not out[0].isdigit() else f"_{out}"


def show_number(value: float) -> str:
    """A value as a person wrote it: 900 (not 900.0), 4.5, 3.0000000001 (never rounded)."""
    value = float(value)
    if not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Feature:
    """One input column. Field order is the manifest's key order (kept for older bundles)."""
    name: str
    unit: str
    description: str
    # "number" or "category"; categories are still sent as numbers (origin 1/2/3).
    kind: str
    # Hard limits: values outside are refused by every target (physically absurd for a car).
    minimum: float
    maximum: float
    integer: bool = False
    nullable: bool = False                 # may be missing (NaN / null / '?' / empty)
    categories: dict[int, str] = field(default_factory=dict)   # code -> name
    # [lo, hi] seen in training; set when the bundle is built. Outside: predicted, but warned.
    training_range: tuple[float, float] | None = None

    @property
    def is_category(self) -> bool:
        return self.kind == "category" and bool(self.categories)

    @property
    def display_unit(self) -> str:
        """The unit after a number ("400 hp"); none for counts and coded years (as on the page)."""
        u = self.unit or ""
        return u if self.kind == "number" and u != "count" and "year" not in u else ""

    def limits_text(self) -> str:
        """"30–400 hp": the hard limits as a message states them."""
        text = f"{show_number(self.minimum)}–{show_number(self.maximum)}"
        return f"{text} {self.display_unit}" if self.display_unit else text

    def label_codes(self) -> dict[str, int]:
        """A category's labels, folded (any case, no surrounding spaces) -> code: how a label
        sent by a client or written in a file is read (one rule for every target)."""
        return {label.strip().casefold(): code for code, label in self.categories.items()}

    def categories_text(self) -> str:
        """"1 USA, 2 Europe, 3 Japan"."""
        return ", ".join(f"{code} {label}" for code, label in sorted(self.categories.items()))

    def allowed_text(self) -> str:
        """What a valid value is, for messages about values that are not numbers at all."""
        if self.is_category:
            return f"one of {self.categories_text()}"
        return f"{'a whole number' if self.integer else 'a number'} within {self.limits_text()}"

    def to_json(self) -> dict:
        """The manifest entry (category codes become JSON object keys, i.e. strings)."""
        out = asdict(self)
        out["categories"] = {str(k): v for k, v in sorted(self.categories.items())}
        if self.training_range is None:
            del out["training_range"]
        else:
            out["training_range"] = list(self.training_range)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Feature":
        """A manifest entry back; tolerant of the keys older bundles left out."""
        rng = d.get("training_range")
        return cls(name=d["name"], unit=d.get("unit", ""), description=d.get("description", ""),
                   kind=d.get("kind", "number"), minimum=d["minimum"], maximum=d["maximum"],
                   integer=bool(d.get("integer")), nullable=bool(d.get("nullable")),
                   categories={int(k): v for k, v in (d.get("categories") or {}).items()},
                   training_range=None if rng is None else (rng[0], rng[1]))


@dataclass(frozen=True)
class Schema:
    """The features in input-column order, plus the tensor names; numpy views for checks."""
    features: tuple[Feature, ...]
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    task: str = REGRESSION
    classes: tuple[str, ...] = ()          # a classifier's class labels, in output order
    target: str = OUTPUT_NAME              # the column the model predicts

    @classmethod
    def from_features(cls, features: Iterable[Feature | dict], **names) -> "Schema":
        return cls(tuple(f if isinstance(f, Feature) else Feature.from_json(f) for f in features),
                   **names)

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Schema":
        """Older bundles (before the task was recorded) are MPG regressors."""
        model = manifest.get("model", {})
        io, target = model.get("io", {}), manifest["schema"].get("target", {})
        return cls.from_features(manifest["schema"]["features"],
                                 input_name=io.get("input", INPUT_NAME),
                                 output_name=io.get("output", OUTPUT_NAME),
                                 task=model.get("task", REGRESSION),
                                 classes=tuple(target.get("classes") or ()),
                                 target=target.get("name", OUTPUT_NAME))

    @property
    def is_classifier(self) -> bool:
        return self.task == CLASSIFICATION

    @property
    def n_outputs(self) -> int:
        """Columns of the output tensor: 1 for a regressor, one per class for a classifier."""
        return len(self.classes) if self.is_classifier else 1

    def __len__(self) -> int:
        return len(self.features)

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    def __getitem__(self, i: int) -> Feature:
        return self.features[i]

    @cached_property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def by_name(self, name: str) -> Feature | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    @cached_property
    def nullable_names(self) -> list[str]:
        return [f.name for f in self.features if f.nullable]

    def to_json(self) -> list[dict]:
        return [f.to_json() for f in self.features]

    # -- numpy views, one value per column, for the vectorised row checks ------------------
    @cached_property
    def minimum(self) -> np.ndarray:
        return np.array([f.minimum for f in self.features], dtype=np.float64)

    @cached_property
    def maximum(self) -> np.ndarray:
        return np.array([f.maximum for f in self.features], dtype=np.float64)

    @cached_property
    def integer(self) -> np.ndarray:
        return np.array([f.integer for f in self.features], dtype=bool)

    @cached_property
    def nullable(self) -> np.ndarray:
        return np.array([f.nullable for f in self.features], dtype=bool)

    @cached_property
    def training_lo(self) -> np.ndarray:
        return np.array([-np.inf if f.training_range is None else f.training_range[0]
                         for f in self.features], dtype=np.float64)

    @cached_property
    def training_hi(self) -> np.ndarray:
        return np.array([np.inf if f.training_range is None else f.training_range[1]
                         for f in self.features], dtype=np.float64)

    @cached_property
    def category_codes(self) -> dict[int, np.ndarray]:
        """Column index -> the allowed codes, for category features."""
        return {i: np.array(sorted(f.categories), dtype=np.float64)
                for i, f in enumerate(self.features) if f.is_category}
