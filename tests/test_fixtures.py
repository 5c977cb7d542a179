"""The hand-made manifest (tests/fixtures/) still says what a build writes, so the fast tests that
use it test the real schema and statistics."""
from __future__ import annotations

import json

from tests.conftest import SMALL_BUNDLE


def test_small_manifest_is_the_builds_trimmed(manifest):
    small = json.loads((SMALL_BUNDLE / "manifest.json").read_text())
    assert small["format_version"] == manifest["format_version"]
    assert small["data"] == {k: manifest["data"][k] for k in small["data"]}
    assert small["model"]["io"] == manifest["model"]["io"]
    for section in ("schema", "training_stats"):
        assert small[section] == manifest[section], f"{section}: copy it from a fresh build"
    assert small["metrics"]["split"] == manifest["metrics"]["split"]
