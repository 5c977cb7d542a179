"""The data shipped with mpgpack (see README.md beside this file for its provenance)."""
from pathlib import Path

AUTO_MPG = Path(__file__).resolve().parent / "auto-mpg.data"   # the default training data
