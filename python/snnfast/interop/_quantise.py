"""The integers of an imported NIR layer: its terms as synapse groups, read exactly (a graph
snnfast wrote) or quantised with Algorithm 1's per-layer scaling
(:mod:`snnfast.interop.nir_import`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..convert import V_MAX
from ..converted import ConversionConfig
from ..errors import ConversionError, ModelFormatError, ShapeError
from ..layers import ConvSynapses, DenseSynapses, PoolSynapses
from . import _linear
from ._linear import Term

__all__ = ["ReadLayer", "exact_layer", "quantised_layer", "ready"]


@dataclass(frozen=True, eq=False)
class ReadLayer:
    """A neuron node read: its terms, per-channel bias, strict threshold, decays, metadata."""

    key: str
    terms: tuple[Term, ...]
    bias: np.ndarray  # per channel, float64
    threshold: float  # NIR's strict threshold after the gains
    leak: int
    du: int
    shape: tuple[int, ...]
    meta: dict[str, Any]


def _weights_of(term: Term) -> np.ndarray:
    if term.kind == "id":
        return np.ones(1)
    return np.abs(np.asarray(term.weight, dtype=np.float64)).reshape(-1)


def _group(term: Term, weight: np.ndarray, key: str) -> Any:
    """The synapse group of a term with integer weights."""
    off = term.offset
    if term.kind == "pool":
        return PoolSynapses(term.kernel, int(weight), term.stride, term.padding, term.source, off)
    if term.kind == "conv":
        return ConvSynapses(
            weight.astype(np.int16), term.stride, term.padding, term.groups, term.source, off
        )
    if term.kind == "dense":
        return DenseSynapses(weight.astype(np.int16), term.source, off)
    raise ConversionError(
        key, "edge", "reads its source directly with no weight"
    )  # pragma: no cover


def ready(term: Term, shape: tuple[int, ...], key: str) -> Term:
    """A term in a form a synapse group takes (flattened maps and identities as dense or
    depthwise weights), checked against the layer's shape."""
    if term.flat or (term.kind == "id" and len(shape) == 1):
        term = _linear.as_dense(term, key) if term.kind != "dense" else term
    if term.kind == "id":
        c = term.shape[0]
        term = Term(
            term.source, "conv", np.ones((c, 1, 1, 1)), term.src_shape, term.shape, groups=c
        )
    if term.out_shape != shape:
        raise ShapeError(
            f"node {key!r}: an input of shape {term.out_shape} feeds a layer of {shape}"
        )
    return _linear.restore(term)


def _integers(term: Term, key: str) -> np.ndarray:
    w = np.asarray(term.weight, dtype=np.float64)
    r = np.rint(w)
    if not np.allclose(w, r, rtol=1e-6, atol=1e-4):
        raise ModelFormatError(
            f"node {key!r}: the graph says it holds snnfast's integers, but its weights are not "
            "integers"
        )
    return r


def exact_layer(lay: ReadLayer, terms: list[Term]) -> tuple[list[Any], np.ndarray, int]:
    """Groups, bias and threshold of a layer of an snnfast graph, taken as they are."""
    key = lay.key
    theta = math.floor(lay.threshold) + 1
    meta = lay.meta
    groups = []
    if len(terms) == 1 and terms[0].kind == "pool":
        w_m, th_m = meta.get("snnfast_pool_weight"), meta.get("snnfast_threshold")
        if w_m is None or th_m is None:
            raise ModelFormatError(f"node {key!r}: a pooling layer without its snnfast weight")
        each = float(terms[0].weight)
        if abs(lay.threshold * int(w_m) / each - (int(th_m) - 0.5)) > 1e-4 * max(1, int(th_m)):
            raise ModelFormatError(f"node {key!r}: its threshold does not match its snnfast record")
        t = terms[0]
        return (
            [PoolSynapses(t.kernel, int(w_m), t.stride, t.padding, t.source)],
            lay.bias,
            int(th_m),
        )
    for t in terms:
        groups.append(_group(t, _integers(t, key), key))
    bias = np.rint(lay.bias)
    if not np.allclose(bias, lay.bias, rtol=1e-6, atol=1e-4):
        raise ModelFormatError(f"node {key!r}: its bias is not the integers snnfast wrote")
    th_m = meta.get("snnfast_threshold")
    if th_m is not None and int(th_m) != theta:
        raise ModelFormatError(f"node {key!r}: its threshold does not match its snnfast record")
    return groups, bias, theta


def _strict(x: float) -> int:
    """``floor(x)``, where ``x`` within a millionth of an integer counts as that integer: the
    threshold ``v > x`` of float potentials that exporters' float32 time constants and gains
    perturb by an ulp (``1.0000000253`` for a gain of 1), so ties stay ties."""
    n = round(x)
    return int(n) if abs(x - n) <= 1e-6 * max(1.0, abs(x)) else math.floor(x)


def quantised_layer(
    lay: ReadLayer, terms: list[Term], cfg: ConversionConfig
) -> tuple[list[Any], np.ndarray, int, float]:
    """Algorithm 1's scaling of one layer: groups, bias, threshold and the scale ``s``."""
    where = f"node {lay.key!r}"
    weights = np.concatenate([_weights_of(t) for t in terms])
    norms = [(cfg.w_max, float(np.percentile(weights, cfg.param_percentile)))]
    if np.any(lay.bias):
        norms.append((cfg.b_max, float(np.percentile(np.abs(lay.bias), cfg.param_percentile))))
    ratios = [m / n for m, n in norms if n > 0]
    if not ratios:
        raise ConversionError(
            lay.key, "layer", "has all-zero weights and bias; it cannot be scaled"
        )
    s = min(ratios)
    groups = []
    for t in terms:
        w = cfg.quantize(np.asarray(t.weight, dtype=np.float64) * s)
        if cfg.clip:
            w = np.clip(w, -cfg.w_max, cfg.w_max)
        if w.size and (w.min() < -(2**15) or w.max() > 2**15 - 1):
            raise ConversionError(
                lay.key,
                "layer",
                f"integer weights span [{w.min()}, {w.max()}], beyond int16",
                "use fewer weight bits",
            )
        groups.append(_group(t, w, lay.key))
    b = cfg.quantize(lay.bias * s)
    if cfg.clip:
        b = np.clip(b, -cfg.b_max, cfg.b_max)
    if b.size and np.abs(b).max() > 2**31 - 1:
        raise ConversionError(
            lay.key, "layer", "integer biases exceed int32", "use fewer bias bits"
        )
    theta = max(1, _strict(s * lay.threshold) + 1)
    if theta > V_MAX:
        raise ConversionError(
            lay.key,
            "layer",
            f"{where}: threshold {theta} exceeds the 24-bit membrane maximum {V_MAX}",
            "use fewer weight bits",
        )
    return groups, b, theta, s
