"""An snnfast network as a NIR graph: :func:`to_nir`, and the input spikes to feed it.

Every spiking layer becomes one neuron node fed by one synapse node per synapse group:

=====================  ===============================================================
snnfast                NIR
=====================  ===============================================================
input layer            the ``Input`` node: the graph's input is the *spike trains* of
                       snnfast's input layer (:func:`input_spikes`), not the image
``ConvSynapses``       ``Conv2d`` (a grouped convolution is written block-diagonal with
                       ``groups = 1``: NIR's type check and every importer read
                       ``weight.shape[1]`` as the input channels)
``PoolSynapses``       ``SumPool2d`` (``pooling="sum"``) or ``AvgPool2d`` (``"avg"``); the
                       integer weight ``w`` goes into the neuron's threshold (below). A pool
                       group in a layer with a bias or other groups is a ``Conv2d`` of
                       diagonal weight ``w``
``DenseSynapses``      ``Flatten`` (of a ``(C, H, W)`` source) and ``Affine``
residual addition      two edges into one neuron node (NIR sums a node's inputs)
concatenation          each group's weights padded with zeros to all the layer's channels,
                       edges summed
neuron, ``dv = 0``     ``IF(r = 1, v_threshold = theta - 0.5, v_reset = 0)``
neuron, ``dv > 0``     ``LIF(tau = dt 4096 / dv, r = 4096 / dv, v_leak = 0, ...)``
``du < 4096``          ``CubaLIF(tau_syn = dt 4096 / du, tau_mem = dt 4096 / dv,
                       w_in = 4096 / du, r = 4096 / dv, v_leak = b 4096 / dv)``
output layer           its neuron node, then ``Output``
=====================  ===============================================================

Weights and biases are the engine's integers (as float32), thresholds are ``theta - 0.5``: NIR
fires on ``v > v_threshold``, and with integer potentials that is the engine's ``v >= theta``.
A layer that is a single sum pool of weight ``w`` has ``v_threshold = (theta - 0.5) / w``
(``/ (w kh kw)`` for average pooling): its potential is always a multiple of ``w``, so this is
exact, and it needs no neuron gain ``r`` (which snnTorch refuses and Norse and sinabs ignore).

Exactness: NIR's only reset is "set to ``v_reset``". A network whose layers reset to zero
exports exactly (for ``IF`` layers: the same spikes, step for step, in any simulator that
integrates ``v += r I`` per step); one whose layers subtract the threshold exports with a
warning, as a hard reset. NIR has no initial potential (``v_init > 0`` warns), no synaptic delay
(the graph is the ``delay = 0`` network) and no integer rounding of leaks (``LIF``/``CubaLIF``
are the float dynamics the integer decay approximates). The graph's metadata records the
integer semantics: ``snnfast_semantics``, the time step ``dt`` the leaks assume, a JSON record
(input threshold, per-layer thresholds, resets, leaks, names, conversion settings) and a
SHA-256 of the graph's contents.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _checks
from .._core import __version__
from ..converted import ConvertedModel
from ..errors import ConfigError, ConversionError, ShapeError
from ..layers import DU_NONE, ConvSynapses, DenseSynapses, PoolSynapses, SpikingLayer
from ..network import GroupGeometry, Network
from . import _nir
from ._linear import ungroup

__all__ = ["POOLINGS", "NIRExportWarning", "input_spikes", "to_nir"]

POOLINGS = ("sum", "avg")
_FULL = 4096


class NIRExportWarning(UserWarning):
    """The NIR graph does not compute exactly what the snnfast network computes."""


def input_spikes(
    images: np.ndarray,
    timesteps: int,
    *,
    input_threshold: int = 255,
    v_init: float = 0.0,
) -> np.ndarray:
    """The spike trains of snnfast's input layer: what a NIR graph of :func:`to_nir` takes.

    Pixel ``p`` is the bias of an integrate-and-fire neuron of threshold ``input_threshold``
    with soft reset, starting at ``floor(v_init * input_threshold)`` (``docs/neuron.md``).

    Args:
        images: uint8 ``[N, C, H, W]`` (or ``[N, H, W]``).
        timesteps: ``T >= 1``.
        input_threshold, v_init: the network's input threshold and the run's ``v_init``.

    Returns:
        float32 ``[T, N, C, H, W]`` of zeros and ones (time first, as snnTorch, Norse and
        sinabs step through it).

    Raises:
        ShapeError: ``images`` is not a uint8 array of rank 3 or 4.
        ConfigError: a bad ``timesteps``, ``input_threshold`` or ``v_init``.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        what = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise ShapeError(f"input_spikes: images must be uint8 [N, C, H, W], got {what}")
    x = images[:, None] if images.ndim == 3 else images
    t = _checks.positive_int(timesteps, "timesteps", 1 << 20, where="input_spikes")
    theta = _checks.positive_int(input_threshold, "input_threshold", where="input_spikes")
    v0 = _checks.number(v_init, "v_init", 0.0, 1.0, hi_open=True, where="input_spikes")
    _checks.check_memory(t * x.size * 4 + x.size * 8, "input spike trains")
    v = np.full(x.shape, math.floor(v0 * theta), dtype=np.int64)
    bias = x.astype(np.int64)
    out = np.empty((t, *x.shape), dtype=np.float32)
    for step in range(t):
        v += bias
        fired = v >= theta
        v -= theta * fired
        out[step] = fired
    return out


@dataclass
class _Builder:
    nir: Any
    net: Network
    names: list[str]
    pooling: str
    dt: float
    nodes: dict[str, Any]
    edges: list[tuple[str, str]]

    def key(self, layer: int) -> str:
        return "input" if layer == 0 else self.names[layer]

    def flat_source(self, src: int) -> str:
        """The Flatten node of layer ``src`` (shared by every dense group that reads it)."""
        shape = self.net.shapes[src]
        if len(shape) == 1:
            return self.key(src)
        name = f"{self.key(src)}_flatten"
        if name not in self.nodes:
            self.nodes[name] = self.nir.Flatten(
                input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1
            )
            self.edges.append((self.key(src), name))
        return name

    def add(self, name: str, node: Any, source: str, target: str) -> None:
        self.nodes[name] = node
        self.edges.append((source, name))
        self.edges.append((name, target))


def _layer_names(model: ConvertedModel | Network) -> list[str]:
    """Node keys: the model's layer names where they are unique identifiers, else ``layerN``."""
    if isinstance(model, ConvertedModel):
        raw = list(model.layer_names)
    else:
        raw = ["input"] + [
            layer.name if isinstance(layer, SpikingLayer) and layer.name else f"layer{i}"
            for i, layer in enumerate(model.layers, start=1)
        ]
    out = ["input"]
    for i, name in enumerate(raw[1:], start=1):
        clean = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in str(name))
        if not clean or clean[0].isdigit() or clean in out or clean in ("output",):
            clean = f"layer{i}"
        while clean in out:
            clean += "_"
        out.append(clean)
    return out


def _padded(weight: np.ndarray, total: int, offset: int) -> np.ndarray:
    """``weight`` with zero output channels (axis 0) so that it writes ``offset..`` of ``total``."""
    out = np.zeros((total, *weight.shape[1:]), dtype=np.float32)
    out[offset : offset + weight.shape[0]] = weight
    return out


def _sym_padding(geo: GroupGeometry, where: str, kind: str) -> tuple[int, int]:
    t, b, l, r = geo.padding
    if t != b or l != r:
        raise ConversionError(
            where,
            kind,
            f"pads asymmetrically {geo.padding} (top, bottom, left, right)",
            "NIR's Conv2d and pooling pad the same on both sides; pad symmetrically",
        )
    return (t, l)


def _pure_pool(sl: SpikingLayer, geos: tuple[GroupGeometry, ...]) -> bool:
    """A layer of one pooling group, no bias, writing all its channels."""
    return (
        len(geos) == 1
        and geos[0].kind == "pool"
        and geos[0].channels[0] == 0
        and (sl.bias is None or not np.any(sl.bias))
    )


def _bias(sl: SpikingLayer, shape: tuple[int, ...], where: str) -> np.ndarray:
    c = shape[0]
    if sl.bias is None:
        return np.zeros(c, dtype=np.float32)
    b = np.asarray(sl.bias)
    if b.ndim != 1:
        rows = b.reshape(c, -1)
        if np.all(rows == rows[:, :1]):
            return rows[:, 0].astype(np.float32)
        raise ConversionError(
            where,
            "bias",
            "has a bias that varies within a channel",
            "NIR's Conv2d and Affine carry one bias per output channel",
        )
    return b.astype(np.float32)


def _neuron(
    b: _Builder, l: int, sl: SpikingLayer, theta_nir: float, bias: np.ndarray, where: str
) -> tuple[Any, bool]:
    """The neuron node of layer ``l``; also whether the layer's bias went into it."""
    nir = b.nir
    shape = b.net.shapes[l]
    ones = np.ones(shape, dtype=np.float32)
    thr = np.full(shape, theta_nir, dtype=np.float32)
    zeros = np.zeros(shape, dtype=np.float32)
    dv, du = int(sl.leak), int(sl.du)
    if du == DU_NONE and dv == 0:
        return nir.IF(r=ones, v_threshold=thr, v_reset=zeros), False
    if du == DU_NONE:
        tau = b.dt * _FULL / dv
        return nir.LIF(
            tau=ones * tau, r=ones * (_FULL / dv), v_leak=zeros, v_threshold=thr, v_reset=zeros
        ), False
    if du == 0 or dv == 0:
        which = "du" if du == 0 else "dv"
        raise ConversionError(
            where,
            "CubaLIF",
            f"has {which} = 0 with a current register: a value that never decays has no NIR "
            "time constant (tau would be infinite)",
            "give the layer a leak above 0, or no current register (du = 4096)",
        )
    per_neuron = bias.reshape((-1,) + (1,) * (len(shape) - 1)) * ones
    node = nir.CubaLIF(
        tau_syn=ones * (b.dt * _FULL / du),
        tau_mem=ones * (b.dt * _FULL / dv),
        r=ones * (_FULL / dv),
        v_leak=(per_neuron * (_FULL / dv)).astype(np.float32),
        v_threshold=thr,
        v_reset=zeros,
        w_in=ones * (_FULL / du),
    )
    return node, True


def _layer(b: _Builder, l: int, model_meta: list[dict[str, Any]]) -> None:
    nir = b.nir
    net = b.net
    layer = net.layers[l - 1]
    sl = layer.as_spiking_layer()
    geos = net.synapse_groups(l)
    name = b.key(l)
    where = f"layer {l} ({name})"
    shape = net.shapes[l]
    total = shape[0]
    theta = int(sl.threshold)
    bias = _bias(sl, shape, where)
    pure = _pure_pool(sl, geos)
    if pure:
        pool = sl.groups[0]
        assert isinstance(pool, PoolSynapses)
        kh, kw = geos[0].kernel
        w = int(pool.weight)
        if w <= 0:
            raise ConversionError(where, "PoolSynapses", f"has weight {w}", "a weight >= 1")
        per_input = w * (kh * kw if b.pooling == "avg" else 1)
        theta_nir = (theta - _nir.THRESHOLD_OFFSET) / per_input
    else:
        theta_nir = theta - _nir.THRESHOLD_OFFSET
    neuron, bias_in_neuron = _neuron(b, l, sl, theta_nir, bias, where)
    info: dict[str, Any] = {
        "snnfast_layer": l,
        "snnfast_threshold": theta,
        "snnfast_reset": sl.reset,
        "snnfast_leak": int(sl.leak),
        "snnfast_du": int(sl.du),
    }
    if pure:
        info["snnfast_pool_weight"] = int(sl.groups[0].weight)
    neuron.metadata = info
    b.nodes[name] = neuron
    model_meta.append({"name": name, **info})
    bias_left = not bias_in_neuron
    multi = len(geos) > 1
    for j, (g, geo) in enumerate(zip(sl.groups, geos)):
        suffix = f"_{j}" if multi else ""
        src = geo.source
        src_shape = net.shapes[src]
        offset, stop = geo.channels
        meta: dict[str, Any] = {}
        if offset != 0 or stop != total:
            meta.update(snnfast_channel_offset=offset, snnfast_channels=stop - offset)
        first_bias = bias if bias_left else np.zeros(total, dtype=np.float32)
        if isinstance(g, DenseSynapses):
            weight = _padded(np.asarray(g.weight, dtype=np.float32), total, offset)
            node = nir.Affine(weight=weight, bias=first_bias.copy())
            node.metadata = meta
            b.add(f"{name}_dense{suffix}", node, b.flat_source(src), name)
            bias_left = False
            continue
        if isinstance(g, PoolSynapses) and pure:
            ph, pw = _sym_padding(geo, where, "PoolSynapses")
            cls = nir.SumPool2d if b.pooling == "sum" else nir.AvgPool2d
            node = cls(
                kernel_size=np.array(geo.kernel),
                stride=np.array(geo.stride),
                padding=np.array([ph, pw]),
            )
            node.metadata = meta
            b.add(f"{name}_{b.pooling}pool{suffix}", node, b.key(src), name)
            continue
        ph, pw = _sym_padding(geo, where, type(g).__name__)
        kh, kw = geo.kernel
        if isinstance(g, PoolSynapses):  # a pool group beside others: diagonal weight w
            c = src_shape[0]
            full = np.zeros((c, c, kh, kw), dtype=np.float32)
            full[np.arange(c), np.arange(c)] = float(g.weight)
            meta.update(snnfast_kind="pool", snnfast_weight=int(g.weight))
            kind = "pool"
        else:
            assert isinstance(g, ConvSynapses)
            full = ungroup(np.asarray(g.weight), geo.groups).astype(np.float32)
            if geo.groups != 1:
                meta["snnfast_groups"] = geo.groups
            kind = "conv"
        node = nir.Conv2d(
            input_shape=tuple(src_shape[1:]),
            weight=_padded(full, total, offset),
            stride=tuple(geo.stride),
            padding=(ph, pw),
            dilation=(1, 1),
            groups=1,
            bias=first_bias.copy(),
        )
        node.metadata = meta
        b.add(f"{name}_{kind}{suffix}", node, b.key(src), name)
        bias_left = False
    if bias_left and np.any(bias):
        raise ConversionError(
            where,
            "bias",
            "has a bias but only pooling synapses",
            "NIR's pooling nodes have no bias",
        )


def to_nir(
    model: ConvertedModel | Network,
    *,
    dt: float = 1e-3,
    pooling: str = "sum",
) -> Any:
    """The network of ``model`` as a ``nir.NIRGraph`` (see the module docstring for the mapping).

    Args:
        model: a :class:`~snnfast.converted.ConvertedModel` (or a bare
            :class:`~snnfast.Network`).
        dt: the time step, in seconds, that one engine step stands for: it turns a leak ``dv``
            into NIR's time constant ``tau = dt * 4096 / dv`` (and is recorded in the metadata).
            Integrate-and-fire layers do not depend on it.
        pooling: write pooling layers as ``"sum"`` (``SumPool2d``: Norse, sinabs) or ``"avg"``
            (``AvgPool2d``: snnTorch).

    Returns:
        A ``nir.NIRGraph``; :func:`snnfast.interop.write_nir` (or ``nir.write``) saves it.

    Warns:
        NIRExportWarning: a layer resets by subtraction (NIR reads it as a reset to zero), or
            the model is meant to run from ``v_init > 0`` (NIR starts at zero).

    Raises:
        ConversionError: a layer NIR cannot express (asymmetric padding, a bias that varies
            within a channel, a current register with ``du = 0`` or ``dv = 0``); names it.
        ConfigError: bad ``dt`` or ``pooling``; ``nir`` is not installed.
    """
    nir = _nir.import_nir()
    if isinstance(model, ConvertedModel):
        net = model.network
        v_init = float(model.config.v_init)
    elif isinstance(model, Network):
        net, v_init = model, 0.0
    else:
        raise ConfigError(f"to_nir needs a ConvertedModel or a Network, got {type(model).__name__}")
    dt = _checks.number(dt, "dt", 0.0, lo_open=True, where="to_nir")
    pooling = _checks.choice(pooling, "pooling", POOLINGS, where="to_nir")
    names = _layer_names(model)
    b = _Builder(nir, net, names, pooling, dt, {"input": None}, [])
    b.nodes["input"] = nir.Input(input_type={"input": np.array(net.input_shape)})
    layers_meta: list[dict[str, Any]] = []
    for l in range(1, net.n_layers + 1):
        _layer(b, l, layers_meta)
    out_shape = net.shapes[-1]
    b.nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    b.edges.append((names[-1], "output"))
    subtract = [m["name"] for m in layers_meta if m["snnfast_reset"] == "subtract"]
    if subtract:
        warnings.warn(
            f"layers {', '.join(subtract)} reset by subtraction; NIR has only a reset to "
            "v_reset, so every NIR reader will run them with a reset to zero (different "
            "spikes). Convert with reset='zero' layers for an exact export.",
            NIRExportWarning,
            stacklevel=2,
        )
    if v_init > 0:
        warnings.warn(
            f"the model is meant to run from v_init = {v_init}; NIR neurons start at 0",
            NIRExportWarning,
            stacklevel=2,
        )
    record: dict[str, Any] = {
        "writer": f"snnfast {__version__}",
        "input_shape": list(net.input_shape),
        "input_threshold": int(net.input_threshold),
        "input": "the graph's input is the spike trains of snnfast's input layer "
        "(snnfast.interop.input_spikes)",
        "threshold_offset": _nir.THRESHOLD_OFFSET,
        "pooling": pooling,
        "layers": layers_meta,
        "rule": "docs/neuron.md; v > v_threshold with v_threshold = theta - 0.5 is v >= theta",
    }
    if isinstance(model, ConvertedModel):
        record.update(
            config=model.config.to_json(),
            layer_names=list(model.layer_names),
            param_scales=list(model.param_scales),
            slopes=list(model.slopes),
            embedding_layers=list(model.embedding_layers),
        )
    graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, type_check=True)
    graph.metadata = {
        _nir.KEY_SEMANTICS: _nir.SEMANTICS,
        _nir.KEY_DT: float(dt),
        _nir.KEY_RECORD: json.dumps(record, sort_keys=True),
        _nir.KEY_DIGEST: _nir.digest(graph),
    }
    return graph
