#!/usr/bin/env bash
# Build the engine's Python extension in place (python/snnfast/_core.abi3.so), for working on
# the code without reinstalling the wheel: then `PYTHONPATH=python .venv/bin/python ...` or
# `PYTHONPATH=python:tests .venv/bin/python -m pytest` runs this tree's snnfast.
# FAST=1 skips link-time optimisation (quicker builds, slower engine; not for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYO3_PYTHON:-$(pwd)/.venv/bin/python}
[ -x "$PY" ] || PY=$(git rev-parse --path-format=absolute --git-common-dir)/../.venv/bin/python
if [ "${FAST:-0}" = 1 ]; then
    export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
PYO3_PYTHON="$PY" cargo build --release --features python --lib -q
# A new file renamed into place: processes that loaded the old one keep their copy.
cp target/release/libsnnfast.so python/snnfast/.core.tmp.so
mv -f python/snnfast/.core.tmp.so python/snnfast/_core.abi3.so
echo "built python/snnfast/_core.abi3.so"
