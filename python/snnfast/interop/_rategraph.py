"""The float graph of an imported NIR network: the rate-coded equivalent of its integer layers.

A NIR graph is a spiking network; there is no ANN behind it. So the
:class:`~snnfast.converted.ConvertedModel` that :func:`snnfast.from_nir` returns carries, as its
``graph``, the network's integrate-and-fire rate model: each layer's node computes

    rate_l = ReLU(sum over groups of W_g * rate_source + b) / theta_l

with the layer's integer weights, bias and threshold (every synapse group as a convolution or
dense node; a pooling group as a convolution of its one weight), and the input node's
``pixel / 255`` times ``255 / input_threshold``. It is the leak-free rate an integrate-and-fire
neuron fires at, before the clip at one spike per step. The ``"ann"`` readout of
:func:`snnfast.embed.embed` reads it: the rate prediction, not a trained ANN. ``slopes`` are the
ratio of the SNN's rate to the graph's value: ``255 / input_threshold`` at the input, 1 after.
"""

from __future__ import annotations

import math

import numpy as np

from ..graph import Add, Conv, Dense, Flatten, Graph, Input, Node, Relu
from ..layers import ConvSynapses, DenseSynapses, PoolSynapses
from ..network import Network
from ._linear import ungroup

__all__ = ["rate_graph"]


def rate_graph(net: Network, names: list[str]) -> tuple[Graph, list[str], list[float]]:
    """The rate graph of ``net`` (module docstring), the node of each layer (input first), and
    the slopes. ``names[l]`` names layer ``l``'s nodes."""
    nodes: list[Node] = [Input("input", net.input_shape)]
    layer_node = ["input"]
    flat_of: dict[int, str] = {}
    scale = [255.0 / net.input_threshold] + [1.0] * net.n_layers
    out_pre = ""
    for l in range(1, net.n_layers + 1):
        sl = net.layers[l - 1].as_spiking_layer()
        geos = net.synapse_groups(l)
        shape = net.shapes[l]
        total = shape[0]
        theta = float(sl.threshold)
        bias = np.zeros(total) if sl.bias is None else np.asarray(sl.bias, dtype=np.float64)
        parts: list[str] = []
        for j, (g, geo) in enumerate(zip(sl.groups, geos)):
            src = geo.source
            k = scale[src] / theta
            start = geo.channels[0]
            b = bias / theta if j == 0 else np.zeros(total)
            name = f"{names[l]}.g{j}"
            if isinstance(g, DenseSynapses):
                src_name = layer_node[src]
                if len(net.shapes[src]) != 1:
                    if src not in flat_of:
                        flat_of[src] = f"{names[src]}.flat"
                        nodes.append(Flatten(flat_of[src], layer_node[src]))
                    src_name = flat_of[src]
                w = np.zeros((total, math.prod(net.shapes[src])))
                w[start : start + g.weight.shape[0]] = np.asarray(g.weight) * k
                nodes.append(Dense(name, src_name, w, b))
            else:
                if isinstance(g, PoolSynapses):
                    c = net.shapes[src][0]
                    full = np.zeros((c, c, *geo.kernel))
                    full[np.arange(c), np.arange(c)] = float(g.weight)
                else:
                    assert isinstance(g, ConvSynapses)
                    full = ungroup(np.asarray(g.weight), geo.groups)
                w = np.zeros((total, *full.shape[1:]))
                w[start : start + full.shape[0]] = full * k
                nodes.append(Conv(name, layer_node[src], w, b, geo.stride, geo.padding))
            parts.append(name)
        pre = parts[0]
        if len(parts) > 1:
            pre = f"{names[l]}.sum"
            nodes.append(Add(pre, tuple(parts)))
        relu = f"{names[l]}.rate"
        nodes.append(Relu(relu, pre))
        layer_node.append(relu)
        out_pre = pre
    return Graph(tuple(nodes), out_pre), layer_node, scale
