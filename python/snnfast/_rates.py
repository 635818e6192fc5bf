"""The rate-based pass of Algorithm 1 on the calibration images, in blocks of images.

For each planned layer, ``dvdt = ReLU(sum over its synapse groups of W_int * rate_source +
b_int)`` and ``rate = min(dvdt / threshold, 1)``, in float64, computed the way the first
version of the converter computed them (so the thresholds are the same integers): convolutions
by im2col in blocks of 250 images, the paper's 2x2 pooling as window sums in C, H, W order.
A layer's rates are kept for every image while they fit the budget, else recomputed per block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import _checks
from ._plan import Group, Plan
from .graph import avg_pool, conv

__all__ = ["BLOCK", "QGroup", "Rates"]

BLOCK = 250
"""Images per block (bounds the im2col buffers)."""
CACHE_MAX = 1 << 30
"""Most bytes of rates kept for all calibration images."""


@dataclass(frozen=True, eq=False)
class QGroup:
    """A synapse group with its integer weights (int64; a pool group's is 0-d)."""

    group: Group
    weight: np.ndarray


class Rates:
    """Rates and ``dvdt`` of the planned layers on the calibration images, block by block."""

    def __init__(self, images: np.ndarray, layout: Plan, w_max: int) -> None:
        self.images = images
        self.w_max_in = w_max
        self.n = int(images.shape[0])
        self.shapes = layout.shapes
        self.layers: dict[int, tuple[tuple[QGroup, ...], np.ndarray]] = {}
        self.theta: dict[int, int] = {}
        self.cache: dict[int, np.ndarray] = {}
        self.budget = min(_checks.memory_limit() // 4, CACHE_MAX)

    def count(self, layer: int) -> int:
        return self.n * math.prod(self.shapes[layer])

    def _starts(self) -> range:
        return range(0, self.n, BLOCK)

    def input_dvdt_blocks(self) -> Iterator[np.ndarray]:
        for s in self._starts():
            yield self.images[s : s + BLOCK].astype(np.float64) * (self.w_max_in / 255.0)

    def set_input(self, theta: int) -> None:
        self.theta[0] = theta
        self._maybe_cache(0)

    def add_layer(self, layer: int, groups: tuple[QGroup, ...], bias: np.ndarray) -> None:
        self.layers[layer] = (groups, bias)

    def set_threshold(self, layer: int, theta: int) -> None:
        self.theta[layer] = theta
        self._maybe_cache(layer)

    def _maybe_cache(self, layer: int) -> None:
        need = self.count(layer) * 8
        used = sum(a.nbytes for a in self.cache.values())
        if used + need > self.budget:
            return
        parts = [self.rates(layer, s, {}) for s in self._starts()]
        self.cache[layer] = np.concatenate(parts, axis=0)

    def dvdt_blocks(self, layer: int) -> Iterator[np.ndarray]:
        for s in self._starts():
            yield self.dvdt(layer, s, {}).reshape(-1)

    def rates(self, layer: int, start: int, memo: dict[int, np.ndarray]) -> np.ndarray:
        """Rates of ``layer`` for the block at ``start`` (NHWC, or ``[n, O]``), float64."""
        if layer in self.cache:
            return self.cache[layer][start : start + BLOCK]
        if layer in memo:
            return memo[layer]
        if layer == 0:
            x = self.images[start : start + BLOCK].astype(np.float64) * (self.w_max_in / 255.0)
            r = np.minimum(x / self.theta[0], 1.0).transpose(0, 2, 3, 1)
        else:
            r = np.minimum(self.dvdt(layer, start, memo) / self.theta[layer], 1.0)
        memo[layer] = r
        return r

    def dvdt(self, layer: int, start: int, memo: dict[int, np.ndarray]) -> np.ndarray:
        """``ReLU(sum of the groups' input + bias)`` of ``layer`` for one block, float64."""
        groups, bias = self.layers[layer]
        shape = self.shapes[layer]
        total: np.ndarray | None = None
        single = len(groups) == 1 and bias.ndim == 1
        for qg in groups:
            g = qg.group
            src = self.rates(g.source, start, memo)
            w = qg.weight.astype(np.float64)
            if g.kind == "conv":
                part = conv(
                    src,
                    w,
                    bias.astype(np.float64) if single else None,
                    g.stride,
                    g.padding,
                    g.groups,
                )
            elif g.kind == "pool":
                part = _pool(src, float(w), g)
            else:
                flat = np.ascontiguousarray(src.transpose(0, 3, 1, 2)) if src.ndim == 4 else src
                part = flat.reshape(flat.shape[0], -1) @ w.T
                if single:
                    part = part + bias
            if g.offset or (len(shape) == 3 and part.shape[-1] != shape[0]):
                full = np.zeros((part.shape[0], *_nhwc(shape)))
                full[..., g.offset : g.offset + part.shape[-1]] = part
                part = full
            total = part if total is None else total + part
        assert total is not None
        if not single and bias.size:
            b = bias.astype(np.float64)
            total = total + (b.transpose(1, 2, 0) if b.ndim == 3 else b)
        return np.maximum(total, 0.0, out=total) if single else np.maximum(total, 0.0)


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def _pool(src: np.ndarray, weight: float, g: Group) -> np.ndarray:
    """``weight * (window sum)`` of an NHWC rate block (in NCHW for the paper's 2x2 pooling, as
    the first version computed it, so the thresholds stay the same integers)."""
    (kh, kw), (sh, sw) = g.kernel, g.stride
    if (kh, kw) == (sh, sw) and not any(g.padding):
        x = src.transpose(0, 3, 1, 2)
        n, c, h, w = x.shape
        ho, wo = h // kh, w // kw
        windows = x[:, :, : ho * kh, : wo * kw].reshape(n, c, ho, kh, wo, kw)
        return np.ascontiguousarray((weight * windows.sum(axis=(3, 5))).transpose(0, 2, 3, 1))
    return weight * avg_pool(src, g.kernel, g.stride, g.padding) * (kh * kw)
