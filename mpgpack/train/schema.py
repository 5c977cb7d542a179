"""The MPG dataset's feature schema: defined here once, written into every bundle's manifest.

The types (`Feature`, `Schema`) and the tensor names live in `mpgpack.core.schema`; this
module says what the Auto MPG features are. Runtime targets (API, edge runner, web page)
never import it: they read the same schema back from `manifest.json`, so the schema travels
with the model it describes.
"""
from __future__ import annotations

from mpgpack.core.schema import Feature, Schema

__all__ = ["FEATURES", "FEATURE_NAMES", "N_FEATURES", "NULLABLE_INDEX",
           "NUMERIC_INDEX", "ORIGIN_CATEGORIES", "ORIGIN_INDEX", "TARGET",
           "TARGET_FEATURE", "mpg_spec"]

TARGET = "mpg"
# The target as the data loader checks it: required, and within what a car can do.
TARGET_FEATURE = Feature(TARGET, "mpg", "Fuel economy, miles per US gallon", "number", 3, 150)

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


def mpg_spec():
    """The showcase as a `TableSpec` (the shipped data needs no schema file)."""
    from mpgpack.core.schema import REGRESSION
    from mpgpack.train.table import TableSpec
    return TableSpec("mpg", REGRESSION, TARGET_FEATURE, FEATURES)
