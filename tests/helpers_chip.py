"""Brute-force geometry shared by the chip and energy tests, written independently of
snnfast.chip: explicit synapse lists per group (by direct loops over PyTorch's geometry), the
core of every neuron, per-core resources and per-step counts."""

from __future__ import annotations

import numpy as np

from snnfast import Network

KINDS = {"conv": 0, "pool": 1, "dense": 2}


def shape3(s):
    return tuple(s) if len(s) == 3 else (s[0], 1, 1)


def group_synapses(net: Network, l: int) -> list[tuple[int, str, np.ndarray, np.ndarray]]:
    """Per group of layer ``l``: ``(source, kind, pre, post)`` flat C, H, W indices of every
    synapse, from loops over the kernel (padding positions have none)."""
    out = []
    spiking = net.layers[l - 1].as_spiking_layer()
    co, ho, wo = shape3(net.shapes[l])
    for g, _syn in zip(net.synapse_groups(l), spiking.groups):
        ci, hi, wi = shape3(g.source_shape)
        pre, post = [], []
        c0, c1 = g.channels
        if g.kind == "dense":
            for i in range(ci * hi * wi):
                for o in range(c0, c1):
                    pre.append(i)
                    post.append(o)
        else:
            (kh, kw), (sh, sw), (top, _, left, _) = g.kernel, g.stride, g.padding
            if g.kind == "conv":
                ipg, opg = ci // g.groups, (c1 - c0) // g.groups
            for o in range(c0, c1):
                srcs = (
                    [o - c0]
                    if g.kind == "pool"
                    else [((o - c0) // opg) * ipg + k for k in range(ipg)]
                )
                for y in range(ho):
                    for x in range(wo):
                        for dy in range(kh):
                            for dx in range(kw):
                                r, c = y * sh - top + dy, x * sw - left + dx
                                if 0 <= r < hi and 0 <= c < wi:
                                    for a in srcs:
                                        pre.append((a * hi + r) * wi + c)
                                        post.append((o * ho + y) * wo + x)
        out.append((g.source, g.kind, np.array(pre, dtype=np.int64), np.array(post, np.int64)))
    return out


def core_of(lm) -> np.ndarray:
    """Global core of every neuron of a LayerMap (flat C, H, W), from its block and grid."""
    c, h, w = shape3(lm.shape)
    bc, bh, bw = lm.block
    _, ni, nx = lm.grid
    cc, hh, ww = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((cc // bc * ni + hh // bh) * nx + ww // bw).reshape(-1) + lm.first_core


def fan(net: Network, m) -> list[dict[int, dict[int, np.ndarray]]]:
    """Per source layer, per neuron: ``{destination core: synapses by kind [3]}``."""
    cores = [core_of(lm) for lm in m.layers]
    out: list[dict[int, dict[int, np.ndarray]]] = [dict() for _ in m.layers]
    for l in range(1, len(m.layers)):
        for src, kind, pre, post in group_synapses(net, l):
            for a, b in zip(pre.tolist(), post.tolist()):
                d = out[src].setdefault(a, {}).setdefault(int(cores[l][b]), np.zeros(3, int))
                d[KINDS[kind]] += 1
    return out


def brute_resources(net: Network, m, chip) -> dict[str, np.ndarray]:
    """Every core's resources, counted synapse by synapse."""
    n = m.n_cores
    kinds = ("neurons", "compartments", "input_axons", "output_axons", "synapses", "synapse_bits")
    r = {k: np.zeros(n, np.int64) for k in kinds}
    cores = [core_of(lm) for lm in m.layers]
    comp = [lm.compartments for lm in m.layers]
    wbits = np.zeros(n, np.int64)
    for lm, cs in zip(m.layers, cores):
        np.add.at(r["neurons"], cs, 1)
        np.add.at(r["compartments"], cs, lm.compartments)
        wbits[cs] = np.maximum(wbits[cs], lm.weight_bits)
    idx = np.maximum(chip.min_index_bits, [int(x - 1).bit_length() for x in r["compartments"]])
    bits = idx + wbits
    table = fan(net, m)
    for l in range(len(m.layers)):
        reset = comp[l] > 1
        for i in range(len(cores[l])):
            own = int(cores[l][i])
            dests = table[l].get(i, {})
            r["output_axons"][own] += len(dests) + reset
            for d, syn in dests.items():
                r["input_axons"][d] += 1
                r["synapses"][d] += syn.sum()
                r["synapse_bits"][d] += int(chip.entry_bits(int(syn.sum()), int(bits[d])))
            if reset:
                r["input_axons"][own] += 1
                r["synapses"][own] += 1
                r["synapse_bits"][own] += int(chip.entry_bits(1, int(bits[own])))
    return r


def step_spikes(net: Network, images: np.ndarray, t: int, **kw) -> list[np.ndarray]:
    """Per layer, the spikes of every step: int ``[N, T, neurons]`` (from checkpoint runs)."""
    runs = net.run_checkpoints(images, list(range(1, t + 1)), **kw)
    out = []
    for l in range(net.n_layers + 1):
        cum = np.stack([r.spike_counts[l].reshape(len(images), -1) for r in runs], axis=1)
        out.append(np.diff(cum, axis=1, prepend=0))
    return out


def brute_trace(net: Network, m, images: np.ndarray, t: int, **kw) -> np.ndarray:
    """Every step's per-core counts ``[N, T, cores, 11]`` (the order of snnfast.chip.COUNTERS),
    from per-step spikes and the explicit synapse lists."""
    spikes = step_spikes(net, images, t, **kw)
    cores = [core_of(lm) for lm in m.layers]
    tiles = m.tiles
    table = fan(net, m)
    n = len(images)
    out = np.zeros((n, t, m.n_cores, 11), np.int64)
    for l, lm in enumerate(m.layers):
        reset = int(lm.compartments > 1)
        for img in range(n):
            for step in range(t):
                for i in np.nonzero(spikes[l][img, step])[0]:
                    own = int(cores[l][i])
                    row = out[img, step]
                    row[own, 2] += 1
                    row[own, 1] += lm.compartments
                    for d, syn in table[l].get(int(i), {}).items():
                        row[own, 3] += 1
                        row[d, 4] += 1
                        row[d, 5:8] += syn
                        row[own, 9] += abs(int(tiles[own, 0]) - int(tiles[d, 0]))
                        row[own, 10] += abs(int(tiles[own, 1]) - int(tiles[d, 1]))
                    row[own, 3] += reset
                    row[own, 4] += reset
                    row[own, 8] += reset
    comp = np.zeros(m.n_cores, np.int64)
    for lm, cs in zip(m.layers, cores):
        np.add.at(comp, cs, lm.compartments)
    out[:, :, :, 0] = comp
    return out
