"""TF.js graph model from the lowered SavedModel, with tensorflowjs's own converter."""
from __future__ import annotations

import logging
import os
from pathlib import Path


def export_tfjs(saved_model: Path, out_dir: Path) -> Path:
    # Imported here: tensorflowjs pulls in TF-DF, JAX and flax, seconds of import time that
    # the other build stages do not need.
    # TF-DF (imported by tensorflowjs) prints a welcome banner, through IPython when stdout is
    # not a terminal (pytest, CI), and IPython is not installed: switch the banner off.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as conv

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    out_dir.mkdir(parents=True, exist_ok=True)
    conv.convert_tf_saved_model(str(saved_model), str(out_dir),
                                signature_def="serving_default", saved_model_tags="serve")
    return out_dir / "model.json"
