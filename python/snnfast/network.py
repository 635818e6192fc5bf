"""The integer spiking network: the network, its geometry, its file, and its run results.

This is the engine contract of ``docs/neuron.md``. Every hidden layer ``l`` has integer weights
(int16), an integer bias per output channel or per neuron (int32), one threshold
``theta_l > 0`` and a leak ``dv_l`` in ``0..4096``. For each time step ``t = 1..T`` and each
layer in order::

    z    = b + sum_j W[i, j] * s_src[j](t - d)       # d = delay, 0 or 1; s(0) = 0
    v    = v - sign(v) * ((|v| * dv) >> 12)           # leak, truncating toward zero
    v    = saturate_24bit(v + z)                      # [-2**23, 2**23 - 1]
    s(t) = 1 if v >= theta else 0
    v    = v - theta * s(t)                           # soft reset

where the sum runs over the layer's synapse groups, each from its source layer
(:mod:`snnfast.layers`). A layer may instead reset to zero (``reset="zero"``) and carry a
synaptic current with its own decay ``du`` (Loihi's CUBA compartment; ``docs/neuron.md``).
Layer 0 is the input layer: one neuron per pixel, bias = pixel value, threshold
``input_threshold``. Potentials start at ``floor(v_init * theta_l)``.

The simulation runs in the Rust core (:mod:`snnfast._core`), event-driven: only spikes cause
synaptic work. Results are bit-exact for every batch size, thread count and kernel set.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks, _container, _core
from ._records import Record
from .errors import ConfigError, ModelFormatError, ShapeError
from .layers import (
    LAYER_KINDS,
    SYNAPSE_KINDS,
    AvgPool2d,
    Conv2d,
    ConvSynapses,
    Dense,
    DenseSynapses,
    Layer,
    PoolSynapses,
    SpikingLayer,
)
from .settings import MAX_TIMESTEPS

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "ConvSynapses",
    "Dense",
    "DenseSynapses",
    "GroupGeometry",
    "Layer",
    "Network",
    "PoolSynapses",
    "RunResult",
    "SpikingLayer",
]

FORMAT = "network"
FORMAT_VERSION = 2
"""Version 2: the checksummed container (:mod:`snnfast._container`), layer graphs. Version 1
files (chains, unchecked) still load."""
_LAYER_CLASSES = (Conv2d, AvgPool2d, Dense, SpikingLayer)

_limit_cache: tuple[float, str | None, int] = (-math.inf, None, 0)


def _memory_limit() -> int:
    """:func:`snnfast._checks.memory_limit`, read again at most once a second (it reads
    ``/proc/meminfo``, which would cost a batch-1 run several percent) or when
    ``$SNNFAST_MEMORY_LIMIT`` changes."""
    global _limit_cache
    env = os.environ.get(_checks.MEMORY_ENV)
    now = time.monotonic()
    when, seen, limit = _limit_cache
    if env != seen or now - when > 1.0:
        limit = _checks.memory_limit()
        _limit_cache = (now, env, limit)
    return limit


def _int_in(value: Any, name: str, lo: int, hi: int, where: str) -> int:
    """:func:`snnfast._checks.integer` with a fast path for a plain ``int`` in range (a run's
    arguments are checked on every call; at batch 1 the general check costs about 1 %)."""
    if type(value) is int and lo <= value <= hi:
        return value
    return _checks.integer(value, name, lo, hi, where=where)


@dataclass(frozen=True)
class GroupGeometry(Record):
    """How one synapse group connects its source to its layer (what a chip mapper needs).

    Attributes:
        layer: the layer the group feeds (1-based; 0 is the input layer).
        index: the group's position in the layer (0-based).
        kind: ``"conv"``, ``"pool"`` or ``"dense"``.
        source: the layer it comes from.
        kernel: ``(kh, kw)``; ``(1, 1)`` for dense.
        stride: ``(sh, sw)``.
        padding: ``(top, bottom, left, right)``; zero padding has no synapses.
        groups: convolution groups (1 for pooling, which is channel-wise, and dense).
        channels: ``(start, stop)``: the layer's channels the group writes.
        source_shape: the source's neuron shape.
        synapses: the group's synapse count.
    """

    layer: int
    index: int
    kind: str
    source: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    groups: int
    channels: tuple[int, int]
    source_shape: tuple[int, ...]
    synapses: int


@dataclass(frozen=True)
class RunResult:
    """What :meth:`Network.run` returns. Index ``l = 0`` is the input layer.

    Attributes:
        spike_counts: per layer, int32 ``[N, *shape_l]`` spikes emitted over the run, or
            ``None`` for a layer that was not recorded.
        membrane: per layer, int32 ``[N, *shape_l]`` potential after the last step, or ``None``.
        synops: int64 ``[N, n_layers + 1]``, synaptic events delivered into each layer
            (column 0, the input layer, receives none).
        neuron_updates: int64 ``[N, n_layers + 1]``, neuron updates of each image in each
            layer (neurons x steps simulated).
        steps: int32 ``[N]``, time steps simulated per image (``timesteps`` unless the image
            exited early).
        timesteps, delay, v_init, early_exit: the run's settings.
        kernels: the kernel set that ran (``"portable"``, ``"avx2"``, ``"avx512"``; see
            :attr:`Network.kernels`).
    """

    spike_counts: list[np.ndarray | None]
    membrane: list[np.ndarray | None]
    synops: np.ndarray
    neuron_updates: np.ndarray
    steps: np.ndarray
    timesteps: int
    delay: int
    v_init: float
    early_exit: int | None = None
    kernels: str = ""

    def __repr__(self) -> str:
        recorded = [l for l, c in enumerate(self.spike_counts) if c is not None]
        per_image = float(self.synops.sum()) / max(1, self.n_images)
        return (
            f"RunResult({self.n_images} images, timesteps={self.timesteps}, delay={self.delay}, "
            f"v_init={self.v_init}, early_exit={self.early_exit}, kernels={self.kernels!r}, "
            f"recorded layers {recorded}, {per_image:.4g} synaptic events per image)"
        )

    @property
    def n_images(self) -> int:
        """Number of images in the batch."""
        return int(self.synops.shape[0])

    def integrated_input(self, layer: int, threshold: int) -> np.ndarray:
        """Total input layer ``layer`` (of threshold ``threshold``) integrated over the run:
        ``spike_counts * threshold + membrane - floor(v_init * threshold)``, int64.

        Soft reset removes exactly ``threshold`` per spike, so for a layer without leak that
        resets by subtraction and has no current register (the defaults) this is
        ``sum_t z(t)`` of the neuron equation, unless the 24-bit membrane saturated.

        Raises:
            ConfigError: the layer was not recorded.
        """
        counts, membrane = self.spike_counts[layer], self.membrane[layer]
        if counts is None or membrane is None:
            raise ConfigError(f"integrated_input: layer {layer} was not recorded")
        v0 = math.floor(self.v_init * int(threshold))
        return counts.astype(np.int64) * int(threshold) + membrane.astype(np.int64) - v0

    def spikes_per_layer(self) -> np.ndarray:
        """Total spikes emitted by each layer, summed over recorded neurons: int64 ``[N, L+1]``.

        Unrecorded layers are ``-1``.
        """
        out = np.full(self.synops.shape, -1, dtype=np.int64)
        for l, sc in enumerate(self.spike_counts):
            if sc is not None:
                out[:, l] = sc.reshape(sc.shape[0], -1).sum(axis=1, dtype=np.int64)
        return out


@dataclass(eq=False)
class Network:
    """An integer spiking network, simulated event-driven by the Rust core.

    Args:
        layers: hidden and output layers, each after the layers it takes input from, the
            output layer last: any mix of :class:`SpikingLayer` and its shorthands
            :class:`Conv2d`, :class:`AvgPool2d`, :class:`Dense`. A synapse group's ``source``
            is an index in this numbering (0 = the input layer, ``i`` = ``layers[i - 1]``);
            ``None`` is the layer just before.
        input_shape: ``(C, H, W)`` of the uint8 input images.
        input_threshold: threshold of the input layer (a pixel ``p`` fires at rate
            ``p / input_threshold``).

    The network keeps read-only copies of the arrays it is given (:attr:`layers`).

    Raises:
        ShapeError: a layer's array has the wrong rank or dtype, or shapes do not fit.
        ConfigError: a threshold, leak, stride, source or value is out of range.
        MemoryLimitError: its tables would need more memory than allowed.
    """

    layers: Sequence[Layer]
    input_shape: tuple[int, int, int] = (1, 28, 28)
    input_threshold: int = 255
    _engine: Any = field(init=False, repr=False, default=None)
    _shapes: list[tuple[int, ...]] = field(init=False, repr=False, default_factory=list)
    _sizes: list[int] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        where = "input layer"
        if isinstance(self.input_shape, (str, bytes)) or not isinstance(
            self.input_shape, (Sequence, np.ndarray)
        ):
            raise ShapeError(f"input_shape must be (C, H, W), got {self.input_shape!r}")
        shape = tuple(
            _checks.integer(s, "input_shape entry", -(2**63), 2**63 - 1, where=where)
            for s in self.input_shape
        )
        if len(shape) != 3:
            raise ShapeError(f"input_shape must be (C, H, W), got {shape}")
        self.input_shape = shape
        self.input_threshold = _checks.integer(
            self.input_threshold, "input_threshold", -(2**63), 2**63 - 1, where=where
        )
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, Sequence):
            raise ConfigError(
                f"layers must be a list or tuple of layers, got {type(self.layers).__name__}"
            )
        checked: list[Layer] = []
        for i, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, _LAYER_CLASSES):
                raise ConfigError(
                    f"layer {i}: expected SpikingLayer, Conv2d, AvgPool2d or Dense, "
                    f"got {type(layer).__name__}"
                )
            checked.append(layer.validated(f"layer {i} ({_label(layer)})"))
        self.layers = checked
        self._engine = _core.Engine(
            [_engine_spec(layer) for layer in checked],
            input_shape=shape,
            input_threshold=self.input_threshold,
            memory_limit=_memory_limit(),
        )
        self._shapes = [tuple(s) for s in self._engine.shapes()]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        for i, layer in enumerate(checked, start=1):
            _check_bias_shape(layer, self._shapes[i], f"layer {i} ({_label(layer)})")

    def __repr__(self) -> str:
        layers = ", ".join(
            f"{i} {_label(layer)} {shape}"
            for i, (layer, shape) in enumerate(zip(self.layers, self._shapes[1:]), start=1)
        )
        return (
            f"Network(input {self.input_shape} threshold {self.input_threshold}; "
            f"{self.n_layers} layers: {layers}; {sum(self._sizes):,} neurons)"
        )

    @property
    def kernels(self) -> str:
        """The kernel set a run started now uses (``"portable"``, ``"avx2"``, ``"avx512"``): the
        best this processor has, or the one ``$SNNFAST_KERNELS`` names.
        :attr:`RunResult.kernels` tells which one a run used."""
        return _core.kernels()

    # -- geometry ---------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """Number of layers after the input layer."""
        return len(self.layers)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Shape of each layer's neurons, input first: ``(C, H, W)``, or ``(O,)`` for a layer
        of dense synapses."""
        return list(self._shapes)

    @property
    def sizes(self) -> list[int]:
        """Number of neurons in each layer, input first."""
        return list(self._sizes)

    @property
    def thresholds(self) -> list[int]:
        """Threshold of each layer, input first."""
        return [self.input_threshold] + [int(layer.threshold) for layer in self.layers]

    def _layer_index(self, layer: Any, where: str, lo: int = 0) -> int:
        return _checks.integer(layer, "layer", lo, self.n_layers, where=where)

    def synapse_groups(self, layer: int) -> tuple[GroupGeometry, ...]:
        """The synapse groups feeding ``layer`` (1-based; the input layer has none), with
        their geometry and synapse counts."""
        l = self._layer_index(layer, "synapse_groups")
        if l == 0:
            return ()
        out = []
        for g, d in enumerate(self._engine.groups(l)):
            src = int(d["source"])
            out.append(
                GroupGeometry(
                    layer=l,
                    index=g,
                    kind=str(d["kind"]),
                    source=src,
                    kernel=tuple(d["kernel"]),
                    stride=tuple(d["stride"]),
                    padding=tuple(d["padding"]),
                    groups=int(d["groups"]),
                    channels=tuple(d["channels"]),
                    source_shape=self._shapes[src],
                    synapses=int(d["synapses"]),
                )
            )
        return tuple(out)

    def group_fan_out(self, layer: int, group: int) -> np.ndarray:
        """Synapses from each neuron of the source of group ``group`` of ``layer`` into
        ``layer``: int64, shaped like the source layer's neurons."""
        groups = self.synapse_groups(self._layer_index(layer, "group_fan_out", lo=1))
        g = _checks.integer(group, "group", 0, len(groups) - 1, where="group_fan_out")
        flat = np.asarray(self._engine.group_fan_out(int(layer), g), dtype=np.int64)
        return flat.reshape(groups[g].source_shape)

    def synapse_counts(self) -> list[int]:
        """Number of synapses into each layer (input first, 0), summed over its groups;
        padding positions have none."""
        return [int(x) for x in self._engine.synapse_counts()]

    def fan_out(self, layer: int) -> np.ndarray:
        """Synapses leaving each neuron of ``layer`` (0 = input) into every layer it feeds
        (in a chain, ``layer + 1``): int64, shaped like that layer's neurons."""
        l = _checks.integer(layer, "layer", 0, self.n_layers - 1, where="fan_out")
        flat = np.asarray(self._engine.fan_out(l), dtype=np.int64)
        return flat.reshape(self._shapes[l])

    # -- simulation -------------------------------------------------------------------------

    def run(
        self,
        images: np.ndarray,
        timesteps: int = 16,
        delay: int = 0,
        v_init: float = 0.0,
        threads: int | None = None,
        record: Sequence[int] | None = None,
        early_exit: int | None = None,
    ) -> RunResult:
        """Simulate ``images`` for ``timesteps`` steps and return the counters.

        Args:
            images: uint8 ``[N, C, H, W]`` (or ``[N, H, W]`` when ``C == 1``); any strides.
            timesteps: number of time steps ``T >= 1``.
            delay: 0, or 1 for Loihi pipelining (spikes reach the next layer a step later).
            v_init: initial potential as a fraction of each layer's threshold, in ``[0, 1)``.
            threads: worker threads (default: all usable cores,
                :func:`snnfast._checks.all_cores`); images run in parallel.
            record: layers (0 = input) whose spike counts and potentials are returned;
                default all. Others are ``None``; synops are always counted for every layer.
            early_exit: stop an image once its output decision (the output neuron with the
                most spikes; ties to the higher potential, then the lower index) has been the
                same for this many consecutive steps; ``None`` (default) always runs
                ``timesteps`` steps. ``RunResult.steps`` tells how many each image used.

        Raises:
            ShapeError: wrong dtype, rank or shape, or an empty batch.
            ConfigError: ``timesteps``, ``delay``, ``v_init``, ``threads`` or ``record`` invalid.
        """
        timesteps = _int_in(timesteps, "timesteps", 1, MAX_TIMESTEPS, "run")
        return self._run(images, [timesteps], delay, v_init, threads, record, early_exit, "run")[0]

    def run_checkpoints(
        self,
        images: np.ndarray,
        checkpoints: Sequence[int],
        delay: int = 0,
        v_init: float = 0.0,
        threads: int | None = None,
        record: Sequence[int] | None = None,
        early_exit: int | None = None,
    ) -> list[RunResult]:
        """One simulation of ``max(checkpoints)`` steps, read out after each checkpoint.

        Result ``k`` is exactly what ``run(images, timesteps=checkpoints[k], ...)`` returns (the
        simulation is causal, and an image that exits early at step ``e`` would exit there in
        every run of at least ``e`` steps), at the cost of the longest run alone: a sweep over
        ``T = 4, 8, ..., 128`` costs 128 steps instead of 252.

        Args:
            checkpoints: distinct step counts ``>= 1``, in any order; results follow the
                increasing order.
            others: as in :meth:`run`.

        Raises:
            ShapeError: as in :meth:`run`.
            ConfigError: an empty, repeated or non-positive checkpoint, or a bad setting.
        """
        if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Sequence):
            raise ConfigError(
                f"run_checkpoints: checkpoints must be a sequence of step counts, "
                f"got {checkpoints!r}"
            )
        steps = [
            _checks.positive_int(c, "checkpoint", MAX_TIMESTEPS, where="run_checkpoints")
            for c in checkpoints
        ]
        if not steps or len(set(steps)) != len(steps):
            raise ConfigError(
                f"run_checkpoints: checkpoints must be distinct and not empty, got {steps}"
            )
        return self._run(
            images, sorted(steps), delay, v_init, threads, record, early_exit, "run_checkpoints"
        )

    # -- the chip model's access (snnfast.chip) ----------------------------------------------

    def chip_map(self, **placement: Any) -> Any:
        """The engine's chip map of this network (``snnfast._core.ChipMap``) for a placement;
        :class:`snnfast.chip.Mapping` makes and uses it (see ``_core.pyi``)."""
        return self._engine.chip_map(memory_limit=_memory_limit(), **placement)

    def run_chip(
        self,
        images: np.ndarray,
        checkpoints: Sequence[int],
        counting: Mapping[str, Any],
        delay: int = 0,
        v_init: float = 0.0,
        threads: int | None = None,
        record: Sequence[int] | None = None,
        early_exit: int | None = None,
    ) -> tuple[list[RunResult], tuple[Any, ...]]:
        """:meth:`run_checkpoints`, counted per core and per step on a chip map: ``counting``
        holds the engine's chip arguments (``chip``, ``neuron_ns``, ``message_ns``, ``overlap``,
        ``trace``). Returns the results and the engine's flat counts, busy times and trace;
        :func:`snnfast.chip.run_chip` is the API that reads them."""
        steps = sorted(
            _checks.positive_int(c, "checkpoint", MAX_TIMESTEPS, where="run_chip")
            for c in checkpoints
        )
        if not steps or len(set(steps)) != len(steps):
            raise ConfigError(f"run_chip: checkpoints must be distinct and not empty, got {steps}")
        out: list[Any] = []
        results = self._run(
            images, steps, delay, v_init, threads, record, early_exit, "run_chip", counting, out
        )
        return results, tuple(out)

    def _run(
        self,
        images: np.ndarray,
        checkpoints: list[int],
        delay: int,
        v_init: float,
        threads: int | None,
        record: Sequence[int] | None,
        early_exit: int | None,
        where: str,
        counting: Mapping[str, Any] | None = None,
        counted: list[Any] | None = None,
    ) -> list[RunResult]:
        imgs = self.check_images(images)
        delay = _int_in(delay, "delay", 0, 1, where)
        if not (type(v_init) is float and 0.0 <= v_init < 1.0):
            v_init = _checks.number(v_init, "v_init", 0.0, 1.0, hi_open=True, where=where)
        n_threads = (
            _checks.threads(threads, where=where)
            if threads is None
            else _int_in(threads, "threads", 1, _checks.MAX_THREADS, where)
        )
        n_total = self.n_layers + 1
        if record is None:
            rec = list(range(n_total))
        else:
            if isinstance(record, (str, bytes)) or not hasattr(record, "__iter__"):
                raise ConfigError(
                    f"{where}: record must be a sequence of layer indices, got {record!r}"
                )
            rec = sorted({_int_in(l, "record entry", 0, n_total - 1, where) for l in record})
        if early_exit is not None:
            early_exit = _int_in(early_exit, "early_exit", 1, MAX_TIMESTEPS, where)
        run = self._engine.run if counting is None else self._engine.run_chip
        out = run(
            imgs,
            timesteps=checkpoints[-1],
            delay=delay,
            v_init=v_init,
            threads=n_threads,
            record=rec,
            early_exit=early_exit,
            checkpoints=checkpoints,
            memory_limit=_memory_limit(),
            **(counting or {}),
        )
        if counting is not None:
            out, *chip = out
            if counted is not None:
                counted.extend(chip)
        counts, membrane, synops, steps, kernels = out
        n, s = imgs.shape[0], len(checkpoints)
        synops = synops.reshape(s, n, n_total)
        steps = steps.reshape(s, n)
        counts = [c.reshape((s, n, *self._shapes[l])) for l, c in zip(rec, counts)]
        membrane = [m.reshape((s, n, *self._shapes[l])) for l, m in zip(rec, membrane)]
        sizes = np.array(self.sizes, dtype=np.int64)
        results = []
        for k, t in enumerate(checkpoints):
            sc: list[np.ndarray | None] = [None] * n_total
            mem: list[np.ndarray | None] = [None] * n_total
            for l, c, m in zip(rec, counts, membrane):
                sc[l], mem[l] = c[k], m[k]
            updates = steps[k].astype(np.int64)[:, None] * sizes
            results.append(
                RunResult(
                    sc, mem, synops[k], updates, steps[k], t, delay, v_init, early_exit, kernels
                )
            )
        return results

    def check_images(self, images: Any) -> np.ndarray:
        """``images`` as a contiguous uint8 ``[N, C, H, W]`` batch for this network (``[N, H, W]``
        is accepted when ``C == 1``).

        Raises:
            ShapeError: not a uint8 array of the network's input shape, or an empty batch.
        """
        if not isinstance(images, np.ndarray):
            raise ShapeError(f"images must be a NumPy uint8 array, got {type(images).__name__}")
        if images.dtype != np.uint8:
            raise ShapeError(f"images must have dtype uint8 (values 0..255), got {images.dtype}")
        c, h, w = self.input_shape
        if images.ndim == 3 and c == 1:
            images = images[:, None, :, :]
        if images.ndim != 4:
            raise ShapeError(
                f"images must be [N, C, H, W] = [N, {c}, {h}, {w}], got shape {images.shape}"
            )
        if tuple(images.shape[1:]) != (c, h, w):
            raise ShapeError(
                f"images must be [N, {c}, {h}, {w}] for this network, got shape {images.shape}"
            )
        if images.shape[0] == 0:
            raise ShapeError("images is an empty batch (N = 0)")
        if not images.flags.c_contiguous:  # a broadcast view can claim more than memory holds
            _checks.check_memory(images.size, "a contiguous copy of the images")
        return np.ascontiguousarray(images)

    # -- persistence --------------------------------------------------------------------------

    def to_container(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The network as a container body and its arrays (what :meth:`save` writes), for file
        kinds that hold a network; :meth:`from_container` reads it back."""
        arrays: dict[str, np.ndarray] = {}
        entries = []
        for i, layer in enumerate(self.layers):
            entries.append({"kind": layer.kind, **layer.params()})
            if isinstance(layer, (Conv2d, Dense)):
                arrays[f"layer{i}.weight"] = layer.weight
                arrays[f"layer{i}.bias"] = layer.bias
            elif isinstance(layer, SpikingLayer):
                if layer.bias is not None:
                    arrays[f"layer{i}.bias"] = layer.bias
                for j, g in enumerate(layer.groups):
                    if isinstance(g, (ConvSynapses, DenseSynapses)):
                        arrays[f"layer{i}.synapses{j}.weight"] = g.weight
        body = {
            "input_shape": list(self.input_shape),
            "input_threshold": self.input_threshold,
            "layers": entries,
        }
        return body, arrays

    @classmethod
    def from_container(
        cls, body: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str = "network"
    ) -> Network:
        """The network :meth:`to_container` described.

        Raises:
            ModelFormatError: the description is damaged (and names what is wrong).
        """
        try:
            layers = [_load_layer(e, i, arrays, where) for i, e in enumerate(body["layers"])]
            shape = tuple(body["input_shape"])
            threshold = body["input_threshold"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: layer list is damaged ({exc!r})") from exc
        try:
            return cls(layers, shape, threshold)
        except (ShapeError, ConfigError) as exc:
            raise ModelFormatError(f"{where} describes an invalid network: {exc}") from exc

    def save(self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> None:
        """Write the network (and JSON-serialisable ``metadata``) to one checksummed container
        file (:mod:`snnfast._container`), atomically. Loading it runs no code."""
        body, arrays = self.to_container()
        body["metadata"] = dict(metadata or {})
        _container.write(path, FORMAT, FORMAT_VERSION, body, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[Network, dict[str, Any]]:
        """Read a network written by :meth:`save` (or by the first file version); returns
        ``(network, metadata)``.

        Raises:
            ModelFormatError: the file is missing, not an snnfast network, or damaged.
            MemoryLimitError: its arrays or tables would need more memory than allowed.
        """
        contents = _container.read(path, FORMAT, (1, FORMAT_VERSION), what="network")
        net = cls.from_container(contents.body, contents.arrays, where=str(path))
        metadata = contents.body.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ModelFormatError(f"{path}: metadata is not a JSON object")
        return net, metadata


def _label(layer: Layer) -> str:
    """What messages call a layer: its name, or its kind."""
    return layer.label if isinstance(layer, SpikingLayer) else layer.kind


def _check_bias_shape(layer: Layer, shape: tuple[int, ...], where: str) -> None:
    """A bias is one per channel ``[C]`` or one per neuron, shaped like the layer ``(C, H, W)``
    (the engine accepts any array of either length; a flat per-neuron bias is refused here so
    that its order is never guessed)."""
    bias = layer.as_spiking_layer().bias
    if bias is None or bias.shape == (shape[0],) or bias.shape == shape:
        return
    raise ShapeError(
        f"{where}: bias must be one per channel, shape ({shape[0]},), or one per neuron, the "
        f"layer's shape {shape}; got shape {bias.shape}"
    )


def _engine_spec(layer: Layer) -> dict[str, Any]:
    """The dict the Rust core takes for one (validated) layer."""
    sl = layer.as_spiking_layer()
    return {
        "label": _label(layer),
        "threshold": sl.threshold,
        "leak": sl.leak,
        "du": sl.du,
        "reset": sl.reset,
        "bias": sl.bias,
        "groups": [g.engine_spec() for g in sl.groups],
    }


def _load_layer(
    entry: Mapping[str, Any], i: int, arrays: Mapping[str, np.ndarray], where: str
) -> Layer:
    """One layer of a network file: its JSON entry and arrays."""
    if not isinstance(entry, Mapping):
        raise ModelFormatError(f"{where}: layer {i + 1} is not a JSON object ({entry!r:.60})")
    params = {k: v for k, v in entry.items() if k != "kind"}
    kind = entry["kind"]
    cls = LAYER_KINDS.get(kind)
    if cls is None:
        raise ModelFormatError(f"{where}: layer {i + 1} has unknown kind {kind!r}")
    if cls in (Conv2d, Dense):
        return cls(arrays[f"layer{i}.weight"], arrays[f"layer{i}.bias"], **params)
    if cls is AvgPool2d:
        return AvgPool2d(**params)
    groups = []
    for j, g in enumerate(params.pop("synapses")):
        gp = {k: v for k, v in g.items() if k != "kind"}
        gcls = SYNAPSE_KINDS.get(g["kind"])
        if gcls is None:
            raise ModelFormatError(f"{where}: layer {i + 1} has a group of kind {g['kind']!r}")
        if gcls is PoolSynapses:
            groups.append(PoolSynapses(**gp))
        else:
            groups.append(gcls(arrays[f"layer{i}.synapses{j}.weight"], **gp))
    return SpikingLayer(groups, bias=arrays.get(f"layer{i}.bias"), **params)
