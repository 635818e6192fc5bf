"""The NumPy ANN: architecture rule, forward pass, model files, the shipped model."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from snnfast import ann
from snnfast.ann import Architecture, check_state, forward, layer_output, load_model, save_model
from snnfast.errors import ConfigError, ModelFormatError, ShapeError

# Table 1 of the paper, with (embedding shape, dense fan-in).
TABLE1 = {
    "4-8-10": ((8, 4, 4), 128),
    "8-16-10": ((16, 4, 4), 256),
    "16-32-10": ((32, 4, 4), 512),
    "32-64-10": ((64, 4, 4), 1024),
    "4-8-16-10": ((16, 4, 4), 256),
    "8-16-32-10": ((32, 4, 4), 512),
    "16-32-64-10": ((64, 4, 4), 1024),
    "32-64-128-10": ((128, 4, 4), 2048),
    "4-8-16-32-10": ((32, 4, 4), 512),
    "8-16-32-64-10": ((64, 4, 4), 1024),
    "16-32-64-128-10": ((128, 4, 4), 2048),
    "32-64-128-256-10": ((256, 4, 4), 4096),
}


def random_state(arch: Architecture, seed: int = 0, scale: float = 0.2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: rng.normal(0, scale, size=s).astype(np.float32) for k, s in arch.state_shapes().items()
    }


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)


def naive_forward(
    arch: Architecture, state: dict[str, np.ndarray], x: np.ndarray
) -> list[np.ndarray]:
    """Direct float64 loops over output positions: an independent reference."""
    h = x.astype(np.float64) / 255.0
    outs = []
    for d in arch.layers:
        if d.kind == "conv":
            w = state[f"{d.name}.weight"].astype(np.float64)
            b = state[f"{d.name}.bias"].astype(np.float64)
            p = d.padding
            hp = np.pad(h, ((0, 0), (0, 0), (p, p), (p, p)))
            _, ho, wo = d.out_shape
            y = np.empty((h.shape[0], *d.out_shape))
            for i in range(ho):
                for j in range(wo):
                    patch = hp[:, :, i : i + d.kernel, j : j + d.kernel]
                    y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w) + b
            h = np.maximum(y, 0)
        elif d.kind == "pool":
            k = d.kernel
            n, c, hh, ww = h.shape
            h = h.reshape(n, c, hh // k, k, ww // k, k).mean(axis=(3, 5))
        else:
            h = h.reshape(h.shape[0], -1) @ state["fc.weight"].T.astype(np.float64)
            h = h + state["fc.bias"]
        outs.append(h)
    return outs


@pytest.mark.parametrize("spec", list(TABLE1))
def test_table1_shapes(spec: str) -> None:
    arch = Architecture.parse(spec)
    emb_shape, fan_in = TABLE1[spec]
    nums = [int(s) for s in spec.split("-")]
    assert arch.spec == spec and arch.channels == tuple(nums[:-1]) and arch.n_classes == 10
    layers = arch.layers
    kinds = [d.kind for d in layers]
    assert kinds == ["conv", "pool", "conv", "pool"] + ["conv"] * (len(nums) - 3) + ["dense"]
    assert [d.name for d in layers if d.kind == "conv"] == [f"conv{k}" for k in range(1, len(nums))]
    assert layers[0].in_shape == (1, 28, 28)
    assert layers[0].out_shape == (nums[0], 24, 24)
    assert layers[1].out_shape == (nums[0], 12, 12)
    assert layers[2].out_shape == (nums[1], 8, 8)
    assert layers[3].out_shape == (nums[1], 4, 4)
    for prev, cur in zip(layers, layers[1:], strict=False):
        assert cur.in_shape == prev.out_shape
    for d in layers[4:-1]:
        assert (d.kernel, d.padding, d.out_shape[1:]) == (5, 2, (4, 4))
    assert layers[-1].out_shape == (10,)
    assert arch.embedding_layer == len(layers) - 2
    assert layers[arch.embedding_layer].out_shape == emb_shape
    assert arch.embedding_dim == math.prod(emb_shape)
    assert arch.state_shapes()["fc.weight"] == (10, fan_in)
    assert Architecture.parse(f" {spec.replace('-', ' - ')} ") == arch


def test_one_conv_spec() -> None:
    arch = Architecture.parse("32-10")
    assert [d.out_shape for d in arch.layers] == [(32, 24, 24), (32, 12, 12), (10,)]
    assert arch.embedding_dim == 12 * 12 * 32
    assert arch.state_shapes() == {
        "conv1.weight": (32, 1, 5, 5),
        "conv1.bias": (32,),
        "fc.weight": (10, 4608),
        "fc.bias": (10,),
    }


@pytest.mark.parametrize(
    "bad",
    ["10", "", "32--10", "a-10", "0-10", "32-64-0", "-32-10", "32-64-10-", "3.5-10", "32_64_10"],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ConfigError, match="architecture spec"):
        Architecture.parse(bad)


def test_parse_rejects_non_string_and_inconsistent() -> None:
    with pytest.raises(ConfigError, match="string"):
        Architecture.parse(32)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not match"):
        Architecture("32-64-10", (32, 16), 10)
    with pytest.raises(ConfigError, match="positive"):
        Architecture("", (), 10)


@pytest.mark.parametrize("spec", ["4-8-10", "4-8-6-10", "3-7"])
def test_forward_matches_naive_reference(spec: str) -> None:
    arch = Architecture.parse(spec)
    state = random_state(arch, seed=len(spec))
    x = random_images(5, seed=1)
    got = forward(arch, state, x)
    want = naive_forward(arch, state, x)
    assert len(got) == len(arch.layers)
    for d, g, w in zip(arch.layers, got, want, strict=True):
        assert g.dtype == np.float32 and g.shape == (5, *d.out_shape)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=d.name)


def test_forward_upto_batching_and_input_forms() -> None:
    arch = Architecture.parse("4-8-10")
    state = random_state(arch)
    x = random_images(23)
    full = forward(arch, state, x)
    part = forward(arch, state, x, upto=2, batch_size=4)
    assert len(part) == 3
    for a, b in zip(full[:3], part, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        layer_output(arch, state, x, arch.embedding_layer, batch_size=5),
        full[arch.embedding_layer],
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(forward(arch, state, x[:, 0])[-1], full[-1], rtol=1e-6)
    xf = x.astype(np.float64) / 255.0
    np.testing.assert_allclose(forward(arch, state, xf)[-1], full[-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ann.predict(arch, state, x), full[-1].argmax(1))
    np.testing.assert_allclose(forward(arch, state, x, upto=-1)[-1], full[-1])


def test_forward_rejects_bad_input() -> None:
    arch = Architecture.parse("4-8-10")
    state = random_state(arch)
    with pytest.raises(ShapeError, match=r"\[N, 1, 28, 28\]"):
        forward(arch, state, np.zeros((2, 1, 32, 32), np.uint8))
    with pytest.raises(ShapeError, match="int32"):
        forward(arch, state, np.zeros((2, 1, 28, 28), np.int32))
    with pytest.raises(ShapeError, match="NumPy"):
        forward(arch, state, [[0]])  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="empty"):
        forward(arch, state, np.zeros((0, 1, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        forward(arch, state, np.full((2, 1, 28, 28), 255.0))
    with pytest.raises(ConfigError, match="upto"):
        forward(arch, state, random_images(2), upto=5)
    with pytest.raises(ConfigError, match="batch_size"):
        forward(arch, state, random_images(2), batch_size=0)


def test_check_state_errors() -> None:
    arch = Architecture.parse("8-16-10")
    state = random_state(arch)
    assert set(check_state(arch, state)) == set(arch.state_shapes())
    missing = dict(state)
    del missing["conv2.bias"]
    with pytest.raises(ModelFormatError, match="conv2.bias"):
        check_state(arch, missing)
    with pytest.raises(ModelFormatError, match="extra.weight"):
        check_state(arch, {**state, "extra.weight": np.zeros(3, np.float32)})
    wrong = {**state, "conv2.weight": np.zeros((16, 4, 5, 5), np.float32)}
    with pytest.raises(ModelFormatError, match=r"conv2.weight.*\(16, 8, 5, 5\).*\(16, 4, 5, 5\)"):
        check_state(arch, wrong)
    nan = {**state, "fc.bias": np.full(10, np.nan, np.float32)}
    with pytest.raises(ModelFormatError, match="fc.bias.*NaN"):
        check_state(arch, nan)
    # A checkpoint of another architecture fails on its first differing shape.
    other = random_state(Architecture.parse("32-64-10"))
    with pytest.raises(ModelFormatError, match=r"conv1.weight.*expected shape \(8, 1, 5, 5\)"):
        check_state(arch, other)
    with pytest.raises(ModelFormatError, match="conv3"):
        check_state(Architecture.parse("8-16-32-10"), state)


def test_save_load_round_trip(tmp_path: Path) -> None:
    arch = Architecture.parse("4-8-16-10")
    state = random_state(arch, seed=5)
    meta = {"recipe": {"lr": 0.001}, "test_accuracy": 0.5, "note": "é"}
    path = tmp_path / "sub" / "m.npz"
    save_model(path, arch, state, meta)
    assert [p.name for p in path.parent.iterdir()] == ["m.npz"]  # no temp file left
    arch2, state2, meta2 = load_model(path)
    assert arch2 == arch and meta2 == meta
    assert set(state2) == set(state)
    for k in state:
        assert state2[k].dtype == np.float32
        np.testing.assert_array_equal(state2[k], state[k])
    with np.load(path, allow_pickle=False) as z:  # plain arrays + JSON header, no pickle
        assert json.loads(bytes(z["header"]).decode())["body"]["arch"] == "4-8-16-10"


def test_save_rejects(tmp_path: Path) -> None:
    arch = Architecture.parse("4-8-10")
    with pytest.raises(ConfigError, match="JSON"):
        save_model(tmp_path / "m.npz", arch, random_state(arch), {"x": object()})
    with pytest.raises(ModelFormatError, match="conv1.weight"):
        save_model(tmp_path / "m.npz", arch, random_state(Architecture.parse("8-16-10")), {})
    assert not list(tmp_path.iterdir())


def test_load_rejects_damaged_files(tmp_path: Path) -> None:
    arch = Architecture.parse("4-8-10")
    good = tmp_path / "good.npz"
    save_model(good, arch, random_state(arch), {})
    raw = good.read_bytes()

    with pytest.raises(ModelFormatError, match="no ANN model file"):
        load_model(tmp_path / "absent.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFormatError, match="cut.npz"):
        load_model(cut)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ModelFormatError, match="junk.npz"):
        load_model(junk)
    # A flipped byte inside the compressed data: zip CRC or zlib error.
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0xFF
    bad = tmp_path / "flip.npz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ModelFormatError, match="flip.npz"):
        load_model(bad)

    def rewrite(name: str, header: dict | None, arrays: dict[str, np.ndarray]) -> Path:
        p = tmp_path / name
        extra = (
            {}
            if header is None
            else {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        )
        np.savez(p, **extra, **arrays)
        return p

    state = random_state(arch)
    with pytest.raises(ModelFormatError, match="no header"):
        load_model(rewrite("nohdr.npz", None, state))
    with pytest.raises(ModelFormatError, match="not an snnfast ANN model"):
        load_model(rewrite("net.npz", {"format": "snnfast.network", "version": 1}, state))
    with pytest.raises(ModelFormatError, match="version 99"):
        load_model(
            rewrite("v99.npz", {"format": "snnfast.ann", "version": 99, "arch": "4-8-10"}, state)
        )
    with pytest.raises(ModelFormatError, match="architecture"):
        load_model(
            rewrite("arch.npz", {"format": "snnfast.ann", "version": 1, "arch": "10"}, state)
        )
    # Header says one architecture, arrays belong to another.
    with pytest.raises(ModelFormatError, match=r"mixed.npz.*conv1.weight"):
        load_model(
            rewrite("mixed.npz", {"format": "snnfast.ann", "version": 1, "arch": "8-16-10"}, state)
        )
    # A pickled object array is refused, not unpickled.
    p = tmp_path / "pickle.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(p, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, zin.read(item))
        obj = np.array([{"a": 1}], dtype=object)
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=True)
        zout.writestr("evil.npy", buf.getvalue())
    with pytest.raises(ModelFormatError, match="pickle.npz"):
        load_model(p)


@pytest.mark.skipif(not ann.SHIPPED_MODEL.is_file(), reason="shipped model not built yet")
def test_shipped_model() -> None:
    from snnfast.data import data_root, load_fashion_mnist

    arch, state, meta = load_model()
    assert arch.spec == "32-64-10" and arch.embedding_dim == 1024
    assert meta["test_accuracy"] >= 0.91
    assert {"lr", "epochs", "seed", "batch_size", "dropout"} <= set(meta["recipe"])
    if not (data_root() / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed")
    x, y = load_fashion_mnist("test", limit=500)
    assert float((ann.predict(arch, state, x) == y).mean()) >= 0.87


@pytest.mark.slow
@pytest.mark.skipif(not ann.SHIPPED_MODEL.is_file(), reason="shipped model not built yet")
def test_shipped_model_full_test_accuracy() -> None:
    from snnfast.data import load_fashion_mnist

    arch, state, meta = load_model()
    x, y = load_fashion_mnist("test")
    acc = float((ann.predict(arch, state, x) == y).mean())
    assert acc == pytest.approx(meta["test_accuracy"], abs=2e-4)
