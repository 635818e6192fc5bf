"""The layers of an integer spiking network, and the synapse groups that feed them.

A :class:`SpikingLayer` is a population of integer neurons (one threshold, a bias per channel,
a leak) fed by one or more synapse groups, each from one earlier layer (its ``source``):

* :class:`ConvSynapses`: a convolution (rectangular kernels, strides, asymmetric zero padding,
  grouped and depthwise), weight int16 ``[O, I / groups, KH, KW]``;
* :class:`PoolSynapses`: channel-wise average pooling as synapses of one shared int16 weight;
* :class:`DenseSynapses`: all-to-all, weight int16 ``[O, I]`` over the source flattened C, H, W.

Every layer can also reset to zero instead of subtracting the threshold (``reset="zero"``) and
carry a synaptic current with its own decay ``du`` (Loihi's CUBA compartment).

A residual addition is two groups writing the same channels; a channel concatenation is groups
writing disjoint channel ranges (``channel_offset``). ``source`` is the index of an earlier
layer in the network's numbering (0 is the input layer, layer ``i`` is ``layers[i - 1]``);
``None`` means the layer just before. :class:`Conv2d`, :class:`AvgPool2d` and :class:`Dense`
are shorthands of a one-group layer (:meth:`Conv2d.as_spiking_layer`).

The objects only hold what they are given; :class:`snnfast.Network` validates them (in the
engine, with one wording) and keeps read-only copies. The neuron's rules are in
``docs/neuron.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import numpy as np

from . import _checks
from .errors import ConfigError, ShapeError

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "ConvSynapses",
    "Dense",
    "DenseSynapses",
    "Layer",
    "PoolSynapses",
    "SpikingLayer",
    "Synapses",
]

_I64 = (-(2**63), 2**63 - 1)

Pair = Union[int, tuple[int, int]]  # noqa: UP007 (a runtime alias)
Padding = Union[int, tuple[int, int], tuple[int, int, int, int]]  # noqa: UP007


def int_array(
    value: Any, name: str, where: str, dtype: type, ndim: int | None = None
) -> np.ndarray:
    """``value`` as a read-only C-contiguous copy of dtype ``dtype``.

    Checks only what the conversion needs (an integer array whose values fit ``dtype``, of
    ``ndim`` dimensions when given: the engine sees a bias flattened); a weight's rank and
    shape are the engine's to check.
    """
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"{where}: {name} must be an integer array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(
            f"{where}: {name} must have {ndim} dimension(s), got shape {tuple(arr.shape)}"
        )
    # before reading it: a broadcast view can claim terabytes it does not hold
    _checks.check_memory(arr.size * np.dtype(dtype).itemsize, f"{where}: a copy of {name}")
    info = np.iinfo(dtype)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ConfigError(
            f"{where}: {name} values must fit {np.dtype(dtype).name} "
            f"[{info.min}, {info.max}], got range [{arr.min()}, {arr.max()}]"
        )
    out: np.ndarray = np.array(arr, dtype=dtype, order="C", copy=True)
    out.flags.writeable = False
    return out


def _int(value: Any, name: str, where: str) -> int:
    """``value`` as a Python ``int`` (its range is the engine's to check)."""
    return _checks.integer(value, name, *_I64, where=where)


def _ints(value: Any, name: str, where: str, lengths: tuple[int, ...], forms: str) -> tuple:
    """An integer, or a sequence of one of ``lengths`` integers, as a tuple."""
    is_array = isinstance(value, np.ndarray) and value.ndim > 0
    if (isinstance(value, Sequence) or is_array) and not isinstance(value, (str, bytes)):
        items = tuple(_int(v, name, where) for v in value)
        if len(items) not in lengths:
            raise ConfigError(f"{where}: {name} must be {forms}, got {tuple(value)!r}")
        return items
    return (_int(value, name, where),)


def _pair(value: Any, name: str, where: str) -> tuple[int, int]:
    """``int`` or ``(a, b)`` as ``(a, b)``."""
    items = _ints(value, name, where, (1, 2), "an integer or a pair of integers")
    return (items[0], items[-1])


def _padding(value: Any, where: str) -> tuple[int, int, int, int]:
    """``p``, ``(ph, pw)`` or ``(top, bottom, left, right)`` as the four."""
    items = _ints(
        value, "padding", where, (1, 2, 4), "an integer, (ph, pw) or (top, bottom, left, right)"
    )
    if len(items) == 1:
        return (items[0],) * 4
    if len(items) == 2:
        return (items[0], items[0], items[1], items[1])
    return (items[0], items[1], items[2], items[3])


def _source(value: Any, where: str) -> int | None:
    """``None`` (the layer before) or a layer index >= 0 (its upper bound is the engine's)."""
    return None if value is None else _checks.integer(value, "source", 0, _I64[1], where=where)


RESETS = ("subtract", "zero")
DU_NONE = 4096
"""``du`` of a neuron without current memory (the default)."""


def _reset(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: reset must be one of {', '.join(map(repr, RESETS))}, got {value!r}"
        )
    return value


def short_repr(obj: Any) -> str:
    """``Name(field=value, ...)`` with arrays shown as their dtype and shape, not their values."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            text = f"<{value.dtype} {tuple(value.shape)}>"
        elif isinstance(value, tuple) and value and not isinstance(value[0], int):
            text = "(" + ", ".join(map(repr, value)) + ")"
        else:
            text = repr(value)
        parts.append(f"{f.name}={text}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _changed(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    """The fields among ``names`` that differ from their defaults, as JSON values."""
    out: dict[str, Any] = {}
    defaults = {f.name: f.default for f in dataclasses.fields(obj)}
    for name in names:
        value = getattr(obj, name)
        if value != defaults[name]:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


# -- synapse groups -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConvSynapses:
    """Convolution synapses: weight int16 ``[O, I / groups, KH, KW]`` (PyTorch order).

    ``stride`` is ``s`` or ``(sh, sw)``; ``padding`` is ``p``, ``(ph, pw)`` or
    ``(top, bottom, left, right)`` (asymmetric, as PyTorch's ``"same"`` needs for even
    kernels); zero padding has no synapses. ``groups`` divides both channel counts
    (depthwise: ``groups == I``); dilation is 1. Output ``(H + top + bottom - KH) // sh + 1``
    by ``(W + left + right - KW) // sw + 1``, channels ``channel_offset .. channel_offset + O``
    of the layer.
    """

    weight: np.ndarray
    stride: Pair = 1
    padding: Padding = 0
    groups: int = 1
    source: int | None = None
    channel_offset: int = 0

    kind: ClassVar[str] = "conv"

    def __repr__(self) -> str:
        return short_repr(self)

    def validated(self, where: str) -> ConvSynapses:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        return ConvSynapses(
            int_array(self.weight, "weight", where, np.int16),
            _pair(self.stride, "stride", where),
            _padding(self.padding, where),
            _int(self.groups, "groups", where),
            _source(self.source, where),
            _int(self.channel_offset, "channel_offset", where),
        )

    def engine_spec(self) -> dict[str, Any]:
        """The plain dict the Rust core takes for this group."""
        return _group_spec(
            self,
            weight=self.weight,
            stride=_pair(self.stride, "stride", ""),
            padding=_padding(self.padding, ""),
            groups=self.groups,
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        names = ("stride", "padding", "groups", "source", "channel_offset")
        return {"kind": self.kind, **_changed(self, names)}


@dataclass(frozen=True, eq=False)
class PoolSynapses:
    """Channel-wise average pooling as synapses that all have the one int16 ``weight``.

    ``kernel`` is ``k`` or ``(kh, kw)``; ``stride`` defaults to the kernel; ``padding`` as in
    :class:`ConvSynapses` (zero padding has no synapses, as PyTorch's ``AvgPool2d`` with
    ``count_include_pad=True`` divides by the whole window). Output size as PyTorch's
    ``AvgPool2d`` (floor mode); the source's channels land on ``channel_offset ..`` of the
    layer.
    """

    kernel: Pair
    weight: int
    stride: Pair | None = None
    padding: Padding = 0
    source: int | None = None
    channel_offset: int = 0

    kind: ClassVar[str] = "pool"

    def __repr__(self) -> str:
        return short_repr(self)

    def validated(self, where: str) -> PoolSynapses:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        kernel = _pair(self.kernel, "kernel", where)
        return PoolSynapses(
            kernel,
            _int(self.weight, "weight", where),
            kernel if self.stride is None else _pair(self.stride, "stride", where),
            _padding(self.padding, where),
            _source(self.source, where),
            _int(self.channel_offset, "channel_offset", where),
        )

    def engine_spec(self) -> dict[str, Any]:
        """The plain dict the Rust core takes for this group."""
        kernel = _pair(self.kernel, "kernel", "")
        return _group_spec(
            self,
            pool_weight=self.weight,
            kernel=kernel,
            stride=kernel if self.stride is None else _pair(self.stride, "stride", ""),
            padding=_padding(self.padding, ""),
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        names = ("stride", "padding", "source", "channel_offset")
        out = {"kind": self.kind, "kernel": list(_pair(self.kernel, "kernel", ""))}
        return {**out, "weight": self.weight, **_changed(self, names)}


@dataclass(frozen=True, eq=False)
class DenseSynapses:
    """All-to-all synapses: weight int16 ``[O, I]``, ``I`` the source's neurons flattened in
    C, H, W order; they land on channels ``channel_offset .. channel_offset + O`` of an
    ``(O,)``-shaped layer."""

    weight: np.ndarray
    source: int | None = None
    channel_offset: int = 0

    kind: ClassVar[str] = "dense"

    def __repr__(self) -> str:
        return short_repr(self)

    def validated(self, where: str) -> DenseSynapses:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        return DenseSynapses(
            int_array(self.weight, "weight", where, np.int16),
            _source(self.source, where),
            _int(self.channel_offset, "channel_offset", where),
        )

    def engine_spec(self) -> dict[str, Any]:
        """The plain dict the Rust core takes for this group."""
        return _group_spec(self, weight=self.weight)

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        return {"kind": self.kind, **_changed(self, ("source", "channel_offset"))}


Synapses = Union[ConvSynapses, PoolSynapses, DenseSynapses]  # noqa: UP007 (a runtime alias)
SYNAPSE_KINDS: dict[str, type] = {
    "conv": ConvSynapses,
    "pool": PoolSynapses,
    "dense": DenseSynapses,
}


def _group_spec(group: Synapses, **given: Any) -> dict[str, Any]:
    """The dict the engine takes for one group (every key present)."""
    spec: dict[str, Any] = {
        "kind": group.kind,
        "source": -1 if group.source is None else group.source,
        "channel_offset": group.channel_offset,
        "weight": None,
        "pool_weight": 0,
        "kernel": (1, 1),
        "stride": (1, 1),
        "padding": (0, 0, 0, 0),
        "groups": 1,
    }
    spec.update(given)
    return spec


# -- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SpikingLayer:
    """A population of integer neurons fed by one or more synapse groups.

    Args:
        synapses: the groups (:class:`ConvSynapses`, :class:`PoolSynapses`,
            :class:`DenseSynapses`), or one group. Every group must agree on the output
            ``H, W`` (dense groups make an ``(O,)`` layer); the layer's channel count is the
            largest ``channel_offset + channels`` of its groups.
        threshold: ``theta >= 1``.
        bias: int32, one per channel ``[C]``, or one per neuron shaped like the layer
            ``[C, H, W]`` (e.g. an input normalisation folded into a zero-padded first
            convolution); ``None`` is zeros.
        leak: ``dv`` in ``0..4096``.
        name: what to call the layer in messages (default ``"spiking"``).
        reset: after a spike, ``"subtract"`` the threshold (the default) or reset to
            ``"zero"`` (as Loihi does).
        du: the decay of a synaptic current in ``0..4096`` (Loihi's CUBA compartment: the
            current keeps ``1 - du / 4096`` of itself each step); the default 4096 means no
            current memory, the input goes straight to the potential.
    """

    synapses: Sequence[Synapses] | Synapses
    threshold: int
    bias: np.ndarray | None = None
    leak: int = 0
    name: str | None = None
    reset: str = field(default="subtract", kw_only=True)
    du: int = field(default=DU_NONE, kw_only=True)

    kind: ClassVar[str] = "spiking"

    def __repr__(self) -> str:
        return short_repr(self)

    @property
    def groups(self) -> tuple[Synapses, ...]:
        """The synapse groups, as a tuple."""
        if isinstance(self.synapses, (ConvSynapses, PoolSynapses, DenseSynapses)):
            return (self.synapses,)
        return tuple(self.synapses)

    @property
    def label(self) -> str:
        """What messages call the layer."""
        return self.name or self.kind

    def as_spiking_layer(self) -> SpikingLayer:
        """This layer."""
        return self

    def validated(self, where: str) -> SpikingLayer:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        groups = self.synapses
        if isinstance(groups, (str, bytes)) or not isinstance(
            groups, (Sequence, ConvSynapses, PoolSynapses, DenseSynapses)
        ):
            raise ConfigError(
                f"{where}: synapses must be a synapse group or a list of them, "
                f"got {type(groups).__name__}"
            )
        checked = []
        for j, g in enumerate(self.groups, start=1):
            if not isinstance(g, (ConvSynapses, PoolSynapses, DenseSynapses)):
                raise ConfigError(
                    f"{where}: synapse group {j} must be ConvSynapses, PoolSynapses or "
                    f"DenseSynapses, got {type(g).__name__}"
                )
            checked.append(g.validated(f"{where}, group {j}" if len(self.groups) > 1 else where))
        if self.name is not None and not isinstance(self.name, str):
            raise ConfigError(f"{where}: name must be a string, got {self.name!r}")
        return SpikingLayer(
            tuple(checked),
            _int(self.threshold, "threshold", where),
            None if self.bias is None else int_array(self.bias, "bias", where, np.int32),
            _int(self.leak, "leak", where),
            self.name,
            reset=_reset(self.reset, where),
            du=_int(self.du, "du", where),
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        out: dict[str, Any] = {
            "threshold": self.threshold,
            "leak": self.leak,
            "synapses": [g.params() for g in self.groups],
        }
        return {**out, **_changed(self, ("name", "reset", "du"))}


def _neuron(layer: Any, groups: Sequence[Synapses], bias: np.ndarray | None) -> SpikingLayer:
    return SpikingLayer(
        tuple(groups), layer.threshold, bias, layer.leak, reset=layer.reset, du=layer.du
    )


@dataclass(frozen=True, eq=False)
class Conv2d:
    """Convolution layer: ``weight`` int16 ``[O, I / groups, KH, KW]`` (PyTorch order),
    ``bias`` int32 ``[O]``; a :class:`SpikingLayer` of one :class:`ConvSynapses`.

    Zero padding has no synapses; the output size is the one PyTorch computes:
    ``(H + 2 * padding - KH) // stride + 1`` by ``(W + 2 * padding - KW) // stride + 1``.
    Per-axis strides and asymmetric padding: :class:`ConvSynapses` in a :class:`SpikingLayer`.
    """

    weight: np.ndarray
    bias: np.ndarray
    threshold: int
    stride: int = 1
    padding: int = 0
    leak: int = 0
    groups: int = field(default=1, kw_only=True)
    source: int | None = field(default=None, kw_only=True)
    reset: str = field(default="subtract", kw_only=True)
    du: int = field(default=DU_NONE, kw_only=True)

    kind: ClassVar[str] = "conv2d"

    def __repr__(self) -> str:
        return short_repr(self)

    def as_spiking_layer(self) -> SpikingLayer:
        """The same layer as a :class:`SpikingLayer`."""
        syn = ConvSynapses(self.weight, self.stride, self.padding, self.groups, self.source)
        return _neuron(self, [syn], self.bias)

    def validated(self, where: str) -> Conv2d:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        return Conv2d(
            int_array(self.weight, "weight", where, np.int16),
            int_array(self.bias, "bias", where, np.int32, ndim=1),
            _int(self.threshold, "threshold", where),
            _int(self.stride, "stride", where),
            _int(self.padding, "padding", where),
            _int(self.leak, "leak", where),
            groups=_int(self.groups, "groups", where),
            source=_source(self.source, where),
            reset=_reset(self.reset, where),
            du=_int(self.du, "du", where),
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        out = {
            "threshold": self.threshold,
            "stride": self.stride,
            "padding": self.padding,
            "leak": self.leak,
        }
        return {**out, **_changed(self, ("groups", "source", "reset", "du"))}


@dataclass(frozen=True, eq=False)
class AvgPool2d:
    """Average pooling as a spiking layer: ``kernel x kernel`` windows (stride ``kernel``
    unless given), channel-wise, every synapse of the same integer ``weight``, no bias; a
    :class:`SpikingLayer` of one :class:`PoolSynapses`.

    Output size as PyTorch's ``AvgPool2d``: with the default stride and no padding,
    ``floor(H / kernel) x floor(W / kernel)``; rows and columns that fit no window have no
    synapse. Rectangular windows and asymmetric padding: :class:`PoolSynapses`.
    """

    kernel: int
    weight: int
    threshold: int
    leak: int = 0
    stride: int | None = field(default=None, kw_only=True)
    padding: int = field(default=0, kw_only=True)
    source: int | None = field(default=None, kw_only=True)
    reset: str = field(default="subtract", kw_only=True)
    du: int = field(default=DU_NONE, kw_only=True)

    kind: ClassVar[str] = "avgpool2d"

    def __repr__(self) -> str:
        return short_repr(self)

    def as_spiking_layer(self) -> SpikingLayer:
        """The same layer as a :class:`SpikingLayer`."""
        syn = PoolSynapses(self.kernel, self.weight, self.stride, self.padding, self.source)
        return _neuron(self, [syn], None)

    def validated(self, where: str) -> AvgPool2d:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        return AvgPool2d(
            _int(self.kernel, "kernel", where),
            _int(self.weight, "weight", where),
            _int(self.threshold, "threshold", where),
            _int(self.leak, "leak", where),
            stride=None if self.stride is None else _int(self.stride, "stride", where),
            padding=_int(self.padding, "padding", where),
            source=_source(self.source, where),
            reset=_reset(self.reset, where),
            du=_int(self.du, "du", where),
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        out = {
            "kernel": self.kernel,
            "weight": self.weight,
            "threshold": self.threshold,
            "leak": self.leak,
        }
        return {**out, **_changed(self, ("stride", "padding", "source", "reset", "du"))}


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected layer: ``weight`` int16 ``[O, I]``, ``bias`` int32 ``[O]``; a
    :class:`SpikingLayer` of one :class:`DenseSynapses`.

    Its input is the previous (or ``source``) layer flattened in C, H, W order.
    """

    weight: np.ndarray
    bias: np.ndarray
    threshold: int
    leak: int = 0
    source: int | None = field(default=None, kw_only=True)
    reset: str = field(default="subtract", kw_only=True)
    du: int = field(default=DU_NONE, kw_only=True)

    kind: ClassVar[str] = "dense"

    def __repr__(self) -> str:
        return short_repr(self)

    def as_spiking_layer(self) -> SpikingLayer:
        """The same layer as a :class:`SpikingLayer`."""
        return _neuron(self, [DenseSynapses(self.weight, self.source)], self.bias)

    def validated(self, where: str) -> Dense:
        """A checked copy (arrays converted and read-only); ``where`` names it in errors."""
        return Dense(
            int_array(self.weight, "weight", where, np.int16),
            int_array(self.bias, "bias", where, np.int32, ndim=1),
            _int(self.threshold, "threshold", where),
            _int(self.leak, "leak", where),
            source=_source(self.source, where),
            reset=_reset(self.reset, where),
            du=_int(self.du, "du", where),
        )

    def params(self) -> dict[str, Any]:
        """The JSON parameters a network file stores (its arrays apart)."""
        out = {"threshold": self.threshold, "leak": self.leak}
        return {**out, **_changed(self, ("source", "reset", "du"))}


Layer = Union[Conv2d, AvgPool2d, Dense, SpikingLayer]  # noqa: UP007 (a runtime alias)
LAYER_KINDS: dict[str, type] = {
    "conv2d": Conv2d,
    "avgpool2d": AvgPool2d,
    "dense": Dense,
    "spiking": SpikingLayer,
}
