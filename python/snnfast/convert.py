"""ANN → integer SNN conversion: the paper's Algorithm 1 (Liu et al. 2022; Lin et al. 2018).

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
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import ann
from .ann import Architecture, LayerDesc
from .errors import ConfigError, ModelFormatError, ShapeError
from .network import AvgPool2d, Conv2d, Dense, Layer, Network
from .settings import RunSettings

__all__ = ["ConversionConfig", "ConvertedModel", "convert"]

ROUNDINGS = ("truncate", "round")
BALANCINGS = ("none", "spike-norm", "mse")
_MSE_GRID = 32  # threshold candidates per octave of the "mse" search
_MSE_SAMPLES = 1 << 18  # neuron-image values the "mse" search scores (a seeded sample)
V_MAX = (1 << 23) - 1
"""Largest membrane potential of the 24-bit neuron: a threshold above it could never be met."""
_CALIB_BATCH = 250  # images per block of the rate-based pass (bounds the im2col buffer)
_FORMAT = "snnfast.converted"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ConversionConfig:
    """Options of Algorithm 1; the defaults are the paper's.

    Attributes:
        num_weight_bits: weight bits including sign: ``W_MAX = 2**(bits - 1) - 1`` (2..16).
        num_bias_bits: bias bits including sign: ``b_MAX = 2**(bits - 1) - 1`` (2..24).
        param_percentile: percentile of ``|weight|`` and ``|bias|`` mapped to ``W_MAX``/``b_MAX``.
        activation_percentile: percentile of the layer's ``dvdt`` taken as its threshold.
        rounding: ``"truncate"`` (the paper's ``int()``) or ``"round"`` (half to even).
        clip: saturate the integer weights/biases to ``±W_MAX``/``±b_MAX`` (not in the paper).
        v_init: initial potential fraction in [0, 1) the network is meant to run with
            (:attr:`ConvertedModel.run_settings`; threshold balancing calibrates with it).
        threshold_balancing: ``"none"`` (Algorithm 1), ``"spike-norm"`` or ``"mse"`` (see the
            module docstring).
        balance_timesteps: time steps of the calibration runs of threshold balancing.
        balance_percentile: the percentile of ``"spike-norm"``.
    """

    num_weight_bits: int = 9
    num_bias_bits: int = 9
    param_percentile: float = 99.999
    activation_percentile: float = 99.999
    rounding: str = "truncate"
    clip: bool = False
    v_init: float = 0.0
    threshold_balancing: str = "none"
    balance_timesteps: int = 8
    balance_percentile: float = 99.9

    def __post_init__(self) -> None:
        for name, lo, hi in (("num_weight_bits", 2, 16), ("num_bias_bits", 2, 24)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not (lo <= value <= hi)
            ):
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
        for name in ("param_percentile", "activation_percentile", "balance_percentile"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not (0.0 < float(value) <= 100.0)
            ):
                raise ConfigError(f"{name} must be a number in (0, 100], got {value!r}")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ConfigError(f"clip must be True or False, got {self.clip!r}")
        if (
            isinstance(self.v_init, bool)
            or not isinstance(self.v_init, (int, float, np.number))
            or not 0.0 <= float(self.v_init) < 1.0
        ):
            raise ConfigError(f"v_init must be a number in [0, 1), got {self.v_init!r}")
        if self.threshold_balancing not in BALANCINGS:
            raise ConfigError(
                f"threshold_balancing must be one of {BALANCINGS}, got {self.threshold_balancing!r}"
            )
        t = self.balance_timesteps
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= 1 << 16:
            raise ConfigError(f"balance_timesteps must be an integer in [1, 65536], got {t!r}")

    @property
    def w_max(self) -> int:
        """``W_MAX = 2**(num_weight_bits - 1) - 1``."""
        return (1 << (self.num_weight_bits - 1)) - 1

    @property
    def b_max(self) -> int:
        """``b_MAX = 2**(num_bias_bits - 1) - 1``."""
        return (1 << (self.num_bias_bits - 1)) - 1

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """The algorithm's ``int()``: truncation toward zero, or rounding (int64)."""
        y = np.trunc(x) if self.rounding == "truncate" else np.rint(x)
        return np.asarray(y).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ConvertedModel:
    """An ANN and the integer SNN Algorithm 1 made of it.

    SNN layer ``l`` (1-based; 0 is the input layer) is ``arch.layers[l - 1]``.

    Attributes:
        network: the integer spiking network.
        arch: the ANN architecture.
        ann_state: float32 copy of the ANN's parameters (for the ``"ann"`` readout).
        config: the conversion options used.
        param_scales: ``param_scale`` of each layer, input first.
        slopes: ``slope`` after each layer, input first (SNN rate / ANN activation).
        calibration: facts about the calibration: ``n_images``, ``input_theta`` (the
            algorithm's ``theta_0``, before mapping to the network's ``input_threshold``),
            ``threshold_rules`` (how each layer's threshold was set: ``"percentile"``,
            ``"spike-norm"``, ``"mse"`` or ``"scale"``) and, when given,
            ``activation_scales``.
    """

    network: Network
    arch: Architecture
    ann_state: Mapping[str, np.ndarray]
    config: ConversionConfig
    param_scales: tuple[float, ...]
    slopes: tuple[float, ...]
    calibration: Mapping[str, Any] = field(default_factory=dict)

    @property
    def thresholds(self) -> list[int]:
        """Threshold of each SNN layer, input first (the input's is ``input_threshold``)."""
        return self.network.thresholds

    @property
    def settings(self) -> RunSettings:
        """The :class:`~snnfast.settings.RunSettings` the model was converted for (its
        ``v_init``; the other fields at their defaults)."""
        return RunSettings(v_init=float(self.config.v_init))

    @property
    def run_settings(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`snnfast.Network.run` (and :func:`snnfast.embed.embed`)
        the model was converted for: ``{"v_init": config.v_init}``."""
        return {"v_init": float(self.config.v_init)}

    @property
    def embedding_layer(self) -> int:
        """SNN layer index of the embedding (the layer before the output)."""
        return self.arch.embedding_layer + 1

    @property
    def output_layer(self) -> int:
        """SNN layer index of the output layer."""
        return len(self.arch.layers)

    def model_id(self) -> str:
        """A stable 16-hex-digit hash of the network, its ANN and the conversion settings.

        Equal for a model and its saved-and-loaded copy, on any machine.
        """
        h = hashlib.sha256()
        net = self.network
        h.update(
            json.dumps(
                {
                    "arch": self.arch.spec,
                    "input_shape": list(net.input_shape),
                    "input_threshold": net.input_threshold,
                    "layers": [{"kind": layer.kind, **layer._params()} for layer in net.layers],
                },
                sort_keys=True,
            ).encode()
        )
        arrays: list[np.ndarray] = []
        for layer in net.layers:
            if isinstance(layer, (Conv2d, Dense)):
                arrays += [layer.weight, layer.bias]
        arrays += [self.ann_state[k] for k in sorted(self.ann_state)]
        for a in arrays:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one ``.npz`` file, atomically (no pickle).

        The network's integer arrays go in as :meth:`Network.save` writes them; the ANN state
        (raw little-endian float32, base64) and the conversion record go in its JSON metadata.
        """
        record = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "arch": self.arch.spec,
            "config": asdict(self.config),
            "param_scales": list(self.param_scales),
            "slopes": list(self.slopes),
            "calibration": dict(self.calibration),
            "ann_state": {k: _encode_array(v) for k, v in sorted(self.ann_state.items())},
        }
        self.network.save(path, metadata={_FORMAT: record})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ConvertedModel:
        """Read a model written by :meth:`save`.

        Raises:
            ModelFormatError: the file is missing, damaged, or not a converted model.
        """
        net, metadata = Network.load(path)
        record = metadata.get(_FORMAT)
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise ModelFormatError(f"{path} is a network file without a conversion record")
        if record.get("version") != _FORMAT_VERSION:
            raise ModelFormatError(
                f"{path} has conversion record version "
                f"{record.get('version')}, this snnfast reads {_FORMAT_VERSION}"
            )
        try:
            arch = Architecture.parse(record["arch"])
            state = ann.check_state(
                arch, {k: _decode_array(v) for k, v in record["ann_state"].items()}
            )
            model = cls(
                net,
                arch,
                state,
                ConversionConfig(**record["config"]),
                tuple(float(x) for x in record["param_scales"]),
                tuple(float(x) for x in record["slopes"]),
                dict(record["calibration"]),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ModelFormatError(f"{path}: conversion record is damaged ({exc})") from exc
        _check_matches(model, str(path))
        return model


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dtype": "<f4", "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _decode_array(d: Mapping[str, Any]) -> np.ndarray:
    if d["dtype"] != "<f4":
        raise ValueError(f"unsupported dtype {d['dtype']!r}")
    raw = base64.b64decode(d["data"], validate=True)
    return np.frombuffer(raw, dtype="<f4").reshape(d["shape"]).astype(np.float32)


def _check_matches(model: ConvertedModel, where: str) -> None:
    """The network's layers must be the architecture's, in kind and shape."""
    kinds = {"conv": "conv2d", "pool": "avgpool2d", "dense": "dense"}
    net = model.network
    descs = model.arch.layers
    if len(descs) != net.n_layers or any(
        kinds[d.kind] != layer.kind or tuple(d.out_shape) != tuple(s)
        for d, layer, s in zip(descs, net.layers, net.shapes[1:])
    ):
        raise ModelFormatError(
            f"{where}: network layers do not match architecture {model.arch.spec}"
        )


# -- Algorithm 1 ------------------------------------------------------------------------------


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


def _ann_params(desc: LayerDesc, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The ANN layer's float64 weight and per-channel bias; pooling: ``1 / k**2`` and zeros."""
    if desc.kind == "pool":
        return (np.array(1.0 / desc.kernel**2), np.zeros(desc.out_shape[0]))
    name = "fc" if desc.kind == "dense" else desc.name
    return (state[f"{name}.weight"].astype(np.float64), state[f"{name}.bias"].astype(np.float64))


def _percentile(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


def _dvdt(desc: LayerDesc, weight: np.ndarray, bias: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``ReLU(weight * rate + bias)`` of one layer over the calibration batch, in float64."""
    if desc.kind == "pool":
        n, c, _, _ = rate.shape
        k = desc.kernel
        ho, wo = desc.out_shape[1], desc.out_shape[2]
        windows = rate[:, :, : ho * k, : wo * k].reshape(n, c, ho, k, wo, k)
        return np.maximum(float(weight) * windows.sum(axis=(3, 5)), 0.0)
    if desc.kind == "dense":
        z = rate.reshape(rate.shape[0], -1) @ weight.T.astype(np.float64) + bias
        return np.maximum(z, 0.0)
    weight = weight.astype(np.float64)
    parts = [
        ann.conv_relu(
            rate[s : s + _CALIB_BATCH].transpose(0, 2, 3, 1), weight, bias, desc.padding
        ).transpose(0, 3, 1, 2)
        for s in range(0, rate.shape[0], _CALIB_BATCH)
    ]
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def _calibration_input(images: Any) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        what = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise ShapeError(f"calibration_images must be a uint8 array [N, 1, 28, 28], got {what}")
    c, h, w = ann.INPUT_SHAPE
    x = images[:, None] if images.ndim == 3 else images
    if x.ndim != 4 or tuple(x.shape[1:]) != ann.INPUT_SHAPE or x.shape[0] == 0:
        raise ShapeError(
            f"calibration_images must be a non-empty [N, {c}, {h}, {w}] uint8 "
            f"array, got shape {images.shape}"
        )
    return x


def convert(
    model: Any,
    arch: str | Architecture | None = None,
    *,
    calibration_images: np.ndarray,
    config: ConversionConfig | None = None,
    activation_scales: Mapping[str, float] | None = None,
) -> ConvertedModel:
    """Convert a trained CNN into an integer SNN with Algorithm 1 (see the module docstring).

    Args:
        model: a torch ``nn.Module`` (its ``state_dict()`` is copied; torch is not imported
            here) or a mapping of NumPy arrays with the keys of :mod:`snnfast.ann`. Never
            modified.
        arch: the architecture (``"32-64-10"`` or an :class:`Architecture`); inferred from the
            state-dict shapes when omitted.
        calibration_images: uint8 ``[N, 1, 28, 28]`` images for the rate-based pass (the
            paper's normalised input is ``images / 255``).
        config: conversion options (default: the paper's).
        activation_scales: ``lam`` of layers trained with the QCFS activation, keyed by layer
            name (``"conv1"``, ``"pool1"``, ...; :attr:`snnfast.qcfs.QCFSSpec.scales`); those
            layers get the threshold that maps ``lam`` to spike rate 1.

    Returns:
        The :class:`ConvertedModel`.

    Raises:
        ModelFormatError: the parameters do not fit the architecture.
        ShapeError: bad calibration images.
        ConfigError: a layer cannot be scaled, a threshold exceeds the 24-bit membrane, an
            integer parameter does not fit int16 (weights) / int32 (biases), or
            ``activation_scales`` names a layer that is not a conv or pool layer of ``arch``
            or holds a scale that is not positive.
    """
    cfg = ConversionConfig() if config is None else config
    if not isinstance(cfg, ConversionConfig):
        raise ConfigError(f"config must be a ConversionConfig, got {type(cfg).__name__}")
    raw = _state_of(model)
    if arch is None:
        architecture = _infer_arch(raw)
    elif isinstance(arch, Architecture):
        architecture = arch
    else:
        architecture = Architecture.parse(arch)
    state = ann.check_state(architecture, raw)  # raw is already our own copy
    images = _calibration_input(calibration_images)
    scales = _activation_scales(activation_scales, architecture)
    w_max, b_max = cfg.w_max, cfg.b_max

    # input layer: dvdt = (p / 255) * W_MAX
    dvdt = images.astype(np.float64) * (w_max / 255.0)
    param_scales = [float(w_max)]
    theta_in = _threshold(cfg, dvdt, "input layer")
    rate = np.minimum(dvdt / theta_in, 1.0)
    slope = w_max / theta_in
    slopes = [slope]
    input_threshold = max(1, int(round(theta_in * 255 / w_max)))

    layers: list[Layer] = []
    rules: list[str] = []
    for i, desc in enumerate(architecture.layers, start=1):
        where = f"layer {i} ({desc.name})"
        weight, bias = _ann_params(desc, state)
        bias = bias * slope
        weight_norm = _percentile(np.abs(weight), cfg.param_percentile)
        bias_norm = _percentile(np.abs(bias), cfg.param_percentile)
        ratios = [m / norm for m, norm in ((w_max, weight_norm), (b_max, bias_norm)) if norm > 0]
        if not ratios:
            raise ConfigError(f"{where}: weights and biases are all zero; it cannot be scaled")
        param_scale = min(ratios)
        w_int = cfg.quantize(weight * param_scale)
        b_int = cfg.quantize(bias * param_scale)
        if cfg.clip:
            w_int = np.clip(w_int, -w_max, w_max)
            b_int = np.clip(b_int, -b_max, b_max)
        _check_range(w_int, np.int16, "weights", where)
        _check_range(b_int, np.int32, "biases", where)
        dvdt = _dvdt(desc, w_int, b_int, rate)
        threshold = _threshold(cfg, dvdt, where)
        if desc.name in scales:
            rules.append("scale")
            threshold = _checked_threshold(
                int(cfg.quantize(scales[desc.name] * param_scale * slope)), where
            )
        elif cfg.threshold_balancing != "none":
            rules.append(cfg.threshold_balancing)
            probe = Network(
                [*layers, _snn_layer(desc, w_int, b_int, threshold)],
                ann.INPUT_SHAPE,
                input_threshold,
            )
            threshold = _balanced_threshold(cfg, probe, images, where)
        else:
            rules.append("percentile")
        rate = np.minimum(dvdt / threshold, 1.0)
        slope *= param_scale / threshold
        param_scales.append(float(param_scale))
        slopes.append(float(slope))
        layers.append(_snn_layer(desc, w_int, b_int, threshold))

    network = Network(layers, ann.INPUT_SHAPE, input_threshold)
    calibration: dict[str, Any] = {
        "n_images": int(images.shape[0]),
        "input_theta": theta_in,
        "threshold_rules": rules,
    }
    if scales:
        calibration["activation_scales"] = scales
    return ConvertedModel(
        network, architecture, state, cfg, tuple(param_scales), tuple(slopes), calibration
    )


def _activation_scales(scales: Mapping[str, float] | None, arch: Architecture) -> dict[str, float]:
    """Check ``activation_scales`` against the conv and pool layers of ``arch``."""
    if scales is None:
        return {}
    if not isinstance(scales, Mapping):
        raise ConfigError(
            f"activation_scales must map layer names to scales, got {type(scales).__name__}"
        )
    allowed = [d.name for d in arch.layers if d.kind in ("conv", "pool")]
    out: dict[str, float] = {}
    for name, lam in scales.items():
        if name not in allowed:
            raise ConfigError(
                f"activation_scales: {name!r} is not a conv or pool layer of "
                f"{arch.spec} (those are {allowed})"
            )
        if (
            isinstance(lam, bool)
            or not isinstance(lam, (int, float, np.number))
            or not (math.isfinite(float(lam)) and float(lam) > 0)
        ):
            raise ConfigError(f"activation_scales[{name!r}] must be a positive number, got {lam!r}")
        out[name] = float(lam)
    return out


def _balanced_threshold(
    cfg: ConversionConfig, probe: Network, images: np.ndarray, where: str
) -> int:
    """Threshold of ``probe``'s last layer from its input in the SNN (threshold balancing)."""
    last = probe.n_layers
    steps = int(cfg.balance_timesteps)
    res = probe.run(images, steps, v_init=cfg.v_init, record=[last])
    total = res.integrated_input(last, probe.thresholds[last]).reshape(-1)
    u = np.maximum(total, 0).astype(np.float64) / steps
    if cfg.threshold_balancing == "spike-norm":
        return _checked_threshold(int(cfg.quantize(_percentile(u, cfg.balance_percentile))), where)
    top = float(u.max()) if u.size else 0.0
    if top < 1.0:
        return 1
    if u.size > _MSE_SAMPLES:
        u = np.random.default_rng(0).choice(u, _MSE_SAMPLES, replace=False)
    total_u = u * steps
    candidates = np.unique(
        np.maximum(1, np.rint(top * 2.0 ** (-np.arange(0, 12 * _MSE_GRID) / _MSE_GRID)))
    ).astype(np.int64)
    errors = []
    for theta in candidates:
        v0 = math.floor(cfg.v_init * int(theta))
        counts = np.clip(np.floor((total_u + v0) / theta), 0, steps)
        errors.append(float(np.mean((theta * counts / steps - u) ** 2)))
    return _checked_threshold(int(candidates[int(np.argmin(errors))]), where)


def _threshold(cfg: ConversionConfig, dvdt: np.ndarray, where: str) -> int:
    """``int(percentile(dvdt, activation_percentile))``, at least 1, at most the 24-bit max."""
    return _checked_threshold(
        int(cfg.quantize(_percentile(dvdt, cfg.activation_percentile))), where
    )


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


def _snn_layer(desc: LayerDesc, w: np.ndarray, b: np.ndarray, threshold: int) -> Layer:
    if desc.kind == "conv":
        return Conv2d(
            w.astype(np.int16),
            b.astype(np.int32),
            threshold,
            stride=desc.stride,
            padding=desc.padding,
        )
    if desc.kind == "pool":
        return AvgPool2d(kernel=desc.kernel, weight=int(w), threshold=threshold)
    return Dense(w.astype(np.int16), b.astype(np.int32), threshold)
