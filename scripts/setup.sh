#!/usr/bin/env bash
# Set up everything snnfast needs on a fresh Debian machine of this kind, idempotently:
# Debian's Fashion-MNIST package, a .venv/ at the repository root with the Python
# dependencies (PyTorch for training included), and the snnfast wheel built by maturin.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the data set, and the headless browser (with its WebDriver) that the test of
# the service's web page drives.
missing=()
[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# Build and test tools first, then the wheel with its training, test, scale (Ray, LanceDB) and
# serve (FastAPI, uvicorn) extras.
.venv/bin/pip install -q "maturin>=1.7,<2"
rm -rf dist
.venv/bin/maturin build --release --out dist -q
wheel=$(ls dist/snnfast-*.whl)
.venv/bin/pip install -q --force-reinstall --no-deps "$wheel"
.venv/bin/pip install -q "${wheel}[train,test,scale,serve]"
echo "snnfast set up in .venv ($(.venv/bin/python -c 'import snnfast; print(snnfast.__version__)'))"
