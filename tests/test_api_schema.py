"""The request models are built from the manifest's feature schema, whatever it says."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from mpgpack.targets.api.errors import from_validation
from mpgpack.targets.api.schema import RequestModels

CAR = {"cylinders": 8, "displacement": 307.0, "horsepower": 130.0, "weight": 3504.0,
       "acceleration": 12.0, "model_year": 70, "origin": 1}


def _error(models: RequestModels, body: dict) -> str:
    import json
    with pytest.raises(ValidationError) as info:
        models.request.validate_json(json.dumps(body))
    return from_validation(info.value, models.rules).message


def test_limits_follow_the_manifest(manifest):
    features = copy.deepcopy(manifest["schema"]["features"])
    weight = next(f for f in features if f["name"] == "weight")
    weight["maximum"] = 4000                      # a stricter schema in a future bundle
    models = RequestModels(features, max_batch=3)
    assert "weight: 4500 is outside the hard limits 1000–4000 lb" in _error(models, {**CAR, "weight": 4500})
    assert "at most 3 items" in _error(models, {"instances": [CAR] * 4})


def test_categories_with_gaps_are_checked_by_membership(manifest):
    features = copy.deepcopy(manifest["schema"]["features"])
    origin = next(f for f in features if f["name"] == "origin")
    origin["categories"] = {"1": "USA", "3": "Japan"}
    models = RequestModels(features)
    assert models.request.validate_json(b'{"cylinders": 4, "displacement": 97, "weight": 2130, '
                                        b'"acceleration": 14.5, "model_year": 70, "origin": 3}')
    assert "origin: unknown value 2 (allowed: 1 USA, 3 Japan)" in _error(models, {**CAR, "origin": 2})


def test_to_matrix_and_warnings(manifest):
    models = RequestModels(manifest["schema"]["features"])
    parsed = models.request.validate_python({"instances": [CAR, {**CAR, "horsepower": None, "weight": 6000.0}]})
    X = models.to_matrix(parsed)
    assert X.dtype == np.float32 and X.shape == (2, 7)
    assert np.isnan(X[1, 2]) and X[0, 2] == 130
    warnings = models.warnings(X)
    assert warnings[0] == [] and [w["field"] for w in warnings[1]] == ["weight"]
