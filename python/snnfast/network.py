"""The integer spiking network: layers, the network, and its run results.

This is the engine contract of ``docs/neuron.md``. Every hidden layer ``l`` has integer weights
(int16), an integer bias per output channel (int32), one threshold ``theta_l > 0`` and a leak
``dv_l`` in ``0..4096``. For each time step ``t = 1..T`` and each layer in order::

    z    = b + sum_j W[i, j] * s_prev[j](t - d)      # d = delay, 0 or 1; s(0) = 0
    v    = v - sign(v) * ((|v| * dv) >> 12)           # leak, truncating toward zero
    v    = saturate_24bit(v + z)                      # [-2**23, 2**23 - 1]
    s(t) = 1 if v >= theta else 0
    v    = v - theta * s(t)                           # soft reset

Layer 0 is the input layer: one neuron per pixel, bias = pixel value, threshold
``input_threshold``. Potentials start at ``floor(v_init * theta_l)``.

The simulation runs in the Rust core (:mod:`snnfast._core`), event-driven: only spikes cause
synaptic work. Results are bit-exact for every batch size and thread count.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _checks, _core
from ._io import atomic_write
from .errors import ConfigError, ModelFormatError, ShapeError
from .settings import MAX_TIMESTEPS

__all__ = ["Conv2d", "AvgPool2d", "Dense", "Layer", "Network", "RunResult"]

FORMAT_VERSION = 1
_I64 = (-(2**63), 2**63 - 1)


def _int_array(value: Any, name: str, where: str, dtype: type) -> np.ndarray:
    """``value`` as a read-only C-contiguous copy of dtype ``dtype``.

    Checks only what the conversion needs (an integer array whose values fit ``dtype``); its
    rank and shape are the engine's to check.
    """
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"{where}: {name} must be an integer array, got dtype {arr.dtype}")
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


def _short_repr(obj: Any) -> str:
    """``Name(field=value, ...)`` with arrays shown as their dtype and shape, not their values."""
    parts = []
    for f in dataclasses.fields(obj):
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        text = (
            f"<{value.dtype} {tuple(value.shape)}>"
            if isinstance(value, np.ndarray)
            else repr(value)
        )
        parts.append(f"{f.name}={text}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass(frozen=True, eq=False)
class Conv2d:
    """Convolution layer: ``weight`` int16 ``[O, I, K, K]`` (PyTorch order), ``bias`` int32 ``[O]``.

    Zero padding has no synapses; the output size is the one PyTorch computes:
    ``(H + 2 * padding - K) // stride + 1``.
    """

    weight: np.ndarray
    bias: np.ndarray
    threshold: int
    stride: int = 1
    padding: int = 0
    leak: int = 0

    kind = "conv2d"

    def __repr__(self) -> str:
        return _short_repr(self)

    def _validated(self, where: str) -> Conv2d:
        return Conv2d(
            _int_array(self.weight, "weight", where, np.int16),
            _int_array(self.bias, "bias", where, np.int32),
            _int(self.threshold, "threshold", where),
            _int(self.stride, "stride", where),
            _int(self.padding, "padding", where),
            _int(self.leak, "leak", where),
        )

    def _params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "stride": self.stride,
            "padding": self.padding,
            "leak": self.leak,
        }


@dataclass(frozen=True, eq=False)
class AvgPool2d:
    """Average pooling as a spiking layer: ``kernel x kernel`` windows, stride ``kernel``.

    Channel-wise; every synapse has the same integer ``weight``; no bias. Output size is
    ``floor(H / kernel) x floor(W / kernel)``: rows and columns that fit no window have no synapse.
    """

    kernel: int
    weight: int
    threshold: int
    leak: int = 0

    kind = "avgpool2d"

    def __repr__(self) -> str:
        return _short_repr(self)

    def _validated(self, where: str) -> AvgPool2d:
        return AvgPool2d(
            _int(self.kernel, "kernel", where),
            _int(self.weight, "weight", where),
            _int(self.threshold, "threshold", where),
            _int(self.leak, "leak", where),
        )

    def _params(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "weight": self.weight,
            "threshold": self.threshold,
            "leak": self.leak,
        }


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected layer: ``weight`` int16 ``[O, I]``, ``bias`` int32 ``[O]``.

    Its input is the previous layer flattened in C, H, W order.
    """

    weight: np.ndarray
    bias: np.ndarray
    threshold: int
    leak: int = 0

    kind = "dense"

    def __repr__(self) -> str:
        return _short_repr(self)

    def _validated(self, where: str) -> Dense:
        return Dense(
            _int_array(self.weight, "weight", where, np.int16),
            _int_array(self.bias, "bias", where, np.int32),
            _int(self.threshold, "threshold", where),
            _int(self.leak, "leak", where),
        )

    def _params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "leak": self.leak}


Layer = Union[Conv2d, AvgPool2d, Dense]  # noqa: UP007 (a runtime alias)


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
        kernels: the kernel set that ran (``"portable"``, ``"avx2"``; see
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

        Soft reset removes exactly ``threshold`` per spike, so for a layer without leak this
        is ``sum_t z(t)`` of the neuron equation, unless the 24-bit membrane saturated.

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
        layers: hidden and output layers in order (:class:`Conv2d`, :class:`AvgPool2d`,
            :class:`Dense`).
        input_shape: ``(C, H, W)`` of the uint8 input images.
        input_threshold: threshold of the input layer (a pixel ``p`` fires at rate
            ``p / input_threshold``).

    Raises:
        ShapeError: a layer's array has the wrong rank or dtype, or layer shapes do not chain.
        ConfigError: a threshold, leak, stride or value is out of range.
    """

    layers: Sequence[Layer]
    input_shape: tuple[int, int, int] = (1, 28, 28)
    input_threshold: int = 255
    _engine: Any = field(init=False, repr=False, default=None)
    _shapes: list[tuple[int, ...]] = field(init=False, repr=False, default_factory=list)
    _sizes: list[int] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.input_shape, (str, bytes)) or not isinstance(
            self.input_shape, (Sequence, np.ndarray)
        ):
            raise ShapeError(f"input_shape must be (C, H, W), got {self.input_shape!r}")
        shape = tuple(_int(s, "input_shape entry", "input layer") for s in self.input_shape)
        if len(shape) != 3:
            raise ShapeError(f"input_shape must be (C, H, W), got {shape}")
        self.input_shape = shape
        self.input_threshold = _int(self.input_threshold, "input_threshold", "input layer")
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, Sequence):
            raise ConfigError(
                f"layers must be a list or tuple of layers, got {type(self.layers).__name__}"
            )
        checked: list[Layer] = []
        for i, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, (Conv2d, AvgPool2d, Dense)):
                raise ConfigError(
                    f"layer {i}: expected Conv2d, AvgPool2d or Dense, got {type(layer).__name__}"
                )
            checked.append(layer._validated(f"layer {i} ({layer.kind})"))
        self.layers = checked
        specs = [_layer_spec(layer) for layer in checked]
        self._engine = _core.Engine(
            specs,
            input_shape=shape,
            input_threshold=self.input_threshold,
            memory_limit=_memory_limit(),
        )
        self._shapes = [tuple(s) for s in self._engine.shapes()]
        self._sizes = [int(np.prod(s)) for s in self._shapes]

    def __repr__(self) -> str:
        layers = ", ".join(
            f"{i} {layer.kind} {shape}"
            for i, (layer, shape) in enumerate(zip(self.layers, self._shapes[1:]), start=1)
        )
        return (
            f"Network(input {self.input_shape} threshold {self.input_threshold}; "
            f"{self.n_layers} layers: {layers}; {sum(self._sizes):,} neurons)"
        )

    @property
    def kernels(self) -> str:
        """The kernel set a run started now uses (``"portable"``, ``"avx2"``): the best this
        processor has, or the one ``$SNNFAST_KERNELS`` names. :attr:`RunResult.kernels` tells
        which one a run used."""
        return _core.kernels()

    # -- geometry ---------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """Number of layers after the input layer."""
        return len(self.layers)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Shape of each layer's neurons, input first: ``(C, H, W)`` or ``(O,)`` for Dense."""
        return list(self._shapes)

    @property
    def sizes(self) -> list[int]:
        """Number of neurons in each layer, input first."""
        return list(self._sizes)

    @property
    def thresholds(self) -> list[int]:
        """Threshold of each layer, input first."""
        return [self.input_threshold] + [int(layer.threshold) for layer in self.layers]

    def synapse_counts(self) -> list[int]:
        """Number of synapses into each layer (input first, 0); padding positions have none."""
        return [int(x) for x in self._engine.synapse_counts()]

    def fan_out(self, layer: int) -> np.ndarray:
        """Synapses leaving each neuron of ``layer`` (0 = input) into ``layer + 1``: int64, shaped
        like that layer's neurons."""
        if not 0 <= layer < self.n_layers:
            raise ConfigError(f"fan_out: layer must be in [0, {self.n_layers - 1}], got {layer}")
        flat = np.asarray(self._engine.fan_out(layer), dtype=np.int64)
        return flat.reshape(self._shapes[layer])

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
        timesteps = _checks.positive_int(timesteps, "timesteps", MAX_TIMESTEPS, where="run")
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
    ) -> list[RunResult]:
        imgs = self._check_images(images)
        delay = _checks.integer(delay, "delay", 0, 1, where=where)
        v_init = _checks.number(v_init, "v_init", 0.0, 1.0, hi_open=True, where=where)
        n_threads = _checks.threads(threads, where=where)
        n_total = self.n_layers + 1
        if record is None:
            rec = list(range(n_total))
        else:
            rec = sorted(
                {_checks.integer(l, "record entry", 0, n_total - 1, where=where) for l in record}
            )
        if early_exit is not None:
            early_exit = _checks.positive_int(early_exit, "early_exit", MAX_TIMESTEPS, where=where)
        counts, membrane, synops, steps, kernels = self._engine.run(
            imgs,
            timesteps=checkpoints[-1],
            delay=delay,
            v_init=v_init,
            threads=n_threads,
            record=rec,
            early_exit=early_exit,
            checkpoints=checkpoints,
            memory_limit=_memory_limit(),
        )
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

    def _check_images(self, images: Any) -> np.ndarray:
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
        return np.ascontiguousarray(images)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> None:
        """Write the network (and JSON-serialisable ``metadata``) to an ``.npz`` file, atomically.

        The file holds only integer arrays and one JSON header; loading it runs no code.
        """
        header: dict[str, Any] = {
            "format": "snnfast.network",
            "version": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "input_threshold": self.input_threshold,
            "layers": [{"kind": layer.kind, **layer._params()} for layer in self.layers],
            "metadata": dict(metadata or {}),
        }
        arrays: dict[str, Any] = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        }
        for i, layer in enumerate(self.layers):
            if isinstance(layer, (Conv2d, Dense)):
                arrays[f"layer{i}.weight"] = layer.weight
                arrays[f"layer{i}.bias"] = layer.bias
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with atomic_write(path) as fh:
            fh.write(buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[Network, dict[str, Any]]:
        """Read a network written by :meth:`save`; returns ``(network, metadata)``.

        Raises:
            ModelFormatError: the file is missing, not an snnfast network, or damaged.
        """
        p = Path(path)
        if not p.is_file():
            raise ModelFormatError(f"no network file at {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                arrays = {k: z[k] for k in z.files if k != "header"}
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ModelFormatError(f"{p} is not a readable snnfast network file: {exc}") from exc
        if header.get("format") != "snnfast.network":
            raise ModelFormatError(f"{p} is not an snnfast network file")
        if header.get("version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{p} has network format version {header.get('version')}, "
                f"this snnfast reads version {FORMAT_VERSION}"
            )
        layers: list[Layer] = []
        try:
            for i, spec in enumerate(header["layers"]):
                params = {k: v for k, v in spec.items() if k != "kind"}
                if spec["kind"] == "conv2d":
                    layers.append(
                        Conv2d(arrays[f"layer{i}.weight"], arrays[f"layer{i}.bias"], **params)
                    )
                elif spec["kind"] == "dense":
                    layers.append(
                        Dense(arrays[f"layer{i}.weight"], arrays[f"layer{i}.bias"], **params)
                    )
                elif spec["kind"] == "avgpool2d":
                    layers.append(AvgPool2d(**params))
                else:
                    raise ModelFormatError(f"{p}: layer {i + 1} has unknown kind {spec['kind']!r}")
        except (KeyError, TypeError) as exc:
            raise ModelFormatError(f"{p}: layer list is damaged ({exc})") from exc
        net = cls(layers, tuple(header["input_shape"]), header["input_threshold"])
        return net, dict(header.get("metadata", {}))


def _layer_spec(layer: Layer) -> dict[str, Any]:
    """The plain dict the Rust core takes for one layer."""
    if isinstance(layer, Conv2d):
        return {
            "kind": "conv2d",
            "weight": layer.weight,
            "bias": layer.bias,
            "threshold": layer.threshold,
            "stride": layer.stride,
            "padding": layer.padding,
            "leak": layer.leak,
        }
    if isinstance(layer, AvgPool2d):
        return {
            "kind": "avgpool2d",
            "kernel": layer.kernel,
            "weight": layer.weight,
            "threshold": layer.threshold,
            "leak": layer.leak,
        }
    return {
        "kind": "dense",
        "weight": layer.weight,
        "bias": layer.bias,
        "threshold": layer.threshold,
        "leak": layer.leak,
    }
