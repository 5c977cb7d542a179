# The two commands of the README. Both set everything up first (scripts/setup.sh is idempotent).
.PHONY: setup demo test bench

setup:
	@bash scripts/setup.sh

# Build the bundle from the shipped data, then serve the demo page and the API on 127.0.0.1:8000.
demo: setup
	.venv/bin/mpgpack build
	.venv/bin/mpgpack serve

test: setup
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/mpgpack build
	.venv/bin/mpgpack bench
