"""Fashion-MNIST IDX reader and the train/validation split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from snnfast.data import (
    CLASS_NAMES,
    DEFAULT_ROOT,
    data_root,
    load_fashion_mnist,
    train_val_split,
)
from snnfast.errors import ConfigError, DataError

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000_08_ndim, big-endian dims, then the data."""
    magic = (0x08 << 8) | arr.ndim if magic is None else magic
    dims = b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return magic.to_bytes(4, "big") + dims + arr.astype(np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray, magic: int | None = None, cut: int = 0) -> None:
    raw = idx_bytes(arr, magic)
    with gzip.open(path, "wb") as fh:
        fh.write(raw[: len(raw) - cut])


def make_split(root: Path, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write_idx(root / FILES[split][0], images)
    write_idx(root / FILES[split][1], labels)
    return images, labels


def test_reads_valid_files(tmp_path: Path) -> None:
    images, labels = make_split(tmp_path, "test", 7)
    x, y = load_fashion_mnist("test", root=tmp_path)
    assert x.dtype == np.uint8 and x.shape == (7, 1, 28, 28)
    assert y.dtype == np.int64 and y.shape == (7,)
    np.testing.assert_array_equal(x[:, 0], images)
    np.testing.assert_array_equal(y, labels)
    x3, y3 = load_fashion_mnist("test", root=tmp_path, limit=3)
    np.testing.assert_array_equal(x3, x[:3])
    np.testing.assert_array_equal(y3, y[:3])


def test_env_var_selects_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_split(tmp_path, "train", 4, seed=1)
    monkeypatch.setenv("SNNFAST_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert load_fashion_mnist("train")[0].shape == (4, 1, 28, 28)
    monkeypatch.delenv("SNNFAST_DATA")
    assert data_root() == DEFAULT_ROOT


def test_missing_file_names_install_command(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_fashion_mnist("train", root=tmp_path)
    msg = str(err.value)
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "SNNFAST_DATA" in msg and "train-images-idx3-ubyte.gz" in msg


@pytest.mark.parametrize("cut", [1, 500, 28 * 28 * 5 + 8])
def test_truncated_images(tmp_path: Path, cut: int) -> None:
    make_split(tmp_path, "test", 5)
    images = np.zeros((5, 28, 28), np.uint8)
    write_idx(tmp_path / FILES["test"][0], images, cut=cut)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        load_fashion_mnist("test", root=tmp_path)


def test_trailing_garbage(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 3)
    with gzip.open(tmp_path / FILES["test"][1], "wb") as fh:
        fh.write(idx_bytes(np.zeros(3, np.uint8)) + b"\x00")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist("test", root=tmp_path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    path = tmp_path / FILES["test"][0]
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*gzip"):
        load_fashion_mnist("test", root=tmp_path)


def test_not_gzip(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    (tmp_path / FILES["test"][1]).write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist("test", root=tmp_path)


def test_wrong_magic(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    # A label file (1 dimension) where an image file belongs.
    write_idx(tmp_path / FILES["test"][0], np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*magic"):
        load_fashion_mnist("test", root=tmp_path)
    # A signed-int type byte (0x0C) instead of unsigned byte (0x08).
    write_idx(tmp_path / FILES["test"][0], np.zeros((5, 28, 28), np.uint8), magic=0x0C03)
    with pytest.raises(DataError, match="magic"):
        load_fashion_mnist("test", root=tmp_path)


def test_wrong_image_size(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    write_idx(tmp_path / FILES["test"][0], np.zeros((5, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"\(32, 32\)"):
        load_fashion_mnist("test", root=tmp_path)


def test_count_mismatch(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    write_idx(tmp_path / FILES["test"][1], np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images.*4 labels"):
        load_fashion_mnist("test", root=tmp_path)


def test_label_out_of_range(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 5)
    write_idx(tmp_path / FILES["test"][1], np.array([0, 1, 2, 10, 3], np.uint8))
    with pytest.raises(DataError, match="label 10"):
        load_fashion_mnist("test", root=tmp_path)


def test_bad_arguments(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 3)
    with pytest.raises(ConfigError, match="split"):
        load_fashion_mnist("validation", root=tmp_path)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="limit"):
            load_fashion_mnist("test", root=tmp_path, limit=bad)


@pytest.mark.skipif(
    not (data_root() / FILES["test"][0]).is_file(),
    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)",
)
@pytest.mark.parametrize("split", ["train", "test"])
def test_real_package(split: str) -> None:
    x, y = load_fashion_mnist(split, limit=200)
    assert x.shape == (200, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (200,) and y.dtype == np.int64
    assert 0 <= y.min() and y.max() <= 9 and len(np.unique(y)) == 10
    assert x.max() == 255 and x.min() == 0
    # Real clothing images are mostly dark background with a bright object.
    assert 0.2 < float((x == 0).mean()) < 0.8


def test_class_names() -> None:
    assert len(CLASS_NAMES) == 10 == len(set(CLASS_NAMES))
    assert CLASS_NAMES[0] == "T-shirt/top" and CLASS_NAMES[9] == "Ankle boot"


def test_train_val_split_default() -> None:
    tr, va = train_val_split()
    assert len(va) == 5000 and len(tr) == 55000
    assert tr.dtype == np.int64 and va.dtype == np.int64
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(60000))


def test_train_val_split_is_seeded() -> None:
    a = train_val_split(300, seed=3)
    b = train_val_split(300, seed=3)
    c = train_val_split(300, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert len(a[1]) == 25
    tr, va = train_val_split(10, val_fraction=0.3)
    assert len(va) == 3 and len(set(tr) | set(va)) == 10


@pytest.mark.parametrize(("n", "frac"), [(1, 0.5), (10, 0.0), (10, 1.0), (10, 0.01), (True, 0.5)])
def test_train_val_split_rejects(n: int, frac: float) -> None:
    with pytest.raises(ConfigError, match="train_val_split"):
        train_val_split(n, val_fraction=frac)
