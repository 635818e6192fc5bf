"""PyTorch training: the torch module matches the NumPy ANN, training is seeded and saves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnfast import ann
from snnfast.ann import Architecture
from snnfast.data import data_root
from snnfast.errors import ConfigError
from snnfast.train import Recipe, TrainResult, train

torch = pytest.importorskip("torch")

from snnfast.train import build_torch_model  # noqa: E402

HAVE_DATA = (data_root() / "train-images-idx3-ubyte.gz").is_file()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not installed")


@pytest.mark.parametrize("spec", ["4-8-10", "8-16-32-10", "4-8-16-32-10", "6-10"])
def test_numpy_forward_equals_torch(spec: str) -> None:
    arch = Architecture.parse(spec)
    torch.manual_seed(len(spec))
    model = build_torch_model(arch, dropout=0.5).eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in state.items()} == arch.state_shapes()
    # Random weights large enough that ReLUs cut in every layer.
    rng = np.random.default_rng(3)
    state = {k: rng.normal(0, 0.3, size=v.shape).astype(np.float32) for k, v in state.items()}
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = rng.integers(0, 256, size=(16, 1, 28, 28), dtype=np.uint8)
    with torch.no_grad():
        want = model(torch.from_numpy(x.astype(np.float32) / 255.0)).numpy()
    got = ann.forward(arch, state, x)[-1]
    assert got.shape == want.shape == (16, arch.n_classes)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_dropout_only_in_training_mode() -> None:
    model = build_torch_model("4-8-10", dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    assert not torch.equal(a, model(x))


def test_recipe_validation() -> None:
    for bad in (
        {"epochs": 0},
        {"batch_size": -1},
        {"lr": 0.0},
        {"dropout": 1.0},
        {"weight_decay": -1.0},
        {"arch": "10"},
        {"limit": 1},
        {"warmup_epochs": 50},
        {"threads": 0},
    ):
        with pytest.raises(ConfigError):
            Recipe(**bad)
    with pytest.raises(ConfigError, match="unknown recipe field"):
        train("4-8-10", epochz=1, progress=False)
    with pytest.raises(ConfigError, match="dropout"):
        build_torch_model("4-8-10", dropout=1.5)


@pytest.fixture(scope="module")
def tiny_runs() -> tuple[TrainResult, TrainResult, TrainResult]:
    if not HAVE_DATA:
        pytest.skip("Fashion-MNIST not installed")
    kw = {
        "epochs": 2,
        "limit": 300,
        "batch_size": 32,
        "threads": 1,
        "warmup_epochs": 0.5,
        "lr": 0.01,
        "weight_decay": 0.0,
    }
    a = train("4-8-10", seed=1, progress=False, **kw)
    b = train(Recipe(arch="4-8-10", seed=1, **kw), progress=False)
    c = train("4-8-10", seed=2, progress=False, **kw)
    return a, b, c


@needs_data
def test_tiny_train_runs(tiny_runs: tuple[TrainResult, TrainResult, TrainResult]) -> None:
    r = tiny_runs[0]
    assert r.arch.spec == "4-8-10" and r.recipe.limit == 300
    for acc in (r.train_accuracy, r.val_accuracy, r.test_accuracy):
        assert 0.0 <= acc <= 1.0
    assert r.train_accuracy > 0.3  # two epochs on 275 images learn something
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert r.best_epoch in (1, 2)
    assert r.val_accuracy == pytest.approx(r.history[r.best_epoch - 1]["val_accuracy"])
    assert r.history[1]["loss"] < r.history[0]["loss"]
    assert set(r.state) == set(r.arch.state_shapes())
    assert all(v.dtype == np.float32 for v in r.state.values())


@needs_data
def test_training_is_seeded(tiny_runs: tuple[TrainResult, TrainResult, TrainResult]) -> None:
    a, b, c = tiny_runs
    for k in a.state:
        np.testing.assert_array_equal(a.state[k], b.state[k], err_msg=k)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert any(not np.array_equal(a.state[k], c.state[k]) for k in a.state)


@needs_data
def test_save_and_reload(
    tmp_path: Path, tiny_runs: tuple[TrainResult, TrainResult, TrainResult]
) -> None:
    r = tiny_runs[0]
    path = tmp_path / "tiny.npz"
    r.save(path)
    arch, state, meta = ann.load_model(path)
    assert arch == r.arch
    assert meta["recipe"]["seed"] == 1 and meta["recipe"]["limit"] == 300
    assert meta["test_accuracy"] == r.test_accuracy and meta["torch_version"] == torch.__version__
    for k in state:
        np.testing.assert_array_equal(state[k], r.state[k])


def test_inference_modules_do_not_import_torch() -> None:
    code = (
        "import sys, snnfast.ann, snnfast.data, snnfast.train; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
