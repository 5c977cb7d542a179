# The two commands of the README. Both set everything up first (scripts/setup.sh is idempotent).
.PHONY: setup demo test test-fast bench

setup:
	@bash scripts/setup.sh

# Build the bundle from the shipped data, then serve the demo page and the API on 127.0.0.1:8000.
demo: setup
	.venv/bin/mpgpack build
	.venv/bin/mpgpack serve

test: setup
	.venv/bin/python -m pytest

# The fast tier: no built bundle, no TensorFlow, no browser, qemu, S3, Airflow, load runs or
# clean-venv installs (the markers of pyproject.toml; tests/conftest.py gives them).
FAST_TIER = not slow and not browser and not emulated and not s3 and not airflow and not load and not wheel
test-fast: setup
	.venv/bin/python -m pytest -m "$(FAST_TIER)"

bench: setup
	.venv/bin/mpgpack build
	.venv/bin/mpgpack bench
