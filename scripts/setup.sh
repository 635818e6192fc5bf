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
# Every Python package is pinned: scripts/constraints.txt holds the exact versions CI and the
# figures in docs/ were run with (pyproject.toml states what each extra needs; the constraints
# fix which release). Build and test tools first, then the wheel with its training, test, scale
# (Ray, LanceDB), interop (NIR), serve (FastAPI, uvicorn) and sanafe (the Loihi cross-check)
# extras.
PIP=(.venv/bin/pip install -q -c scripts/constraints.txt)
"${PIP[@]}" maturin
rm -rf dist
.venv/bin/maturin build --release --out dist -q
wheel=$(ls dist/snnfast-*.whl)
"${PIP[@]}" --force-reinstall --no-deps "$wheel"
"${PIP[@]}" "${wheel}[train,test,scale,interop,serve,sanafe]"
# The NIR cross-checks also run Norse and sinabs. Their declared requirements would change the
# environment (Norse pulls torchvision; sinabs pins nir<=1.0.4 and wants the samna chip
# driver), and neither needs them to import and run a NIR graph, so they go in without their
# dependencies; pbr is what sinabs reads its version with.
"${PIP[@]}" pbr
"${PIP[@]}" --no-deps norse sinabs
echo "snnfast set up in .venv ($(.venv/bin/python -c 'import snnfast; print(snnfast.__version__)'))"
