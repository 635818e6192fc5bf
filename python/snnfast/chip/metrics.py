"""NeuroBench-style metrics of a counted run (:class:`NeuroBenchMetrics`, :func:`neurobench`).

The names follow NeuroBench (``neurobench.metrics``; Yik et al., *The NeuroBench framework
for benchmarking neuromorphic computing algorithms and systems*, Nature Communications 2025),
the counts are the engine's and the chip model's exact ones, per inference (mean over images):

* ``synaptic_operations``: synaptic events, one per spike per synapse it reaches (NeuroBench's
  SynOps of a spiking network: accumulates); reset synapses of the chip are not counted;
* ``effective_acs``: those on synapses whose weight is not zero (NeuroBench ``Effective_ACs``
  counts binary inputs times binary weights);
* ``dense_synops``: every synapse every step, as if every neuron spiked each step (NeuroBench
  ``Dense``);
* ``activation_sparsity`` / ``activation_sparsity_by_layer``: ``1 - spikes / (neurons x
  steps)``, over the spiking layers (the input encoding layer is listed first in the per-layer
  list and left out of the total);
* ``membrane_updates``: every neuron's potential is updated every step (the engine's and
  Loihi's rule); NeuroBench's harness counts only the updates that change a potential, so this
  is an upper bound of its figure;
* ``parameter_count``: weights (a convolution's kernel once, a pooling group's one shared weight)
  and biases; ``footprint_bytes``: those as snnfast stores them (int16 weights, int32 biases,
  NeuroBench's parameters x element size); ``chip_footprint_bytes``: the synapse memory the
  chip stores them in (every synapse, with its index and entry headers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._records import Record
from ..layers import ConvSynapses, DenseSynapses, PoolSynapses
from ..network import Network
from .counting import ChipRun

__all__ = ["NeuroBenchMetrics", "neurobench", "nonzero_fan_out", "parameter_count"]


@dataclass(frozen=True)
class NeuroBenchMetrics(Record):
    """NeuroBench-style metrics per inference (see the module docstring).

    Attributes:
        synaptic_operations, effective_acs, dense_synops: synaptic events per inference.
        activation_sparsity: over the spiking layers; activation_sparsity_by_layer: input
            first.
        membrane_updates: neuron updates per inference.
        parameter_count, footprint_bytes, chip_footprint_bytes: the network's size.
        effective_acs is ``None`` when a layer's spike counts were not recorded.
    """

    synaptic_operations: float
    effective_acs: float | None
    dense_synops: float
    activation_sparsity: float
    activation_sparsity_by_layer: list[float]
    membrane_updates: float
    parameter_count: int
    footprint_bytes: int
    chip_footprint_bytes: int


def _valid(d_pre: int, d_post: int, kernel: int, stride: int, before: int) -> np.ndarray:
    """``V[r, k]``: input ``r`` reaches some output through kernel offset ``k``."""
    pos = np.arange(d_pre)[:, None] + before - np.arange(kernel)[None, :]
    return (pos >= 0) & (pos % stride == 0) & (pos // stride < d_post)


def nonzero_fan_out(net: Network, layer: int, group: int) -> np.ndarray:
    """Synapses with a non-zero weight from each neuron of the source of group ``group`` of
    ``layer``: int64, shaped like the source layer's neurons."""
    geo = net.synapse_groups(layer)[group]
    syn = net.layers[layer - 1].as_spiking_layer().groups[group]
    shape = geo.source_shape
    if isinstance(syn, PoolSynapses):
        return net.group_fan_out(layer, group) * int(syn.weight != 0)
    nz = np.asarray(syn.weight) != 0
    if isinstance(syn, DenseSynapses):
        return nz.sum(axis=0).astype(np.int64).reshape(shape)
    assert isinstance(syn, ConvSynapses)
    c_src, h_src, w_src = shape
    out_shape = net.shapes[layer]
    o, ipg, kh, kw = nz.shape
    opg = o // geo.groups
    # Non-zero weights of each input channel at each kernel offset, over its group's outputs.
    per = np.zeros((c_src, kh, kw), dtype=np.int64)
    for cs in range(c_src):
        g = cs // ipg
        per[cs] = nz[g * opg : (g + 1) * opg, cs % ipg].sum(axis=0)
    (top, _, left, _), (sh, sw) = geo.padding, geo.stride
    vy = _valid(h_src, out_shape[1], kh, sh, top).astype(np.int64)
    vx = _valid(w_src, out_shape[2], kw, sw, left).astype(np.int64)
    return np.einsum("ckl,yk,xl->cyx", per, vy, vx)


def parameter_count(net: Network) -> tuple[int, int]:
    """``(parameters, bytes as snnfast stores them)`` of ``net``."""
    count = size = 0
    for layer in net.layers:
        spiking = layer.as_spiking_layer()
        if spiking.bias is not None:
            count += spiking.bias.size
            size += spiking.bias.size * 4
        for g in spiking.groups:
            n = 1 if isinstance(g, PoolSynapses) else int(np.asarray(g.weight).size)
            count += n
            size += 2 * n
    return count, size


def neurobench(run: ChipRun) -> NeuroBenchMetrics:
    """The metrics of a counted run (means over its images)."""
    mapping = run.mapping
    net = mapping.network
    assert net is not None
    res = run.result
    steps = res.steps.astype(np.float64)
    synops = sum(run.counter(k).sum(axis=1) for k in ("synops_conv", "synops_pool", "synops_dense"))
    spikes = run.per_layer("spikes").astype(np.float64)
    sizes = np.array(net.sizes, dtype=np.float64)
    by_layer = 1.0 - spikes.mean(axis=0) / (sizes * steps.mean())
    hidden = 1.0 - spikes[:, 1:].sum(axis=1) / (sizes[1:].sum() * steps)
    effective: float | None = 0.0
    for l in range(1, net.n_layers + 1):
        for g, geo in enumerate(net.synapse_groups(l)):
            counts = res.spike_counts[geo.source]
            if counts is None:
                effective = None
                break
            if effective is not None:
                fan = nonzero_fan_out(net, l, g).reshape(-1).astype(np.float64)
                flat = counts.reshape(counts.shape[0], -1).astype(np.float64)
                effective += float((flat @ fan).mean())
    dense = float(sum(net.synapse_counts()) * steps.mean())
    params, size = parameter_count(net)
    return NeuroBenchMetrics(
        synaptic_operations=float(np.mean(synops)),
        effective_acs=effective,
        dense_synops=dense,
        activation_sparsity=float(hidden.mean()),
        activation_sparsity_by_layer=[float(x) for x in by_layer],
        membrane_updates=float((sizes.sum() * steps).mean()),
        parameter_count=params,
        footprint_bytes=size,
        chip_footprint_bytes=int(mapping.usage("synapse_bits").sum()) // 8,
    )
