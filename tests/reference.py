"""A plain NumPy reference of the integer neuron of docs/neuron.md, written from the rules alone.

It builds every layer's full weight matrix (C, H, W flattening) and steps all neurons with
int64 arithmetic. Slow and obvious on purpose: the Rust engine must match it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

import snnfast

V_MIN = -(2**23)
V_MAX = 2**23 - 1


def dense_matrices(net: snnfast.Network) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer: (weights [n_out, n_in], synapse-exists mask [n_out, n_in], bias per neuron)."""
    out = []
    shapes = net.shapes
    for l, layer in enumerate(net.layers, start=1):
        src, dst = shapes[l - 1], shapes[l]
        n_in, n_out = int(np.prod(src)), int(np.prod(dst))
        w = np.zeros((n_out, n_in), dtype=np.int64)
        m = np.zeros((n_out, n_in), dtype=bool)
        if isinstance(layer, snnfast.Conv2d):
            o_ch, i_ch, k, _ = layer.weight.shape
            _, h, wd = src
            _, oh, ow = dst
            for o in range(o_ch):
                for oy in range(oh):
                    for ox in range(ow):
                        row = (o * oh + oy) * ow + ox
                        for c in range(i_ch):
                            for ky in range(k):
                                for kx in range(k):
                                    iy = oy * layer.stride + ky - layer.padding
                                    ix = ox * layer.stride + kx - layer.padding
                                    if 0 <= iy < h and 0 <= ix < wd:
                                        col = (c * h + iy) * wd + ix
                                        w[row, col] = layer.weight[o, c, ky, kx]
                                        m[row, col] = True
            bias = np.repeat(layer.bias.astype(np.int64), oh * ow)
        elif isinstance(layer, snnfast.AvgPool2d):
            c_n, h, wd = src
            _, oh, ow = dst
            k = layer.kernel
            for c in range(c_n):
                for oy in range(oh):
                    for ox in range(ow):
                        row = (c * oh + oy) * ow + ox
                        for ky in range(k):
                            for kx in range(k):
                                col = (c * h + oy * k + ky) * wd + ox * k + kx
                                w[row, col] = layer.weight
                                m[row, col] = True
            bias = np.zeros(n_out, dtype=np.int64)
        else:
            w[:] = layer.weight
            m[:] = True
            bias = layer.bias.astype(np.int64)
        out.append((w, m, bias))
    return out


def leak(v: np.ndarray, dv: int) -> np.ndarray:
    """v − sign(v)·((|v|·dv) >> 12)."""
    return v - np.sign(v) * ((np.abs(v) * dv) >> 12)


def decision(counts: np.ndarray, v: np.ndarray) -> int | None:
    """Most output spikes; ties to the higher potential, then the lower index; None if none."""
    if counts.max() == 0:
        return None
    best = max(range(len(counts)), key=lambda i: (counts[i], v[i], -i))
    return int(best)


def simulate(
    net: snnfast.Network,
    images: np.ndarray,
    timesteps: int,
    delay: int = 0,
    v_init: float = 0.0,
    early_exit: int | None = None,
) -> dict[str, list]:
    """Run one batch; returns spike_counts, membrane (per layer, [N, *shape]), synops, steps."""
    mats = dense_matrices(net)
    n = images.shape[0]
    thresholds = net.thresholds
    leaks = [0] + [layer.leak for layer in net.layers]
    sizes = net.sizes
    counts_out = [np.zeros((n, s), dtype=np.int64) for s in sizes]
    mem_out = [np.zeros((n, s), dtype=np.int64) for s in sizes]
    synops = np.zeros((n, len(sizes)), dtype=np.int64)
    steps = np.full(n, timesteps, dtype=np.int64)
    for i in range(n):
        pixels = images[i].reshape(-1).astype(np.int64)
        v = [
            np.full(s, math.floor(v_init * th), dtype=np.int64) for s, th in zip(sizes, thresholds)
        ]
        prev = [np.zeros(s, dtype=np.int64) for s in sizes]  # s(t − 1), s(0) = 0
        last, stable = None, 0
        for t in range(timesteps):
            cur = []
            for l in range(len(sizes)):
                if l == 0:
                    z = pixels
                else:
                    w, m, b = mats[l - 1]
                    s_in = cur[l - 1] if delay == 0 else prev[l - 1]
                    z = b + w @ s_in
                    synops[i, l] += int(m.sum(axis=0) @ s_in)
                vv = leak(v[l], leaks[l])
                vv = np.clip(vv + z, V_MIN, V_MAX)
                s = (vv >= thresholds[l]).astype(np.int64)
                v[l] = vv - thresholds[l] * s
                counts_out[l][i] += s
                cur.append(s)
            prev = cur
            if early_exit is not None:
                now = decision(counts_out[-1][i], v[-1])
                stable = 0 if now is None else (stable + 1 if now == last else 1)
                last = now
                if stable >= early_exit:
                    steps[i] = t + 1
                    break
        for l in range(len(sizes)):
            mem_out[l][i] = v[l]
    shapes = net.shapes
    return {
        "spike_counts": [c.reshape((n, *sh)) for c, sh in zip(counts_out, shapes)],
        "membrane": [c.reshape((n, *sh)) for c, sh in zip(mem_out, shapes)],
        "synops": synops,
        "steps": steps,
    }
