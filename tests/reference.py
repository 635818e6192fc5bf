"""A plain NumPy reference of the integer neuron of docs/neuron.md, written from the rules alone.

It builds, for every synapse group, the full weight matrix from its source layer to its layer
(C, H, W flattening, PyTorch's geometry) and steps all neurons with int64 arithmetic. It reads
the layer objects' fields itself (it does not use snnfast's own normalisation or the engine's
geometry). Slow and obvious on purpose: the Rust engine must match it bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import snnfast

V_MIN = -(2**23)
V_MAX = 2**23 - 1


@dataclass
class Group:
    """One synapse group in plain terms."""

    kind: str  # "conv", "pool" or "dense"
    source: int | None
    offset: int
    weight: np.ndarray | int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    groups: int = 1


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    a, b = v
    return (int(a), int(b))


def _pad4(v) -> tuple[int, int, int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 4
    v = [int(x) for x in v]
    if len(v) == 2:
        return (v[0], v[0], v[1], v[1])
    return (v[0], v[1], v[2], v[3])


def _conv(w, source, offset, stride, padding, groups) -> Group:
    w = np.asarray(w)
    k = (w.shape[2], w.shape[3])
    return Group("conv", source, offset, w, k, _pair(stride), _pad4(padding), groups)


def _pool(kernel, weight, stride, padding, source, offset) -> Group:
    k = _pair(kernel)
    s = k if stride is None else _pair(stride)
    return Group("pool", source, offset, int(weight), k, s, _pad4(padding))


def groups_of(layer) -> list[Group]:
    """A layer's synapse groups, read from its fields."""
    if isinstance(layer, snnfast.Conv2d):
        return [_conv(layer.weight, layer.source, 0, layer.stride, layer.padding, layer.groups)]
    if isinstance(layer, snnfast.AvgPool2d):
        return [_pool(layer.kernel, layer.weight, layer.stride, layer.padding, layer.source, 0)]
    if isinstance(layer, snnfast.Dense):
        return [Group("dense", layer.source, 0, np.asarray(layer.weight))]
    syn = layer.synapses
    out = []
    for g in [syn] if not isinstance(syn, (list, tuple)) else syn:
        if isinstance(g, snnfast.ConvSynapses):
            out.append(_conv(g.weight, g.source, g.channel_offset, g.stride, g.padding, g.groups))
        elif isinstance(g, snnfast.PoolSynapses):
            out.append(_pool(g.kernel, g.weight, g.stride, g.padding, g.source, g.channel_offset))
        else:
            out.append(Group("dense", g.source, g.channel_offset, np.asarray(g.weight)))
    return out


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], 1, 1) if len(shape) == 1 else (shape[0], shape[1], shape[2])


def group_matrix(g: Group, src: tuple[int, ...], dst: tuple[int, ...]):
    """(weights [n_dst, n_src], synapse-exists mask) of one group from a layer shaped ``src``
    into a layer shaped ``dst`` (both C, H, W or (O,))."""
    ci, h, wd = _chw(src)
    co, oh, ow = _chw(dst)
    n_in, n_out = ci * h * wd, co * oh * ow
    w = np.zeros((n_out, n_in), dtype=np.int64)
    m = np.zeros((n_out, n_in), dtype=bool)
    (kh, kw), (sh, sw), (pt, _, pl, _) = g.kernel, g.stride, g.padding
    if g.kind == "dense":
        o = g.weight.shape[0]
        w[g.offset : g.offset + o] = g.weight
        m[g.offset : g.offset + o] = True
        return w, m
    if g.kind == "conv":
        o_n = g.weight.shape[0]
        opg, ipg = o_n // g.groups, ci // g.groups
        pairs = [
            (g.offset + o, (o // opg) * ipg + c, g.weight[o, c])
            for o in range(o_n)
            for c in range(ipg)
        ]
    else:
        pairs = [(g.offset + c, c, np.full((kh, kw), g.weight)) for c in range(ci)]
    for oc, c, kernel in pairs:
        for oy in range(oh):
            for ox in range(ow):
                row = (oc * oh + oy) * ow + ox
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh + ky - pt, ox * sw + kx - pl
                        if 0 <= iy < h and 0 <= ix < wd:
                            col = (c * h + iy) * wd + ix
                            w[row, col] = kernel[ky, kx]
                            m[row, col] = True
    return w, m


def group_out(g: Group, src: tuple[int, ...]) -> tuple[int, int, int, bool]:
    """(channels, H, W, flat) that group ``g`` makes from a source shaped ``src``."""
    ci, h, wd = _chw(src)
    if g.kind == "dense":
        return (g.weight.shape[0], 1, 1, True)
    (kh, kw), (sh, sw), (pt, pb, pl, pr) = g.kernel, g.stride, g.padding
    c = g.weight.shape[0] if g.kind == "conv" else ci
    return (c, (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1, False)


def layer_shapes(net: snnfast.Network) -> list[tuple[int, ...]]:
    """Every layer's shape, input first, computed here from the groups."""
    shapes: list[tuple[int, ...]] = [tuple(net.input_shape)]
    for l, layer in enumerate(net.layers, start=1):
        outs = []
        for g in groups_of(layer):
            src = shapes[l - 1 if g.source is None else g.source]
            c, h, w, flat = group_out(g, src)
            outs.append((g.offset + c, h, w, flat))
        channels = max(o[0] for o in outs)
        shapes.append((channels,) if outs[0][3] else (channels, outs[0][1], outs[0][2]))
    return shapes


def matrices(net: snnfast.Network):
    """Per layer: ([(source, weights, mask) per group], bias per neuron, C, H, W order)."""
    shapes = layer_shapes(net)
    assert shapes == net.shapes, (shapes, net.shapes)
    out = []
    for l, layer in enumerate(net.layers, start=1):
        mats = []
        for g in groups_of(layer):
            src = l - 1 if g.source is None else g.source
            mats.append((src, *group_matrix(g, shapes[src], shapes[l])))
        c, h, w = _chw(shapes[l])
        bias = getattr(layer, "bias", None)
        b = np.zeros(c, np.int64) if bias is None else np.asarray(bias, np.int64)
        # One bias per channel ([C]) or per neuron (the layer's shape, C, H, W order).
        out.append((mats, b.reshape(-1) if b.size == c * h * w else np.repeat(b, h * w)))
    return out


def leak(v: np.ndarray, dv: int) -> np.ndarray:
    """v − sign(v)·((|v|·dv) >> 12): the decay of the potential (dv) and of the current (du)."""
    return v - np.sign(v) * ((np.abs(v) * dv) >> 12)


NO_CURRENT = 4096  # du of a neuron without current memory


def neuron_step(v, u, syn, bias, threshold, dv, du, reset):
    """One step of docs/neuron.md's neuron for whole arrays; returns (v, u, spikes)."""
    if du == NO_CURRENT:
        current = syn  # no current register: the input goes straight to v
    else:
        u = np.clip(leak(u, du) + syn, V_MIN, V_MAX)
        current = u
    x = np.clip(leak(v, dv) + current + bias, V_MIN, V_MAX)
    s = (x >= threshold).astype(np.int64)
    v = np.where(s == 1, 0, x) if reset == "zero" else x - threshold * s
    return v, u, s


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
    mats = matrices(net)
    n = images.shape[0]
    thresholds = net.thresholds
    leaks = [0] + [layer.leak for layer in net.layers]
    dus = [NO_CURRENT] + [layer.du for layer in net.layers]
    resets = ["subtract"] + [layer.reset for layer in net.layers]
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
        u = [np.zeros(s, dtype=np.int64) for s in sizes]  # synaptic currents
        prev = [np.zeros(s, dtype=np.int64) for s in sizes]  # s(t − 1), s(0) = 0
        last, stable = None, 0
        for t in range(timesteps):
            cur: list[np.ndarray] = []
            for l in range(len(sizes)):
                syn = np.zeros(sizes[l], dtype=np.int64)
                if l == 0:
                    b = pixels
                else:
                    groups, b = mats[l - 1]
                    for src, w, m in groups:
                        s_in = cur[src] if delay == 0 else prev[src]
                        syn = syn + w @ s_in
                        synops[i, l] += int(m.sum(axis=0) @ s_in)
                v[l], u[l], s = neuron_step(
                    v[l], u[l], syn, b, thresholds[l], leaks[l], dus[l], resets[l]
                )
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


def synapses_per_source(net: snnfast.Network, layer: int, group: int) -> np.ndarray:
    """The reference's synapse count of each presynaptic neuron of one group."""
    src, _, m = matrices(net)[layer - 1][0][group]
    return m.sum(axis=0).reshape(net.shapes[src])
