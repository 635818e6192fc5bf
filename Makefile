# The README's commands. Each one sets up what it needs first (scripts/setup.sh is idempotent).
.PHONY: setup demo test bench lint

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/snnfast demo --out runs/demo

test: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m pytest -q

bench: setup
	mkdir -p runs
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m pytest benches -q --benchmark-only \
		--benchmark-json=runs/bench.json

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	PYO3_PYTHON=$(CURDIR)/.venv/bin/python cargo clippy --features python -- -D warnings
	.venv/bin/ruff check python tests benches
	.venv/bin/ruff format --check python tests benches
	.venv/bin/mypy
	.venv/bin/python -m mypy.stubtest snnfast._core
