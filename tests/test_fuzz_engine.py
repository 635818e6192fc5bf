"""Fuzz of the engine API: bad and edge inputs give a result or a named error, never a signal,
a hang or a silent wrong result.

Hypothesis draws small valid networks (every layer and synapse class, graphs with sources and
channel offsets) and the calls made on them (``run``, ``run_checkpoints``, the geometry
methods), then replaces one or two of their arguments by a value from a pool of bad and edge
inputs for that parameter: every limit and one past it, huge sizes (as broadcast views, so
nothing is allocated to make them), NaN, infinities, bools, floats, strings, ``None``, numpy
scalars, iterators, arrays of the wrong dtype, rank, shape or layout, other kinds of object.

Each drawn argument knows whether the documented contract accepts it, refuses it, or leaves it
to the geometry (``expect``). A case passes when

* nothing crashed or hung (every case runs in :class:`helpers_fuzz.Sandbox`'s worker process);
* every refusal is a named subclass of ``SnnfastError``;
* what must be refused was refused, and what must be accepted was accepted;
* every accepted run small enough for it equals ``tests/reference.py`` bit for bit (recorded
  layers, synaptic events, steps), and the geometry methods equal the reference's counts.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from helpers_fuzz import COUNTS, Sandbox, count, in_ci
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

ACCEPT, REFUSE, EITHER = "accept", "refuse", "either"
I16 = (-(2**15), 2**15 - 1)
I32 = (-(2**31), 2**31 - 1)
PARAM_MAX = 2**31 - 1  # the engine's bound on geometry parameters and thresholds
MAX_T = 1 << 20
BATCH = 40  # cases per hypothesis example
GOAL_CALLS = 5000  # engine calls over the CI run


# -- values the worker builds (not picklable as themselves, or too big to send) --------------


@dataclass(frozen=True)
class Iter:
    """An iterator over ``items``."""

    items: tuple


@dataclass(frozen=True)
class Broadcast:
    """``np.broadcast_to`` of one value to ``shape``: a huge array that takes no memory."""

    value: int
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class View:
    """``base[index]``: a non-contiguous, negatively strided or Fortran-ordered view."""

    base: np.ndarray
    how: str  # "step", "reverse", "fortran", "readonly"


@dataclass(frozen=True)
class Thing:
    """An object of another kind: ``"object"``, ``"intlike"`` (has ``__index__``), ``"dict"``."""

    kind: str


class _IntLike:
    def __index__(self) -> int:
        return 3

    def __int__(self) -> int:
        return 3


def build(v: Any) -> Any:
    """The value a drawn argument stands for (markers made real, recursively)."""
    if isinstance(v, Iter):
        return iter([build(x) for x in v.items])
    if isinstance(v, Broadcast):
        return np.broadcast_to(np.array(v.value, dtype=v.dtype), v.shape)
    if isinstance(v, View):
        if v.how == "step":
            return v.base[::2]
        if v.how == "reverse":
            return v.base[::-1]
        if v.how == "fortran":
            return np.asfortranarray(v.base)
        out = v.base.copy()
        out.flags.writeable = False
        return out
    if isinstance(v, Thing):
        return {"object": object(), "intlike": _IntLike(), "dict": {"a": 1}}[v.kind]
    if isinstance(v, Layer):
        return v.make()
    if isinstance(v, list):
        return [build(x) for x in v]
    if isinstance(v, tuple):
        return tuple(build(x) for x in v)
    if isinstance(v, dict):
        return {k: build(x) for k, x in v.items()}
    return v


@dataclass
class Layer:
    """A layer or synapse group to make: ``snnfast.<cls>(**kwargs)``."""

    cls: str
    kwargs: dict[str, Any]

    def __post_init__(self) -> None:
        self.base = dict(self.kwargs)  # the valid arguments, before any change

    def make(self) -> Any:
        import snnfast

        return getattr(snnfast, self.cls)(**{k: build(v) for k, v in self.kwargs.items()})


# -- pools of values, each with what the contract says of it ---------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def int_values(lo: int, hi: int, inside: str, none_ok: bool = False) -> st.SearchStrategy:
    """(value, expect) for an integer parameter of range [lo, hi]: in range it gets
    ``inside`` (``ACCEPT`` or, where the geometry decides, ``EITHER``)."""
    edges = sorted(
        {lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0, -1, 1, 2, 3, 2**15, 2**16 + 1, 2**23}
        | {2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30}
    )

    def judge(v: Any) -> tuple[Any, str]:
        if v is None:
            return v, inside if none_ok else REFUSE
        if _is_int(v) and lo <= int(v) <= hi:
            return v, inside
        return v, REFUSE

    def typed(v: int) -> st.SearchStrategy:
        kinds = [t for t in (np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64)]
        fits = [t for t in kinds if np.iinfo(t).min <= v <= np.iinfo(t).max]
        return st.sampled_from(fits).map(lambda t: t(v)) if fits else st.just(v)

    bad = st.sampled_from(
        [True, False, np.bool_(True), 2.5, 3.0, math.nan, math.inf, -math.inf, "3", b"3"]
        + [[3], (3,), np.array(3), np.array([3]), np.float32(3), complex(3, 0)]
        + [Decimal(3), Fraction(3), Thing("intlike"), Thing("object"), None]
    )
    anyint = st.one_of(
        st.sampled_from(edges), st.integers(lo - 3, min(hi, lo + 40)), st.integers(-(2**70), 2**70)
    )
    return st.one_of(
        anyint, anyint.flatmap(typed), bad, anyint.map(float), st.integers(lo, hi).map(float)
    ).map(judge)


def pair_values(lo: int, hi: int, lengths: tuple[int, ...], none_ok: bool = False):
    """(value, expect) for an ``int`` or a sequence of ``lengths`` integers (the geometry
    decides in range)."""

    def entry_ok(v: Any) -> bool:
        return _is_int(v) and lo <= int(v) <= hi

    def judge(v: Any) -> tuple[Any, str]:
        if v is None:
            return v, ACCEPT if none_ok else REFUSE
        if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1):
            ok = len(v) in lengths and all(entry_ok(x) for x in v)
            return v, EITHER if ok else REFUSE
        return v, EITHER if entry_ok(v) else REFUSE

    raw = int_values(lo, hi, EITHER).map(lambda t: t[0])
    small = st.integers(lo, min(hi, lo + 3))

    def container(items: list[Any], how: str) -> Any:
        if how == "list":
            return list(items)
        if how == "array" and all(_is_int(v) and abs(int(v)) < 2**62 for v in items):
            return np.array([int(v) for v in items], dtype=np.int64)
        return tuple(items)

    seq = st.tuples(
        st.lists(st.one_of(small, raw), min_size=0, max_size=5),
        st.sampled_from(["tuple", "list", "array"]),
    ).map(lambda t: container(*t))
    bad = st.sampled_from(["22", ((2, 2),), Iter((2, 2)), np.array(2), np.array([[2, 2]])])
    return st.one_of(raw, seq, bad, st.just(None)).map(judge)


def float_values() -> st.SearchStrategy:
    """(value, expect) for ``v_init``: a finite number in [0, 1)."""
    good = st.sampled_from([0.0, 0.5, 0.999, -0.0, 0, np.float32(0.5), np.float16(0.25)])
    bad = st.sampled_from(
        [1.0, 1, -1e-300, -0.5, 2.0, math.nan, math.inf, -math.inf, True, False, "0.5", None]
        + [Fraction(1, 2), Decimal("0.5"), complex(0.5, 0), np.array([0.5]), [0.5]]
    )
    return st.one_of(
        good.map(lambda v: (v, ACCEPT)),
        st.floats(0.0, 1.0, exclude_max=True).map(lambda v: (v, ACCEPT)),
        bad.map(lambda v: (v, REFUSE)),
        st.floats(allow_nan=True).map(lambda v: (v, ACCEPT if 0.0 <= v < 1.0 else REFUSE)),
    )


def array_values(
    arr: np.ndarray, dtype: Any, geometry: bool = True, none_ok: bool = False
) -> st.SearchStrategy:
    """(value, expect) for an integer array parameter whose values must fit ``dtype``.

    ``arr`` is the valid array of the base network. Valid forms (other integer dtypes, lists,
    views; ``None`` where ``none_ok``: an optional bias) must be accepted; wrong dtypes, ranges
    and kinds refused; shape changes are the geometry's to judge (``EITHER``)."""
    info = np.iinfo(dtype)
    small = bool(arr.size) and int(arr.min()) >= -128 and int(arr.max()) <= 127
    valid = [arr, arr.astype(np.int32), arr.tolist(), View(arr, "fortran"), View(arr, "readonly")]
    if small:
        valid.append(arr.astype(np.int8))
    if none_ok:
        valid.append(None)
    if arr.ndim:
        valid.append(View(arr[::-1].copy(), "reverse"))
        valid.append(View(np.repeat(arr, 2, axis=0), "step"))
    refused = [
        arr.astype(np.float64),
        arr.astype(np.float32),
        arr.astype(bool),
        arr.astype(object),
        arr.astype(complex),
        arr.astype(str),
        np.where(arr == arr.flat[0], np.nan, arr) if arr.size else np.array([np.nan]),
        np.full(arr.shape, int(info.max) + 1, np.int64),
        np.full(arr.shape, int(info.min) - 1, np.int64),
        np.full(arr.shape, 2**63, np.uint64),
        np.array(5),
        "weights",
        Iter(tuple(arr.reshape(-1).tolist()[:4])),
        Thing("object"),
        Broadcast(1, (2**40,), "int32"),
    ]
    if not none_ok:
        refused.append(None)
    if arr.ndim == 4:  # 32 GB and more: refused before anything is allocated
        refused.append(Broadcast(1, (2**14, arr.shape[1], 2**10, 2**10), "int16"))
    elif arr.ndim == 2:
        refused.append(Broadcast(1, (2**14, 2**20), "int16"))
    shapes: list[Any] = []
    if arr.ndim:
        shapes += [arr[None], arr.reshape(-1), arr[:-1], np.concatenate([arr, arr[:1]]), arr[:0]]
    if arr.ndim > 1:
        shapes += [arr[..., :1], arr[..., 0], np.swapaxes(arr, 0, -1).copy()]
    return st.one_of(
        st.sampled_from(valid).map(lambda v: (v, ACCEPT)),
        st.sampled_from(refused).map(lambda v: (v, REFUSE)),
        st.sampled_from(shapes).map(lambda v: (v, EITHER if geometry else REFUSE))
        if shapes
        else st.nothing(),
    )


def image_values(shape: tuple[int, int, int], n: int, seed: int) -> st.SearchStrategy:
    """(images, expect) for a network of input ``shape``."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    valid: list[Any] = [
        x,
        View(np.repeat(x, 2, axis=0), "step"),
        View(x, "reverse"),
        View(x, "fortran"),
        View(x, "readonly"),
    ]
    if c == 1:  # [N, H, W] is a batch of one-channel images, so x[0] is one of them
        valid += [x[:, 0], x[0]]
    refused: list[Any] = [
        x.astype(np.int8),
        x.astype(np.uint16),
        x.astype(np.int64),
        x.astype(np.float32),
        x.astype(bool),
        x.astype(object),
        x.tolist(),
        x[:0],
        x[None],
        x.reshape(n, -1),
        np.zeros((n, c + 1, h, w), np.uint8),
        np.zeros((n, c, h + 1, w), np.uint8),
        np.zeros((n, c, h, max(w - 1, 0)), np.uint8),
        np.uint8(3),
        None,
        Iter(tuple(x)),
        Broadcast(7, (10**9, c, h, w), "uint8"),
        Broadcast(7, (2**62 // max(1, c * h * w), c, h, w), "uint8"),
    ]
    if c > 1:
        refused += [x[:, 0], x[0]]
    return st.one_of(
        st.sampled_from(valid).map(lambda v: (v, ACCEPT)),
        st.sampled_from(refused).map(lambda v: (v, REFUSE)),
    )


# -- valid networks ---------------------------------------------------------------------------


def _out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


@st.composite
def networks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid small network as a spec: input shape, threshold and layers."""
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(3, 7)), draw(st.integers(3, 7))
    shapes: list[tuple[int, ...]] = [(c, h, w)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    wmax = draw(st.sampled_from([20, 60, 2**15 - 1]))
    layers: list[Layer] = []

    def neuron() -> dict[str, Any]:
        out: dict[str, Any] = {"threshold": draw(st.integers(1, 300)), "leak": 0}
        if draw(st.booleans()):
            out["leak"] = draw(st.integers(0, 4096))
            out["reset"] = draw(st.sampled_from(["subtract", "zero"]))
            out["du"] = draw(st.integers(0, 4096))
        return out

    def weights(*shape: int) -> np.ndarray:
        return rng.integers(-wmax, wmax + 1, size=shape).astype(np.int64)

    for i in range(1, draw(st.integers(1, 3)) + 1):
        src_shape = shapes[-1]
        spatial = len(src_shape) == 3
        kind = draw(st.sampled_from(["conv", "pool", "dense"] if spatial else ["dense"]))
        graph = draw(st.booleans())
        if kind == "conv":
            cc, hh, ww = src_shape
            p = draw(st.integers(0, 1))
            k = draw(st.integers(1, min(3, hh + 2 * p, ww + 2 * p)))
            s = draw(st.integers(1, 2))
            o = draw(st.sampled_from([1, 2, 8]))
            g = draw(st.sampled_from([d for d in (1, 2) if cc % d == 0 and o % d == 0]))
            wt, bias = weights(o, cc // g, k, k), weights(o) * 4
            if graph:
                off = draw(st.integers(0, 1))
                syn = Layer(
                    "ConvSynapses",
                    {"weight": wt, "stride": s, "padding": p, "groups": g, "channel_offset": off},
                )
                layers.append(Layer("SpikingLayer", {"synapses": [syn], "bias": None, **neuron()}))
                o += off
            else:
                kw = {"stride": s, "padding": p, "groups": g, **neuron()}
                layers.append(Layer("Conv2d", {"weight": wt, "bias": bias, **kw}))
            shapes.append((o, _out(hh, k, s, p), _out(ww, k, s, p)))
        elif kind == "pool":
            cc, hh, ww = src_shape
            k = draw(st.integers(1, min(2, hh, ww)))
            pw = draw(st.integers(-wmax, wmax))
            if graph:
                syn = Layer("PoolSynapses", {"kernel": k, "weight": pw})
                layers.append(Layer("SpikingLayer", {"synapses": syn, **neuron()}))
            else:
                layers.append(Layer("AvgPool2d", {"kernel": k, "weight": pw, **neuron()}))
            shapes.append((cc, hh // k, ww // k))
        else:
            src = draw(st.integers(0, i - 1)) if graph else i - 1
            n_in = int(np.prod(shapes[src]))
            o = draw(st.sampled_from([1, 3, 8]))
            wt, bias = weights(o, n_in), weights(o) * 4
            source = None if src == i - 1 and draw(st.booleans()) else src
            if graph:
                syn = Layer("DenseSynapses", {"weight": wt, "source": source})
                layers.append(Layer("SpikingLayer", {"synapses": (syn,), "bias": bias, **neuron()}))
            else:
                layers.append(
                    Layer("Dense", {"weight": wt, "bias": bias, "source": source, **neuron()})
                )
            shapes.append((o,))
    return {
        "input_shape": (c, h, w),
        "input_threshold": draw(st.integers(1, 300)),
        "layers": layers,
        "shapes": shapes,
    }


# -- the parameters a case may change --------------------------------------------------------

NEURON_SITES = {
    "threshold": lambda: int_values(1, PARAM_MAX, ACCEPT),
    "leak": lambda: int_values(0, 4096, ACCEPT),
    "du": lambda: int_values(0, 4096, ACCEPT),
    "reset": lambda: st.sampled_from(
        [("subtract", ACCEPT), ("zero", ACCEPT), ("Zero", REFUSE), ("", REFUSE)]
        + [(None, REFUSE), (0, REFUSE), (b"zero", REFUSE), (["zero"], REFUSE)]
    ),
}


def layer_sites(layer: Layer, index: int) -> dict[str, Any]:
    """Strategies of (value, expect) for the fields of one layer spec, by field name."""
    kw = layer.base
    sites: dict[str, Any] = dict(NEURON_SITES)
    source = lambda: int_values(0, index - 1, EITHER, none_ok=True)  # noqa: E731
    if layer.cls == "Conv2d":
        sites.update(
            weight=lambda: array_values(kw["weight"], np.int16),
            bias=lambda: array_values(kw["bias"], np.int32),
            stride=lambda: int_values(1, PARAM_MAX, EITHER),
            padding=lambda: int_values(0, PARAM_MAX, EITHER),
            groups=lambda: int_values(1, PARAM_MAX, EITHER),
            source=source,
        )
    elif layer.cls == "AvgPool2d":
        sites.update(
            kernel=lambda: int_values(1, PARAM_MAX, EITHER),
            weight=lambda: int_values(*I16, EITHER),
            stride=lambda: int_values(1, PARAM_MAX, EITHER, none_ok=True),
            padding=lambda: int_values(0, PARAM_MAX, EITHER),
            source=source,
        )
    elif layer.cls == "Dense":
        sites.update(
            weight=lambda: array_values(kw["weight"], np.int16),
            bias=lambda: array_values(kw["bias"], np.int32),
            source=source,
        )
    else:
        sites.update(
            name=lambda: st.sampled_from(
                [("block", ACCEPT), ("", ACCEPT), (None, ACCEPT), (5, REFUSE), (b"x", REFUSE)]
            ),
            synapses=lambda: synapse_containers(kw["synapses"]),
        )
        if kw.get("bias") is not None:
            sites["bias"] = lambda: array_values(kw["bias"], np.int32, none_ok=True)
    return sites


def synapse_containers(groups: Any) -> st.SearchStrategy:
    """(value, expect) for a SpikingLayer's ``synapses``: a group or a sequence of them."""
    items = list(groups) if isinstance(groups, (list, tuple)) else [groups]
    one = items[0]
    return st.sampled_from(
        [
            (one, ACCEPT),
            ([one], ACCEPT),
            ((one,), ACCEPT),
            ([], REFUSE),
            (Iter((one,)), REFUSE),
            ([one, None], REFUSE),
            ([[one]], REFUSE),
            ("conv", REFUSE),
            (None, REFUSE),
            (Thing("dict"), REFUSE),
            ([one, Thing("object")], REFUSE),
        ]
    )


def group_sites(group: Layer, index: int) -> dict[str, Any]:
    """Strategies of (value, expect) for the fields of one synapse group."""
    kw = group.base
    sites: dict[str, Any] = {
        "source": lambda: int_values(0, index - 1, EITHER, none_ok=True),
        "channel_offset": lambda: int_values(0, PARAM_MAX, EITHER),
    }
    if group.cls == "ConvSynapses":
        sites.update(
            weight=lambda: array_values(kw["weight"], np.int16),
            stride=lambda: pair_values(1, PARAM_MAX, (1, 2)),
            padding=lambda: pair_values(0, PARAM_MAX, (1, 2, 4)),
            groups=lambda: int_values(1, PARAM_MAX, EITHER),
        )
    elif group.cls == "PoolSynapses":
        sites.update(
            kernel=lambda: pair_values(1, PARAM_MAX, (1, 2)),
            weight=lambda: int_values(*I16, EITHER),
            stride=lambda: pair_values(1, PARAM_MAX, (1, 2), none_ok=True),
            padding=lambda: pair_values(0, PARAM_MAX, (1, 2, 4)),
        )
    else:
        sites["weight"] = lambda: array_values(kw["weight"], np.int16)
    return sites


def shape_values(shape: tuple[int, int, int]) -> st.SearchStrategy:
    """(value, expect) for ``input_shape``."""
    same = [shape, list(shape), np.array(shape), tuple(np.int32(s) for s in shape)]
    refused = [
        shape[:2],
        (*shape, 1),
        Iter(shape),
        np.array(shape, dtype=float),
        tuple(float(s) for s in shape),
        (shape[0], True, shape[2]),
        "1x28x28",
        None,
        Thing("dict"),
        (shape[0], shape[1], -shape[2]),
        (0, shape[1], shape[2]),
    ]
    huge = [(1, 6, 2**40), (1, 70000, 70000), (2**31, 2, 2), (1, 1, 65540), (65537, 1, 1)]
    entry = st.tuples(st.integers(0, 2), int_values(1, 2**40, EITHER)).map(
        lambda t: (
            tuple(t[1][0] if j == t[0] else s for j, s in enumerate(shape)),
            REFUSE if t[1][1] == REFUSE else EITHER,
        )
    )
    return st.one_of(
        st.sampled_from(same).map(lambda v: (v, ACCEPT)),
        st.sampled_from(refused).map(lambda v: (v, REFUSE)),
        st.sampled_from(huge).map(lambda v: (v, EITHER)),
        entry,
    )


def layers_values(layers: list[Layer]) -> st.SearchStrategy:
    """(value, expect) for the ``layers`` argument as a whole."""
    return st.sampled_from(
        [
            (list(layers), ACCEPT),
            (tuple(layers), ACCEPT),
            (Iter(tuple(layers)), REFUSE),
            (layers[0], REFUSE),
            ([], REFUSE),
            ([*layers, None], REFUSE),
            ([list(layers)], REFUSE),
            ({0: layers[0]}, REFUSE),
            ("conv", REFUSE),
            (None, REFUSE),
            ([*layers, Thing("object")], REFUSE),
            ([*layers, layers[0].kwargs.get("weight")], REFUSE),
        ]
    )


# -- calls ------------------------------------------------------------------------------------


def record_values(n_total: int) -> st.SearchStrategy:
    good = st.lists(st.integers(0, n_total - 1), max_size=4)
    return st.one_of(
        st.just((None, ACCEPT)),
        good.map(lambda v: (v, ACCEPT)),
        good.map(lambda v: (tuple(v), ACCEPT)),
        good.map(lambda v: (np.array(v, dtype=np.int64), ACCEPT)),
        good.map(lambda v: (Iter(tuple(v)), ACCEPT)),
        st.sampled_from(
            [[n_total], [-1], [True], [0.0], [None], ["0"], "0", 0, 1.5, [2**64], Thing("object")]
        ).map(lambda v: (v, REFUSE)),
        st.sampled_from([{0: 1}, {0, 1}]).map(lambda v: (v, EITHER)),
    )


def checkpoint_values() -> st.SearchStrategy:
    good = st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True)
    return st.one_of(
        good.map(lambda v: (v, ACCEPT)),
        good.map(lambda v: (tuple(v), ACCEPT)),
        good.map(lambda v: ([np.int64(x) for x in v], ACCEPT)),
        st.sampled_from([[MAX_T], [1, MAX_T - 1]]).map(lambda v: (v, ACCEPT)),
        st.sampled_from([list(range(1, 2001)), list(range(2000, 0, -1))]).map(
            lambda v: (v, EITHER)
        ),
        st.sampled_from(
            [[], [0], [-1], [2, 2], [MAX_T + 1], [True], [1.0], [None], "4", 4, None]
            + [Iter((1, 2)), [2**64], [1, 2.5], Thing("object")]
        ).map(lambda v: (v, REFUSE)),
        st.just((np.array([1, 2]), EITHER)),
    )


def run_kwargs(checkpoints: bool) -> dict[str, st.SearchStrategy]:
    out: dict[str, Any] = {
        "delay": int_values(0, 1, ACCEPT),
        "v_init": float_values(),
        "threads": st.one_of(
            int_values(1, 4096, ACCEPT, none_ok=True).filter(
                lambda t: t[1] == REFUSE or t[0] is None or int(t[0]) <= 64 or int(t[0]) == 4096
            ),
        ),
        "early_exit": int_values(1, MAX_T, ACCEPT, none_ok=True),
    }
    if not checkpoints:
        out["timesteps"] = int_values(1, MAX_T, ACCEPT).filter(
            lambda t: t[1] == REFUSE or int(t[0]) <= 64 or int(t[0]) == MAX_T
        )
    return out


@st.composite
def engine_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A network spec, calls on it, and up to two changed arguments with what they expect."""
    net = draw(networks())
    n_layers = len(net["layers"])
    n = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).integers(0, 256, (n, *net["input_shape"]), dtype=np.uint8)
    calls: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 2))):
        method = draw(
            st.sampled_from(["run", "run", "run_checkpoints", "group_fan_out", "geometry"])
        )
        if method == "run":
            kw = {"timesteps": draw(st.integers(1, 8)), "delay": draw(st.sampled_from([0, 1]))}
            if draw(st.booleans()):
                kw["v_init"] = draw(st.sampled_from([0.0, 0.5, 0.3]))
            if draw(st.booleans()):
                kw["early_exit"] = draw(st.integers(1, 3))
            calls.append({"method": "run", "images": x, "kwargs": kw, "expect": ACCEPT})
        elif method == "run_checkpoints":
            cps = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3, unique=True))
            kw = {"checkpoints": cps, "delay": draw(st.sampled_from([0, 1]))}
            calls.append({"method": "run_checkpoints", "images": x, "kwargs": kw, "expect": ACCEPT})
        elif method == "group_fan_out":
            layer = draw(st.integers(1, n_layers))
            calls.append(
                {
                    "method": "group_fan_out",
                    "kwargs": {"layer": layer, "group": 0},
                    "expect": ACCEPT,
                }
            )
        else:
            name = draw(st.sampled_from(["fan_out", "synapse_groups"]))
            hi = n_layers - 1 if name == "fan_out" else n_layers
            calls.append(
                {"method": name, "kwargs": {"layer": draw(st.integers(0, hi))}, "expect": ACCEPT}
            )
    changes: list[str] = []
    changed: set[str] = set()  # each argument changes at most once
    net_expect = ACCEPT
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        where = draw(st.sampled_from(["layer", "layer", "layer", "group", "network", "call"]))
        if where == "layer":
            i = draw(st.integers(1, n_layers))
            layer = net["layers"][i - 1]
            sites = layer_sites(layer, i)
            name = draw(st.sampled_from(sorted(sites)))
            label = f"layer {i} {layer.cls}.{name}"
            if label in changed:
                continue
            value, expect = draw(sites[name]())
            layer.kwargs[name] = value
        elif where == "group":
            spiking = [i for i, l in enumerate(net["layers"], 1) if l.cls == "SpikingLayer"]
            if not spiking:
                continue
            i = draw(st.sampled_from(spiking))
            syn = net["layers"][i - 1].kwargs["synapses"]
            group = syn[0] if isinstance(syn, (list, tuple)) and syn else syn
            if not isinstance(group, Layer):
                continue
            sites = group_sites(group, i)
            name = draw(st.sampled_from(sorted(sites)))
            label = f"layer {i} {group.cls}.{name}"
            if label in changed or f"layer {i} SpikingLayer.synapses" in changed:
                continue
            value, expect = draw(sites[name]())
            group.kwargs[name] = value
        elif where == "network":
            name = draw(st.sampled_from(["input_shape", "input_threshold", "layers"]))
            label = f"Network {name}"
            if label in changed:
                continue
            if name == "input_shape":
                value, expect = draw(shape_values(net["input_shape"]))
            elif name == "input_threshold":
                value, expect = draw(int_values(1, PARAM_MAX, ACCEPT))
            else:
                value, expect = draw(layers_values(net["layers"]))
            net[f"given_{name}"] = value
        else:
            k = draw(st.integers(0, len(calls) - 1))
            call = calls[k]
            if call["method"] in ("run", "run_checkpoints"):
                sites = run_kwargs(call["method"] == "run_checkpoints")
                sites["images"] = image_values(net["input_shape"], n, seed)
                sites["record"] = record_values(n_layers + 1)
                if call["method"] == "run_checkpoints":
                    sites["checkpoints"] = checkpoint_values()
                name = draw(st.sampled_from(sorted(sites)))
                if f"call {k} {name}" in changed:
                    continue
                value, expect = draw(sites[name])
                if name == "images":
                    call["images"] = value
                else:
                    call["kwargs"][name] = value
            else:
                name = draw(st.sampled_from(sorted(call["kwargs"])))
                if f"call {k} {name}" in changed:
                    continue
                lo, hi = {
                    ("fan_out", "layer"): (0, n_layers - 1),
                    ("synapse_groups", "layer"): (0, n_layers),
                    ("group_fan_out", "layer"): (1, n_layers),
                    ("group_fan_out", "group"): (0, 0),
                }[(call["method"], name)]
                value, expect = draw(int_values(lo, hi, ACCEPT))
                call["kwargs"][name] = value
            call["expect"] = _worst(call["expect"], expect)
            changed.add(f"call {k} {name}")
            changes.append(f"call {k} {call['method']}.{name} = {_show(value)} ({expect})")
            continue
        changed.add(label)
        changes.append(f"{label} = {_show(value)} ({expect})")
        net_expect = _worst(net_expect, expect)
    if net_expect != ACCEPT:  # another network: the calls' own arguments may not fit it
        for call in calls:
            if call["expect"] == ACCEPT:
                call["expect"] = EITHER
    return {"net": net, "calls": calls, "expect": net_expect, "changes": changes}


def _worst(a: str, b: str) -> str:
    order = {ACCEPT: 0, EITHER: 1, REFUSE: 2}
    return a if order[a] >= order[b] else b


def _show(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<{v.dtype} {v.shape}>"
    if isinstance(v, (Layer,)):
        return v.cls
    text = repr(v)
    return text if len(text) < 80 else text[:77] + "..."


# -- in the worker ----------------------------------------------------------------------------

REFERENCE_WORK = 30_000_000  # (neurons)^2 x images x steps the reference may spend on a call


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "bases": [c.__name__ for c in type(exc).__mro__],
        "message": str(exc)[:500],
    }


def _reference_small(net: Any, n: int, t: int) -> bool:
    return t <= 64 and sum(net.sizes) <= 700 and sum(net.sizes) ** 2 * n * t <= REFERENCE_WORK


def _compare_run(net: Any, images: np.ndarray, res: Any) -> str | None:
    """``None`` if ``res`` equals the reference (or is too big to check), else what differs."""
    from reference import simulate

    imgs = net.check_images(images)
    if not _reference_small(net, imgs.shape[0], res.timesteps):
        return None
    want = simulate(net, imgs, res.timesteps, res.delay, res.v_init, early_exit=res.early_exit)
    for l in range(net.n_layers + 1):
        got_c, got_m = res.spike_counts[l], res.membrane[l]
        if got_c is None:
            continue
        if not np.array_equal(got_c, want["spike_counts"][l]):
            return f"spike counts of layer {l} differ from the reference"
        if not np.array_equal(got_m, want["membrane"][l]):
            return f"membrane of layer {l} differs from the reference"
    if not np.array_equal(res.synops, want["synops"]):
        return "synops differ from the reference"
    if not np.array_equal(res.steps, want["steps"]):
        return "steps differ from the reference"
    return None


def _check_result(net: Any, images: Any, res: Any, t: int, reference: bool) -> str | None:
    """What is wrong with one run's result: its settings, shapes, then (if ``reference``) its
    integers against the reference."""
    n = res.synops.shape[0]
    if res.timesteps != t or res.synops.shape != (n, net.n_layers + 1):
        return f"result shape or settings wrong: {res!r}"
    for l, counts in enumerate(res.spike_counts):
        if counts is not None and counts.shape != (n, *net.shapes[l]):
            return f"layer {l} counts have shape {counts.shape}"
    return _compare_run(net, images, res) if reference else None


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Build the network of ``case`` and make its calls; what each step did (worker side)."""
    import snnfast
    from reference import synapses_per_source

    spec = case["net"]
    out: dict[str, Any] = {"network": None, "calls": [], "made": 0}
    try:
        layers = build(spec.get("given_layers", spec["layers"]))
        shape = build(spec.get("given_input_shape", spec["input_shape"]))
        threshold = build(spec.get("given_input_threshold", spec["input_threshold"]))
        out["made"] += 1
        net = snnfast.Network(layers, input_shape=shape, input_threshold=threshold)
    except Exception as exc:  # noqa: BLE001 (reported to the parent)
        out["network"] = _error(exc)
        return out
    for call in case["calls"]:
        method, kwargs = call["method"], {k: build(v) for k, v in call["kwargs"].items()}
        out["made"] += 1
        try:
            if method == "run":
                images = build(call["images"])
                res = net.run(images, **kwargs)
                wrong = _check_result(net, images, res, int(kwargs.get("timesteps", 16)), True)
            elif method == "run_checkpoints":
                images = build(call["images"])
                results = net.run_checkpoints(images, **kwargs)
                wrong = None
                steps = sorted(int(c) for c in kwargs["checkpoints"])
                if len(results) != len(steps):
                    wrong = f"{len(results)} results for {len(steps)} checkpoints"
                for k, (t, res) in enumerate(zip(steps, results)):
                    wrong = wrong or _check_result(net, images, res, t, k < 4)
            elif method == "group_fan_out":
                got = net.group_fan_out(**kwargs)
                layer, group = int(kwargs["layer"]), int(kwargs["group"])
                wrong = None
                if sum(net.sizes) <= 700:
                    want = synapses_per_source(net, layer, group)
                    if not np.array_equal(got, want):
                        wrong = "group_fan_out differs from the reference"
            else:
                getattr(net, method)(**kwargs)
                wrong = None
            out["calls"].append({"ok": True, "wrong": wrong})
        except Exception as exc:  # noqa: BLE001
            out["calls"].append({"ok": False, **_error(exc)})
    return out


# -- the test ---------------------------------------------------------------------------------


def _named(info: dict[str, Any]) -> bool:
    return "SnnfastError" in info["bases"] and info["error"] != "SnnfastError"


def verdict(case: dict[str, Any], outcome: Any) -> list[str]:
    """What is wrong with one case's outcome (empty: nothing)."""
    if outcome.status != "ok":
        return [outcome.describe()]
    got = outcome.value
    problems = []
    if got["network"] is not None:
        if not _named(got["network"]):
            problems.append(
                f"Network raised {got['network']['error']}: {got['network']['message']}"
            )
        elif case["expect"] == ACCEPT:
            problems.append(f"a valid network was refused: {got['network']['message']}")
        return problems
    if case["expect"] == REFUSE:
        problems.append("an invalid network was accepted")
    for call, res in zip(case["calls"], got["calls"]):
        what = call["method"]
        if res["ok"]:
            if res["wrong"]:
                problems.append(f"{what}: silent wrong result: {res['wrong']}")
            if call["expect"] == REFUSE:
                problems.append(f"{what}: invalid arguments were accepted")
        elif not _named(res):
            problems.append(f"{what} raised {res['error']}: {res['message']}")
        elif call["expect"] == ACCEPT:
            problems.append(f"{what}: valid arguments were refused: {res['message']}")
    return problems


def test_engine_api_fuzz(tmp_path) -> None:
    """At least 5,000 engine calls (in CI) with bad and edge inputs, each in the sandbox.

    Problems are collected over every example and reported together (no shrinking: each
    problem names the changed arguments, which is what a fix needs)."""
    # a case makes about 1.75 calls (the network and one or two methods): 100 examples of 40
    # cases make about 7,000, with room above the goal whatever hypothesis draws
    examples = 100 if in_ci() else 12
    failures: list[str] = []
    env = {"SNNFAST_MEMORY_LIMIT": str(2 * 10**9)}
    with Sandbox(env=env, timeout=120, address_space=16 << 30) as box:

        @settings(max_examples=examples, phases=[Phase.generate])
        @given(st.lists(engine_cases(), min_size=BATCH, max_size=BATCH))
        def batch(cases: list[dict[str, Any]]) -> None:
            for case in cases:
                outcome = box.run("test_fuzz_engine:run_case", case)
                made = outcome.value["made"] if outcome.status == "ok" else 1
                count("engine", cases=1, calls=made)
                problems = verdict(case, outcome)
                if problems:
                    saved = tmp_path / f"case-{len(failures)}.pkl"
                    saved.write_bytes(pickle.dumps(case))
                for problem in problems:
                    what = "; ".join(case["changes"]) or "no change"
                    failures.append(f"{what}: {problem} [case in {saved}]")

        batch()
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(sorted(set(failures))[:60])
    if in_ci():
        assert COUNTS["engine"]["calls"] >= GOAL_CALLS, COUNTS["engine"]
