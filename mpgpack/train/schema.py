"""The feature schema: defined here once, written into every bundle's manifest.

Runtime targets (API, edge runner, web page) never import this module: they read the same
schema back from `manifest.json`, so the schema travels with the model it describes.
Stdlib only, so it can be imported anywhere.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

TARGET = "mpg"
# Tensor names of every artifact: input [N, 7] float32, output [N, 1] float32.
INPUT_NAME = "features"
OUTPUT_NAME = "mpg"


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    description: str
    # "number" or "category"; categories are still sent as numbers (origin 1/2/3).
    kind: str
    # Hard limits: values outside are refused by every target (physically absurd for a car).
    minimum: float
    maximum: float
    integer: bool = False
    nullable: bool = False
    categories: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        out["categories"] = {str(k): v for k, v in self.categories.items()}
        return out


# Order matters: it is the column order of every artifact's [N, 7] input.
FEATURES: tuple[Feature, ...] = (
    Feature("cylinders", "count", "Number of cylinders", "number", 2, 16, integer=True),
    Feature("displacement", "cu. in.", "Engine displacement", "number", 40, 700),
    Feature("horsepower", "hp", "Engine power; may be missing (null)", "number", 30, 400,
            nullable=True),
    Feature("weight", "lb", "Vehicle weight", "number", 1000, 7000),
    Feature("acceleration", "s", "Time from 0 to 60 mph", "number", 4, 35),
    Feature("model_year", "year - 1900", "Model year, two digits (70 = 1970)", "number",
            60, 99, integer=True),
    Feature("origin", "", "Region of origin", "category", 1, 3, integer=True,
            categories={1: "USA", 2: "Europe", 3: "Japan"}),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
NULLABLE_INDEX = tuple(i for i, f in enumerate(FEATURES) if f.nullable)
ORIGIN_INDEX = FEATURE_NAMES.index("origin")
ORIGIN_CATEGORIES = tuple(sorted(FEATURES[ORIGIN_INDEX].categories))
NUMERIC_INDEX = tuple(i for i, f in enumerate(FEATURES) if f.kind == "number" and not f.nullable)


def schema_json(training_range: dict[str, tuple[float, float]]) -> dict:
    """The schema block of the manifest: features in order, hard limits, training range."""
    feats = []
    for f in FEATURES:
        d = f.to_json()
        lo, hi = training_range[f.name]
        d["training_range"] = [lo, hi]
        feats.append(d)
    return {"target": {"name": TARGET, "unit": "miles per US gallon"},
            "input": {"dtype": "float32", "shape": [None, N_FEATURES],
                      "missing": "NaN (null in JSON)"},
            "features": feats}
