"""ANN → integer SNN conversion: the paper's Algorithm 1 (Liu et al. 2022; Lin et al. 2018),
on any graph.

Algorithm 1, as the paper states it, walks the layers with a running ``slope`` (the ratio of the
SNN's spike rate to the ANN's activation at the current layer)::

    W_MAX = 2**(num_weight_bits - 1) - 1;  b_MAX = 2**(num_bias_bits - 1) - 1;  slope = 1
    input layer:  param_scale = W_MAX;  dvdt = input * param_scale        # input in [0, 1]
    other layers: bias = bias * slope
                  weight_norm = percentile(|weight|, param_percentile)
                  bias_norm   = percentile(|bias|,   param_percentile)
                  param_scale = min(W_MAX / weight_norm, b_MAX / bias_norm)
                  weight = int(weight * param_scale);  bias = int(bias * param_scale)
                  dvdt = ReLU(weight * spikerate + bias)                 # rate-based pass
    every layer:  threshold = int(percentile(dvdt, activation_percentile))
                  spikerate = min(dvdt / threshold, 1)
                  slope = slope * param_scale / threshold

``percentile`` is NumPy's (linear interpolation) over the whole calibration batch, so each layer
gets one threshold. ``int()`` truncates toward zero. The rate-based pass runs in float64 over the
calibration images. Guards this implementation adds, none of which changes a normal conversion:

- a layer whose bias is all zero (every pooling layer, or a model trained without bias) has no
  bias ratio: ``param_scale = W_MAX / weight_norm``. A layer with all-zero weights *and* bias
  cannot be scaled and raises :class:`ConfigError`;
- a threshold below 1 (a layer that never activates on the calibration batch) becomes 1; a
  threshold above ``2**23 - 1`` (the 24-bit membrane could never reach it) raises;
- the integer weights must fit int16 and the biases int32 (with the default 9 bits they do).

**Pooling layers** are spiking layers: their ANN weight is ``1 / k**2`` on every synapse and
their bias 0, and they go through the same steps, giving one integer weight per pooling layer.

**Input layer.** The algorithm's input neuron for a pixel ``p`` receives
``dvdt = p / 255 * W_MAX`` per step against threshold ``theta_0``. The SNN's input layer takes
the raw pixel as bias, so the same firing rate needs
``input_threshold = theta_0 * 255 / W_MAX`` (rounded to the nearest integer, at least 1). With
the default 9 bits (``W_MAX = 255``) this is exact: ``input_threshold = theta_0``, which is 255
for any calibration batch containing a white pixel.

**Output layer.** The dense output layer gets a threshold like any other; the SNN's class is the
output neuron with the most spikes (see :func:`snnfast.embed.embed` for tie-breaking).

Named options beside the paper's defaults (:class:`ConversionConfig`): the bit widths, both
percentiles, ``rounding="round"`` (round half to even instead of truncating, for the weights,
biases and thresholds alike) and ``clip=True`` (saturate weights to ``[-W_MAX, W_MAX]`` and
biases to ``[-b_MAX, b_MAX]``; the paper's algorithm does not clip, so the few parameters above
the ``param_percentile`` exceed ``W_MAX`` slightly). A lower ``activation_percentile`` (e.g.
99.9) raises the spike rates, which helps short simulations.

**Low-latency options** (all off by default):

- ``v_init``: the initial membrane potential, as a fraction of the threshold, that the network
  is meant to run with (0.5 starts every neuron at half its threshold, which turns the
  truncation of a spike count into rounding); :attr:`ConvertedModel.run_settings` passes it on,
  and threshold balancing calibrates with it;
- ``threshold_balancing``: each layer's threshold is set from the *spiking* network rather
  than from the rate-based pass. Layer by layer, the network built so far (earlier layers with
  their balanced thresholds) runs the calibration images for ``balance_timesteps`` steps from
  ``v_init``; the total input ``U`` each neuron of the layer integrated
  (:meth:`snnfast.RunResult.integrated_input`, independent of the layer's own threshold) gives
  its mean input per step ``u = U / T``. Then:

  * ``"spike-norm"``: ``threshold = percentile(max(u, 0), balance_percentile)``. This is
    Spike-Norm (Sengupta et al. 2019, "Going deeper in spiking neural networks: VGG and
    residual architectures", Front. Neurosci. 13:95), which takes the maximum of the layer's
    input in the SNN, with a percentile of the time-averaged input in place of the maximum of
    the per-step input (the engine reports counts, not per-step inputs);
  * ``"mse"``: the threshold that minimises the mean squared error between what the layer's
    spikes encode, ``threshold * clip(floor((U + v0) / threshold), 0, T) / T``, and its input
    ``max(u, 0)``, searched over a geometric grid (1/32 octave) below ``max(u)``: the trade of
    clipping error against quantisation error at this ``T``, as the threshold calibration of Li
    et al. 2021 ("A free lunch from ANN: towards efficient, accurate spiking neural networks
    calibration", ICML) chooses it, here measured on the SNN itself.

  The bias of each later layer follows from the new threshold through ``slope`` as usual.
- ``activation_scales`` (an argument of :func:`convert`): the activation scale ``lam`` of named
  layers of a network trained with the QCFS activation (:mod:`snnfast.qcfs`). Such a layer's
  threshold is ``lam * param_scale * slope`` (the integer input that corresponds to the ANN
  activation ``lam``), so its spike rate is ``activation / lam``, instead of a percentile.
  Layers without a scale (the output layer) use the rule above.

**Any graph.** :func:`convert_graph` takes a :class:`snnfast.graph.Graph` (the Table 1 family
through :func:`convert`, any PyTorch model through :func:`snnfast.from_torch`); the spiking
layers it becomes are planned by :mod:`snnfast._plan` (synapse groups from earlier layers:
residual additions, concatenations, grouped convolutions). Algorithm 1 runs on those layers in
order. A layer whose groups read sources of different slopes is scaled to the slope of its first
group: group ``g``'s float weight is multiplied by ``slope_first / slope_g`` before the
percentile, so the layer's input stays ``param_scale * slope_first`` times the ANN's; with one
group this is exactly the paper's rule. The percentile of ``|weight|`` is taken over all the
layer's weights (a pooling group counts its one shared weight, an identity group one weight per
channel).

**Bounded memory.** The rate-based pass runs in blocks of images; each layer's ``dvdt`` is never
held for the whole calibration set: its percentile is exact in bounded memory
(:mod:`snnfast._quantiles`), and a layer's rates are kept for all images only while they fit a
budget (a quarter of :func:`snnfast._checks.memory_limit`, at most 1 GiB), else recomputed block
by block from the input. Threshold balancing runs the spiking probe in blocks too, and its
``"mse"`` sample is drawn by index exactly as from the whole array. The thresholds are the same
integers as a pass over the whole batch at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _checks, _quantiles
from ._plan import Group, Plan, PlannedLayer, plan
from ._rates import QGroup, Rates
from .ann import Architecture
from .converted import CalibrationRecord, ConversionConfig, ConvertedModel
from .errors import ConfigError, ModelFormatError, ShapeError
from .graph import Graph, check_images
from .network import (
    AvgPool2d,
    Conv2d,
    ConvSynapses,
    Dense,
    DenseSynapses,
    Layer,
    Network,
    PoolSynapses,
    SpikingLayer,
)
from .qcfs import QCFSSpec

__all__ = ["ConversionConfig", "ConvertedModel", "convert", "convert_graph"]

_MSE_GRID = 32  # threshold candidates per octave of the "mse" search
_MSE_SAMPLES = 1 << 18  # neuron-image values the "mse" search scores (a seeded sample)
V_MAX = (1 << 23) - 1
"""Largest membrane potential of the 24-bit neuron: a threshold above it could never be met."""
_PROBE_BLOCK = 1000  # images per engine run of threshold balancing


# -- the Table 1 path -------------------------------------------------------------------------


def _state_of(model: Any) -> dict[str, np.ndarray]:
    """A private NumPy copy of ``model``'s parameters (torch module or mapping of arrays)."""
    if hasattr(model, "state_dict") and callable(model.state_dict):
        items = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    elif isinstance(model, Mapping):
        items = dict(model)
    else:
        raise ConfigError(
            "model must be a torch nn.Module (anything with state_dict()) or a "
            f"mapping of parameter arrays, got {type(model).__name__}"
        )
    return {k: np.array(v, copy=True) for k, v in items.items()}


def _infer_arch(state: Mapping[str, np.ndarray]) -> Architecture:
    """The architecture whose state-dict shapes ``state`` has."""
    channels = []
    k = 1
    while f"conv{k}.weight" in state:
        channels.append(int(np.shape(state[f"conv{k}.weight"])[0]))
        k += 1
    if not channels or "fc.weight" not in state:
        raise ModelFormatError(
            "cannot infer the architecture: the state dict needs conv1.weight "
            f"... and fc.weight; got keys {sorted(state)}; pass arch="
        )
    return Architecture.parse("-".join(map(str, [*channels, np.shape(state["fc.weight"])[0]])))


def convert(
    model: Any,
    arch: str | Architecture | None = None,
    *,
    calibration_images: np.ndarray,
    config: ConversionConfig | None = None,
    activation_scales: Mapping[str, float] | None = None,
    qcfs: QCFSSpec | None = None,
) -> ConvertedModel:
    """Convert a trained Table-1 CNN into an integer SNN with Algorithm 1 (module docstring).

    Args:
        model: a torch ``nn.Module`` of :mod:`snnfast.train` (its ``state_dict()`` is copied;
            torch is not imported here) or a mapping of NumPy arrays with the keys of
            :mod:`snnfast.ann`. Never modified. (Any other PyTorch model:
            :func:`snnfast.from_torch`.)
        arch: the architecture (``"32-64-10"`` or an :class:`Architecture`); inferred from the
            state-dict shapes when omitted.
        calibration_images: uint8 ``[N, 1, 28, 28]`` images for the rate-based pass (the
            paper's normalised input is ``images / 255``).
        config: conversion options (default: the paper's).
        activation_scales: ``lam`` of layers trained with the QCFS activation, keyed by layer
            name (``"conv1"``, ``"pool1"``, ...; :attr:`snnfast.qcfs.QCFSSpec.scales`); those
            layers get the threshold that maps ``lam`` to spike rate 1.

    Raises:
        ModelFormatError: the parameters do not fit the architecture.
        ShapeError: bad calibration images.
        ConfigError: a layer cannot be scaled, a threshold exceeds the 24-bit membrane, an
            integer parameter does not fit int16 (weights) / int32 (biases), or
            ``activation_scales`` names a layer that is not a conv or pool layer of ``arch``
            or holds a scale that is not positive.
        qcfs: the QCFS spec of a QCFS-trained model (:func:`snnfast.qcfs.load`): the ANN graph
            gets its quantised activations (the ``"ann"`` readout is then the network it was
            trained as) and each quantised layer's threshold comes from its ``lam``.
    """
    raw = _state_of(model)
    if arch is None:
        architecture = _infer_arch(raw)
    elif isinstance(arch, Architecture):
        architecture = arch
    else:
        architecture = Architecture.parse(arch)
    graph = architecture.graph(raw, qcfs=qcfs)
    allowed = [d.name for d in architecture.layers if d.kind in ("conv", "pool")]
    scales = _activation_scales(activation_scales, allowed, architecture.spec)
    return convert_graph(
        graph,
        calibration_images,
        config=config,
        activation_scales=scales,
        arch=architecture,
    )


def _activation_scales(
    scales: Mapping[str, float] | None, allowed: list[str], what: str
) -> dict[str, float]:
    """Check ``activation_scales`` against the layers that may carry one."""
    if scales is None:
        return {}
    if not isinstance(scales, Mapping):
        raise ConfigError(
            f"activation_scales must map layer names to scales, got {type(scales).__name__}"
        )
    out: dict[str, float] = {}
    for name, lam in scales.items():
        if name not in allowed:
            raise ConfigError(
                f"activation_scales: {name!r} is not a conv or pool layer of {what} "
                f"(those are {allowed})"
            )
        out[name] = _checks.number(lam, f"activation_scales[{name!r}]", 0.0, lo_open=True)
    return out


# -- Algorithm 1 on a graph -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _QLayer:
    planned: PlannedLayer
    groups: tuple[QGroup, ...]
    bias: np.ndarray  # int64, per channel or per neuron
    threshold: int


def convert_graph(
    graph: Graph,
    calibration_images: np.ndarray,
    *,
    config: ConversionConfig | None = None,
    activation_scales: Mapping[str, float] | None = None,
    arch: Architecture | None = None,
) -> ConvertedModel:
    """Convert a float graph into an integer SNN with Algorithm 1 (see the module docstring).

    Args:
        graph: the ANN (:mod:`snnfast.graph`); never modified.
        calibration_images: uint8 ``[N, C, H, W]`` images of the graph's input shape.
        config: conversion options (default: the paper's).
        activation_scales: ``lam`` of named spiking layers (QCFS), overriding the graph's own
            :class:`~snnfast.graph.Quant` scales.
        arch: the Table-1 architecture the graph was built from, if any (kept on the model).

    Raises:
        ConversionError: a node the conversion cannot express (names it and the fix).
        ShapeError: bad calibration images.
        ConfigError: a layer cannot be scaled, a threshold exceeds the 24-bit membrane, or an
            integer parameter does not fit int16 (weights) / int32 (biases).
    """
    cfg = ConversionConfig() if config is None else config
    if not isinstance(cfg, ConversionConfig):
        raise ConfigError(f"config must be a ConversionConfig, got {type(cfg).__name__}")
    if not isinstance(graph, Graph):
        raise ConfigError(f"graph must be a snnfast.graph.Graph, got {type(graph).__name__}")
    images = _calibration_input(calibration_images, graph.input_shape)
    layout = plan(graph)
    scales = dict(activation_scales or {})
    unknown = sorted(set(scales) - {p.name for p in layout.layers})
    if unknown:
        raise ConfigError(f"activation_scales names no spiking layer: {unknown}")
    w_max, b_max = cfg.w_max, cfg.b_max
    rates = Rates(images, layout, w_max)

    # input layer: dvdt = (p / 255) * W_MAX
    n_in = images.shape[0] * math.prod(graph.input_shape)
    theta_in = _threshold(cfg, rates.input_dvdt_blocks, n_in, "input layer")
    rates.set_input(theta_in)
    slopes = [w_max / theta_in]
    param_scales = [float(w_max)]
    input_threshold = max(1, int(round(theta_in * 255 / w_max)))

    done: list[_QLayer] = []
    rules: list[str] = []
    used_scales: dict[str, float] = {}
    for i, pl in enumerate(layout.layers, start=1):
        where = f"layer {i} ({pl.name})"
        s_ref = slopes[pl.groups[0].source]
        floats = [g.weight * (s_ref / slopes[g.source]) for g in pl.groups]
        bias = pl.bias * s_ref
        weight_norm = _percentile_of(
            np.concatenate([np.abs(f).reshape(-1) for f in floats]), cfg.param_percentile
        )
        bias_norm = _percentile_of(np.abs(bias).reshape(-1), cfg.param_percentile)
        ratios = [m / norm for m, norm in ((w_max, weight_norm), (b_max, bias_norm)) if norm > 0]
        if not ratios:
            raise ConfigError(f"{where}: weights and biases are all zero; it cannot be scaled")
        param_scale = min(ratios)
        qgroups = []
        for g, f in zip(pl.groups, floats):
            w_int = cfg.quantize(f * param_scale)
            if cfg.clip:
                w_int = np.clip(w_int, -w_max, w_max)
            _check_range(w_int, np.int16, "weights", where)
            qgroups.append(QGroup(g, w_int))
        b_int = cfg.quantize(bias * param_scale)
        if cfg.clip:
            b_int = np.clip(b_int, -b_max, b_max)
        _check_range(b_int, np.int32, "biases", where)
        rates.add_layer(i, tuple(qgroups), b_int)
        lam = scales.get(pl.name, pl.scale)
        if lam is not None:
            used_scales[pl.name] = float(lam)
            rules.append("scale")
            threshold = _checked_threshold(int(cfg.quantize(lam * param_scale * s_ref)), where)
        elif cfg.threshold_balancing != "none":
            rules.append(cfg.threshold_balancing)
            probe_threshold = _threshold(
                cfg, functools.partial(rates.dvdt_blocks, i), rates.count(i), where
            )
            probe = _network(
                layout,
                [*done, _QLayer(pl, tuple(qgroups), b_int, probe_threshold)],
                input_threshold,
            )
            threshold = _balanced_threshold(cfg, probe, images, where)
        else:
            rules.append("percentile")
            threshold = _threshold(
                cfg, functools.partial(rates.dvdt_blocks, i), rates.count(i), where
            )
        rates.set_threshold(i, threshold)
        slopes.append(float(s_ref * (param_scale / threshold)))
        param_scales.append(float(param_scale))
        done.append(_QLayer(pl, tuple(qgroups), b_int, threshold))

    network = _network(layout, done, input_threshold)
    calibration = CalibrationRecord(
        n_images=int(images.shape[0]),
        input_theta=int(theta_in),
        threshold_rules=tuple(rules),
        activation_scales=used_scales,
    )
    return ConvertedModel(
        network=network,
        graph=graph,
        config=cfg,
        param_scales=tuple(param_scales),
        slopes=tuple(float(s) for s in slopes),
        calibration=calibration,
        layer_names=("input", *(p.name for p in layout.layers)),
        layer_nodes=(graph.input.name, *(p.node for p in layout.layers)),
        embedding_layers=layout.embedding,
        arch=arch,
    )


def _calibration_input(images: Any, shape: tuple[int, int, int]) -> np.ndarray:
    c, h, w = shape
    want = f"a non-empty uint8 array [N, {c}, {h}, {w}]"
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        what = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise ShapeError(f"calibration_images must be {want}, got {what}")
    x = images[:, None] if images.ndim == 3 and c == 1 else images
    if x.ndim != 4 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        raise ShapeError(f"calibration_images must be {want}, got shape {images.shape}")
    return check_images(x, shape)


def _percentile_of(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


def _threshold(
    cfg: ConversionConfig, blocks: Callable[[], Iterator[np.ndarray]], n: int, where: str
) -> int:
    """``int(percentile(dvdt, activation_percentile))``, at least 1, at most the 24-bit max."""
    value = _quantiles.percentile(blocks, n, cfg.activation_percentile)
    return _checked_threshold(int(cfg.quantize(value)), where)


def _checked_threshold(theta: int, where: str) -> int:
    """``theta``, at least 1; raises above the 24-bit maximum."""
    if theta > V_MAX:
        raise ConfigError(
            f"{where}: threshold {theta} exceeds the 24-bit membrane maximum "
            f"{V_MAX}; use fewer weight bits"
        )
    return max(1, theta)


def _check_range(x: np.ndarray, dtype: type, what: str, where: str) -> None:
    info = np.iinfo(dtype)
    if x.size and (x.min() < info.min or x.max() > info.max):
        raise ConfigError(
            f"{where}: integer {what} span [{x.min()}, {x.max()}], which does not "
            f"fit {np.dtype(dtype).name}; use fewer bits"
        )


# -- threshold balancing ------------------------------------------------------------------------


def _balanced_threshold(
    cfg: ConversionConfig, probe: Network, images: np.ndarray, where: str
) -> int:
    """Threshold of ``probe``'s last layer from its input in the SNN (threshold balancing)."""
    last = probe.n_layers
    steps = int(cfg.balance_timesteps)
    theta = probe.thresholds[last]
    size = probe.sizes[last]
    n = images.shape[0] * size

    def blocks() -> Iterator[np.ndarray]:
        for s in range(0, images.shape[0], _PROBE_BLOCK):
            res = probe.run(images[s : s + _PROBE_BLOCK], steps, v_init=cfg.v_init, record=[last])
            total = res.integrated_input(last, theta).reshape(-1)
            yield np.maximum(total, 0).astype(np.float64) / steps

    if cfg.threshold_balancing == "spike-norm":
        value = _quantiles.percentile(blocks, n, cfg.balance_percentile)
        return _checked_threshold(int(cfg.quantize(value)), where)
    top = max(float(b.max()) if b.size else 0.0 for b in blocks())
    if top < 1.0:
        return 1
    if n > _MSE_SAMPLES:
        pick = np.random.default_rng(0).choice(n, _MSE_SAMPLES, replace=False)
        order = np.argsort(pick, kind="stable")
        sample = np.empty(_MSE_SAMPLES)
        at = 0
        start = 0
        for b in blocks():
            stop = start + b.size
            while at < order.size and pick[order[at]] < stop:
                sample[order[at]] = b[pick[order[at]] - start]
                at += 1
            start = stop
        u = sample
    else:
        u = np.concatenate(list(blocks()))
    total_u = u * steps
    candidates = np.unique(
        np.maximum(1, np.rint(top * 2.0 ** (-np.arange(0, 12 * _MSE_GRID) / _MSE_GRID)))
    ).astype(np.int64)
    errors = []
    for theta_c in candidates:
        v0 = math.floor(cfg.v_init * int(theta_c))
        counts = np.clip(np.floor((total_u + v0) / theta_c), 0, steps)
        errors.append(float(np.mean((theta_c * counts / steps - u) ** 2)))
    return _checked_threshold(int(candidates[int(np.argmin(errors))]), where)


# -- the spiking network ------------------------------------------------------------------------


def _network(layout: Plan, layers: list[_QLayer], input_threshold: int) -> Network:
    built = [_snn_layer(i, q) for i, q in enumerate(layers, start=1)]
    return Network(built, layout.input_shape, input_threshold)


def _snn_layer(index: int, q: _QLayer) -> Layer:
    """The engine layer of a quantised layer: the chain shorthands where they say it all."""
    th = q.threshold
    b = q.bias.astype(np.int32)
    if len(q.groups) == 1 and q.bias.ndim == 1:
        qg = q.groups[0]
        g = qg.group
        chain = g.source == index - 1 and g.offset == 0 and not g.identity
        if chain and g.kind == "conv" and g.groups == 1 and _square(g):
            return Conv2d(
                qg.weight.astype(np.int16), b, th, stride=g.stride[0], padding=g.padding[0]
            )
        if (
            chain
            and g.kind == "pool"
            and g.kernel[0] == g.kernel[1] == g.stride[0] == g.stride[1]
            and not any(g.padding)
        ):
            return AvgPool2d(kernel=g.kernel[0], weight=int(qg.weight), threshold=th)
        if chain and g.kind == "dense":
            return Dense(qg.weight.astype(np.int16), b, th)
    return _general_layer(q, b)


def _square(g: Group) -> bool:
    kh, kw = g.kernel
    sh, sw = g.stride
    t, bo, l, r = g.padding
    return kh == kw and sh == sw and t == bo == l == r


def _general_layer(q: _QLayer, bias: np.ndarray) -> Layer:
    """A layer of several synapse groups, or one the chain shorthands cannot express."""
    synapses: list[ConvSynapses | PoolSynapses | DenseSynapses] = []
    for qg in q.groups:
        g = qg.group
        if g.kind == "conv":
            synapses.append(
                ConvSynapses(
                    qg.weight.astype(np.int16),
                    stride=g.stride,
                    padding=g.padding,
                    groups=g.groups,
                    source=g.source,
                    channel_offset=g.offset,
                )
            )
        elif g.kind == "pool":
            synapses.append(
                PoolSynapses(
                    g.kernel,
                    int(qg.weight),
                    stride=g.stride,
                    padding=g.padding,
                    source=g.source,
                    channel_offset=g.offset,
                )
            )
        else:
            synapses.append(
                DenseSynapses(qg.weight.astype(np.int16), source=g.source, channel_offset=g.offset)
            )
    return SpikingLayer(synapses, q.threshold, bias=bias, name=q.planned.name)
