"""Chains of NIR's linear nodes between two neuron nodes, composed into synapse groups.

Between a source (the input or a neuron node) and the neuron node it feeds, NIR may put any
chain of linear nodes: ``Conv2d``, ``SumPool2d``/``AvgPool2d``, ``Scale``, ``Flatten``,
``Affine``/``Linear``. Their composition is one linear map of the source plus a bias, which is
what one synapse group computes. A :class:`Term` is that map from one source; a :class:`Value`
is a node's output: a sum of terms (a node with several incoming edges sums them) and a bias
map.

Composition is exact: a pool or convolution after a convolution is one convolution of kernel
``s1 (K2 - 1) + K1`` and stride ``s1 s2`` (the second must not pad); an ``Affine`` after a
flattened convolution is a dense map (the convolution's adjoint applied to the affine's rows).
What cannot be composed into a group raises :class:`~snnfast.errors.ConversionError` naming the
node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._checks import check_memory
from ..errors import ConversionError, ShapeError
from ..graph import avg_pool, conv

__all__ = [
    "Term",
    "restore",
    "Value",
    "affine",
    "as_dense",
    "conv2d",
    "flatten",
    "merge",
    "pool2d",
    "scale",
    "source",
    "ungroup",
]

Shape = tuple[int, ...]
Pad4 = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class Term:
    """A linear map from one source layer.

    Attributes:
        source: the source layer (0 = input).
        kind: ``"id"`` (the source itself), ``"pool"`` (a window sum times ``weight``),
            ``"conv"`` (weight ``[O, C / groups, kh, kw]``) or ``"dense"`` (weight
            ``[O, N_source]`` over the source flattened C, H, W).
        weight: float64 (a 0-d array for ``"pool"``; unused for ``"id"``).
        src_shape, shape: the source's shape and the map's output shape (``(C, H, W)`` or
            ``(N,)``; a flattened map keeps its ``(C, H, W)`` here with ``flat=True``).
        offset: the first of the layer's channels the map writes (after :func:`restore`).
        meta: the snnfast metadata of the one node that made the map from its source.
    """

    source: int
    kind: str
    weight: np.ndarray
    src_shape: Shape
    shape: Shape
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: Pad4 = (0, 0, 0, 0)
    groups: int = 1
    flat: bool = False
    offset: int = 0
    meta: dict[str, Any] | None = None

    @property
    def out_shape(self) -> Shape:
        """The shape of the value, as NIR sees it (flattened if ``flat``)."""
        return (math.prod(self.shape),) if self.flat else self.shape


@dataclass(frozen=True, eq=False)
class Value:
    """A node's output: ``sum(terms) + bias``; ``bias`` (float64 of ``shape``) may be ``None``."""

    terms: tuple[Term, ...]
    bias: np.ndarray | None
    shape: Shape


def source(layer: int, shape: Shape) -> Value:
    """The value of a source layer: its spikes."""
    return Value((Term(layer, "id", np.zeros(()), shape, shape),), None, shape)


def merge(values: list[Value], node: str, op: str) -> Value:
    """The sum a node with several incoming edges takes."""
    shape = values[0].shape
    for v in values[1:]:
        if v.shape != shape:
            raise ShapeError(
                f"node {node!r} ({op}) sums inputs of different shapes "
                f"{[tuple(x.shape) for x in values]}"
            )
    terms = tuple(t for v in values for t in v.terms)
    biases = [v.bias for v in values if v.bias is not None]
    bias = None if not biases else np.sum(biases, axis=0)
    return Value(terms, bias, shape)


def _err(node: str, op: str, reason: str, fix: str = "") -> ConversionError:
    return ConversionError(node, op, reason, fix)


def _full(t: Term) -> Term:
    """``t`` as an ungrouped convolution (identity and pooling as diagonal kernels)."""
    c = t.src_shape[0]
    if t.kind == "id":
        w = np.zeros((c, c, 1, 1))
        w[np.arange(c), np.arange(c)] = 1.0
        return replace(t, kind="conv", weight=w, kernel=(1, 1))
    if t.kind == "pool":
        kh, kw = t.kernel
        w = np.zeros((c, c, kh, kw))
        w[np.arange(c), np.arange(c)] = float(t.weight)
        return replace(t, kind="conv", weight=w)
    if t.groups == 1:
        return t
    return replace(t, weight=ungroup(t.weight, t.groups), groups=1)


def _compose(t: Term, w2: np.ndarray, s2: tuple[int, int], shape: Shape) -> Term:
    """The convolution ``w2`` (ungrouped, stride ``s2``, no padding) applied after ``t``."""
    first = _full(t)
    w1 = first.weight
    (s1h, s1w), (k1h, k1w) = first.stride, first.kernel
    o, m, k2h, k2w = w2.shape
    kh, kw = s1h * (k2h - 1) + k1h, s1w * (k2w - 1) + k1w
    check_memory(o * w1.shape[1] * kh * kw * 8, "a composed convolution kernel")
    w = np.zeros((o, w1.shape[1], kh, kw))
    for a in range(k2h):
        for b in range(k2w):
            w[:, :, s1h * a : s1h * a + k1h, s1w * b : s1w * b + k1w] += np.einsum(
                "om,mcef->ocef", w2[:, :, a, b], w1
            )
    return replace(first, weight=w, kernel=(kh, kw), stride=(s1h * s2[0], s1w * s2[1]), shape=shape)


def ungroup(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped convolution's weight ``[O, I / g, kh, kw]`` as the equivalent block-diagonal
    ``[O, I, kh, kw]`` of one group (float64)."""
    if groups == 1:
        return np.asarray(weight, dtype=np.float64)
    o, ig, kh, kw = weight.shape
    og = o // groups
    out = np.zeros((o, ig * groups, kh, kw))
    for g in range(groups):
        out[g * og : (g + 1) * og, g * ig : (g + 1) * ig] = weight[g * og : (g + 1) * og]
    return out


def conv2d(
    v: Value,
    weight: np.ndarray,
    bias: np.ndarray,
    stride: tuple[int, int],
    padding: Pad4,
    groups: int,
    shape: Shape,
    node: str,
) -> Value:
    """``Conv2d`` applied to ``v``."""
    terms = []
    for t in v.terms:
        if t.flat:
            raise _err(node, "nir.Conv2d", "convolves a flattened value")
        if t.kind == "id":
            kernel = (int(weight.shape[2]), int(weight.shape[3]))
            terms.append(
                replace(
                    t,
                    kind="conv",
                    weight=weight,
                    kernel=kernel,
                    stride=stride,
                    padding=padding,
                    groups=groups,
                    shape=shape,
                )
            )
            continue
        if any(padding):
            raise _err(
                node,
                "nir.Conv2d",
                "pads its input, which is not a layer's spikes but another linear node's output",
                "put a neuron node between the two linear nodes, or fold them into one",
            )
        terms.append(_compose(t, ungroup(weight, groups), stride, shape))
    b = None
    if v.bias is not None:
        nhwc = v.bias.transpose(1, 2, 0)[None]
        b = conv(nhwc, weight, None, stride, padding, groups)[0].transpose(2, 0, 1)
    if np.any(bias):
        b = (0.0 if b is None else b) + bias.reshape(-1, 1, 1) * np.ones(shape)
    return Value(tuple(terms), b, shape)


def pool2d(
    v: Value,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: Pad4,
    each: float,
    shape: Shape,
    node: str,
    op: str,
) -> Value:
    """Sum pooling times ``each`` (``1 / (kh kw)`` for average pooling) applied to ``v``."""
    terms = []
    for t in v.terms:
        if t.flat:
            raise _err(node, op, "pools a flattened value")
        if t.kind == "id":
            terms.append(
                replace(
                    t,
                    kind="pool",
                    weight=np.asarray(each),
                    kernel=kernel,
                    stride=stride,
                    padding=padding,
                    shape=shape,
                )
            )
            continue
        if any(padding):
            raise _err(
                node,
                op,
                "pads a value that is another linear node's output",
                "put a neuron node between the two linear nodes",
            )
        c = t.shape[0]
        w2 = np.zeros((c, c, *kernel))
        w2[np.arange(c), np.arange(c)] = each
        terms.append(_compose(t, w2, stride, shape))
    b = None
    if v.bias is not None:
        nhwc = v.bias.transpose(1, 2, 0)[None]
        b = avg_pool(nhwc, kernel, stride, padding)[0].transpose(2, 0, 1) * (
            each * kernel[0] * kernel[1]
        )
    return Value(tuple(terms), b, shape)


def scale(v: Value, factor: np.ndarray, node: str) -> Value:
    """``Scale`` (elementwise ``factor``, of ``v``'s shape) applied to ``v``."""
    f = np.broadcast_to(np.asarray(factor, dtype=np.float64), v.shape)
    flat_value = len(v.shape) == 1
    if flat_value:
        rows = f
    else:
        per = f.reshape(f.shape[0], -1)
        if not np.all(per == per[:, :1]):
            raise _err(
                node,
                "nir.Scale",
                "scales the positions of a channel differently",
                "a synapse group has one weight per channel and kernel position",
            )
        rows = per[:, 0]
    uniform = bool(np.all(rows == rows[0]))
    terms = []
    for t in v.terms:
        if t.flat and t.kind in ("conv", "pool") and uniform:
            terms.append(replace(t, weight=t.weight * rows[0]))
            continue
        if t.flat and t.kind != "dense":
            t = as_dense(t, node)
        if t.kind == "dense":
            terms.append(replace(t, weight=t.weight * rows[:, None]))
        elif t.kind == "id" and flat_value:
            terms.append(replace(t, kind="dense", weight=np.diag(rows)))
        elif t.kind == "id":
            c = t.shape[0]
            terms.append(replace(t, kind="conv", weight=rows.reshape(c, 1, 1, 1).copy(), groups=c))
        elif t.kind == "pool" and uniform:
            terms.append(replace(t, weight=t.weight * rows[0]))
        else:
            full = _full(t)
            terms.append(replace(full, weight=full.weight * rows.reshape(-1, 1, 1, 1)))
    b = None if v.bias is None else v.bias * f
    return Value(tuple(terms), b, v.shape)


def flatten(v: Value) -> Value:
    """``Flatten`` of the whole ``(C, H, W)`` value (a flat value stays as it is)."""
    if len(v.shape) == 1:
        return v
    n = math.prod(v.shape)
    terms = tuple(t if t.kind == "dense" else replace(t, flat=True) for t in v.terms)
    return Value(terms, None if v.bias is None else v.bias.reshape(-1), (n,))


def as_dense(t: Term, node: str) -> Term:
    """A flattened (or flat identity) map as a dense weight over its source."""
    n = math.prod(t.shape)
    return _adjoint(t, np.eye(n), node)


def _adjoint(t: Term, rows: np.ndarray, node: str) -> Term:
    """The dense term ``rows @ M``, ``M`` the matrix of ``t`` (a map to ``n`` values)."""
    n_src = math.prod(t.src_shape)
    o = rows.shape[0]
    check_memory(o * n_src * 8 * 2, f"the dense weight of node {node!r}")
    if t.kind == "id":
        return replace(t, kind="dense", weight=rows.copy(), shape=(o,), flat=False)
    if t.kind == "dense":
        return replace(t, weight=rows @ t.weight, shape=(o,), flat=False)
    full = _full(t)
    c, h, w = full.shape
    cs, hs, ws = full.src_shape
    top, bottom, left, right = full.padding
    (sh, sw), (kh, kw) = full.stride, full.kernel
    r4 = rows.reshape(o, c, h, w)
    d = np.zeros((o, cs, hs + top + bottom, ws + left + right))
    for a in range(kh):
        for b in range(kw):
            d[:, :, a : a + sh * h : sh, b : b + sw * w : sw] += np.einsum(
                "ochw,cs->oshw", r4, full.weight[:, :, a, b]
            )
    d = d[:, :, top : top + hs, left : left + ws]
    return Term(t.source, "dense", d.reshape(o, n_src), t.src_shape, (o,))


def affine(v: Value, weight: np.ndarray, bias: np.ndarray | None, node: str, op: str) -> Value:
    """``Affine`` (``bias`` given) or ``Linear`` applied to a flat ``v``."""
    if len(v.shape) != 1:
        raise ShapeError(
            f"node {node!r} ({op}) takes a flat input, got shape {v.shape}; a Flatten node "
            "must come first"
        )
    o = int(weight.shape[0])
    terms = tuple(_adjoint(t, weight, node) for t in v.terms)
    b = None if v.bias is None else weight @ v.bias
    if bias is not None and np.any(bias):
        b = (0.0 if b is None else b) + bias
    return Value(terms, b, (o,))


def _regroup(w: np.ndarray, groups: int) -> np.ndarray | None:
    """The grouped weight ``[O, I / g, ...]`` of a block-diagonal ``[O, I, ...]``, or ``None``."""
    o, i = w.shape[:2]
    if groups < 2 or o % groups or i % groups:
        return None
    og, ig = o // groups, i // groups
    out = np.empty((o, ig, *w.shape[2:]))
    for g in range(groups):
        block = w[g * og : (g + 1) * og]
        out[g * og : (g + 1) * og] = block[:, g * ig : (g + 1) * ig]
        block = block.copy()
        block[:, g * ig : (g + 1) * ig] = 0
        if np.any(block):
            return None
    return out


def restore(t: Term) -> Term:
    """Undo what :func:`snnfast.to_nir` wrote out in full, where the node's snnfast metadata
    says so and the weights bear it out: zero rows of other channels (a concatenation), a
    block-diagonal grouped convolution, a pooling group written as a diagonal convolution."""
    meta = t.meta or {}
    if t.kind not in ("conv", "dense") or not meta:
        return t
    w = t.weight
    if "snnfast_channel_offset" in meta:
        off, n = int(meta["snnfast_channel_offset"]), int(meta["snnfast_channels"])
        rest = np.concatenate([w[:off], w[off + n :]])
        if 0 <= off and off + n <= w.shape[0] and not np.any(rest):
            t = replace(t, weight=w[off : off + n], offset=t.offset + off)
            w = t.weight
    if t.kind != "conv":
        return t
    if meta.get("snnfast_kind") == "pool" and w.shape[0] == w.shape[1]:
        diag = w[np.arange(w.shape[0]), np.arange(w.shape[0])]
        off_diag = w.copy()
        off_diag[np.arange(w.shape[0]), np.arange(w.shape[0])] = 0
        if not np.any(off_diag) and np.all(diag == diag.reshape(-1)[0]):
            return replace(t, kind="pool", weight=np.asarray(diag.reshape(-1)[0]))
    if "snnfast_groups" in meta and t.groups == 1:
        grouped = _regroup(w, int(meta["snnfast_groups"]))
        if grouped is not None:
            return replace(t, weight=grouped, groups=int(meta["snnfast_groups"]))
    return t
