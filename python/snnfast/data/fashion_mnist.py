"""Fashion-MNIST from its four IDX ``.gz`` files, read and checked without downloading anything.

The files are looked for in ``root``, else in the directory named by the ``SNNFAST_DATA``
environment variable, else in ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package
``dataset-fashion-mnist``). IDX format (LeCun et al.): a big-endian 32-bit magic number
``0x00000800 | ndim`` with type byte ``0x08`` (unsigned byte), ``ndim`` big-endian 32-bit sizes,
then the data, row-major.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_ROOT",
    "ENV_VAR",
    "INSTALL_HINT",
    "data_root",
    "load_fashion_mnist",
    "train_val_split",
]

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST class names, indexed by label."""

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "SNNFAST_DATA"
INSTALL_HINT = (
    f"install it with `apt-get install -y dataset-fashion-mnist`, or set {ENV_VAR} to a "
    "directory holding the four Fashion-MNIST IDX .gz files"
)

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_SIZES = {"train": 60_000, "test": 10_000}
_IMAGE_HW = (28, 28)
_UBYTE = 0x08


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The directory the data set is read from: ``root``, else ``$SNNFAST_DATA``, else the
    system package's directory."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions."""
    if not path.is_file():
        raise DataError(f"Fashion-MNIST file {path} is missing; {INSTALL_HINT}")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a readable gzip file (truncated or corrupt): {exc}"
        ) from exc
    head = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, shorter than its IDX header")
    magic = int.from_bytes(raw[:4], "big")
    expected = (_UBYTE << 8) | ndim
    if magic != expected:
        raise DataError(
            f"{path} has IDX magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim} dimension(s))"
        )
    if len(raw) < head:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, shorter than its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - head != size:
        raise DataError(
            f"{path} holds {len(raw) - head} data bytes but its header {dims} needs {size} "
            f"({'truncated' if len(raw) - head < size else 'trailing garbage'})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)


def load_fashion_mnist(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of Fashion-MNIST.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: directory of the IDX ``.gz`` files (default: see :func:`data_root`).
        limit: return only the first ``limit`` images (the whole file is still checked).

    Returns:
        ``(images, labels)``: uint8 ``[N, 1, 28, 28]`` and int64 ``[N]`` in ``0..9``.

    Raises:
        DataError: a file is missing, truncated or corrupt (wrong magic number, image size or
            label range), or the image and label counts differ; the message names the file.
        ConfigError: unknown ``split`` or a bad ``limit``.
    """
    if split not in _FILES:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
    base = data_root(root)
    img_path, lbl_path = (base / name for name in _FILES[split])
    images = _read_idx(img_path, 3)
    labels = _read_idx(lbl_path, 1)
    if images.shape[1:] != _IMAGE_HW:
        raise DataError(f"{img_path} holds {images.shape[1:]} images, expected {_IMAGE_HW}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{img_path} has {images.shape[0]} images but {lbl_path} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataError(
            f"{lbl_path} has label {int(labels.max())}, outside 0..{len(CLASS_NAMES) - 1}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images[:, None, :, :].copy(), labels.astype(np.int64)


def train_val_split(
    n: int = _SIZES["train"], val_fraction: float = 1 / 12, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded split of ``range(n)`` into training and validation indices.

    ``round(n * val_fraction)`` indices (5,000 of 60,000 by default) go to validation. Both
    index arrays are sorted int64; the same arguments always give the same split.

    Raises:
        ConfigError: ``n < 2``, ``val_fraction`` outside (0, 1), or a side would be empty.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ConfigError(f"train_val_split: n must be an integer >= 2, got {n!r}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(int(n) * float(val_fraction))
    if not 0 < n_val < n:
        raise ConfigError(
            f"train_val_split: {n} items with val_fraction {val_fraction} leave an empty side"
        )
    perm = np.random.default_rng(seed).permutation(int(n))
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
