"""The ANN family of the paper (Table 1) as plain NumPy: architecture, forward pass, model files.

An architecture is written like the paper's Table 1: ``"32-64-10"`` means two convolutions
with 32 and 64 output channels and a dense output layer of 10 classes. The rule that turns a
spec into layers (the input is a ``(1, 28, 28)`` image):

* the first two convolutions are 5x5, stride 1, valid (padding 0), each followed by ReLU and
  2x2 average pooling (stride 2): 28 -> 24 -> 12 -> 8 -> 4, exactly the paper's ``32-64-10``;
* every further convolution is 5x5, stride 1, padding 2 (the 4x4 size is kept), followed by
  ReLU and no pooling. The paper does not say how its deeper rows (``32-64-128-10`` and on)
  keep a valid size after 4x4; this is our documented choice;
* last, a dense layer from the flattened ``(C, H, W)`` activation to ``n_classes`` logits.

So ``32-64-10`` has a 4x4x64 = 1024-value embedding (the layer before the output), and
``32-64-128-256-10`` has a dense fan-in of 4x4x256 = 4096. A one-convolution spec such as
``"32-10"`` is conv 5x5 valid + pool -> 12x12x32 -> dense.

Parameters live in a *state dict* with the keys PyTorch's ``state_dict()`` gives the module of
:mod:`snnfast.train`: ``conv{k}.weight`` ``[O, I, 5, 5]``, ``conv{k}.bias`` ``[O]`` for
``k = 1 .. n_conv`` and ``fc.weight`` ``[n_classes, D]``, ``fc.bias`` ``[n_classes]``.

This module never imports torch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _checks, _container
from .errors import ConfigError, ModelFormatError
from .graph import Conv, Dense, Graph, Input, Pool, Quant, Relu, check_images

if TYPE_CHECKING:  # pragma: no cover
    from .qcfs import QCFSSpec

__all__ = [
    "INPUT_SHAPE",
    "KERNEL",
    "SHIPPED_MODEL",
    "Architecture",
    "LayerDesc",
    "check_state",
    "forward",
    "layer_output",
    "load_model",
    "predict",
    "save_model",
]

INPUT_SHAPE: tuple[int, int, int] = (1, 28, 28)
"""Shape ``(C, H, W)`` of one input image."""
KERNEL = 5
"""Side of every convolution kernel."""
POOL = 2
"""Side (and stride) of every average-pooling window."""
N_POOLED_CONVS = 2
"""How many leading convolutions are valid and followed by pooling."""
SHIPPED_MODEL = Path(__file__).resolve().parent / "weights" / "fmnist-32-64-10.npz"
"""The trained ``32-64-10`` model shipped with the package."""

FORMAT = "ann"
FORMAT_VERSION = 2
_BATCH = 500


@dataclass(frozen=True)
class LayerDesc:
    """One layer of an :class:`Architecture`.

    Attributes:
        kind: ``"conv"`` (convolution + ReLU), ``"pool"`` (average pooling) or ``"dense"``.
        name: state-dict prefix (``"conv1"``, ..., ``"fc"``) or ``"pool1"``, ``"pool2"``.
        in_shape: shape of the layer's input, ``(C, H, W)`` (a dense layer flattens it).
        out_shape: ``(C, H, W)``, or ``(O,)`` for the dense layer.
        kernel: kernel / window side (0 for dense).
        stride: stride (1 for dense).
        padding: zero padding on each side (0 for pool and dense).
    """

    kind: str
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: int
    stride: int
    padding: int

    @property
    def size(self) -> int:
        """Number of output values (neurons) of this layer."""
        return math.prod(self.out_shape)


@dataclass(frozen=True)
class Architecture:
    """A Table-1 style CNN: ``channels`` of the convolutions and ``n_classes`` outputs.

    Build one with :meth:`parse`; ``spec`` is the canonical ``"32-64-10"`` text.
    """

    spec: str
    channels: tuple[int, ...]
    n_classes: int

    def __post_init__(self) -> None:
        numbers = (*self.channels, self.n_classes)
        if len(self.channels) < 1 or any(
            isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in numbers
        ):
            raise ConfigError(
                f"architecture needs >= 1 positive conv channel count and a positive class "
                f"count, got channels={self.channels!r}, n_classes={self.n_classes!r}"
            )
        canonical = "-".join(str(c) for c in numbers)
        if self.spec != canonical:
            raise ConfigError(
                f"architecture spec {self.spec!r} does not match channels {self.channels} "
                f"and n_classes {self.n_classes} (expected {canonical!r})"
            )

    @classmethod
    def parse(cls, spec: str) -> Architecture:
        """Parse ``"C1-C2-...-n_classes"`` (at least two positive integers).

        Raises:
            ConfigError: not a string, fewer than two numbers, or a number that is not a
                positive integer.
        """
        if not isinstance(spec, str):
            raise ConfigError(f"architecture spec must be a string like '32-64-10', got {spec!r}")
        parts = [p.strip() for p in spec.strip().split("-")]
        if len(parts) < 2:
            raise ConfigError(
                f"architecture spec {spec!r} needs at least two numbers "
                f"(conv channels, then classes), like '32-64-10'"
            )
        numbers = []
        for p in parts:
            if not p.isdigit() or int(p) < 1:
                raise ConfigError(f"architecture spec {spec!r}: {p!r} is not a positive integer")
            numbers.append(int(p))
        return cls("-".join(map(str, numbers)), tuple(numbers[:-1]), numbers[-1])

    @property
    def layers(self) -> list[LayerDesc]:
        """The layers in order (conv, pool, conv, pool, conv..., dense); see the module rule."""
        out: list[LayerDesc] = []
        shape: tuple[int, ...] = INPUT_SHAPE
        for k, ch in enumerate(self.channels, start=1):
            pad = 0 if k <= N_POOLED_CONVS else KERNEL // 2
            _, h, w = shape
            ho, wo = h + 2 * pad - KERNEL + 1, w + 2 * pad - KERNEL + 1
            if ho < 1 or wo < 1:
                raise ConfigError(f"conv{k} of {self.spec!r} has no output for input {shape}")
            conv_out = (ch, ho, wo)
            out.append(LayerDesc("conv", f"conv{k}", shape, conv_out, KERNEL, 1, pad))
            shape = conv_out
            if k <= N_POOLED_CONVS:
                pooled = (ch, ho // POOL, wo // POOL)
                out.append(LayerDesc("pool", f"pool{k}", shape, pooled, POOL, POOL, 0))
                shape = pooled
        out.append(LayerDesc("dense", "fc", shape, (self.n_classes,), 0, 1, 0))
        return out

    @property
    def n_conv(self) -> int:
        """Number of convolution layers."""
        return len(self.channels)

    @property
    def embedding_layer(self) -> int:
        """Index into :attr:`layers` of the layer before the output (the image embedding)."""
        return len(self.layers) - 2

    @property
    def embedding_dim(self) -> int:
        """Number of values of the embedding layer."""
        return self.layers[self.embedding_layer].size

    def node_names(self) -> list[str]:
        """The :class:`~snnfast.graph.Graph` node whose value is each of :attr:`layers`' outputs
        (``ReLU(conv)`` for a conv layer, the pooled value, the logits)."""
        return [f"{d.name}.relu" if d.kind == "conv" else d.name for d in self.layers]

    def graph(self, state: Mapping[str, Any], qcfs: QCFSSpec | None = None) -> Graph:
        """The network as a :class:`~snnfast.graph.Graph` with the parameters ``state``.

        Nodes: ``conv{k}`` and ``conv{k}.relu``, ``pool{k}``, ``fc``. With a QCFS spec
        (:mod:`snnfast.qcfs`), each conv and pool output goes through a
        :class:`~snnfast.graph.Quant` node ``<layer>.qcfs`` (and the input through
        ``input.qcfs`` when the spec quantises it) in place of ``conv{k}.relu``.

        Raises:
            ModelFormatError: ``state`` does not fit the architecture.
            ConfigError: ``qcfs`` does not name this architecture's layers.
        """
        params = check_state(self, state)
        if qcfs is not None:
            qcfs.check(self)
        nodes: list[Any] = [Input("input", INPUT_SHAPE)]
        last = "input"
        if qcfs is not None and qcfs.input_levels is not None:
            nodes.append(Quant("input.qcfs", last, qcfs.input_levels, 1.0))
            last = "input.qcfs"
        for d in self.layers:
            if d.kind == "conv":
                pad = (d.padding,) * 4
                nodes.append(
                    Conv(
                        d.name,
                        last,
                        params[f"{d.name}.weight"],
                        params[f"{d.name}.bias"],
                        (d.stride, d.stride),
                        pad,
                    )
                )
                last = d.name
            elif d.kind == "pool":
                nodes.append(Pool(d.name, last, (d.kernel, d.kernel), (d.stride, d.stride)))
                last = d.name
            else:
                nodes.append(Dense("fc", last, params["fc.weight"], params["fc.bias"]))
                last = "fc"
                continue
            if qcfs is not None:
                nodes.append(Quant(f"{d.name}.qcfs", last, qcfs.levels, float(qcfs.scales[d.name])))
                last = f"{d.name}.qcfs"
            elif d.kind == "conv":
                nodes.append(Relu(f"{d.name}.relu", last))
                last = f"{d.name}.relu"
        return Graph(tuple(nodes))

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every state-dict key with its expected shape."""
        shapes: dict[str, tuple[int, ...]] = {}
        for d in self.layers:
            if d.kind == "conv":
                shapes[f"{d.name}.weight"] = (d.out_shape[0], d.in_shape[0], d.kernel, d.kernel)
                shapes[f"{d.name}.bias"] = (d.out_shape[0],)
            elif d.kind == "dense":
                shapes["fc.weight"] = (self.n_classes, math.prod(d.in_shape))
                shapes["fc.bias"] = (self.n_classes,)
        return shapes

    def __str__(self) -> str:
        return self.spec


def check_state(arch: Architecture, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check ``state`` against ``arch``; return it as contiguous float32 arrays.

    Raises:
        ModelFormatError: a key is missing or unexpected, an array has the wrong shape, or a
            value is not finite. The message names the key and the expected vs actual shape.
    """
    expected = arch.state_shapes()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ModelFormatError(
            f"state for architecture {arch.spec} lacks key(s) {missing} "
            f"(expected keys {list(expected)})"
        )
    extra = [k for k in state if k not in expected]
    if extra:
        raise ModelFormatError(
            f"state for architecture {arch.spec} has unexpected key(s) {extra} "
            f"(expected keys {list(expected)})"
        )
    out: dict[str, np.ndarray] = {}
    for key, shape in expected.items():
        arr = np.asarray(state[key])
        if arr.dtype.kind not in "fiu":
            raise ModelFormatError(f"state key {key!r} has non-numeric dtype {arr.dtype}")
        if tuple(arr.shape) != shape:
            raise ModelFormatError(
                f"state key {key!r} for architecture {arch.spec}: expected shape {shape}, "
                f"got {tuple(arr.shape)}"
            )
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ModelFormatError(f"state key {key!r} holds NaN or infinite values")
        out[key] = arr
    return out


def _check_upto(arch: Architecture, upto: int | None) -> int:
    n = len(arch.layers)
    if upto is None:
        return n - 1
    return _checks.integer(upto, "upto", -n, n - 1, where=f"layers of {arch.spec}") % n


def forward(
    arch: Architecture,
    state: Mapping[str, Any],
    images: np.ndarray,
    upto: int | None = None,
    batch_size: int = _BATCH,
) -> list[np.ndarray]:
    """Float32 forward pass; the activation after each of ``arch.layers`` up to index ``upto``.

    Conv entries are ``ReLU(conv(x))``, pool entries the average pool of that, the dense entry
    the logits (:meth:`Architecture.graph` run by :meth:`snnfast.graph.Graph.forward`).
    Memory grows with every layer kept; for one layer of many images use :func:`layer_output`.

    Args:
        arch: the architecture.
        state: its parameters (see :func:`check_state`).
        images: uint8 ``[N, 1, 28, 28]`` (scaled by 1/255) or float in ``[0, 1]``;
            ``[N, 28, 28]`` is accepted too.
        upto: index of the last layer to compute (default: all, ending with the logits).
        batch_size: images per batch (bounds the im2col buffers).

    Raises:
        ShapeError: images of the wrong shape or dtype, or an empty batch.
        ConfigError: float images outside [0, 1], ``upto`` or ``batch_size`` out of range.
        ModelFormatError: ``state`` does not fit ``arch``.
    """
    return _layers(arch, state, images, range(_check_upto(arch, upto) + 1), batch_size)


def _layers(
    arch: Architecture,
    state: Mapping[str, Any],
    images: np.ndarray,
    layers: Sequence[int],
    batch_size: int,
) -> list[np.ndarray]:
    graph = arch.graph(state)
    check_images(images, INPUT_SHAPE)
    _checks.positive_int(batch_size, "batch_size", where="forward")
    names = arch.node_names()
    values = graph.forward(images, [names[i] for i in layers], batch_size=batch_size)
    return [values[names[i]] for i in layers]


def layer_output(
    arch: Architecture,
    state: Mapping[str, Any],
    images: np.ndarray,
    layer: int,
    batch_size: int = _BATCH,
) -> np.ndarray:
    """The activation of one layer (an index into ``arch.layers``), computed in batches.

    Same as ``forward(arch, state, images, upto=layer)[layer]`` without keeping the others.
    """
    return _layers(arch, state, images, [_check_upto(arch, layer)], batch_size)[0]


def predict(arch: Architecture, state: Mapping[str, Any], images: np.ndarray) -> np.ndarray:
    """Predicted class (argmax of the logits) of each image: int64 ``[N]``."""
    logits = layer_output(arch, state, images, len(arch.layers) - 1)
    return logits.argmax(axis=1).astype(np.int64)


def save_model(
    path: str | os.PathLike[str],
    arch: Architecture,
    state: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``arch``, its ``state`` (float32) and JSON ``metadata`` to a checksummed ``.npz``
    container (:mod:`snnfast._container`), atomically.

    Raises:
        ModelFormatError: ``state`` does not fit ``arch``, or ``metadata`` is not
            JSON-serialisable.
    """
    params = check_state(arch, state)
    body = {"arch": arch.spec, "metadata": dict(metadata or {})}
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model metadata must be JSON-serialisable: {exc}") from exc
    _container.write(path, FORMAT, FORMAT_VERSION, body, params)


def load_model(
    path: str | os.PathLike[str] | None = None,
) -> tuple[Architecture, dict[str, np.ndarray], dict[str, Any]]:
    """Read a model written by :func:`save_model` (default: :data:`SHIPPED_MODEL`); files of the
    first format version load too.

    Returns:
        ``(arch, state, metadata)``; ``state`` holds float32 arrays.

    Raises:
        ModelFormatError: the file is missing, not an snnfast ANN model, of another format
            version, damaged, or its arrays do not fit its architecture.
    """
    p = Path(SHIPPED_MODEL if path is None else path)
    contents = _container.read(p, FORMAT, (1, FORMAT_VERSION), what="ANN model")
    body = contents.body
    try:
        arch = Architecture.parse(str(body.get("arch")))
    except ConfigError as exc:
        raise ModelFormatError(f"{p}: bad architecture in header: {exc}") from exc
    try:
        state = check_state(arch, contents.arrays)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{p}: {exc}") from exc
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{p}: metadata must be a JSON object")
    return arch, state, metadata
