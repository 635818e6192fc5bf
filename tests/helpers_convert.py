"""Small models and data shared by the conversion, embedding and retrieval tests."""

from __future__ import annotations

import functools

import numpy as np

from snnfast.ann import Architecture
from snnfast.data import load_fashion_mnist


def random_state(arch: Architecture, seed: int = 0, scale: float = 0.2) -> dict[str, np.ndarray]:
    """Random float32 parameters for ``arch`` (normal, std ``scale``)."""
    rng = np.random.default_rng(seed)
    return {
        k: (rng.standard_normal(s) * scale).astype(np.float32)
        for k, s in arch.state_shapes().items()
    }


@functools.cache
def fashion(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` Fashion-MNIST images of ``split`` (read-only arrays)."""
    x, y = load_fashion_mnist(split, limit=n)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
