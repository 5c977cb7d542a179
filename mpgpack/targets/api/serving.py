"""What the service serves for one model version, built and checked before it is swapped in.

`Served` is frozen: a request reads `slot.current` once and gets one consistent
(predictor, schema, drift window, metadata, version) set for its whole life, so a reload in the
middle of a request cannot mix versions. `load_served` is the ModelSlot's loader: it verifies
the signature (with --trust), the sha256s, opens ONNX Runtime and re-runs the golden vectors
(Predictor), and raises UserError for a bad bundle, in which case the slot keeps the old
version (a reload answers 409).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from mpgpack.core.errors import UserError
from mpgpack.targets.api import v2
from mpgpack.targets.api.answers import Answers
from mpgpack.targets.api.predictor import Predictor
from mpgpack.targets.api.routes import endpoint_list
from mpgpack.targets.api.schema import RequestModels
from mpgpack.targets.api.settings import ApiSettings
from mpgpack.core.bundle import Bundle, CURRENT_POINTER, open_bundle, resolve_bundle_path
from mpgpack.core.drift import DriftMonitor
from mpgpack.core.signing import trust_line

@dataclass(frozen=True)
class Served:
    version: str
    name: str                 # the V2 model name: the manifest's model name ("mpg")
    bundle: Bundle
    predictor: Predictor
    models: RequestModels     # request validation built from this version's schema
    answers: Answers          # what /predict answers per row (a value, or class + probabilities)
    drift: DriftMonitor       # one window per version: a new model starts with a fresh window
    metadata_bytes: bytes     # GET /metadata, rendered once
    model_meta: dict          # V2 model metadata
    signature: str            # the signature check's line (or that none was asked for)

    @property
    def content(self) -> str:
        """What a reload compares (not the version string: an edited copy keeps it)."""
        return self.bundle.manifest_sha256 or self.version


def load_served(path: str | os.PathLike, settings: ApiSettings, warm_up: bool = True) -> Served:
    bundle = open_bundle(path)
    # The manifest read once above is the one checked and the one served from.
    signature = trust_line(bundle.path, settings.trust, bundle.manifest)
    predictor = Predictor(bundle)          # sha256 of model.onnx + golden.json, golden self-test
    manifest = bundle.manifest
    schema = predictor.schema
    models = RequestModels(schema, max_batch=settings.max_batch,
                           stats=manifest.get("training_stats"), fast_rows=settings.fast_rows)
    drift = DriftMonitor(manifest, window=settings.drift_window)
    if warm_up:
        # The PSI thresholds are simulated once per process and training-bin set (~1 s of CPU,
        # then cached: a version with the same training bins costs nothing). Done here, before
        # the version serves: in a background thread it would hold the GIL against requests
        # for that second, and in the first /monitoring/drift call it would stall the report.
        drift.warm_up()
    metadata = {
        "model": {k: manifest["model"].get(k) for k in
                  ("name", "version", "created", "git", "estimator", "libraries", "io")},
        "task": schema.task,
        **({"classes": list(schema.classes)} if schema.is_classifier else {}),
        "runtime": predictor.runtime,
        "artifact": {"path": manifest["artifacts"]["onnx"]["path"], "sha256": predictor.onnx_sha256},
        "bundle": str(bundle.path),
        "self_check": predictor.self_check,
        "signature": signature,
        "schema": manifest["schema"],
        "metrics": manifest.get("metrics"),
        "parity": manifest.get("parity"),
        "data": manifest.get("data"),
        "limits": {"max_batch": settings.max_batch, "max_body_bytes": settings.max_body_bytes},
        "drift": {"window": drift.window, "min_count": drift.min_count},
        "endpoints": endpoint_list(predictor.name),
    }
    return Served(version=predictor.version, name=predictor.name, bundle=bundle, predictor=predictor,
                  models=models, answers=Answers(schema), drift=drift,
                  metadata_bytes=orjson.dumps(metadata),
                  model_meta=v2.model_metadata(predictor.name, predictor.version, schema),
                  signature=signature)


def resolve_source(source: str | os.PathLike | None) -> Path:
    """A --bundle argument -> a local bundle folder. A registry is followed through CURRENT and
    an s3:// address through its remote pointer, each time this is called (so on every reload)."""
    if source is not None and str(source).startswith("s3://"):
        from mpgpack.storage.s3 import resolve_bundle_arg    # the s3 extra, only when asked for
        return Path(resolve_bundle_arg(str(source)))
    return resolve_bundle_path(source)


def reload_target(source: str | os.PathLike | None, body: dict) -> str | None:
    """What a POST /admin/reload body asks for: None (follow the source, e.g. the registry's
    CURRENT), {"version": "<version>" or "mpg-<version>"} (a folder of the registry), or
    {"bundle": "<path>"} (a bundle or registry folder on the server). Raises UserError."""
    unknown = sorted(set(body) - {"version", "bundle"})
    if unknown:
        raise UserError(f"{unknown[0]}: unknown field; allowed fields: version, bundle (or an empty body)")
    if "version" in body and "bundle" in body:
        raise UserError("version, bundle: give one of them, not both")
    for key in ("version", "bundle"):
        if key in body and (not isinstance(body[key], str) or not body[key].strip()):
            raise UserError(f"{key}: must be a non-empty string")
    if "bundle" in body:
        return body["bundle"]
    if "version" not in body:
        return None
    if source is not None and str(source).startswith("s3://"):
        raise UserError("version: naming a version needs a local registry; this server follows "
                        f"{source}; give a bundle path instead")
    root = Path(source) if source is not None else Path("dist")
    registry = root if (root / CURRENT_POINTER).is_file() else root.parent
    name = body["version"].strip()
    name = name if name.startswith("mpg-") else f"mpg-{name}"
    if "/" in name or name in (".", ".."):
        raise UserError(f"version: {body['version']!r} is not a version name")
    folder = registry / name
    if not folder.is_dir():
        have = sorted(p.name for p in registry.glob("mpg-*") if p.is_dir())
        raise UserError(f"version: {registry} holds no {name}; it has: {', '.join(have) or 'none'}")
    return str(folder)
