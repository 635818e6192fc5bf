"""The float CNN that conversion reads: a graph of nodes, its shapes and its NumPy forward pass.

A :class:`Graph` is a tuple of nodes in an order where every node comes after its inputs; the
last node (or :attr:`Graph.output`) gives the logits. Node kinds, each a frozen dataclass:

============  ===========================================================================
:class:`Input`    the image, ``(C, H, W)``, values ``pixel / 255`` in ``[0, 1]``, then
                  optionally normalised per channel: ``(x - mean) / std``
:class:`Conv`     2-D convolution: weight ``[O, I / groups, KH, KW]``, bias ``[O]``, stride
                  ``(sh, sw)``, zero padding ``(top, bottom, left, right)``, ``groups``
:class:`Pool`     average pooling: kernel ``(kh, kw)``, stride, zero padding; the divisor is
                  always ``kh * kw`` (PyTorch's ``count_include_pad=True``), floor mode
:class:`Dense`    fully connected: weight ``[O, I]``, bias ``[O]``; the input is flattened in
                  C, H, W order
:class:`Add`      element-wise sum of two or more inputs of one shape
:class:`Concat`   concatenation of two or more inputs along the channel axis
:class:`Relu`     ``max(x, 0)``
:class:`Flatten`  ``(C, H, W) -> (C * H * W,)``
:class:`Quant`    the QCFS activation of :mod:`snnfast.qcfs` (``levels``, ``scale``):
                  ``scale / L * clip(floor(x * L / scale + 1/2), 0, L)``; conversion sets the
                  threshold of the spiking layer it ends from ``scale``
============  ===========================================================================

Shapes are those of one image (no batch axis): ``(C, H, W)``, or ``(O,)`` after a dense layer or
a flatten. Output sizes follow PyTorch: ``(H + top + bottom - KH) // sh + 1``.

:meth:`Graph.forward` runs the graph in float32 (or float64) on a batch; it is the ANN side of
the embeddings (the ``"ann"`` readout) and what conversion checks an imported model against.
Graphs are built by :meth:`snnfast.ann.Architecture.graph` (the paper's Table 1 family),
:func:`snnfast.torch_graph.graph_from_torch` (any PyTorch model) and the NIR importer, and are
stored in converted-model files (:meth:`Graph.to_record` / :meth:`Graph.from_record`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from . import _checks
from .errors import ConfigError, ModelFormatError, ShapeError

__all__ = [
    "Add",
    "Concat",
    "Conv",
    "Dense",
    "Flatten",
    "Graph",
    "Input",
    "Node",
    "Pool",
    "Quant",
    "Relu",
    "avg_pool",
    "conv",
    "pad4",
    "pair",
    "quantize",
]

Shape = tuple[int, ...]
Pad4 = tuple[int, int, int, int]
_BATCH = 256  # images per block of forward(): bounds the im2col buffers


def pair(value: Any, name: str, lo: int, *, where: str) -> tuple[int, int]:
    """An ``int`` or a pair of ints, each at least ``lo``, as ``(a, b)``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConfigError(f"{where}: {name} must be an integer or a pair, got {value!r}")
        a, b = value
    else:
        a = b = value
    return (_checks.integer(a, name, lo, where=where), _checks.integer(b, name, lo, where=where))


def pad4(value: Any, *, where: str) -> Pad4:
    """Zero padding as ``(top, bottom, left, right)`` from an int, ``(ph, pw)`` or four ints."""
    if isinstance(value, (tuple, list)) and len(value) == 4:
        t, b, l, r = (_checks.integer(v, "padding", 0, where=where) for v in value)
        return (t, b, l, r)
    ph, pw = pair(value, "padding", 0, where=where)
    return (ph, ph, pw, pw)


def _frozen(a: Any, name: str, where: str, ndim: int) -> np.ndarray:
    arr = np.array(a, dtype=np.float32, copy=True)
    if arr.ndim != ndim:
        raise ShapeError(f"{where}: {name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{where}: {name} holds NaN or infinite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Input:
    """The input image: ``(C, H, W)``; ``mean``/``std`` per channel normalise ``pixel / 255``."""

    name: str
    shape: tuple[int, int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    op = "input"

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Conv:
    """2-D convolution (see the module docstring)."""

    name: str
    input: str
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: Pad4 = (0, 0, 0, 0)
    groups: int = 1
    op = "conv"

    def __post_init__(self) -> None:
        where = f"node {self.name!r}"
        object.__setattr__(self, "weight", _frozen(self.weight, "weight", where, 4))
        object.__setattr__(self, "bias", _frozen(self.bias, "bias", where, 1))
        object.__setattr__(self, "stride", pair(self.stride, "stride", 1, where=where))
        object.__setattr__(self, "padding", pad4(self.padding, where=where))
        object.__setattr__(self, "groups", _checks.positive_int(self.groups, "groups", where=where))
        o = self.weight.shape[0]
        if self.bias.shape != (o,):
            raise ShapeError(f"{where}: bias has shape {self.bias.shape}, expected ({o},)")
        if o % self.groups:
            raise ShapeError(f"{where}: {o} output channels do not split into {self.groups} groups")

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))


@dataclass(frozen=True, eq=False)
class Pool:
    """Average pooling (see the module docstring)."""

    name: str
    input: str
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: Pad4 = (0, 0, 0, 0)
    op = "pool"

    def __post_init__(self) -> None:
        where = f"node {self.name!r}"
        k = pair(self.kernel, "kernel", 1, where=where)
        object.__setattr__(self, "kernel", k)
        s = k if self.stride is None else pair(self.stride, "stride", 1, where=where)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "padding", pad4(self.padding, where=where))

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class Dense:
    """Fully connected layer over the flattened input (see the module docstring)."""

    name: str
    input: str
    weight: np.ndarray
    bias: np.ndarray
    op = "dense"

    def __post_init__(self) -> None:
        where = f"node {self.name!r}"
        object.__setattr__(self, "weight", _frozen(self.weight, "weight", where, 2))
        object.__setattr__(self, "bias", _frozen(self.bias, "bias", where, 1))
        if self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(
                f"{where}: bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class Add:
    """Element-wise sum of its inputs."""

    name: str
    inputs: tuple[str, ...]
    op = "add"


@dataclass(frozen=True, eq=False)
class Concat:
    """Concatenation of its inputs along the channel axis."""

    name: str
    inputs: tuple[str, ...]
    op = "concat"


@dataclass(frozen=True, eq=False)
class Relu:
    """``max(x, 0)``."""

    name: str
    input: str
    op = "relu"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class Flatten:
    """``(C, H, W) -> (C * H * W,)`` in C, H, W order."""

    name: str
    input: str
    op = "flatten"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


@dataclass(frozen=True, eq=False)
class Quant:
    """The QCFS activation ``scale / L * clip(floor(x * L / scale + 1/2), 0, L)``, L = levels."""

    name: str
    input: str
    levels: int
    scale: float
    op = "quant"

    def __post_init__(self) -> None:
        where = f"node {self.name!r}"
        object.__setattr__(
            self, "levels", _checks.positive_int(self.levels, "levels", 1 << 16, where=where)
        )
        object.__setattr__(
            self, "scale", _checks.number(self.scale, "scale", 0.0, lo_open=True, where=where)
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input,)


Node = Union[Input, Conv, Pool, Dense, Add, Concat, Relu, Flatten, Quant]  # noqa: UP007
_KINDS: dict[str, type] = {
    c.op: c for c in (Input, Conv, Pool, Dense, Add, Concat, Relu, Flatten, Quant)
}


def quantize(x: np.ndarray, scale: float, levels: int) -> np.ndarray:
    """``scale / L * clip(floor(x * L / scale + 1/2), 0, L)`` elementwise, in float64, returned
    as float32 (the QCFS activation)."""
    x64 = np.asarray(x, dtype=np.float64)
    q = np.clip(np.floor(x64 * (levels / scale) + 0.5), 0, levels)
    return (q * (scale / levels)).astype(np.float32)


def _out_size(size: int, k: int, s: int, before: int, after: int) -> int:
    return (size + before + after - k) // s + 1


def _infer(node: Node, shapes: Mapping[str, Shape]) -> Shape:
    """The output shape of ``node`` from its inputs' shapes; raises on a mismatch."""
    where = f"node {node.name!r} ({node.op})"
    ins = [shapes[i] for i in node.inputs]
    if isinstance(node, Input):
        c, h, w = (_checks.positive_int(s, "input size", where=where) for s in node.shape)
        for name, vec in (("mean", node.mean), ("std", node.std)):
            if vec is not None and len(vec) != c:
                raise ShapeError(f"{where}: {name} has {len(vec)} entries for {c} channels")
        if node.std is not None and not all(s > 0 for s in node.std):
            raise ConfigError(f"{where}: std must be positive, got {node.std}")
        return (c, h, w)
    if isinstance(node, (Conv, Pool)):
        if len(ins[0]) != 3:
            raise ShapeError(f"{where}: needs a (C, H, W) input, got shape {ins[0]}")
        c, h, w = ins[0]
        (kh, kw) = node.kernel
        (sh, sw) = node.stride or node.kernel
        t, b, l, r = node.padding
        if h + t + b < kh or w + l + r < kw:
            raise ShapeError(f"{where}: kernel {kh}x{kw} is larger than the padded input")
        ho, wo = _out_size(h, kh, sh, t, b), _out_size(w, kw, sw, l, r)
        if isinstance(node, Pool):
            return (c, ho, wo)
        o, ig = node.weight.shape[:2]
        if c % node.groups or c // node.groups != ig:
            raise ShapeError(
                f"{where}: weight expects {ig} input channels per group ({node.groups} "
                f"group(s)), the input has {c} channels"
            )
        return (int(o), ho, wo)
    if isinstance(node, Dense):
        n = math.prod(ins[0])
        if node.weight.shape[1] != n:
            raise ShapeError(
                f"{where}: weight expects {node.weight.shape[1]} inputs, the input has {n} "
                f"values (shape {ins[0]})"
            )
        return (int(node.weight.shape[0]),)
    if isinstance(node, Add):
        if len(ins) < 2 or any(s != ins[0] for s in ins):
            raise ShapeError(f"{where}: needs two or more inputs of one shape, got {ins}")
        return ins[0]
    if isinstance(node, Concat):
        if len(ins) < 2 or any(len(s) != 3 or s[1:] != ins[0][1:] for s in ins):
            raise ShapeError(
                f"{where}: needs two or more (C, H, W) inputs of one height and width, got {ins}"
            )
        return (sum(s[0] for s in ins), *ins[0][1:])
    if isinstance(node, Flatten):
        return (math.prod(ins[0]),)
    return ins[0]  # Relu


@dataclass(frozen=True, eq=False)
class Graph:
    """A float CNN as a graph of nodes (see the module docstring).

    Args:
        nodes: every node, each after its inputs; the first is the :class:`Input`.
        output: the node whose value is the logits (default: the last node).

    Raises:
        ConfigError: duplicate or unknown node names, a node before its inputs, no input node.
        ShapeError: shapes that do not fit together.
    """

    nodes: tuple[Node, ...]
    output: str = ""
    shapes: dict[str, Shape] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        if not nodes or not isinstance(nodes[0], Input):
            raise ConfigError("a graph starts with its Input node")
        shapes: dict[str, Shape] = {}
        for node in nodes:
            if not isinstance(node, tuple(_KINDS.values())):
                raise ConfigError(f"graph node {node!r} is not a graph node type")
            if not isinstance(node.name, str) or not node.name or node.name in shapes:
                raise ConfigError(f"graph node names must be unique and non-empty: {node.name!r}")
            if isinstance(node, Input) and node is not nodes[0]:
                raise ConfigError(f"node {node.name!r}: a graph has one Input node")
            missing = [i for i in node.inputs if i not in shapes]
            if missing:
                raise ConfigError(
                    f"node {node.name!r} reads {missing}, which come later or do not exist"
                )
            shapes[node.name] = _infer(node, shapes)
        output = self.output or nodes[-1].name
        if output not in shapes:
            raise ConfigError(f"graph output {output!r} is not a node")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "output", output)
        object.__setattr__(self, "shapes", shapes)

    # -- structure ------------------------------------------------------------------------------

    @property
    def input(self) -> Input:
        """The input node."""
        node = self.nodes[0]
        assert isinstance(node, Input)
        return node

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the input images."""
        return self.input.shape

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"the graph has no node {name!r}")

    def consumers(self, name: str) -> list[Node]:
        """The nodes that read ``name``."""
        return [n for n in self.nodes if name in n.inputs]

    def parameter_count(self) -> int:
        """Number of weights and biases."""
        return sum(
            int(n.weight.size + n.bias.size) for n in self.nodes if isinstance(n, (Conv, Dense))
        )

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n.op} {n.name}" for n in self.nodes[1:6])
        more = f", ... ({len(self.nodes) - 6} more)" if len(self.nodes) > 6 else ""
        return f"Graph(input {self.input_shape}, {kinds}{more})"

    # -- the forward pass -------------------------------------------------------------------------

    def prepare(self, images: Any, dtype: type = np.float32) -> np.ndarray:
        """Check ``images`` (uint8 ``[N, C, H, W]``, or float in ``[0, 1]``) and return the
        network's input as NHWC ``dtype``: ``pixel / 255``, normalised when the input node says so.
        """
        x = check_images(images, self.input_shape)
        if x.dtype == np.uint8:
            h = x.astype(dtype) / dtype(255.0)
        else:
            h = x.astype(dtype, copy=False)
        h = h.transpose(0, 2, 3, 1)
        inp = self.input
        if inp.mean is not None or inp.std is not None:
            c = self.input_shape[0]
            mean: np.ndarray = np.asarray(inp.mean if inp.mean is not None else [0.0] * c, dtype)
            std: np.ndarray = np.asarray(inp.std if inp.std is not None else [1.0] * c, dtype)
            h = (h - mean) / std
        return h

    def forward(
        self,
        images: Any,
        outputs: Sequence[str] | None = None,
        *,
        batch_size: int = _BATCH,
        dtype: type = np.float32,
    ) -> dict[str, np.ndarray]:
        """Run the graph on ``images`` and return the values of ``outputs`` (default: the output).

        Values are ``[N, *shape]`` (NCHW for images), in ``dtype``; computed ``batch_size``
        images at a time.
        """
        names = [self.output] if outputs is None else list(outputs)
        for n in names:
            if n not in self.shapes:
                raise ConfigError(f"forward: the graph has no node {n!r}")
        _checks.positive_int(batch_size, "batch_size", where="forward")
        x = check_images(images, self.input_shape)
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for values in self._blocks(x, names, batch_size, dtype):
            for n in names:
                parts[n].append(values[n])
        return {n: np.concatenate(p, axis=0) for n, p in parts.items()}

    def _blocks(
        self, x: np.ndarray, names: list[str], batch_size: int, dtype: type
    ) -> Iterator[dict[str, np.ndarray]]:
        last_use = {}
        for i, node in enumerate(self.nodes):
            for src in node.inputs:
                last_use[src] = i
        wanted = set(names)
        for start in range(0, x.shape[0], batch_size):
            vals: dict[str, np.ndarray] = {}
            for i, node in enumerate(self.nodes):
                if isinstance(node, Input):
                    vals[node.name] = self.prepare(x[start : start + batch_size], dtype)
                else:
                    vals[node.name] = _apply(node, [vals[s] for s in node.inputs], dtype)
                for src in node.inputs:  # free what no later node reads
                    if last_use.get(src) == i and src not in wanted:
                        del vals[src]
            yield {n: _nchw(vals[n]) for n in names}

    # -- storage -------------------------------------------------------------------------------

    def to_record(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(spec, arrays)``: the graph as JSON data and named float32 arrays."""
        spec: list[dict[str, Any]] = []
        arrays: dict[str, np.ndarray] = {}
        for i, node in enumerate(self.nodes):
            entry: dict[str, Any] = {"op": node.op, "name": node.name}
            if isinstance(node, Input):
                entry.update(shape=list(node.shape), mean=node.mean, std=node.std)
            elif isinstance(node, (Add, Concat)):
                entry["inputs"] = list(node.inputs)
            elif isinstance(node, Quant):
                entry.update(input=node.input, levels=node.levels, scale=node.scale)
            else:
                entry["input"] = node.inputs[0]
            if isinstance(node, (Conv, Dense)):
                arrays[f"n{i}.weight"] = node.weight
                arrays[f"n{i}.bias"] = node.bias
            if isinstance(node, Conv):
                entry.update(
                    stride=list(node.stride), padding=list(node.padding), groups=node.groups
                )
            if isinstance(node, Pool):
                entry.update(
                    kernel=list(node.kernel),
                    stride=list(node.stride or node.kernel),
                    padding=list(node.padding),
                )
            spec.append(entry)
        return {"nodes": spec, "output": self.output}, arrays

    @classmethod
    def from_record(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Graph:
        """Rebuild a graph from :meth:`to_record`'s output.

        Raises:
            ModelFormatError: the record is damaged or inconsistent.
        """
        try:
            nodes: list[Node] = []
            for i, e in enumerate(spec["nodes"]):
                op = e["op"]
                if op == "input":
                    mean = None if e.get("mean") is None else tuple(map(float, e["mean"]))
                    std = None if e.get("std") is None else tuple(map(float, e["std"]))
                    shape = tuple(int(s) for s in e["shape"])
                    if len(shape) != 3:
                        raise ValueError(f"input shape {shape}")
                    nodes.append(Input(e["name"], shape, mean, std))
                elif op == "conv":
                    nodes.append(
                        Conv(
                            e["name"],
                            e["input"],
                            arrays[f"n{i}.weight"],
                            arrays[f"n{i}.bias"],
                            tuple(e["stride"]),
                            tuple(e["padding"]),
                            e["groups"],
                        )
                    )
                elif op == "pool":
                    nodes.append(
                        Pool(
                            e["name"],
                            e["input"],
                            tuple(e["kernel"]),
                            tuple(e["stride"]),
                            tuple(e["padding"]),
                        )
                    )
                elif op == "dense":
                    nodes.append(
                        Dense(e["name"], e["input"], arrays[f"n{i}.weight"], arrays[f"n{i}.bias"])
                    )
                elif op in ("add", "concat"):
                    cls_ = Add if op == "add" else Concat
                    nodes.append(cls_(e["name"], tuple(e["inputs"])))
                elif op == "quant":
                    nodes.append(Quant(e["name"], e["input"], int(e["levels"]), float(e["scale"])))
                elif op in ("relu", "flatten"):
                    cls2 = Relu if op == "relu" else Flatten
                    nodes.append(cls2(e["name"], e["input"]))
                else:
                    raise ValueError(f"unknown node op {op!r}")
            return cls(tuple(nodes), str(spec["output"]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFormatError(
                f"graph record is damaged ({type(exc).__name__}: {exc})"
            ) from exc


def check_images(images: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """``images`` as ``[N, C, H, W]``: uint8, or float in ``[0, 1]``; ``[N, H, W]`` when ``C == 1``.

    Raises:
        ShapeError: not an array, wrong rank or shape, an empty batch, another dtype.
        ConfigError: float images outside ``[0, 1]`` or not finite.
    """
    if not isinstance(images, np.ndarray):
        raise ShapeError(f"images must be a NumPy array, got {type(images).__name__}")
    c, h, w = shape
    x = images[:, None] if images.ndim == 3 and c == 1 else images
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ShapeError(f"images must be [N, {c}, {h}, {w}], got shape {images.shape}")
    if x.shape[0] == 0:
        raise ShapeError("images is an empty batch (N = 0)")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind != "f":
        raise ShapeError(f"images must be uint8 (0..255) or float in [0, 1], got {x.dtype}")
    if not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise ConfigError(
            f"float images must lie in [0, 1], got range [{np.nanmin(x)}, {np.nanmax(x)}]"
        )
    return x


# -- operations on NHWC batches ---------------------------------------------------------------


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int] = (1, 1),
    padding: Pad4 = (0, 0, 0, 0),
    groups: int = 1,
) -> np.ndarray:
    """``conv2d(x) + bias`` on an NHWC batch, weight ``[O, I / groups, KH, KW]``; NHWC out.

    By im2col and matrix products, in the dtype of ``x`` and ``weight``.
    """
    n = x.shape[0]
    c = x.shape[3]
    o, cg, kh, kw = weight.shape
    t, b, l, r = padding
    if t or b or l or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N Ho Wo C KH KW
    sh, sw = stride
    if sh != 1 or sw != 1:
        win = win[:, ::sh, ::sw]
    ho, wo = win.shape[1], win.shape[2]
    if groups == 1:
        y = win.reshape(n * ho * wo, c * kh * kw) @ weight.reshape(o, c * kh * kw).T
    else:
        og = o // groups
        cols = win.reshape(n * ho * wo, groups, cg * kh * kw).transpose(1, 0, 2)  # G M K
        w = weight.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1)  # G K og
        y = np.ascontiguousarray((cols @ w).transpose(1, 0, 2)).reshape(n * ho * wo, o)
    if bias is not None:
        y += bias
    return y.reshape(n, ho, wo, o)


def avg_pool(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: Pad4 = (0, 0, 0, 0),
) -> np.ndarray:
    """Average pooling of an NHWC batch (divisor ``kh * kw``, zero padding counted, floor)."""
    (kh, kw), (sh, sw) = kernel, stride
    if (sh, sw) == (kh, kw) and not any(padding):
        n, h, w, c = x.shape
        ho, wo = h // kh, w // kw
        windows = x[:, : ho * kh, : wo * kw, :].reshape(n, ho, kh, wo, kw, c)
        return windows.mean(axis=(2, 4), dtype=x.dtype)
    t, b, l, r = padding
    if t or b or l or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return win.sum(axis=(4, 5), dtype=x.dtype) / x.dtype.type(kh * kw)


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _apply(node: Node, ins: list[np.ndarray], dtype: type) -> np.ndarray:
    if isinstance(node, Conv):
        return conv(
            ins[0],
            node.weight.astype(dtype, copy=False),
            node.bias.astype(dtype, copy=False),
            node.stride,
            node.padding,
            node.groups,
        )
    if isinstance(node, Pool):
        assert node.stride is not None
        return avg_pool(ins[0], node.kernel, node.stride, node.padding)
    if isinstance(node, Dense):
        flat = _nchw(ins[0]).reshape(ins[0].shape[0], -1)
        return flat @ node.weight.astype(dtype, copy=False).T + node.bias.astype(dtype, copy=False)
    if isinstance(node, Add):
        total = ins[0].copy()
        for v in ins[1:]:
            total += v
        return total
    if isinstance(node, Concat):
        return np.concatenate(ins, axis=-1)
    if isinstance(node, Relu):
        return np.maximum(ins[0], 0.0)
    if isinstance(node, Flatten):
        return _nchw(ins[0]).reshape(ins[0].shape[0], -1)
    if isinstance(node, Quant):
        return quantize(ins[0], node.scale, node.levels).astype(dtype, copy=False)
    raise ConfigError(f"node {node.name!r}: cannot run op {node.op!r}")  # pragma: no cover
