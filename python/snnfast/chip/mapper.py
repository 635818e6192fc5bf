"""The mapper: places a network's layer graph on the cores of a chip and checks it.

A :class:`Network` (any graph :func:`snnfast.from_torch` makes: residual additions,
concatenations, grouped and depthwise convolutions, pooling with stride and padding) is placed
on neuromorphic cores layer by layer; one core never holds two layers. Every layer, the input
layer 0 included, is a layer of compartments on cores: on Loihi the input is an
``NxInputLayer`` of compartments whose bias is the pixel value, exactly our input neurons
(NxTF, ``nxsdk_modules_ncl/dnn/src/dnn_layers.py``).

Each layer is seen as ``(C, H, W)`` (a dense layer of ``O`` neurons as ``(O, 1, 1)``) and cut
into blocks of ``c x h x w`` neurons (a channel range times a spatial tile), one block per core
(:mod:`snnfast.chip.partition` says how the block is chosen and what each core uses). Layers
are partitioned from the last to the first, because a layer's output axons depend on how the
layers it feeds are cut. Cores are then numbered layer after layer and placed row-major on each
chip's grid (the paper's Fig 3), chip after chip.

The final resources of every core are counted again in the Rust core from the placement alone
(:meth:`Mapping.native`: every synapse enumerated, nengo-loihi's synapse-memory model); they are
the ones reported and checked. What does not fit raises :class:`snnfast.errors.ResourceError`
with the layer, the resource, what one neuron or core needs and the limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from .. import _checks
from .._records import Record
from ..errors import ConfigError, ResourceError
from ..network import Network
from .geometry import LayerGeometry, geometries, shape3
from .loihi1 import LOIHI1
from .partition import (
    RESOURCES,
    Consumers,
    Part,
    compartments_per_neuron,
    over_limit,
    partition,
    weight_bits,
)
from .profiles import ChipResources, Profile

__all__ = [
    "RESOURCES",
    "LayerMap",
    "Mapping",
    "MappingSummary",
    "check_deployable",
    "map_network",
]


@dataclass(frozen=True, eq=False)
class LayerMap:
    """Where one layer sits on the chip and what each of its cores uses.

    Attributes:
        index: layer index (0 = input).
        kind: ``"input"``, ``"conv2d"``, ``"avgpool2d"``, ``"dense"`` or ``"spiking"``.
        label: what reports call it.
        shape: the layer's neuron shape, as :attr:`Network.shapes` gives it.
        block: ``(c, h, w)`` neurons per core block (a dense layer is ``(O, 1, 1)``).
        grid: number of blocks along ``(C, H, W)``; cores are numbered row-major over it.
        first_core: global index of the layer's first core.
        compartments: compartments per neuron.
        weight_bits, weight_exponent: width of a stored weight and the shared exponent wider
            weights need (the lowest bits they lose).
        binding: the resource that set the layer's core count: the one the closest-to-fitting
            partition with fewer cores breaks (with none, the fullest one).
        usage: per core (length :attr:`n_cores`), int64 arrays ``neurons``, ``synapses``,
            ``index_bits``, ``weight_bits`` and each resource of :data:`RESOURCES`, as the Rust
            core counts them.
    """

    index: int
    kind: str
    label: str
    shape: tuple[int, ...]
    block: tuple[int, int, int]
    grid: tuple[int, int, int]
    first_core: int
    compartments: int
    weight_bits: int
    weight_exponent: int
    binding: str
    usage: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_cores(self) -> int:
        """Number of cores the layer occupies."""
        return int(np.prod(self.grid))

    @property
    def cores(self) -> range:
        """Global indices of the layer's cores."""
        return range(self.first_core, self.first_core + self.n_cores)

    @property
    def core_of(self) -> np.ndarray:
        """The global core of every neuron: uint32, shaped like the layer's neurons."""
        c, h, w = shape3(self.shape)
        bc, bh, bw = self.block
        _, gh, gw = self.grid
        cc, hh, ww = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        local = (cc // bc * gh + hh // bh) * gw + ww // bw
        return (local + self.first_core).astype(np.uint32).reshape(self.shape)

    @property
    def index_bits(self) -> int:
        """Widest compartment index of the layer's cores."""
        return int(self.usage["index_bits"].max())


@dataclass(frozen=True)
class MappingSummary(Record):
    """What a :class:`Mapping` amounts to, for reports and result files.

    Attributes:
        n_cores, n_chips: cores and chips used.
        cores_per_layer: cores of each layer, input first.
        report: :meth:`Mapping.report`'s table.
        notes: the mapping's warnings.
        chip: the chip's name; binding: the binding resource of each layer.
    """

    n_cores: int
    n_chips: int
    cores_per_layer: list[int]
    report: str
    notes: list[str]
    chip: str = "Loihi 1"
    binding: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Mapping:
    """A network placed on chip cores; see the :mod:`snnfast.chip.mapper` docstring.

    Attributes:
        chip: the chip's resources.
        layers: one :class:`LayerMap` per network layer, input first.
        notes: warnings about the mapping (weights wider than a synapse holds).
        network: the network placed.
        profile: the profile it was mapped for (its costs price a run), or ``None`` when only
            resources were given.
    """

    chip: ChipResources
    layers: tuple[LayerMap, ...]
    notes: tuple[str, ...] = ()
    network: Network | None = field(default=None, repr=False)
    profile: Profile | None = field(default=None, repr=False)

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

    @property
    def tiles(self) -> np.ndarray:
        """``(x, y)`` router tile of every core (chips side by side east-west): int64
        ``[n_cores, 2]``."""
        p, c = self.placements, self.chip
        x = p[:, 0] * (c.grid_cols // c.tile_cols) + p[:, 2] // c.tile_cols
        y = p[:, 1] // c.tile_rows
        return np.stack([x, y], axis=1)

    @property
    def n_tiles(self) -> int:
        """Router tiles in use."""
        return len({(int(x), int(y)) for x, y in self.tiles})

    @cached_property
    def native(self) -> Any:
        """The Rust core's chip map of this placement (``snnfast._core.ChipMap``): the fan-out
        of every neuron, for counting runs and resources."""
        if self.network is None:
            raise ConfigError("this Mapping has no network (make it with map_network)")
        return self.network.chip_map(
            cores=[np.ascontiguousarray(lm.core_of.reshape(-1)) for lm in self.layers],
            compartments=[lm.compartments for lm in self.layers],
            reset_synapse=[lm.compartments > 1 for lm in self.layers],
            weight_bits=[lm.weight_bits for lm in self.layers],
            tiles=[(int(x), int(y)) for x, y in self.tiles],
            synapse_format=self.chip.synapse_format,
        )

    def recounted(self, chip: ChipResources) -> Mapping:
        """The same placement (blocks, cores, tiles) on ``chip``: compartments per neuron and
        weight widths from ``chip``, every core's resources counted again and checked (for
        costing one placement under another chip's rules, e.g. one compartment per neuron).

        Raises:
            ResourceError: a core of the placement breaks one of ``chip``'s limits.
        """
        if self.network is None:
            raise ConfigError("this Mapping has no network (make it with map_network)")
        if not isinstance(chip, ChipResources):
            raise ConfigError(f"chip must be a ChipResources, got {type(chip).__name__}")
        geoms = geometries(self.network)
        layers = []
        for lm, g in zip(self.layers, geoms):
            wbits, exponent = weight_bits(g, chip)
            k = compartments_per_neuron(g, chip)
            layers.append(replace(lm, compartments=k, weight_bits=wbits, weight_exponent=exponent))
        profile = None if self.profile is None else self.profile.replace(resources=chip)
        out = Mapping(chip, tuple(layers), _weight_notes(geoms, chip), self.network, profile)
        _check_chips(out, chip.max_chips)
        return _counted(out, geoms)

    def usage(self, name: str) -> np.ndarray:
        """Per-core ``name`` (a resource, ``"neurons"``, ``"synapses"``, ``"index_bits"`` or
        ``"weight_bits"``): int64 ``[n_cores]``."""
        if name not in self.layers[0].usage:
            raise ConfigError(f"unknown usage {name!r}; choose from {sorted(self.layers[0].usage)}")
        return np.concatenate([lm.usage[name] for lm in self.layers])

    def utilization(self) -> list[dict[str, tuple[int, int | None]]]:
        """For every core, each resource of :data:`RESOURCES` as a ``(used, max)`` pair
        (``max`` is ``None`` where the chip has no published limit)."""
        limits = self.chip.limits
        used = {r: self.usage(r) for r in RESOURCES}
        return [{r: (int(used[r][k]), limits[r]) for r in RESOURCES} for k in range(self.n_cores)]

    def report(self) -> str:
        """A readable table: per layer its cores, the fullest core's use of each resource and
        the binding resource."""
        limits = self.chip.limits
        reset = self.chip.soft_reset_compartments
        head = (
            f"{self.chip.name} mapping: {self.n_cores} cores on {self.n_chips} chip(s) of "
            f"{self.chip.cores_per_chip} cores, {self.n_tiles} tiles "
            f"({reset} compartment(s) per neuron with reset by subtraction)"
        )
        cols = ("layer", "kind", "shape", "neurons", "block", "cores", "compart.", "in-axons",
                "out-axons", "syn-mem", "w/idx bits", "binding")  # fmt: skip
        rows = []
        for lm in self.layers:
            fullest = []
            for r in RESOURCES:
                lim = limits[r]
                top = int(lm.usage[r].max())
                fullest.append(f"{100.0 * top / lim:.0f}%" if lim else f"{top} (no limit)")
            bits = f"{lm.weight_bits}/{lm.index_bits}"
            if lm.weight_exponent:
                bits += f" e{lm.weight_exponent}"
            rows.append(
                (
                    str(lm.index),
                    lm.label if lm.kind == "spiking" else lm.kind,
                    "x".join(map(str, lm.shape)),
                    str(int(lm.usage["neurons"].sum())),
                    "x".join(map(str, lm.block)),
                    str(lm.n_cores),
                    *fullest,
                    bits,
                    lm.binding.replace("_", " "),
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
            self.n_cores,
            self.n_chips,
            self.cores_per_layer,
            self.report(),
            list(self.notes),
            self.chip.name,
            [lm.binding for lm in self.layers],
        )


def _weight_notes(geoms: list[LayerGeometry], chip: ChipResources) -> tuple[str, ...]:
    """Layers whose weights are wider than a synapse holds.

    The chip stores such weights as a ``max_weight_bits`` mantissa with a shared exponent,
    losing their lowest bits (the paper's Algorithm 1 does not clip, so a few weights can exceed
    ``W_MAX``); they take the same synapse memory, so this is a warning, not an error.
    """
    notes = []
    for g in geoms:
        _, exponent = weight_bits(g, chip)
        if g.groups and exponent:
            need = g.max_abs_weight.bit_length() + 1
            notes.append(
                f"{g.name}: max |w| = {g.max_abs_weight} needs {need} weight bits, a "
                f"{chip.name} synapse holds {chip.max_weight_bits}; on chip these weights lose "
                f"their {exponent} lowest bit(s) (weight exponent)"
            )
    return tuple(notes)


def _partition_all(geoms: list[LayerGeometry], chip: ChipResources) -> dict[int, Part]:
    parts: dict[int, Part] = {}
    for g in reversed(geoms):
        consumers: Consumers = []
        for later in geoms[g.index + 1 :]:
            facs = [f for grp, f in parts[later.index].factors if grp.source == g.index]
            if facs:
                consumers.append(facs)
        parts[g.index] = partition(g, consumers, chip)
    return parts


def _resources(chip: Any) -> tuple[ChipResources, Profile | None]:
    if chip is None:
        return LOIHI1.resources, LOIHI1
    if isinstance(chip, Profile):
        return chip.resources, chip
    if isinstance(chip, ChipResources):
        return chip, None
    raise ConfigError(
        f"chip must be a snnfast.chip.Profile or ChipResources (e.g. Loihi1()), got "
        f"{type(chip).__name__}"
    )


def _check_chips(mapping: Mapping, max_chips: int | None) -> None:
    if max_chips is None or mapping.n_chips <= max_chips:
        return
    limit = max_chips * mapping.chip.cores_per_chip
    lm = next(lm for lm in mapping.layers if lm.first_core + lm.n_cores > limit)
    name = f"layer {lm.index} ({lm.label if lm.kind == 'spiking' else lm.kind})"
    raise ResourceError(
        f"{name}: its cores {lm.first_core}..{lm.first_core + lm.n_cores - 1} go past the "
        f"{limit} cores of max_chips = {max_chips}; the network needs {mapping.n_cores} cores = "
        f"{mapping.n_chips} chips",
        layer=name,
        resource="cores",
        need=mapping.n_cores,
        limit=limit,
    )


def map_network(
    net: Network,
    chip: Profile | ChipResources | None = None,
    max_chips: int | None = None,
) -> Mapping:
    """Place ``net`` on chip cores (see the module docstring for how).

    Args:
        net: the spiking network (any layer graph).
        chip: a :class:`Profile` (``snnfast.chip.PROFILES``) or just the chip's resources
            (:class:`Loihi1`, :class:`Loihi2`); default the ``"loihi1"`` profile.
        max_chips: chip limit; ``None`` uses the chip's ``max_chips`` (itself ``None`` = no
            limit).

    Warns:
        UserWarning: a layer's weights are wider than the chip's ``max_weight_bits`` (see
            :attr:`Mapping.notes`); they are stored at the chip's width with an exponent.

    Raises:
        ResourceError: a single neuron breaks a per-core limit (fan-in over the input axons,
            synapses over one core's memory), or the network needs more chips than allowed.
            Its ``layer``, ``resource``, ``need`` and ``limit`` say which.
    """
    if not isinstance(net, Network):
        raise ConfigError(f"expected a snnfast.Network, got {type(net).__name__}")
    res, profile = _resources(chip)
    if max_chips is not None:
        max_chips = _checks.positive_int(max_chips, "max_chips", where="map_network")
    geoms = geometries(net)
    parts = _partition_all(geoms, res)
    layers = []
    first = 0
    for g in geoms:
        part = parts[g.index]
        wbits, exponent = weight_bits(g, res)
        layers.append(
            LayerMap(
                g.index,
                g.kind,
                g.label,
                tuple(g.shape),
                part.block,
                part.grid,
                first,
                compartments_per_neuron(g, res),
                wbits,
                exponent,
                part.binding,
                part.usage,
            )
        )
        first += int(np.prod(part.grid))
    mapping = Mapping(res, tuple(layers), _weight_notes(geoms, res), net, profile)
    _check_chips(mapping, res.max_chips if max_chips is None else max_chips)
    mapping = _counted(mapping, geoms)
    for note in mapping.notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return mapping


def _counted(mapping: Mapping, geoms: list[LayerGeometry]) -> Mapping:
    """``mapping`` with every core's resources as the Rust core counts them, checked."""
    native = {k: np.asarray(v, dtype=np.int64) for k, v in mapping.native.resources().items()}
    layers = []
    for lm, g in zip(mapping.layers, geoms):
        usage = {k: v[lm.first_core : lm.first_core + lm.n_cores] for k, v in native.items()}
        over_limit(g, usage, mapping.chip, "a core")
        layers.append(replace(lm, usage=usage))
    out = Mapping(mapping.chip, tuple(layers), mapping.notes, mapping.network, mapping.profile)
    out.__dict__["native"] = mapping.native
    return out


def check_deployable(
    net: Network, chip: Profile | ChipResources | None = None, max_chips: int | None = None
) -> tuple[bool, str]:
    """``(True, "")`` if :func:`map_network` succeeds, else ``(False, reason)``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            map_network(net, chip, max_chips)
    except ResourceError as exc:
        return False, str(exc)
    return True, ""
