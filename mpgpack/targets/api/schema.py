"""The request models of the friendly API, built from the bundle's typed feature schema.

The manifest (written from `train/schema.py`, read as `mpgpack.core.schema.Feature`s) is the
one place the feature rules live: names, order, units, hard limits, integer-ness,
nullability, categories and the training range. This module turns them into pydantic
models, so validation, the /docs page and the OpenAPI schema all come from the same source;
the wording of a broken rule is the core's (`mpgpack.core.rows`, via errors.py). Nothing here
imports the build stack.

Type choices, and why:
- every number is a *strict* float: JSON strings ("4") and booleans (true) are refused, ints
  are accepted; NaN and Infinity are refused (allow_inf_nan=False) with the field named;
- integer features are floats with multiple_of=1, documented as JSON Schema "integer" (which
  by the JSON Schema definition also admits 4.0), so a client that writes 4.0 is not punished;
- a category may be sent by code or by name, any case ("origin": 3 or "Japan"), as the web
  page's CSV is; an unknown name is refused with the allowed ones listed;
- a nullable feature may be null or omitted (the model imputes it); every other one is required;
- unknown fields are refused (extra="forbid"), so a misspelt name cannot silently be ignored.
"""
from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Annotated, Any, Iterable, Optional, Union

from typing_extensions import NotRequired, TypedDict   # pydantic needs these on Python < 3.12

import numpy as np
from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Discriminator, Field, Strict, Tag,
                      TypeAdapter)
from pydantic_core import PydanticCustomError

from mpgpack.core.schema import Feature, Schema, show_number

DEFAULT_MAX_BATCH = 10_000
_NO_WARNINGS: list = []     # shared by the rows of a request without warnings (read-only)
_NO_ROWS = np.empty(0, dtype=np.intp)   # no flagged rows (read-only)

ROW_DESCRIPTION = "One row, as named raw features."
ROW_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                        title="Row", json_schema_extra={"description": ROW_DESCRIPTION})


def show(value: Any) -> str:
    """A request value as it looked in JSON, short enough for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return show_number(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else "")).replace("'", '"')
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _category_check(feature: Feature):
    allowed = {float(k) for k in feature.categories}

    def check(value: float) -> float:
        if value not in allowed:      # errors.py words it with the core's category message
            raise PydanticCustomError("category", "unknown value")
        return value
    return check


def _category_name(feature: Feature) -> BeforeValidator:
    """A category's name (any case, surrounding spaces ignored) -> its code; other values
    pass through to the number rules unchanged."""
    codes = {label.strip().casefold(): float(code) for code, label in feature.categories.items()}

    def to_code(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        code = codes.get(value.strip().casefold())
        if code is None:             # errors.py words it, listing the allowed names
            raise PydanticCustomError("category_name", "unknown category name")
        return code
    return BeforeValidator(to_code)


def _field(feature: Feature):
    """(type, FieldInfo) for one feature: the hard limits become ge/le."""
    lo, hi = feature.training_range
    desc = (f"{feature.description} ({feature.unit or 'no unit'}). Allowed "
            f"{feature.limits_text()}; trained on {show_number(lo)}–{show_number(hi)} "
            "(values outside the training range are predicted and flagged with a warning).")
    extra: dict[str, Any] = {}
    metadata: list[Any] = [Strict()]
    if feature.integer:
        extra["type"] = "integer"
    if feature.is_category:
        desc += (f" Categories: {feature.categories_text()}; send the code or the name "
                 "(any case).")
        codes = sorted(feature.categories)
        extra["enum"] = codes
        extra["x-category-names"] = {label: code for code, label in sorted(feature.categories.items())}
        # Contiguous codes filling [minimum, maximum] are already enforced by the limits and
        # multiple_of below; only gaps need the (Python-level, so slower) membership check.
        if not (feature.integer and
                codes == list(range(int(feature.minimum), int(feature.maximum) + 1))):
            metadata.append(AfterValidator(_category_check(feature)))
    kw = dict(ge=feature.minimum, le=feature.maximum, description=desc,
              json_schema_extra=extra or None)
    if feature.integer:
        kw["multiple_of"] = 1
    typ: Any = Annotated[float, *metadata]
    if feature.is_category:
        # Around the number and its limits (which then still document as minimum/maximum).
        limits = {k: kw.pop(k) for k in ("ge", "le", "multiple_of") if k in kw}
        typ = Annotated[Annotated[typ, Field(**limits)], _category_name(feature)]
    if feature.nullable:
        return Optional[typ], Field(None, **kw)
    return typ, Field(..., **kw)


def example_row(features: Iterable[Feature | dict], stats: dict | None = None) -> dict:
    """A typical row for the docs: each feature's training median (from the manifest's
    training_stats; else the middle of its training range), rounded to the feature's kind;
    a category's first code."""
    stats = stats or {}
    out = {}
    for f in Schema.from_features(features):
        if f.is_category:
            out[f.name] = min(f.categories)
            continue
        lo, hi = f.training_range or (f.minimum, f.maximum)
        v = (stats.get(f.name) or {}).get("median")
        v = (lo + hi) / 2 if v is None else v
        out[f.name] = int(round(v)) if f.integer else float(v)
    return out


class RequestModels:
    """Row, Batch and the request adapter for POST /predict, for one bundle's schema.
    `features`: a Schema (Schema.from_manifest: with the task and tensor names, which the V2
    paths read from here) or the manifest's feature list; `stats`: the manifest's
    training_stats (the docs' example row is the training medians)."""

    def __init__(self, features: Iterable[Feature | dict], max_batch: int = DEFAULT_MAX_BATCH,
                 stats: dict | None = None, fast_rows: bool = True):
        self.schema = features if isinstance(features, Schema) else Schema.from_features(features)
        self.rules = self.schema          # the name the route handlers use
        self.names = self.schema.names
        self.max_batch = max_batch
        self.example = example_row(self.schema, stats)
        config = {**ROW_CONFIG, "json_schema_extra": {
            "description": ROW_DESCRIPTION, "examples": [self.example]}}
        # TypedDicts rather than BaseModels: same validation and JSON Schema, but a validated
        # row is a plain dict, about a third cheaper per row than building a model instance.
        car_fields = {}
        for f in self.schema:
            typ, info = _field(f)
            car_fields[f.name] = NotRequired[Annotated[typ, info]] if f.nullable \
                else Annotated[typ, info]
        self.Car = TypedDict("Row", car_fields)                       # type: ignore[misc]
        self.Car.__pydantic_config__ = ConfigDict(**config)           # type: ignore[attr-defined]
        self.Batch = TypedDict("Batch", {"instances": Annotated[     # type: ignore[misc]
            list[self.Car], Field(min_length=1, max_length=max_batch,
                                  description=f"1 to {max_batch} rows")]})
        self.Batch.__pydantic_config__ = ConfigDict(                 # type: ignore[attr-defined]
            extra="forbid", strict=True, title="Batch")
        # One adapter for the whole body: the discriminator sends {"instances": ...} to Batch and
        # anything else to Row, so a bad single row is reported once, not once per union branch.
        self.request = TypeAdapter(Annotated[
            Union[Annotated[self.Car, Tag("car")], Annotated[self.Batch, Tag("batch")]],
            Discriminator(lambda v: "batch" if isinstance(v, dict) and "instances" in v else "car")])
        self._row = itemgetter(*self.names)
        # The good path without pydantic (fast_rows.py); None: every body goes through pydantic.
        from mpgpack.targets.api.fast_rows import FastRows   # it imports errors.py, which imports this
        self.fast = FastRows(self.schema, max_batch).matrix if fast_rows else None
        # float32 bounds: X is float32, and 8.1 as float32 is above 8.1 as float64.
        self._lo = self.schema.training_lo.astype(np.float32)
        self._hi = self.schema.training_hi.astype(np.float32)
        # The constant part of each warning, worded once.
        self._range_texts = [
            (f.name, list(f.training_range),
             f"is outside the training range [{show_number(f.training_range[0])}, "
             f"{show_number(f.training_range[1])}]; the prediction is an extrapolation")
            for f in self.schema]
        self._warning_cache: dict[tuple[int, float], dict] = {}

    def to_matrix(self, parsed: dict) -> np.ndarray:
        """The validated request as float32 [N, F] in feature order; null becomes NaN."""
        cars = parsed["instances"] if "instances" in parsed else [parsed]
        # One flat list, then reshape: cheaper than NumPy walking a list of row tuples.
        flat = list(chain.from_iterable(map(self._row, cars)))
        return np.array(flat, dtype=np.float32).reshape(len(cars), len(self.names))

    def check_training_range(self, X: np.ndarray, detail_limit: int | None = None
                             ) -> tuple[list[list[dict]], dict[str, int], np.ndarray]:
        """Per row: the features outside the training range (predicted, but less trustworthy),
        worded for the first `detail_limit` flagged rows only (None: all; later rows get []:
        a 10,000-row batch outside the range would otherwise answer 10 MB of the same
        sentences); how many values per feature were outside (the drift metric); and the
        indexes of every flagged row. Without any, every row's list is one shared empty list:
        read it, never append to it."""
        out = X < self._lo         # NaN compares False: a missing value is not flagged
        out |= X > self._hi
        if not np.count_nonzero(out):       # the usual case; count_nonzero is cheaper than any()
            return [_NO_WARNINGS] * len(X), {}, _NO_ROWS
        counts = np.count_nonzero(out, axis=0)
        by_feature = {self.names[j]: int(counts[j]) for j in np.flatnonzero(counts)}
        flagged = np.flatnonzero(out.any(axis=1))     # sorted, each row once
        if detail_limit == 0:        # counts only (V2): no cell positions, no sentences
            return [_NO_WARNINGS] * len(X), by_feature, flagged
        result: list[list[dict]] = [[] for _ in range(len(X))]
        rows, cols = np.nonzero(out)                  # row-major: a row's pairs are together
        if detail_limit is not None and len(flagged) > detail_limit:
            cut = int(np.searchsorted(rows, flagged[detail_limit]))   # the first unworded row
            rows, cols = rows[:cut], cols[:cut]
        cache = self._warning_cache
        if len(cache) > 4096:          # bounded: the flagged values a service sees repeat a lot
            cache.clear()
        for i, key in zip(rows.tolist(), zip(cols.tolist(), X[rows, cols].tolist())):
            warning = cache.get(key)
            if warning is None:
                warning = cache[key] = self._warning(*key)
            result[i].append(warning)
        return result, by_feature, flagged

    def _warning(self, column: int, value: float) -> dict:
        """One out-of-range warning; shared by every row that has the same value (read-only)."""
        name, training_range, range_text = self._range_texts[column]
        shown = format(value, ".7g")      # float32 -> the value as sent (24.8, not 24.79999…)
        return {"field": name, "value": float(shown), "training_range": training_range,
                "message": f"{name}={shown} {range_text}"}

    def warnings(self, X: np.ndarray) -> list[list[dict]]:  # every row worded
        return self.check_training_range(X)[0]
