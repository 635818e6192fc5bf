"""How one layer is cut into cores: per-core resources of a candidate partition, computed
exactly from the factorised geometry (:mod:`snnfast.chip.geometry`), and the search for the
fewest cores that respect every limit of a chip (:func:`partition`).

Resources of one core (block of ``c x h x w`` neurons of one layer):

* **compartments**: neurons x compartments per neuron (two for a layer that resets by
  subtraction on a chip without a native soft reset, :attr:`ChipResources.soft_reset_compartments`);
* **input axons**: distinct presynaptic neurons with a synapse onto the block, over every
  group (groups from the same source share their axons: inclusion-exclusion of their product
  sets), plus one reset axon per neuron under the two-compartment soft reset;
* **output axons**: for each neuron of the block, the distinct cores of every later layer it
  reaches (one discrete axon per destination core), plus one reset axon per neuron;
* **synapse memory**: every synapse is stored; the synapses a presynaptic neuron has on the core
  (over all groups of its source) are entries of at most ``max_synapses_per_entry`` synapses of
  ``weight_bits + index_bits`` bits plus a header, in whole words
  (:meth:`ChipResources.entry_bits`); the index addresses the core's compartments.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ResourceError
from .geometry import GroupRelation, LayerGeometry
from .profiles import ChipResources

__all__ = ["RESOURCES", "Part", "compartments_per_neuron", "evaluate", "partition", "weight_bits"]

RESOURCES: tuple[str, ...] = ("compartments", "input_axons", "output_axons", "synapse_bits")
"""The per-core resources the mapper checks, in report order."""

LABELS = {
    "compartments": "compartments",
    "input_axons": "input axons",
    "output_axons": "output axons",
    "synapse_bits": "bits of synapse memory",
}

Factors = tuple[np.ndarray, np.ndarray, np.ndarray]


def compartments_per_neuron(geom: LayerGeometry, chip: ChipResources) -> int:
    """Compartments one neuron of ``geom`` takes on ``chip``."""
    return chip.soft_reset_compartments if geom.reset == "subtract" else 1


def weight_bits(geom: LayerGeometry, chip: ChipResources) -> tuple[int, int]:
    """``(stored weight bits, weight exponent)`` of the synapses into ``geom``: the widest
    weight plus a sign bit, at most ``chip.max_weight_bits``; the exponent is the number of
    lowest bits a wider weight loses (Loihi's shared weight exponent)."""
    if not geom.groups:
        return chip.max_weight_bits, 0
    need = geom.max_abs_weight.bit_length() + 1
    return min(need, chip.max_weight_bits), max(0, need - chip.max_weight_bits)


def _one_hot(d: int, b: int) -> np.ndarray:
    """Membership ``[d, ceil(d / b)]`` of ``d`` positions in consecutive groups of ``b``."""
    return (np.arange(d)[:, None] // b == np.arange(-(-d // b))[None, :]).astype(np.int64)


def _block_sizes(d: int) -> list[int]:
    """Block lengths that are the smallest for their number of parts, largest first."""
    return sorted({-(-d // k) for k in range(1, d + 1)}, reverse=True)


def _outer(vc: Any, vh: Any, vw: Any) -> np.ndarray:
    return (
        np.asarray(vc)[:, None, None]
        * np.asarray(vh)[None, :, None]
        * np.asarray(vw)[None, None, :]
    )


def _subsets(items: list[Any]) -> Any:
    for r in range(1, len(items) + 1):
        yield from itertools.combinations(items, r)


@dataclass(frozen=True, eq=False)
class Part:
    """One way of cutting a layer into blocks, and what each core of it would use.

    Attributes:
        block: neurons per core block ``(c, h, w)``.
        grid: blocks along ``(C, H, W)``; cores are numbered row-major over it.
        usage: per core (flat over the grid), int64 arrays ``neurons``, ``synapses``,
            ``index_bits`` and each resource of :data:`RESOURCES`.
        factors: per incoming group, its synapses from each source position onto each block,
            per axis (``[D_source, n_blocks]``).
    """

    block: tuple[int, int, int]
    grid: tuple[int, int, int]
    usage: dict[str, np.ndarray]
    factors: tuple[tuple[GroupRelation, Factors], ...]
    binding: str = ""


Consumers = list[list[Factors]]
"""Per later layer fed by this one, the factors of each of its groups from this layer."""


def _union_count(per_axis: list[list[np.ndarray]]) -> np.ndarray:
    """Inclusion-exclusion over groups: ``per_axis[g]`` are the three 0/1 reach matrices of group
    ``g`` (``[positions, blocks]``); returns, for ``axis_sum`` along positions, the size of the
    union of the groups' product sets per block cell."""
    total: np.ndarray | int = 0
    for subset in _subsets(list(range(len(per_axis)))):
        sign = 1 if len(subset) % 2 else -1
        vecs = []
        for axis in range(3):
            both = np.ones_like(per_axis[subset[0]][axis])
            for g in subset:
                both = both & per_axis[g][axis]
            vecs.append(both.sum(axis=0))
        total = total + sign * _outer(*vecs)
    return np.asarray(total, dtype=np.int64)


def _synapse_bits(
    sources: dict[int, list[Factors]],
    bits_cell: np.ndarray,
    grid: tuple[int, int, int],
    chip: ChipResources,
) -> np.ndarray:
    """Synapse memory of every block cell: per source, sum over presynaptic neurons of the entry
    bits of their synapses on the cell (all groups of that source together)."""
    out = np.zeros(grid, dtype=np.int64)
    for facs in sources.values():
        if len(facs) == 1:
            # One group: synapses onto a cell are a product over axes; count how many positions
            # have each value per axis and combine the three histograms.
            values, counts = [], []
            for f in facs[0]:
                v = np.unique(f[f > 0])
                values.append(v)
                counts.append((f[:, :, None] == v[None, None, :]).sum(axis=0))
            n = _outer(*values)
            for b in np.unique(bits_cell):
                table = chip.entry_bits(n, int(b))
                got = np.einsum("gu,iv,xw,uvw->gix", *counts, table)
                out += np.where(bits_cell == b, got, 0)
            continue
        # Several groups of one source: the synapses of a neuron on a cell are a sum of
        # products; count neuron by neuron, one cell at a time.
        for g, i, x in itertools.product(*(range(d) for d in grid)):
            n = np.sum([_outer(fc[:, g], fh[:, i], fw[:, x]) for fc, fh, fw in facs], axis=0)
            out[g, i, x] += int(chip.entry_bits(n[n > 0], int(bits_cell[g, i, x])).sum())
    return out


def evaluate(
    geom: LayerGeometry,
    block: tuple[int, int, int],
    consumers: Consumers,
    chip: ChipResources,
) -> Part:
    """Per-core usage of cutting ``geom`` into ``block``s (see the module docstring)."""
    (c, h, w), (bc, bh, bw) = geom.shape3, block
    members = (_one_hot(c, bc), _one_hot(h, bh), _one_hot(w, bw))
    grid = (members[0].shape[1], members[1].shape[1], members[2].shape[1])
    neurons = _outer(*(m.sum(axis=0) for m in members))
    k = compartments_per_neuron(geom, chip)
    reset = int(k > 1)
    compartments = neurons * k
    index_bits = np.maximum(
        chip.min_index_bits, np.ceil(np.log2(np.maximum(compartments, 2))).astype(np.int64)
    )
    wbits, _ = weight_bits(geom, chip)
    bits_cell = wbits + index_bits
    factors = tuple(
        (g, tuple(r.astype(np.int64) @ m for r, m in zip(g.relations, members)))
        for g in geom.groups
    )
    sources: dict[int, list[Factors]] = {}
    for g, f in factors:
        sources.setdefault(g.source, []).append(f)
    in_axons = np.zeros(grid, dtype=np.int64)
    synapses = np.zeros(grid, dtype=np.int64)
    for facs in sources.values():
        in_axons += _union_count([[f > 0 for f in fac] for fac in facs])
        for fac in facs:
            synapses += _outer(*(f.sum(axis=0) for f in fac))
    syn_bits = _synapse_bits(sources, bits_cell, grid, chip)
    out_axons = np.zeros(grid, dtype=np.int64)
    for groups in consumers:
        reach = [[f > 0 for f in fac] for fac in groups]
        for subset in _subsets(list(range(len(reach)))):
            sign = 1 if len(subset) % 2 else -1
            vecs = []
            for axis in range(3):
                both = np.ones_like(reach[subset[0]][axis])
                for g in subset:
                    both = both & reach[g][axis]
                vecs.append(members[axis].T @ both.sum(axis=1))
            out_axons += sign * _outer(*vecs)
    usage = {
        "neurons": neurons,
        "synapses": synapses + reset * neurons,
        "compartments": compartments,
        "input_axons": in_axons + reset * neurons,
        "output_axons": out_axons + reset * neurons,
        "synapse_bits": syn_bits + reset * neurons * chip.entry_bits(1, bits_cell),
        "index_bits": index_bits,
    }
    return Part(
        block=block,
        grid=grid,
        usage={key: np.asarray(v, dtype=np.int64).reshape(-1) for key, v in usage.items()},
        factors=factors,
    )


def fullness(usage: dict[str, np.ndarray], chip: ChipResources) -> dict[str, float]:
    """The fullest core's use of each checked resource, as a fraction of its limit."""
    return {r: float(usage[r].max()) / lim for r, lim in chip.limits.items() if lim is not None}


def _fits(usage: dict[str, np.ndarray], chip: ChipResources) -> bool:
    return all(int(usage[r].max()) <= lim for r, lim in chip.limits.items() if lim is not None)


def over_limit(
    geom: LayerGeometry, usage: dict[str, np.ndarray], chip: ChipResources, what: str
) -> None:
    """Raise :class:`ResourceError` for the first resource over its limit (``what`` says whose
    use it is: ``"one neuron"`` or ``"a core"``)."""
    reset = compartments_per_neuron(geom, chip) > 1
    for r in RESOURCES:
        lim = chip.limits[r]
        need = int(usage[r].max())
        if lim is None or need <= lim:
            continue
        detail = ""
        if r == "input_axons":
            detail = f" (fan-in {need - 1} + 1 soft-reset axon)" if reset else " (its fan-in)"
        raise ResourceError(
            f"{geom.name}: {what} needs {need} {LABELS[r]}{detail}, more than the {lim} "
            f"{LABELS[r]} of a core, so the layer cannot be placed on {chip.name}",
            layer=geom.name,
            resource=r,
            need=need,
            limit=lim,
        )


def partition(geom: LayerGeometry, consumers: Consumers, chip: ChipResources) -> Part:
    """Cut one layer into the fewest cores that respect every limit.

    Every block shape ``(c, h, w)`` whose side lengths are the smallest for their number of
    parts is a candidate; candidates are tried in order of increasing core count and the first
    core count with a candidate that fits wins; among its candidates the one whose fullest
    resource is least full is kept.

    Raises:
        ResourceError: even a core holding one neuron breaks a limit.
    """
    over_limit(geom, evaluate(geom, (1, 1, 1), consumers, chip).usage, chip, "one neuron")
    k = compartments_per_neuron(geom, chip)
    c, h, w = geom.shape3
    cands = [
        (bc, bh, bw)
        for bc in _block_sizes(c)
        for bh in _block_sizes(h)
        for bw in _block_sizes(w)
        if bc * bh * bw * k <= chip.max_compartments
    ]

    def n_cores(b: tuple[int, int, int]) -> int:
        return math.prod(-(-d // s) for d, s in zip(geom.shape3, b))

    cands.sort(key=n_cores)
    best: Part | None = None
    # for every block tried that did not fit: its resources' use relative to their limits
    tried: list[tuple[int, dict[str, float]]] = []
    for block in cands:
        if best is not None and n_cores(block) > math.prod(best.grid):
            break
        part = evaluate(geom, block, consumers, chip)
        if not _fits(part.usage, chip):
            tried.append((n_cores(block), fullness(part.usage, chip)))
            continue
        if best is None or max(fullness(part.usage, chip).values()) < max(
            fullness(best.usage, chip).values()
        ):
            best = part
    if best is None:  # pragma: no cover - the 1x1x1 block fits after the check above
        raise ResourceError(f"{geom.name}: no partition fits a core", layer=geom.name)
    # The binding resource: the one the closest-to-fitting partition with fewer cores breaks
    # (a block over the compartments of a core is that); with none, the fullest resource.
    fewer = [full for n, full in tried if n < math.prod(best.grid)]
    volume = chip.max_compartments // k
    for b in itertools.product(_block_sizes(c), _block_sizes(h), _block_sizes(w)):
        if n_cores(b) < math.prod(best.grid) and math.prod(b) > volume:
            fewer.append({"compartments": math.prod(b) * k / chip.max_compartments})
    closest = min(fewer, key=lambda f: max(f.values()), default=fullness(best.usage, chip))
    binding = max(closest, key=lambda r: closest[r])
    return Part(best.block, best.grid, best.usage, best.factors, binding)
