"""A NIR graph as an integer snnfast network: :func:`from_nir`.

Every neuron node (``IF``, ``LIF``, ``CubaLIF``) becomes one spiking layer; the linear nodes on
the paths into it (``Conv2d`` with ``groups``, ``Affine``, ``Linear``, ``Scale``, ``SumPool2d``,
``AvgPool2d``, ``Flatten``) are composed into its synapse groups, one per path from a source
(:mod:`snnfast.interop._linear`); several edges into a node add. The graph's ``Input`` is the
spike trains of snnfast's input layer: the image rate-coded, pixel ``p`` firing at ``p / 255``
(:func:`snnfast.interop.input_spikes`).

**The neuron, discretised** with the graph's time step ``dt`` (forward Euler, as snnTorch and
Norse step NIR's equations; ``a = dt / tau``):

=========  ================================================================================
``IF``     ``v += r I``: gain ``r``, ``dv = 0``
``LIF``    ``v += a (v_leak - v) + a r I``: ``dv = round(4096 a)``, gain ``a r``, and
           ``a v_leak`` joins the bias
``CubaLIF`` ``I_syn += a_syn (w_in S - I_syn)``, ``v += a_mem (v_leak - v + r I_syn)``: the
           engine's current register with ``du = round(4096 a_syn)``, ``dv = round(4096
           a_mem)``, gain ``w_in a_syn r a_mem``; ``a_mem v_leak`` joins the bias (a bias
           on the synaptic input is refused: the engine adds its bias to ``v``)
=========  ================================================================================

``v_reset`` must be 0 (the layer resets to zero, as NIR does); the spike ``v > v_threshold``
becomes ``v >= floor(s v_threshold) + 1`` with the layer's integer scale ``s``. A layer has one
threshold, ``dv`` and ``du``: thresholds and gains that differ between channels are divided into
the channels' weights (exact for these linear neurons with reset to zero); a ``tau`` that differs
between neurons is refused.

**Integers.** A graph that :func:`snnfast.to_nir` wrote (its metadata says so, and its
checksum matches) is read back exactly: its weights are the engine's integers, and
``from_nir(to_nir(m))`` spikes as ``m`` does when ``m``'s layers reset to zero. Any other graph
(or one read with an explicit ``config``) is quantised layer by layer with Algorithm 1's
parameter scaling (:mod:`snnfast.convert`): ``s = min(W_MAX / percentile(|W|), b_MAX /
percentile(|b|))`` over the layer's weights and bias at ``config.param_percentile``, weights and
biases ``int(s x)`` (``config.rounding``, ``config.clip``), and the threshold scaled by the same
``s``, so it keeps its ratio to the weights.

The model's float ``graph`` is the network's rate model (:mod:`snnfast.interop._rategraph`).
Nodes snnfast cannot import raise :class:`~snnfast.errors.ConversionError` naming the node key
and its NIR type.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any

import numpy as np

from .. import _checks
from ..converted import CalibrationRecord, ConversionConfig, ConvertedModel
from ..errors import ConfigError, ConversionError, ModelFormatError, ShapeError
from ..layers import SpikingLayer
from ..network import Network
from . import _linear, _nir
from ._linear import Value
from ._quantise import ReadLayer, exact_layer, quantised_layer, ready
from ._rategraph import rate_graph

__all__ = ["from_nir", "read_nir"]

_FULL = 4096
_NEURONS = ("IF", "LIF", "CubaLIF")
_LINEAR = ("Conv2d", "Affine", "Linear", "Scale", "SumPool2d", "AvgPool2d", "Flatten")
_WHY = {
    "LI": "is a leaky integrator without spikes (its output is a potential)",
    "CubaLI": "is a current-based integrator without spikes (its output is a potential)",
    "I": "is an integrator without spikes (its output is a potential)",
    "Delay": "is a synaptic delay, which the engine has only as a global one-step setting",
    "Threshold": "is a stateless threshold, not an integrate-and-fire neuron",
    "Conv1d": "is a 1-D convolution; the engine's layers are 2-D",
    "NIRGraph": "is a nested graph (a recurrent layer)",
}
_SUPPORTED = "supported: Input, Output, IF, LIF, CubaLIF, " + ", ".join(_LINEAR)


def read_nir(path: str | os.PathLike[str]) -> Any:
    """Read a ``.nir`` file as a ``nir.NIRGraph``.

    Raises:
        ModelFormatError: the file is missing, truncated, not HDF5 or not a NIR graph.
    """
    return _nir.read_graph(path)


def _type(node: Any) -> str:
    return type(node).__name__


def _arr(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _pair(value: Any, key: str, what: str) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(value)).reshape(-1)
    if a.size not in (1, 2) or not np.all(np.isfinite(a.astype(np.float64))):
        raise ConversionError(key, what, f"has a bad size or stride {value!r}")
    return (int(a[0]), int(a[-1]))


def _padding(value: Any, kernel: tuple[int, int], key: str, what: str) -> tuple[int, int, int, int]:
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        if text == "valid":
            return (0, 0, 0, 0)
        if text == "same":
            th, tw = kernel[0] - 1, kernel[1] - 1
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ConversionError(key, what, f"has padding {text!r}")
    ph, pw = _pair(value, key, what)
    return (ph, ph, pw, pw)


def _param(node: Any, name: str, shape: tuple[int, ...], key: str) -> np.ndarray:
    """A neuron parameter broadcast to the node's shape."""
    value = getattr(node, name, None)
    if value is None:
        raise ModelFormatError(f"node {key!r} (nir.{_type(node)}) has no {name}")
    a = _arr(value)
    if a.size == 1:
        return np.full(shape, float(a.reshape(-1)[0]))
    if a.shape != shape and a.size == math.prod(shape):
        a = a.reshape(shape)
    if a.shape != shape:
        raise ShapeError(
            f"node {key!r} (nir.{_type(node)}): {name} has shape {a.shape}, the node's input "
            f"has shape {shape}"
        )
    return a


def _per_channel(a: np.ndarray, key: str, op: str, what: str) -> np.ndarray:
    """``a`` (of a layer's shape) as one value per channel (per neuron for a flat layer)."""
    if a.ndim == 1:
        return a
    rows = a.reshape(a.shape[0], -1)
    if not np.all(rows == rows[:, :1]):
        raise ConversionError(
            key,
            op,
            f"{what} varies across the positions of a channel",
            "a layer's weights are shared across positions; use one value per channel",
        )
    return rows[:, 0]


class _Reader:
    def __init__(self, graph: Any, dt: float | None, images: np.ndarray | None) -> None:
        self.graph = graph
        self.dt = dt
        self.images = images
        self.layers: list[ReadLayer] = []
        self.index: dict[str, int] = {}
        self.values: dict[str, Value] = {}
        self.input_shape: tuple[int, int, int] = (1, 1, 1)
        self.output = ""
        self.preds: dict[str, list[str]] = {}

    # -- structure -----------------------------------------------------------------------------

    def order(self) -> list[str]:
        """The nodes the Output depends on, sources first."""
        nodes, edges = self.graph.nodes, list(self.graph.edges)
        for a, b in edges:
            for k in (a, b):
                if k not in nodes:
                    raise ModelFormatError(
                        f"the graph has an edge ({a!r}, {b!r}) to a missing node {k!r}"
                    )
        for key, node in nodes.items():
            t = _type(node)
            if t not in (*_NEURONS, *_LINEAR, "Input", "Output"):
                raise ConversionError(
                    key, f"nir.{t}", _WHY.get(t, "is not a node snnfast imports"), _SUPPORTED
                )
        inputs = [k for k, n in nodes.items() if _type(n) == "Input"]
        outputs = [k for k, n in nodes.items() if _type(n) == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ConversionError(
                "graph",
                "nir.NIRGraph",
                f"has {len(inputs)} Input and {len(outputs)} Output nodes",
                "snnfast imports graphs of one Input and one Output",
            )
        self.output = outputs[0]
        self.input = inputs[0]
        preds: dict[str, list[str]] = {k: [] for k in nodes}
        for a, b in edges:
            preds[b].append(a)
        need: set[str] = set()
        todo = [self.output]
        while todo:
            k = todo.pop()
            if k not in need:
                need.add(k)
                todo.extend(preds[k])
        order: list[str] = []
        state: dict[str, int] = {}
        for start in sorted(need):
            stack = [(start, iter(sorted(preds[start])))]
            if state.get(start) == 2:
                continue
            state[start] = 1
            while stack:
                k, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[k] = 2
                    order.append(k)
                elif state.get(nxt) == 1:
                    raise ConversionError(
                        nxt,
                        f"nir.{_type(nodes[nxt])}",
                        "is part of a recurrent loop",
                        "snnfast imports feed-forward graphs",
                    )
                elif state.get(nxt) is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(sorted(preds[nxt]))))
        self.preds = preds
        if self.input not in need:
            raise ConversionError(self.output, "nir.Output", "does not depend on the Input node")
        return order

    # -- nodes --------------------------------------------------------------------------------

    def read(self, key: str) -> None:
        node = self.graph.nodes[key]
        t = _type(node)
        if t == "Input":
            self.input_shape, shape = self.image_shape(key, node)
            self.values[key] = _linear.source(0, shape)
            return
        ins = self.preds[key]
        if not ins:
            raise ConversionError(key, f"nir.{t}", "has no input edge")
        v = _linear.merge([self.values[i] for i in ins], key, f"nir.{t}")
        if t == "Output":
            self.check_output(key, node, v)
            self.values[key] = v
        elif t in _NEURONS:
            self.values[key] = self.neuron(key, node, v)
        else:
            out = self.linear(key, node, t, v)
            meta = getattr(node, "metadata", None)
            if (
                meta
                and any(str(k).startswith("snnfast_") for k in meta)
                and all(x.kind == "id" for x in v.terms)
            ):
                terms = tuple(replace(x, meta=dict(meta)) for x in out.terms)
                out = Value(terms, out.bias, out.shape)
            self.values[key] = out

    def image_shape(self, key: str, node: Any) -> tuple[tuple[int, int, int], tuple[int, ...]]:
        """The network's input shape ``(C, H, W)`` and the shape NIR gives the input."""
        raw = node.input_type.get("input") if isinstance(node.input_type, dict) else None
        if raw is None:
            raise ModelFormatError(f"the Input node {key!r} has no shape")
        shape = tuple(int(s) for s in np.asarray(raw).reshape(-1))
        if len(shape) == 4 and shape[0] == 1:
            shape = shape[1:]  # a batch dimension some exporters keep
        if len(shape) == 1 and shape[0] >= 1:
            if self.images is not None and math.prod(self.images.shape[1:]) == shape[0]:
                c, h, w = self.images.shape[1:]
                return (int(c), int(h), int(w)), shape
            return (shape[0], 1, 1), shape
        if len(shape) != 3 or min(shape) < 1:
            raise ShapeError(f"the Input node {key!r} has shape {shape}; snnfast takes (C, H, W)")
        return (shape[0], shape[1], shape[2]), shape

    def check_output(self, key: str, node: Any, v: Value) -> None:
        srcs = self.preds[key]
        if len(srcs) != 1 or _type(self.graph.nodes[srcs[0]]) not in _NEURONS:
            raise ConversionError(
                key,
                "nir.Output",
                "is not fed by one neuron node",
                "end the graph with a spiking layer (its spike counts are the classes)",
            )
        raw = node.output_type.get("output") if isinstance(node.output_type, dict) else None
        if raw is not None and np.asarray(raw).size:
            declared = tuple(int(s) for s in np.asarray(raw).reshape(-1))
            if math.prod(declared) != math.prod(v.shape) or len(declared) not in (1, len(v.shape)):
                raise ShapeError(
                    f"node {key!r} (nir.Output) declares shape {declared}, but {srcs[0]!r} "
                    f"gives {v.shape}"
                )

    def linear(self, key: str, node: Any, t: str, v: Value) -> Value:
        op = f"nir.{t}"
        shape = v.shape
        if t == "Flatten":
            start, end = int(node.start_dim), int(node.end_dim)
            nd = len(shape)
            if nd > 1 and (start % nd != 0 or end % nd != nd - 1):
                raise ConversionError(
                    key,
                    op,
                    f"flattens dims {start}..{end} of a {shape} value",
                    "flatten the whole (C, H, W) map (start_dim=0, end_dim=-1)",
                )
            return _linear.flatten(v)
        if t == "Scale":
            f = _arr(node.scale)
            if f.size != 1 and f.shape != shape and f.size != math.prod(shape):
                raise ShapeError(
                    f"node {key!r} ({op}): scale has shape {f.shape}, its input {shape}"
                )
            return _linear.scale(v, f.reshape(shape) if f.size != 1 else f, key)
        if t in ("Affine", "Linear"):
            w = _arr(node.weight)
            if w.ndim != 2:
                raise ShapeError(
                    f"node {key!r} ({op}): weight has shape {w.shape}, expected [O, I]"
                )
            if len(shape) == 1 and w.shape[1] != shape[0]:
                raise ShapeError(
                    f"node {key!r} ({op}): weight expects {w.shape[1]} inputs, its input has "
                    f"{shape[0]}"
                )
            b = None
            if t == "Affine" and getattr(node, "bias", None) is not None:
                b = np.broadcast_to(
                    _arr(node.bias).reshape(-1) if _arr(node.bias).size > 1 else _arr(node.bias),
                    (w.shape[0],),
                ).astype(np.float64)
            return _linear.affine(v, w, b, key, op)
        if len(shape) != 3:
            raise ShapeError(f"node {key!r} ({op}) needs a (C, H, W) input, got shape {shape}")
        c, h, wd = shape
        if t == "Conv2d":
            w = _arr(node.weight)
            if w.ndim != 4:
                raise ShapeError(f"node {key!r} ({op}): weight has shape {w.shape}, expected 4-D")
            groups = int(np.asarray(node.groups).reshape(-1)[0])
            dil = _pair(node.dilation, key, op)
            if dil != (1, 1):
                raise ConversionError(key, op, f"has dilation {dil}", "use dilation 1")
            o, ig = int(w.shape[0]), int(w.shape[1])
            if groups < 1 or ig * groups != c or o % groups:
                raise ShapeError(
                    f"node {key!r} ({op}): weight expects {ig} x {groups} group(s) input "
                    f"channels, its input has {c} (shape {shape})"
                )
            kernel = (int(w.shape[2]), int(w.shape[3]))
            stride = _pair(node.stride, key, op)
            pad = _padding(node.padding, kernel, key, op)
            bias = np.zeros(o) if getattr(node, "bias", None) is None else _arr(node.bias)
            if bias.size == 1:
                bias = np.full(o, float(bias.reshape(-1)[0]))
            if bias.shape != (o,):
                raise ShapeError(
                    f"node {key!r} ({op}): bias has shape {bias.shape}, expected ({o},)"
                )
        else:
            kernel = _pair(node.kernel_size, key, op)
            stride = _pair(node.stride, key, op)
            pad = _padding(node.padding, kernel, key, op)
            o = c
        ho = (h + pad[0] + pad[1] - kernel[0]) // max(stride[0], 1) + 1
        wo = (wd + pad[2] + pad[3] - kernel[1]) // max(stride[1], 1) + 1
        if min(stride) < 1 or min(kernel) < 1 or ho < 1 or wo < 1:
            raise ShapeError(
                f"node {key!r} ({op}): kernel {kernel}, stride {stride}, padding {pad} do not fit "
                f"its input {shape}"
            )
        out = (o, ho, wo)
        if t == "Conv2d":
            return _linear.conv2d(v, w, bias, stride, pad, groups, out, key)
        each = 1.0 if t == "SumPool2d" else 1.0 / (kernel[0] * kernel[1])
        return _linear.pool2d(v, kernel, stride, pad, each, out, key, op)

    def step(self, key: str, t: str) -> float:
        if self.dt is None:
            raise ConversionError(
                key,
                f"nir.{t}",
                "has a time constant, but the graph stores no time step",
                "pass dt= (the step the graph was made for; snnTorch's exporter assumes 1e-4)",
            )
        return self.dt

    def decay(self, key: str, t: str, tau: np.ndarray, what: str) -> tuple[float, int]:
        """``a = dt / tau`` (one value for the layer) and the engine's decay ``round(4096 a)``."""
        dt = self.step(key, t)
        with np.errstate(divide="ignore"):
            a = np.where(np.isinf(tau), 0.0, dt / tau)
        if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise ConversionError(key, f"nir.{t}", f"{what} must be >= dt = {dt} (and positive)")
        d = np.rint(a * _FULL).astype(np.int64)
        if not np.all(d == d.reshape(-1)[0]):
            raise ConversionError(
                key, f"nir.{t}", f"{what} differs between neurons", "an engine layer has one leak"
            )
        return float(a.reshape(-1)[0]), int(d.reshape(-1)[0])

    def neuron(self, key: str, node: Any, v: Value) -> Value:
        t = _type(node)
        op = f"nir.{t}"
        shape = v.shape
        if len(shape) not in (1, 3):
            raise ShapeError(f"node {key!r} ({op}) has shape {shape}; layers are (C, H, W) or (N,)")
        if np.any(_param(node, "v_reset", shape, key) != 0):
            raise ConversionError(
                key,
                op,
                "resets to a nonzero v_reset",
                "the engine resets to zero (or subtracts the threshold)",
            )
        thr = _param(node, "v_threshold", shape, key)
        extra = np.zeros(shape)
        leak, du = 0, _FULL
        if t == "IF":
            gain = _param(node, "r", shape, key)
        elif t == "LIF":
            a, leak = self.decay(key, t, _param(node, "tau", shape, key), "tau")
            gain = a * _param(node, "r", shape, key)
            extra = a * _param(node, "v_leak", shape, key)
        else:
            a_s, du = self.decay(key, t, _param(node, "tau_syn", shape, key), "tau_syn")
            a_m, leak = self.decay(key, t, _param(node, "tau_mem", shape, key), "tau_mem")
            if du == 0:
                raise ConversionError(
                    key, op, "tau_syn is so long that the current never decays in 4096ths of a step"
                )
            w_in = _param(node, "w_in", shape, key)
            gain = w_in * a_s * _param(node, "r", shape, key) * a_m
            extra = a_m * _param(node, "v_leak", shape, key)
            if v.bias is not None and np.any(v.bias):
                raise ConversionError(
                    key,
                    op,
                    "receives a bias into its synaptic current",
                    "the engine adds a layer's bias to the potential; give the current no bias",
                )
        if np.any(thr <= 0):
            raise ConversionError(key, op, "has a threshold <= 0")
        gain = np.where(np.abs(gain - 1.0) <= 1e-6, 1.0, gain)  # float32 tau and r: a gain of 1
        g_c = _per_channel(gain, key, op, "the input gain")
        th_c = _per_channel(thr, key, op, "v_threshold")
        ex_c = _per_channel(extra, key, op, "v_leak")
        top = float(th_c.max())
        norm = np.ones_like(th_c) if np.all(th_c == top) else top / th_c
        factor = g_c * norm
        rows = factor.reshape((-1,) + (1,) * (len(shape) - 1)) * np.ones(shape)
        scaled = _linear.scale(Value(v.terms, v.bias, shape), rows, key)
        bias_c = np.zeros(shape[0])
        if scaled.bias is not None:
            bias_c = _per_channel(scaled.bias, key, op, "the bias")
        bias_c = bias_c + ex_c * norm
        meta = dict(getattr(node, "metadata", None) or {})
        self.layers.append(ReadLayer(key, scaled.terms, bias_c, top, leak, du, shape, meta))
        self.index[key] = len(self.layers)
        return _linear.source(len(self.layers), shape)


def _images(images: Any) -> np.ndarray | None:
    if images is None:
        return None
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or not len(images)
    ):
        what = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise ShapeError(
            f"calibration_images must be a non-empty uint8 [N, C, H, W] array, got {what}"
        )
    return images


def from_nir(
    graph_or_path: Any,
    *,
    calibration_images: np.ndarray | None = None,
    config: ConversionConfig | None = None,
    dt: float | None = None,
) -> ConvertedModel:
    """Import a NIR graph (or ``.nir`` file) as an integer spiking network.

    Args:
        graph_or_path: a ``nir.NIRGraph`` or the path of a ``.nir`` file.
        calibration_images: optional uint8 ``[N, C, H, W]`` images the network is meant for:
            they give the image shape of a graph whose ``Input`` is flat, must fit the graph's
            input shape, and their number is recorded. The conversion itself needs none (the
            thresholds come from the graph).
        config: the bits, percentiles, rounding and clipping of the quantisation
            (:class:`~snnfast.convert.ConversionConfig`; default the paper's). Given, it also
            re-quantises a graph snnfast wrote instead of reading its integers as they are.
        dt: the time step (seconds) the graph's time constants are meant for; default the
            graph's ``metadata["dt"]``. Needed for ``LIF`` and ``CubaLIF`` nodes.

    Returns:
        A :class:`~snnfast.converted.ConvertedModel` whose layers reset to zero; its ``graph``
        is the network's rate model (module docstring) and ``calibration.threshold_rules`` are
        ``"nir"``.

    Raises:
        ModelFormatError: an unreadable, truncated or foreign file, a damaged snnfast record.
        ConversionError: a node snnfast cannot import (names its key and NIR type), a loop.
        ShapeError: node shapes that do not fit together (names the nodes).
        ConfigError: bad arguments; ``nir`` is not installed.
    """
    nir = _nir.import_nir()
    if isinstance(graph_or_path, (str, os.PathLike)):
        graph = _nir.read_graph(graph_or_path)
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        raise ConfigError(
            f"from_nir takes a nir.NIRGraph or a file path, got {type(graph_or_path).__name__}"
        )
    if config is not None and not isinstance(config, ConversionConfig):
        raise ConfigError(f"config must be a ConversionConfig, got {type(config).__name__}")
    images = _images(calibration_images)
    record = _nir.graph_record(graph)
    exact = record is not None and config is None
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None and meta.get(_nir.KEY_DT) is not None:
        try:
            dt = float(np.asarray(meta[_nir.KEY_DT]).reshape(-1)[0])
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"the graph's metadata dt is not a number: {exc}") from exc
    if dt is not None:
        dt = _checks.number(dt, "dt", 0.0, lo_open=True, where="from_nir")
    reader = _Reader(graph, dt, images)
    for key in reader.order():
        reader.read(key)
    if images is not None and tuple(images.shape[1:]) != reader.input_shape:
        raise ShapeError(
            f"calibration_images have shape {images.shape[1:]}, the graph's input is "
            f"{reader.input_shape}"
        )
    if not reader.layers:
        raise ConversionError("graph", "nir.NIRGraph", "has no neuron node")
    out_src = reader.preds[reader.output][0]
    if reader.index[out_src] != len(reader.layers):  # pragma: no cover - order puts it last
        raise ConversionError(out_src, "output", "is not the last layer")
    cfg = ConversionConfig() if config is None else config
    if exact and isinstance(record, dict) and record.get("config") is not None:
        cfg = ConversionConfig.from_json(record["config"])
    layers, scales = [], [1.0]
    for lay in reader.layers:
        terms = [ready(t, lay.shape, lay.key) for t in lay.terms]
        if exact:
            groups, bias, theta = exact_layer(lay, terms)
            s = 1.0
        else:
            groups, bias, theta, s = quantised_layer(lay, terms, cfg)
        scales.append(float(s))
        layers.append(
            SpikingLayer(
                groups,
                theta,
                bias=np.asarray(bias).astype(np.int32),
                leak=lay.leak,
                name=lay.key,
                reset="zero",
                du=lay.du,
            )
        )
    threshold = 255
    if exact and isinstance(record, dict):
        threshold = int(record.get("input_threshold", 255))
    net = Network(layers, reader.input_shape, threshold)
    names = ["input"] + [lay.key for lay in reader.layers]
    graph_f, nodes_f, slopes = rate_graph(net, names)
    last = net.synapse_groups(net.n_layers)
    embedding = tuple(dict.fromkeys(g.source for g in last))
    return ConvertedModel(
        network=net,
        graph=graph_f,
        config=cfg,
        param_scales=tuple(scales),
        slopes=tuple(slopes),
        calibration=CalibrationRecord(
            n_images=0 if images is None else int(images.shape[0]),
            input_theta=threshold,
            threshold_rules=("nir",) * net.n_layers,
        ),
        layer_names=tuple(names),
        layer_nodes=tuple(nodes_f),
        embedding_layers=embedding,
    )
