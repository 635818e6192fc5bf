"""Which spiking layers a float graph becomes: the structure conversion then quantises.

A spiking layer's neurons compute ``ReLU`` of a sum of *synapse groups* (each a convolution,
pooling or dense map from one earlier spiking layer) plus a bias. :func:`plan` walks the
:class:`~snnfast.graph.Graph` once and keeps, for every node, what its value is in those terms:

* **spiking**: the value of one spiking layer (the input; a ReLU or QCFS output; a pooling
  output, which is a spiking layer of its own as in the paper's Algorithm 1);
* **a concatenation** of spiking layers along channels (no neurons of its own: a layer that reads
  it takes one synapse group from each part, its weights split along the input channels);
* **affine**: a sum of synapse groups plus a bias that no activation has met yet (a conv or
  dense output, a residual sum). The activation that meets it (``ReLU``, QCFS) makes it a
  spiking layer; a residual sum of non-negative values is one without an activation.

Rules, each with the error a graph gets when it breaks one (:class:`ConversionError` naming the
node): a convolution, pooling or dense node must read a spiking value or a concatenation (two
linear maps with no activation between them are refused); ``Add`` adds groups (a spiking operand
becomes an identity group: a depthwise 1x1 convolution of weight 1); ``Concat`` of affine operands
gives one layer whose channels are the union (groups with channel offsets); the output node's
value becomes the output layer (its logits' ReLU, as in Algorithm 1). Nodes the output does not
depend on are left out. Input normalisation (``Input.mean``/``std``) folds into the convolution
or dense groups that read the input: their weights are divided by ``std`` per input channel and
the bias takes ``-sum(W * mean / std)`` over the positions each neuron's window covers (a bias per
neuron where zero padding makes them differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import ConversionError
from .graph import (
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    Input,
    Node,
    Pool,
    Quant,
    Relu,
    conv,
)

__all__ = ["Group", "PlannedLayer", "Plan", "plan"]

Shape = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Group:
    """One synapse group of a planned layer, with its float (ANN) weights.

    Attributes:
        source: index of the spiking layer it reads (0 = input).
        kind: ``"conv"``, ``"pool"`` or ``"dense"``.
        weight: float64; conv ``[O, I / groups, KH, KW]``, pool ``()`` (one shared weight,
            ``1 / (kh * kw)``), dense ``[O, I]`` over the source flattened C, H, W.
        stride, padding, groups, kernel: the geometry (conv and pool).
        channels: output channels the group writes.
        offset: first channel of the layer the group writes.
        identity: an identity group (residual addition or a concatenated spiking value).
    """

    source: int
    kind: str
    weight: np.ndarray
    channels: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    kernel: tuple[int, int] = (1, 1)
    offset: int = 0
    identity: bool = False


@dataclass(eq=False)
class PlannedLayer:
    """A spiking layer before quantisation.

    Attributes:
        name: its name (the graph node that defines it: ``"conv1"``, ``"pool1"``, ``"fc"``).
        node: the graph node whose value the layer's rate stands for (``"conv1.relu"``).
        groups: its synapse groups.
        bias: float64 per channel ``[C]`` or per neuron (the layer's shape).
        shape: ``(C, H, W)`` or ``(O,)``.
        scale: the QCFS ``lam`` that sets its threshold, or ``None`` (a percentile).
    """

    name: str
    node: str
    groups: list[Group]
    bias: np.ndarray
    shape: Shape
    scale: float | None = None


@dataclass(frozen=True, eq=False)
class Plan:
    """The planned spiking layers (input excluded), in an order where sources come first.

    Attributes:
        input_shape: ``(C, H, W)``.
        layers: the layers after the input; the last is the output layer.
        embedding: the layers the output layer reads (the embedding), by index (1-based).
        shapes: the shape of every layer, input first.
    """

    input_shape: tuple[int, int, int]
    layers: list[PlannedLayer]
    embedding: tuple[int, ...]
    shapes: list[Shape] = field(default_factory=list)


# -- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spiking:
    layer: int
    shape: Shape


@dataclass(frozen=True)
class _Parts:
    parts: tuple[_Spiking, ...]
    shape: Shape


@dataclass(frozen=True, eq=False)
class _Affine:
    groups: tuple[Group, ...]
    bias: np.ndarray
    shape: Shape
    names: tuple[str, ...]
    nonnegative: bool  # every group and the bias are >= 0 on non-negative inputs


_Value = _Spiking | _Parts | _Affine


def _err(node: Node, op: str, reason: str, fix: str = "") -> ConversionError:
    return ConversionError(node.name, op, reason, fix)


class _Planner:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.layers: list[PlannedLayer] = []
        self.shapes: list[Shape] = [graph.input_shape]
        inp = graph.input
        c = graph.input_shape[0]
        self.in_scale = None if inp.std is None else 1.0 / np.asarray(inp.std, dtype=np.float64)
        mean = np.zeros(c) if inp.mean is None else np.asarray(inp.mean, dtype=np.float64)
        self.in_offset = (
            None
            if inp.mean is None
            else -mean * (self.in_scale if self.in_scale is not None else 1.0)
        )
        if self.in_scale is None and self.in_offset is not None:
            self.in_scale = np.ones(c)

    # a new spiking layer
    def add_layer(
        self, name: str, node: str, value: _Affine, scale: float | None = None
    ) -> _Spiking:
        self.layers.append(
            PlannedLayer(name, node, list(value.groups), value.bias, value.shape, scale)
        )
        self.shapes.append(value.shape)
        return _Spiking(len(self.layers), value.shape)

    def parts(self, v: _Value) -> list[tuple[_Spiking, int]]:
        """Spiking parts of a spiking or concatenated value, with their channel offsets."""
        items = [v] if isinstance(v, _Spiking) else list(v.parts)  # type: ignore[union-attr]
        out, off = [], 0
        for p in items:
            out.append((p, off))
            off += p.shape[0]
        return out

    def identity(self, p: _Spiking, offset: int) -> Group:
        if p.layer == 0 and self.in_scale is not None:
            raise ConversionError(
                "input",
                "normalised input",
                "the normalised input is added or concatenated directly",
                "normalisation folds only into a convolution or dense layer that reads the input",
            )
        c = p.shape[0]
        return Group(
            p.layer, "conv", np.ones((c, 1, 1, 1)), c, groups=c, offset=offset, identity=True
        )

    def spiking_source(self, node: Node, op: str, src: _Value) -> _Spiking | _Parts:
        """``src`` as something a synapse group can read: a non-negative sum (a residual
        addition of spiking values) becomes a spiking layer of its own."""
        if not isinstance(src, _Affine):
            return src
        if src.nonnegative:
            return self.add_layer(src.names[0], node.inputs[0], src)
        raise _err(
            node,
            op,
            "reads a linear output that no activation has met (two linear maps in a row)",
            "add a ReLU between them (and before any pooling), or fold them into one layer",
        )

    def as_groups(
        self, node: Node, v: _Value, offset: int = 0
    ) -> tuple[list[Group], np.ndarray | None]:
        """The groups (and bias) of ``v`` as an addend, shifted by ``offset`` channels."""
        if isinstance(v, _Affine):
            return [replace(g, offset=g.offset + offset) for g in v.groups], v.bias
        return [self.identity(p, offset + o) for p, o in self.parts(v)], None

    def fold_input(self, g: Group, node: Node, out_shape: Shape) -> tuple[Group, np.ndarray | None]:
        """Fold the input normalisation into group ``g`` reading the input; returns the group with
        scaled weights and the bias it adds (per channel, or per neuron under padding)."""
        if g.source != 0 or self.in_scale is None:
            return g, None
        assert self.in_offset is not None
        s, m = self.in_scale, self.in_offset
        c, h, w = self.graph.input_shape
        if g.kind == "dense":
            weight = g.weight * np.repeat(s, h * w)[None, :]
            return replace(g, weight=weight), g.weight @ np.repeat(m, h * w)
        if g.kind != "conv" or g.identity:
            raise _err(
                node,
                node.op,
                "reads the normalised input",
                "normalisation folds only into a convolution or dense layer",
            )
        if g.groups == 1:
            weight = g.weight * s[None, :, None, None]
        else:
            cg = g.weight.shape[1]
            per_out = np.repeat(np.arange(g.groups), g.weight.shape[0] // g.groups)
            chans = per_out[:, None] * cg + np.arange(cg)[None, :]
            weight = g.weight * s[chans][:, :, None, None]
        # the offset field: conv of the constant image m over the padded input, exactly
        const = np.broadcast_to(m[None, None, None, :], (1, h, w, c)).astype(np.float64)
        bias = conv(const, g.weight, None, g.stride, g.padding, g.groups)[0]  # H W O
        bias = np.ascontiguousarray(bias.transpose(2, 0, 1))
        if np.all(bias == bias[:, :1, :1]):
            bias = bias[:, 0, 0].copy()
        return replace(g, weight=weight), bias

    def value(self, node: Node, vals: dict[str, _Value]) -> _Value:
        shape = self.graph.shapes[node.name]
        if isinstance(node, Input):
            return _Spiking(0, shape)
        ins = [vals[i] for i in node.inputs]
        if isinstance(node, (Conv, Dense)):
            return self.linear(node, ins[0], shape)
        if isinstance(node, Pool):
            assert node.stride is not None
            kh, kw = node.kernel
            parts = self.parts(self.spiking_source(node, "AvgPool2d", ins[0]))
            made = []
            for k, (p, _) in enumerate(parts):
                if p.layer == 0 and self.in_scale is not None:
                    raise _err(
                        node,
                        "AvgPool2d",
                        "pools the normalised input",
                        "normalisation folds only into a convolution or dense layer",
                    )
                c = p.shape[0]
                g = Group(
                    p.layer,
                    "pool",
                    np.asarray(1.0 / (kh * kw)),
                    c,
                    node.stride,
                    node.padding,
                    1,
                    node.kernel,
                )
                name = node.name if len(parts) == 1 else f"{node.name}.{k}"
                pshape = (c, *shape[1:])
                made.append(
                    self.add_layer(
                        name, node.name, _Affine((g,), np.zeros(c), pshape, (name,), True)
                    )
                )
            return made[0] if len(made) == 1 else _Parts(tuple(made), shape)
        if isinstance(node, (Relu, Quant)):
            src = ins[0]
            scale = node.scale if isinstance(node, Quant) else None
            if isinstance(src, _Affine):
                name = src.names[0] if len(src.names) == 1 else node.inputs[0]
                return self.add_layer(name, node.name, src, scale)
            if isinstance(node, Quant) and isinstance(src, _Spiking) and src.layer > 0:
                self.layers[src.layer - 1].scale = scale
                self.layers[src.layer - 1].node = node.name
            return src
        if isinstance(node, Flatten):
            flat = ins[0]
            return replace(flat, shape=shape) if isinstance(flat, _Affine) else flat
        if isinstance(node, Add):
            groups: list[Group] = []
            bias: np.ndarray = np.zeros(shape[0])
            nonneg = True
            for v in ins:
                gs, b = self.as_groups(node, v)
                groups += gs
                if b is not None:
                    bias = _add_bias(bias, b)
                nonneg = nonneg and (not isinstance(v, _Affine) or v.nonnegative)
            return _Affine(tuple(groups), bias, shape, (node.name,), nonneg)
        if isinstance(node, Concat):
            if not any(isinstance(v, _Affine) for v in ins):
                spk: list[_Spiking] = []
                for v in ins:
                    spk += [p for p, _ in self.parts(v)]
                return _Parts(tuple(spk), shape)
            groups = []
            bias = np.zeros(shape[0])
            off = 0
            nonneg = True
            for v in ins:
                gs, b = self.as_groups(node, v, off)
                groups += gs
                c = v.shape[0]
                if b is not None:
                    if b.ndim != 1:
                        raise _err(node, "cat", "concatenates a layer whose bias varies per neuron")
                    bias[off : off + c] = b
                nonneg = nonneg and (not isinstance(v, _Affine) or v.nonnegative)
                off += c
            return _Affine(tuple(groups), bias, shape, (node.name,), nonneg)
        raise _err(node, node.op, "is not a node conversion knows")  # pragma: no cover

    def linear(self, node: Conv | Dense, src_value: _Value, shape: Shape) -> _Affine:
        op = "Conv2d" if isinstance(node, Conv) else "Linear"
        src = self.spiking_source(node, op, src_value)
        weight = node.weight.astype(np.float64)
        bias: np.ndarray = node.bias.astype(np.float64)
        groups: list[Group] = []
        start = 0
        parts = self.parts(src)
        for p, _ in parts:
            if isinstance(node, Conv):
                c = p.shape[0]
                if node.groups != 1 and len(parts) > 1:
                    raise _err(
                        node,
                        op,
                        "is a grouped convolution of a concatenation",
                        "concatenate after the grouped convolution instead",
                    )
                w = weight[:, start : start + c] if len(parts) > 1 else weight
                g = Group(
                    p.layer,
                    "conv",
                    w,
                    shape[0],
                    node.stride,
                    node.padding,
                    node.groups,
                    node.kernel,
                )
            else:
                c = math.prod(p.shape)
                g = Group(p.layer, "dense", weight[:, start : start + c], shape[0])
            g, extra = self.fold_input(g, node, shape)
            if extra is not None:
                bias = _add_bias(bias, extra)
            groups.append(g)
            start += c
        return _Affine(tuple(groups), bias, shape, (node.name,), False)


def _add_bias(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` for biases per channel ``[C]`` or per neuron ``[C, H, W]``."""
    if a.ndim == b.ndim:
        return a + b
    if a.ndim == 1:
        return a[:, None, None] + b
    return a + b[:, None, None]


def _needed(graph: Graph) -> set[str]:
    """Names of the nodes the output depends on."""
    need = {graph.output}
    for node in reversed(graph.nodes):
        if node.name in need:
            need.update(node.inputs)
    return need


def plan(graph: Graph) -> Plan:
    """The spiking layers ``graph`` converts into (see the module docstring).

    Raises:
        ConversionError: a node breaks one of the rules (the message names it and the fix).
    """
    planner = _Planner(graph)
    need = _needed(graph)
    vals: dict[str, _Value] = {}
    for node in graph.nodes:
        if node.name in need:
            vals[node.name] = planner.value(node, vals)
    out_node = graph.node(graph.output)
    out = vals[graph.output]
    if isinstance(out, _Affine):
        name = out.names[0] if len(out.names) == 1 else out_node.name
        out = planner.add_layer(name, out_node.name, out)
    elif isinstance(out, _Parts):
        raise _err(
            out_node,
            out_node.op,
            "the network's output is a concatenation",
            "end the network with a linear layer",
        )
    if out.layer == 0:
        raise _err(out_node, out_node.op, "the network has no layer after its input")
    last = planner.layers[out.layer - 1]
    if out.layer != len(planner.layers):
        raise _err(
            out_node, out_node.op, f"the output layer {last.name!r} is not the last spiking layer"
        )
    embedding = tuple(dict.fromkeys(g.source for g in last.groups))
    return Plan(graph.input_shape, planner.layers, embedding, planner.shapes)
