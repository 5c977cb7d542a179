"""The naive baseline the API is compared with: Flask under gunicorn, sklearn pickle, per-request predict.

This is how many tutorials serve a scikit-learn model, on purpose: parse the JSON with Flask,
build a NumPy row, call the unpickled pipeline's `predict` (a classifier's `predict` and
`predict_proba`), return JSON in the API's shape (a regressor's value under its target's name;
a classifier's class and probabilities). No schema validation
beyond "the keys exist". It exists only to give the load benchmark an honest reference.

It is the only code in mpgpack that unpickles anything, and it does so only after the pickle's
sha256 matched the bundle manifest (Bundle.artifact). Run it as
    MPGPACK_BASELINE_BUNDLE=dist gunicorn -w 2 -b 127.0.0.1:8001 'mpgpack.bench.baseline_flask:create_app()'
"""
from __future__ import annotations

import os
import pickle

import numpy as np
from flask import Flask, jsonify, request

from mpgpack.core.bundle import open_bundle
from mpgpack.core.schema import Schema


def create_app(bundle_path: str | None = None):
    bundle = open_bundle(bundle_path or os.environ.get("MPGPACK_BASELINE_BUNDLE") or None)
    names = [f["name"] for f in bundle.features]
    schema = Schema.from_manifest(bundle.manifest)
    with open(bundle.artifact("reference_pickle"), "rb") as fh:   # sha256-checked first
        model = pickle.load(fh)
    app = Flask(__name__)

    def row(car: dict) -> list:
        return [np.nan if car.get(n) is None else float(car[n]) for n in names]

    @app.post("/predict")
    def predict():
        data = request.get_json()
        cars = data["instances"] if "instances" in data else [data]
        X = np.array([row(c) for c in cars], dtype=np.float64)
        if schema.is_classifier:
            labels, probs = model.predict(X), model.predict_proba(X)
            return jsonify({"predictions": [
                {"class": str(c), "probabilities": dict(zip(schema.classes, map(float, p)))}
                for c, p in zip(labels, probs)]})
        pred = model.predict(X)
        return jsonify({"predictions": [{schema.target: float(p)} for p in pred]})

    @app.get("/health")
    def health():
        return jsonify({"ok": True})

    return app
