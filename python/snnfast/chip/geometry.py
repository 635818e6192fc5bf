"""The connectivity of a network's layer graph, factorised over the three axes (C, H, W).

A synapse group joins a source neuron ``(a, r, s)`` to a neuron ``(b, y, x)`` of its layer iff
its channel, row and column relations all hold, so every per-core resource of a partition into
``c x h x w`` blocks can be computed from three small matrices per group, without a loop over
synapses. This holds for every group kind :mod:`snnfast.layers` has: convolutions (any kernel,
stride and zero padding, grouped and depthwise: a block-diagonal channel relation), pooling
(channel-wise, any window, stride and padding) and dense groups (all-to-all over the source
flattened, into an ``(O,)`` layer seen as ``(O, 1, 1)``), each from any earlier layer and
writing any channel range of its layer (residual additions, concatenations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import Network

__all__ = ["GroupRelation", "LayerGeometry", "geometries", "shape3", "window"]


def shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A layer's shape as ``(C, H, W)``; an ``(O,)`` layer is ``(O, 1, 1)``."""
    return (shape[0], shape[1], shape[2]) if len(shape) == 3 else (shape[0], 1, 1)


def window(d_pre: int, d_post: int, kernel: int, stride: int, before: int) -> np.ndarray:
    """One spatial axis: ``R[r, y]`` iff input ``r`` is in output ``y``'s window (zero padding
    ``before`` the input has no synapses)."""
    off = np.arange(d_pre)[:, None] - (np.arange(d_post)[None, :] * stride - before)
    return (off >= 0) & (off < kernel)


@dataclass(frozen=True, eq=False)
class GroupRelation:
    """One synapse group as three relations (bool ``[D_source, D_layer]`` per axis C, H, W).

    Attributes:
        layer, index: the layer it feeds and its position there.
        kind: ``"conv"``, ``"pool"`` or ``"dense"``.
        source: the layer it comes from.
        relations: the channel, row and column relations.
        max_abs_weight: its largest ``|w|``.
    """

    layer: int
    index: int
    kind: str
    source: int
    relations: tuple[np.ndarray, np.ndarray, np.ndarray]
    max_abs_weight: int


@dataclass(frozen=True, eq=False)
class LayerGeometry:
    """One layer: its neurons, how it resets, and the groups feeding it (none for the input).

    Attributes:
        index: the layer (0 = input).
        kind: ``"input"`` or the layer's kind (``"conv2d"``, ``"avgpool2d"``, ``"dense"``,
            ``"spiking"``).
        label: what messages call it (its name, else its kind).
        shape: its neuron shape, as :attr:`Network.shapes` gives it.
        reset: ``"subtract"`` or ``"zero"``.
        groups: its synapse groups.
    """

    index: int
    kind: str
    label: str
    shape: tuple[int, ...]
    reset: str
    groups: tuple[GroupRelation, ...]

    @property
    def shape3(self) -> tuple[int, int, int]:
        return shape3(self.shape)

    @property
    def name(self) -> str:
        """``"layer 2 (avgpool2d)"``."""
        return f"layer {self.index} ({self.label})"

    @property
    def max_abs_weight(self) -> int:
        return max((g.max_abs_weight for g in self.groups), default=0)


def _channel_relation(kind: str, c_src: int, c_layer: int, channels: tuple[int, int], groups: int):
    start, stop = channels
    rel = np.zeros((c_src, c_layer), dtype=bool)
    if kind == "pool":
        rel[np.arange(c_src), start + np.arange(c_src)] = True
    elif kind == "dense":
        rel[:, start:stop] = True
    else:
        ipg, opg = c_src // groups, (stop - start) // groups
        out = np.arange(start, stop)
        rel[:, start:stop] = (np.arange(c_src)[:, None] // ipg) == ((out - start) // opg)[None, :]
    return rel


def geometries(net: Network) -> list[LayerGeometry]:
    """Every layer of ``net`` (input first) with its groups' relations."""
    shapes = net.shapes
    out = [LayerGeometry(0, "input", "input", tuple(shapes[0]), "subtract", ())]
    for l, layer in enumerate(net.layers, start=1):
        spiking = layer.as_spiking_layer()
        post = shape3(shapes[l])
        groups = []
        for gi, (geo, syn) in enumerate(zip(net.synapse_groups(l), spiking.groups)):
            pre = shape3(geo.source_shape)
            rc = _channel_relation(geo.kind, pre[0], post[0], geo.channels, geo.groups)
            if geo.kind == "dense":
                rh, rw = np.ones((pre[1], 1), dtype=bool), np.ones((pre[2], 1), dtype=bool)
            else:
                (kh, kw), (sh, sw), (top, _, left, _) = geo.kernel, geo.stride, geo.padding
                rh = window(pre[1], post[1], kh, sh, top)
                rw = window(pre[2], post[2], kw, sw, left)
            weight = np.asarray(syn.weight).astype(np.int64)
            wmax = int(np.abs(weight).max(initial=0))
            groups.append(GroupRelation(l, gi, geo.kind, geo.source, (rc, rh, rw), wmax))
        label = layer.label if hasattr(layer, "label") else layer.kind
        out.append(
            LayerGeometry(l, layer.kind, label, tuple(shapes[l]), spiking.reset, tuple(groups))
        )
    return out
