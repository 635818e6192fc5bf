"""Brute-force geometry shared by the chip and energy tests, written independently of
snnfast.chip: an explicit synapse matrix per layer and the core of every neuron."""

from __future__ import annotations

import numpy as np

from snnfast import Conv2d, Dense, Network


def shape3(s):
    return s if len(s) == 3 else (s[0], 1, 1)


def adjacency(net: Network, l: int) -> np.ndarray:
    """Bool [pre, post] synapse matrix of layer l, by direct loops over the geometry."""
    layer = net.layers[l - 1]
    (ci, hi, wi), (co, ho, wo) = shape3(net.shapes[l - 1]), shape3(net.shapes[l])
    a = np.zeros((ci, hi, wi, co, ho, wo), dtype=bool)
    if isinstance(layer, Dense):
        a[:] = True
    else:
        if isinstance(layer, Conv2d):
            k, s, p = layer.weight.shape[2], layer.stride, layer.padding
        else:
            k, s, p = layer.kernel, layer.kernel, 0
        for o in range(co):
            for y in range(ho):
                for x in range(wo):
                    for dy in range(k):
                        for dx in range(k):
                            r, c = y * s - p + dy, x * s - p + dx
                            if 0 <= r < hi and 0 <= c < wi:
                                if isinstance(layer, Conv2d):
                                    a[:, r, c, o, y, x] = True
                                else:
                                    a[o, r, c, o, y, x] = True
    return a.reshape(ci * hi * wi, co * ho * wo)


def core_of(lm) -> np.ndarray:
    c, h, w = shape3(lm.shape)
    bc, bh, bw = lm.block
    _, ni, nx = lm.grid
    cc, hh, ww = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((cc // bc * ni + hh // bh) * nx + ww // bw).reshape(-1)
