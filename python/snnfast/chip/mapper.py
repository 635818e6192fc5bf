"""The mapper: places a network on the cores of a chip profile (:class:`Loihi1`) and checks it.

A :class:`Network` is placed on neuromorphic cores layer by layer; one core never holds two
layers. Every layer, the input layer 0 included, is a layer of compartments on cores: on
Loihi the input is an ``NxInputLayer`` of compartments whose bias is the pixel value, exactly
our input neurons (NxTF, ``nxsdk_modules_ncl/dnn/src/dnn_layers.py``).

Each layer is seen as ``(C, H, W)`` (a dense layer of ``O`` neurons as ``(O, 1, 1)``) and cut
into blocks of ``c x h x w`` neurons (a channel group times a spatial tile), one block per
core. Connectivity between two consecutive layers factorises over the three axes (a synapse
joins ``(a, r, s)`` to ``(b, y, x)`` iff the channel, row and column relations all hold), so
every per-core resource below is computed exactly from geometry, with no per-synapse loop.

Resources of one core (all checked against :class:`Loihi1`):

* **compartments**: neurons x ``soft_reset_compartments``;
* **input axons**: distinct presynaptic neurons with a synapse onto the core (the union of the
  receptive fields), plus one reset axon per neuron under two-compartment soft reset;
* **output axons**: for each neuron of the core, the number of distinct cores of the next layer
  it reaches (one discrete axon per destination core, as NxTF and nengo-loihi count them),
  plus one reset axon per neuron under soft reset;
* **synapse memory**: every synapse is stored (convolution weights are not shared on chip,
  ``docs/loihi.md``).
  The synapses a presynaptic axon has on the core are stored as entries of at most
  ``max_synapses_per_entry`` synapses; an entry of ``n`` synapses takes
  ``n * (weight_bits + index_bits) + synapse_header_bits`` bits rounded up to whole 64-bit
  words (nengo-loihi ``SynapseConfig.bits_per_axon``; NxTF ``SynEntry``). ``weight_bits`` is
  the layer's widest weight plus a sign bit (9 for the paper's ``W_MAX = 255``), at most
  ``max_weight_bits`` (wider weights are stored with an exponent, see :attr:`Mapping.notes`);
  ``index_bits`` addresses the core's compartments (at least ``min_index_bits``).

How the partition is chosen: layers are partitioned from the last to the first, because a
layer's output axons depend on how the next layer is cut. For each layer every block shape
``(c, h, w)`` whose side lengths are the smallest for their number of parts
(``ceil(D / k)``) is a candidate; candidates are tried in order of increasing core count and
the first core count with a candidate that respects every limit wins; among its candidates the
one whose fullest resource is least full is kept. Cores are then numbered layer after layer
and placed row-major on the ``8 x 16`` grid of each chip (the paper's Fig 3), chip after chip.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from .._records import Record
from ..errors import ConfigError, ResourceError
from ..network import AvgPool2d, Conv2d, Dense, Network
from .loihi1 import Loihi1

__all__ = [
    "RESOURCES",
    "LayerMap",
    "Mapping",
    "MappingSummary",
    "check_deployable",
    "map_network",
]

RESOURCES: tuple[str, ...] = ("compartments", "input_axons", "output_axons", "synapse_bits")
"""The per-core resources the mapper checks, in report order."""

_LABELS = {
    "compartments": "compartments",
    "input_axons": "input axons",
    "output_axons": "output axons",
    "synapse_bits": "bits of synapse memory",
}


# -- geometry -------------------------------------------------------------------------------


def _window(d_pre: int, d_post: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Relation of one spatial axis: ``R[r, y]`` iff input ``r`` is in output ``y``'s window."""
    off = np.arange(d_pre)[:, None] - (np.arange(d_post)[None, :] * stride - padding)
    return (off >= 0) & (off < kernel)


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if len(shape) == 3 else (shape[0], 1, 1)


def _one_hot(d: int, b: int) -> np.ndarray:
    """Membership ``[d, ceil(d / b)]`` of ``d`` positions in consecutive groups of ``b``."""
    return (np.arange(d)[:, None] // b == np.arange(-(-d // b))[None, :]).astype(np.int64)


def _block_sizes(d: int) -> list[int]:
    """Block lengths that are the smallest for their number of parts, largest first."""
    return sorted({-(-d // k) for k in range(1, d + 1)}, reverse=True)


@dataclass(frozen=True, eq=False)
class _Geometry:
    """One layer's neurons and its connectivity from the previous layer."""

    index: int
    kind: str
    shape: tuple[int, ...]
    shape3: tuple[int, int, int]
    relations: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # channel, row, col
    weight_bits: int
    max_abs_weight: int


def _geometries(net: Network, chip: Loihi1) -> list[_Geometry]:
    shapes = net.shapes
    out = [_Geometry(0, "input", shapes[0], _shape3(shapes[0]), None, chip.max_weight_bits, 0)]
    for l, layer in enumerate(net.layers, start=1):
        pre, post = _shape3(shapes[l - 1]), _shape3(shapes[l])
        if isinstance(layer, Conv2d):
            k, s, p = layer.weight.shape[2], layer.stride, layer.padding
            rel = (
                np.ones((pre[0], post[0]), dtype=bool),
                _window(pre[1], post[1], k, s, p),
                _window(pre[2], post[2], k, s, p),
            )
            wmax = int(np.abs(layer.weight.astype(np.int64)).max(initial=0))
        elif isinstance(layer, AvgPool2d):
            k = layer.kernel
            rel = (
                np.eye(pre[0], dtype=bool),
                _window(pre[1], post[1], k, k, 0),
                _window(pre[2], post[2], k, k, 0),
            )
            wmax = abs(int(layer.weight))
        elif isinstance(layer, Dense):
            rel = (
                np.ones((pre[0], post[0]), dtype=bool),
                np.ones((pre[1], 1), dtype=bool),
                np.ones((pre[2], 1), dtype=bool),
            )
            wmax = int(np.abs(layer.weight.astype(np.int64)).max(initial=0))
        else:  # pragma: no cover - Network validates its layers
            raise ConfigError(f"layer {l}: unsupported layer type {type(layer).__name__}")
        bits = min(wmax.bit_length() + 1, chip.max_weight_bits)
        out.append(_Geometry(l, layer.kind, shapes[l], post, rel, bits, wmax))
    return out


def _weight_notes(geoms: list[_Geometry], chip: Loihi1) -> tuple[str, ...]:
    """Layers whose weights are wider than a synapse holds.

    Loihi stores such weights as a ``max_weight_bits`` mantissa with a shared exponent, losing
    their lowest bits (the paper's Algorithm 1 does not clip, so a few weights can exceed
    ``W_MAX``); they take the same synapse memory, so this is a warning, not an error.
    """
    notes = []
    for g in geoms:
        need = g.max_abs_weight.bit_length() + 1
        if g.relations is not None and need > chip.max_weight_bits:
            notes.append(
                f"{_name(g)}: max |w| = {g.max_abs_weight} needs {need} weight bits, a Loihi "
                f"synapse holds {chip.max_weight_bits}; on chip these weights lose their "
                f"{need - chip.max_weight_bits} lowest bit(s) (weight exponent)"
            )
    return tuple(notes)


def _name(geom: _Geometry) -> str:
    return f"layer {geom.index} ({geom.kind})"


# -- one layer's partition ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerMap:
    """Where one layer sits on the chip and what each of its cores uses.

    Attributes:
        index: layer index (0 = input).
        kind: ``"input"``, ``"conv2d"``, ``"avgpool2d"`` or ``"dense"``.
        shape: the layer's neuron shape, as :attr:`Network.shapes` gives it.
        block: ``(c, h, w)`` neurons per core block (a dense layer is ``(O, 1, 1)``).
        grid: number of blocks along ``(C, H, W)``; cores are numbered row-major over it.
        first_core: global index of the layer's first core.
        weight_bits, index_bits: widths of one stored synapse's weight and target index.
        usage: per core (length :attr:`n_cores`), int64 arrays ``neurons``, ``synapses`` and
            each resource of :data:`RESOURCES`.
        factors: per axis ``(C, H, W)``, int64 ``[D_prev, n_blocks]``: synapses from each
            position of the previous layer onto each block of this one (the product over the
            three axes is a presynaptic neuron's synapses on a core); ``None`` for the input.
        members: per axis, 0/1 int64 ``[D, n_blocks]``: which block each position is in.
    """

    index: int
    kind: str
    shape: tuple[int, ...]
    block: tuple[int, int, int]
    grid: tuple[int, int, int]
    first_core: int
    weight_bits: int
    index_bits: int
    usage: dict[str, np.ndarray] = field(repr=False)
    factors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(repr=False)
    members: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)

    @property
    def n_cores(self) -> int:
        """Number of cores the layer occupies."""
        return int(np.prod(self.grid))

    @property
    def cores(self) -> range:
        """Global indices of the layer's cores."""
        return range(self.first_core, self.first_core + self.n_cores)


@dataclass(frozen=True, eq=False)
class _Part:
    """One way of cutting a layer into blocks, and what each core of it would use."""

    block: tuple[int, int, int]
    usage: dict[str, np.ndarray]
    grid: tuple[int, int, int]
    index_bits: int
    factors: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    members: tuple[np.ndarray, np.ndarray, np.ndarray]


def _evaluate(
    geom: _Geometry,
    block: tuple[int, int, int],
    dest: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    chip: Loihi1,
) -> _Part:
    """Per-core usage (arrays over the block grid) of cutting ``geom`` into ``block``s.

    ``dest`` gives, per axis of this layer, how many blocks of the next layer each position
    reaches (their product is a neuron's destination-core count); ``None`` for the last layer.
    """
    (c, h, w), (bc, bh, bw) = geom.shape3, block
    members = (_one_hot(c, bc), _one_hot(h, bh), _one_hot(w, bw))
    sc, sh, sw = (m.sum(axis=0) for m in members)
    neurons = sc[:, None, None] * sh[None, :, None] * sw[None, None, :]
    reset = int(chip.soft_reset_compartments > 1)
    per_core = int(np.prod(block)) * chip.soft_reset_compartments
    index_bits = max(chip.min_index_bits, (per_core - 1).bit_length())
    bits_per_syn = geom.weight_bits + index_bits

    def outer(vc: np.ndarray, vh: np.ndarray, vw: np.ndarray) -> np.ndarray:
        return vc[:, None, None] * vh[None, :, None] * vw[None, None, :]

    factors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    if geom.relations is None:
        in_axons = np.zeros_like(neurons)
        synapses = np.zeros_like(neurons)
        syn_bits = np.zeros_like(neurons)
    else:
        rc, rh, rw = (r.astype(np.int64) for r in geom.relations)
        factors = (rc @ members[0], rh @ members[1], rw @ members[2])
        in_axons = outer(*((f > 0).sum(axis=0) for f in factors))
        synapses = outer(*(f.sum(axis=0) for f in factors))
        # Bits: sum over presynaptic positions of entry_bits(synapses onto this block). Per axis,
        # count how many positions have each synapse count, then combine the three histograms.
        values, counts = [], []
        for f in factors:
            v = np.unique(f[f > 0])
            values.append(v)
            counts.append((f[:, :, None] == v[None, None, :]).sum(axis=0))
        n = values[0][:, None, None] * values[1][None, :, None] * values[2][None, None, :]
        table = chip.entry_bits(n, bits_per_syn)
        syn_bits = np.einsum("gu,iv,xw,uvw->gix", *counts, table)
    if dest is None:
        out_axons = np.zeros_like(neurons)
    else:
        out_axons = outer(*(m.T @ d for m, d in zip(members, dest)))
    usage = {
        "neurons": neurons,
        "synapses": synapses + reset * neurons,
        "compartments": neurons * chip.soft_reset_compartments,
        "input_axons": in_axons + reset * neurons,
        "output_axons": out_axons + reset * neurons,
        "synapse_bits": syn_bits + reset * neurons * int(chip.entry_bits(1, bits_per_syn)),
    }
    return _Part(
        block=block,
        usage={k: np.asarray(v, dtype=np.int64).reshape(-1) for k, v in usage.items()},
        grid=(members[0].shape[1], members[1].shape[1], members[2].shape[1]),
        index_bits=index_bits,
        factors=factors,
        members=members,
    )


def _fullness(usage: dict[str, np.ndarray], limits: dict[str, int]) -> float:
    return max(float(usage[r].max()) / limits[r] for r in RESOURCES)


def _fits(usage: dict[str, np.ndarray], limits: dict[str, int]) -> bool:
    return all(int(usage[r].max()) <= limits[r] for r in RESOURCES)


def _check_single_neuron(
    geom: _Geometry,
    dest: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    chip: Loihi1,
) -> None:
    """Raise if even a core holding one neuron breaks a limit (then no partition can fit)."""
    usage = _evaluate(geom, (1, 1, 1), dest, chip).usage
    limits = chip.limits
    reset = int(chip.soft_reset_compartments > 1)
    for r in RESOURCES:
        need = int(usage[r].max())
        if need <= limits[r]:
            continue
        detail = ""
        if r == "input_axons" and reset:
            detail = f" (fan-in {need - 1} + 1 soft-reset axon)"
        elif r == "input_axons":
            detail = " (its fan-in)"
        raise ResourceError(
            f"{_name(geom)}: one neuron needs {need} {_LABELS[r]}{detail}, more than the "
            f"{limits[r]} {_LABELS[r]} of a core, so the layer cannot be placed on Loihi"
        )


def _partition(
    geom: _Geometry,
    dest: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    chip: Loihi1,
) -> _Part:
    """Cut one layer into the fewest cores that respect every limit (see module docstring)."""
    _check_single_neuron(geom, dest, chip)
    limits = chip.limits
    c, h, w = geom.shape3
    cands = [
        (bc, bh, bw)
        for bc in _block_sizes(c)
        for bh in _block_sizes(h)
        for bw in _block_sizes(w)
        if bc * bh * bw * chip.soft_reset_compartments <= chip.max_compartments
    ]
    cands.sort(key=lambda b: math.prod(-(-d // s) for d, s in zip(geom.shape3, b)))
    best: _Part | None = None
    best_cores = 0
    for block in cands:
        n_cores = math.prod(-(-d // s) for d, s in zip(geom.shape3, block))
        if best is not None and n_cores > best_cores:
            break
        ev = _evaluate(geom, block, dest, chip)
        if not _fits(ev.usage, limits):
            continue
        if best is None or _fullness(ev.usage, limits) < _fullness(best.usage, limits):
            best, best_cores = ev, n_cores
    if best is None:  # pragma: no cover - the 1x1x1 block fits after _check_single_neuron
        raise ResourceError(f"{_name(geom)}: no partition fits a core")
    return best


# -- the mapping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingSummary(Record):
    """What a :class:`Mapping` amounts to, for reports and result files.

    Attributes:
        n_cores, n_chips: cores and chips used.
        cores_per_layer: cores of each layer, input first.
        report: :meth:`Mapping.report`'s table.
        notes: the mapping's warnings.
    """

    n_cores: int
    n_chips: int
    cores_per_layer: list[int]
    report: str
    notes: list[str]


@dataclass(frozen=True, eq=False)
class Mapping:
    """A network placed on Loihi cores; see the :mod:`snnfast.chip.mapper` docstring.

    Attributes:
        chip: the chip description used.
        layers: one :class:`LayerMap` per network layer, input first.
        notes: warnings about the mapping (weights wider than a synapse holds).
    """

    chip: Loihi1
    layers: tuple[LayerMap, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_cores(self) -> int:
        """Cores used by the whole network."""
        return sum(lm.n_cores for lm in self.layers)

    @property
    def n_chips(self) -> int:
        """Chips the cores fill (cores are numbered chip after chip)."""
        return -(-self.n_cores // self.chip.cores_per_chip)

    @property
    def cores_per_layer(self) -> list[int]:
        """Number of cores of each layer, input first."""
        return [lm.n_cores for lm in self.layers]

    @property
    def core_layer(self) -> np.ndarray:
        """Layer index of every core: int64 ``[n_cores]``."""
        return np.repeat(np.arange(len(self.layers)), self.cores_per_layer)

    def placement(self, core: int) -> tuple[int, int, int]:
        """``(chip, row, col)`` of global core ``core``."""
        if not 0 <= core < self.n_cores:
            raise ConfigError(f"core must be in [0, {self.n_cores - 1}], got {core}")
        chip, local = divmod(int(core), self.chip.cores_per_chip)
        row, col = divmod(local, self.chip.grid_cols)
        return chip, row, col

    @property
    def placements(self) -> np.ndarray:
        """``(chip, row, col)`` of every core: int64 ``[n_cores, 3]``."""
        cores = np.arange(self.n_cores)
        chip, local = np.divmod(cores, self.chip.cores_per_chip)
        row, col = np.divmod(local, self.chip.grid_cols)
        return np.stack([chip, row, col], axis=1)

    def usage(self, name: str) -> np.ndarray:
        """Per-core ``name`` (a resource, ``"neurons"`` or ``"synapses"``): int64 ``[n_cores]``."""
        if name not in self.layers[0].usage:
            raise ConfigError(f"unknown usage {name!r}; choose from {sorted(self.layers[0].usage)}")
        return np.concatenate([lm.usage[name] for lm in self.layers])

    def utilization(self) -> list[dict[str, tuple[int, int]]]:
        """For every core, each resource of :data:`RESOURCES` as a ``(used, max)`` pair."""
        limits = self.chip.limits
        used = {r: self.usage(r) for r in RESOURCES}
        return [{r: (int(used[r][k]), limits[r]) for r in RESOURCES} for k in range(self.n_cores)]

    def report(self) -> str:
        """A readable table: per layer its cores and the fullest core's use of each resource."""
        limits = self.chip.limits
        head = (
            f"Loihi 1 mapping: {self.n_cores} cores on {self.n_chips} chip(s) of "
            f"{self.chip.cores_per_chip} cores "
            f"({self.chip.soft_reset_compartments} compartment(s) per neuron)"
        )
        cols = (
            "layer",
            "kind",
            "shape",
            "neurons",
            "block",
            "cores",
            "compart.",
            "in-axons",
            "out-axons",
            "syn-mem",
            "w/idx bits",
        )
        rows = []
        for lm in self.layers:
            fullest = [f"{100.0 * lm.usage[r].max() / limits[r]:.0f}%" for r in RESOURCES]
            rows.append(
                (
                    str(lm.index),
                    lm.kind,
                    "x".join(map(str, lm.shape)),
                    str(int(lm.usage["neurons"].sum())),
                    "x".join(map(str, lm.block)),
                    str(lm.n_cores),
                    *fullest,
                    f"{lm.weight_bits}/{lm.index_bits}",
                )
            )
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        line = "  ".join(c.rjust(wd) for c, wd in zip(cols, widths))
        body = ["  ".join(v.rjust(wd) for v, wd in zip(r, widths)) for r in rows]
        note = "resource columns: fullest core of the layer, % of the per-core limit"
        return "\n".join([head, line, *body, note, *(f"warning: {n}" for n in self.notes)])

    def summary(self) -> MappingSummary:
        """Core counts, the report table and the notes."""
        return MappingSummary(
            self.n_cores, self.n_chips, self.cores_per_layer, self.report(), list(self.notes)
        )


def _map(net: Network, chip: Loihi1) -> Mapping:
    """Partition and place every layer; no chip-count check."""
    if not isinstance(net, Network):
        raise ConfigError(f"expected a snnfast.Network, got {type(net).__name__}")
    if not isinstance(chip, Loihi1):
        raise ConfigError(f"chip must be a Loihi1, got {type(chip).__name__}")
    geoms = _geometries(net, chip)
    parts: dict[int, _Part] = {}
    dest = None
    for g in reversed(geoms):
        part = _partition(g, dest, chip)
        parts[g.index] = part
        if part.factors is not None:
            dest = tuple((f > 0).sum(axis=1) for f in part.factors)
    layers = []
    first = 0
    for g in geoms:
        part = parts[g.index]
        lm = LayerMap(
            g.index,
            g.kind,
            tuple(g.shape),
            part.block,
            part.grid,
            first,
            g.weight_bits,
            part.index_bits,
            part.usage,
            part.factors,
            part.members,
        )
        layers.append(lm)
        first += lm.n_cores
    return Mapping(chip, tuple(layers), _weight_notes(geoms, chip))


def _check_chips(mapping: Mapping, max_chips: int | None) -> None:
    if max_chips is None or mapping.n_chips <= max_chips:
        return
    limit = max_chips * mapping.chip.cores_per_chip
    lm = next(lm for lm in mapping.layers if lm.first_core + lm.n_cores > limit)
    raise ResourceError(
        f"layer {lm.index} ({lm.kind}): its cores {lm.first_core}..{lm.first_core + lm.n_cores - 1}"
        f" go past the {limit} cores of max_chips = {max_chips}; the network needs "
        f"{mapping.n_cores} cores = {mapping.n_chips} chips"
    )


def map_network(net: Network, chip: Loihi1 | None = None, max_chips: int | None = None) -> Mapping:
    """Place ``net`` on Loihi cores (see the module docstring for how).

    Args:
        net: the spiking network.
        chip: chip description (default :class:`Loihi1`).
        max_chips: chip limit; ``None`` uses ``chip.max_chips`` (itself ``None`` = no limit).

    Warns:
        UserWarning: a layer's weights are wider than ``chip.max_weight_bits`` (see
            :attr:`Mapping.notes`); they are stored at the chip's width.

    Raises:
        ResourceError: a single neuron breaks a per-core limit (fan-in over the input axons,
            synapses over one core's memory), or the network needs more chips than allowed.
            The message names the layer (index and kind), the resource, the amount needed and
            the limit.
    """
    chip = Loihi1() if chip is None else chip
    if max_chips is not None:
        max_chips = _checks.positive_int(max_chips, "max_chips", where="map_network")
    mapping = _map(net, chip)
    _check_chips(mapping, chip.max_chips if max_chips is None else max_chips)
    for note in mapping.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return mapping


def check_deployable(
    net: Network, chip: Loihi1 | None = None, max_chips: int | None = None
) -> tuple[bool, str]:
    """``(True, "")`` if :func:`map_network` succeeds, else ``(False, reason)``."""
    try:
        map_network(net, chip, max_chips)
    except ResourceError as exc:
        return False, str(exc)
    return True, ""
