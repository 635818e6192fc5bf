"""Chip profiles: what a chip holds (:class:`ChipResources`), what its operations cost
(:class:`CostModel`), and the two together (:class:`Profile`), every value named and sourced.

A profile is a frozen value. Each field's source is in its metadata (:func:`sources`) and in
``docs/loihi.md`` / ``docs/loihi2.md``; a value no published source gives is ``None``, and its
source says why (``"UNKNOWN: ..."``) instead of inventing one. Change a value by making a new
one (``Loihi1(max_chips=2)``, ``profile.replace(costs=...)``); nothing is calibrated silently.

The shipped profiles (:data:`PROFILES`, :func:`get_profile`):

* ``"loihi1"``: Loihi 1 limits with Davies et al. 2018's per-operation figures;
* ``"loihi1-sanafe"``: Loihi 1 limits with SANA-FE's per-event figures for Loihi (its published
  architecture description ``arch/loihi.yaml``, fitted on Loihi silicon);
* ``"loihi2"``: Loihi 2's published resources; its energy and time are unknown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from .. import _checks
from .._records import Record
from ..errors import ConfigError

__all__ = ["ChipResources", "CostModel", "Profile", "sources", "sourced", "unknown_fields"]

UNKNOWN = "UNKNOWN: "


def sourced(default: Any, source: str) -> Any:
    """A dataclass field with its default and where the value comes from."""
    return field(default=default, metadata={"source": source})


def sources(profile: Any) -> dict[str, str]:
    """The source of every field of a profile class or value (``{field: source}``)."""
    return {f.name: str(f.metadata.get("source", "")) for f in fields(profile)}


def unknown_fields(value: Any) -> dict[str, str]:
    """The fields of ``value`` that are ``None`` because no published source gives them, with
    the reason (``{field: reason}``)."""
    out = {}
    for f in fields(value):
        if getattr(value, f.name) is None:
            text = str(f.metadata.get("source", ""))
            if text.startswith(UNKNOWN):
                out[f.name] = text[len(UNKNOWN) :]
    return out


_LIMIT_FIELDS = ("max_input_axons", "max_output_axons", "max_chips")


@dataclass(frozen=True)
class ChipResources(Record):
    """What one chip holds and how its cores are laid out; subclasses give the values.

    Attributes:
        name: what reports call the chip.
        cores_per_chip, grid_rows, grid_cols: neuromorphic cores and their grid.
        tile_rows, tile_cols: cores that share one router tile (tile hops are counted between
            tiles; chips sit side by side east-west).
        max_compartments: compartments (neurons) per core.
        max_input_axons, max_output_axons: input axons (fan-in) and output axons per core;
            ``None`` = no published limit (not checked).
        synapse_memory_bits: synapse memory per core.
        synapse_word_bits: synapse memory word; an entry is rounded up to whole words.
        synapse_header_bits: per-entry prefix (format id and synapse count).
        max_synapses_per_entry: synapses one entry holds.
        min_index_bits: smallest compartment-index width of a stored synapse.
        max_weight_bits: widest stored weight mantissa, sign included; wider weights take a
            shared exponent and lose their lowest bits.
        soft_reset_compartments: compartments per neuron of a layer that resets by subtraction:
            2 builds it from a dendrite and a soma with a reset synapse, one input and one output
            axon per neuron on its own core (Loihi 1, as NxTF does); 1 = native. A layer with
            ``reset="zero"`` always takes one.
        graded_spike_bits: payload bits of one spike message (0 = binary spikes). snnfast's
            neurons emit binary spikes; the field documents the chip's option and does not
            change the counts.
        max_chips: chips a network may use; ``None`` = no limit.
    """

    name: str
    cores_per_chip: int
    grid_rows: int
    grid_cols: int
    tile_rows: int
    tile_cols: int
    max_compartments: int
    max_input_axons: int | None
    max_output_axons: int | None
    synapse_memory_bits: int
    synapse_word_bits: int
    synapse_header_bits: int
    max_synapses_per_entry: int
    min_index_bits: int
    max_weight_bits: int
    soft_reset_compartments: int
    graded_spike_bits: int
    max_chips: int | None

    def __post_init__(self) -> None:
        where = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{where}.name must be a non-empty string, got {value!r}")
            elif f.name in _LIMIT_FIELDS and value is None:
                continue
            elif f.name in ("synapse_header_bits", "graded_spike_bits"):
                _checks.integer(value, f.name, 0, where=where)
            else:
                _checks.positive_int(value, f.name, where=where)
        if self.grid_rows * self.grid_cols != self.cores_per_chip:
            raise ConfigError(
                f"{where} grid {self.grid_rows} x {self.grid_cols} does not hold "
                f"cores_per_chip = {self.cores_per_chip}"
            )
        if self.grid_rows % self.tile_rows or self.grid_cols % self.tile_cols:
            raise ConfigError(
                f"{where} tile {self.tile_rows} x {self.tile_cols} does not divide the grid "
                f"{self.grid_rows} x {self.grid_cols}"
            )
        if self.soft_reset_compartments not in (1, 2):
            raise ConfigError(
                f"{where}.soft_reset_compartments must be 1 or 2, got "
                f"{self.soft_reset_compartments}"
            )

    @property
    def limits(self) -> dict[str, int | None]:
        """The per-core limit of each resource the mapper checks (``None`` = not checked)."""
        return {
            "compartments": self.max_compartments,
            "input_axons": self.max_input_axons,
            "output_axons": self.max_output_axons,
            "synapse_bits": self.synapse_memory_bits,
        }

    @property
    def synapse_format(self) -> tuple[int, int, int, int]:
        """``(word bits, header bits, synapses per entry, smallest index bits)``."""
        return (
            self.synapse_word_bits,
            self.synapse_header_bits,
            self.max_synapses_per_entry,
            self.min_index_bits,
        )

    def entry_bits(self, n: Any, bits_per_synapse: int) -> Any:
        """Synapse-memory bits taken by ``n`` synapses of one axon on one core (vectorised)."""
        import numpy as np

        n = np.asarray(n, dtype=np.int64)
        per = self.max_synapses_per_entry
        word = self.synapse_word_bits

        def words(k: Any) -> Any:
            bits = np.asarray(k, dtype=np.int64) * bits_per_synapse + self.synapse_header_bits
            return -(-bits // word) * word

        full, rem = np.divmod(n, per)
        return full * words(per) + np.where(rem > 0, words(rem), 0)


@dataclass(frozen=True)
class CostModel(Record):
    """What each counted operation costs on a chip; subclasses give the values.

    Energies are in pJ, times in ns, per event of the chip counters
    (:data:`snnfast.chip.COUNTERS`). ``None`` = unknown (no published figure).

    Attributes:
        name: what reports call the cost model.
        e_update_active_pj, e_update_inactive_pj, t_update_active_ns, t_update_inactive_ns:
            one compartment update in a step, when the compartment spikes and when it does not.
            Every compartment of every mapped core is updated every step.
        e_spike_pj, t_spike_ns: one spike a neuron emits (its soma's spike generation).
        e_message_out_pj, t_message_out_ns, e_message_in_pj, t_message_in_ns: one axon message
            (one per spike per destination core), at the sending and at the receiving core.
        e_hop_ew_pj, e_hop_ns_pj: one message crossing one tile east-west / north-south.
        e_synop_conv_pj, e_synop_pool_pj, e_synop_dense_pj, e_synop_reset_pj (and ``t_...``):
            one synaptic event of a convolution, pooling or dense group, and of the reset
            synapse of the two-compartment soft reset.
        overlap: a core's neuron side (updates, spikes, messages sent) and message side
            (messages received, synaptic events) overlap (its time is the longer of the two) or
            follow each other (the sum).
        barrier_tiles, barrier_ns, barrier_rule: the barrier ending each step, for the tiles in
            use: ``"linear"`` interpolates between the points (clipped at the ends), ``"step"``
            takes the point of the largest tile count not above the tiles in use.
        static_power_w: static power of one chip.
        fixed_overhead_s: time per inference that does not depend on the number of steps
            (host transfer, set-up, probes).
    """

    name: str
    e_update_active_pj: float | None
    e_update_inactive_pj: float | None
    e_spike_pj: float | None
    e_message_out_pj: float | None
    e_message_in_pj: float | None
    e_hop_ew_pj: float | None
    e_hop_ns_pj: float | None
    e_synop_conv_pj: float | None
    e_synop_pool_pj: float | None
    e_synop_dense_pj: float | None
    e_synop_reset_pj: float | None
    t_update_active_ns: float | None
    t_update_inactive_ns: float | None
    t_spike_ns: float | None
    t_message_out_ns: float | None
    t_message_in_ns: float | None
    t_synop_conv_ns: float | None
    t_synop_pool_ns: float | None
    t_synop_dense_ns: float | None
    t_synop_reset_ns: float | None
    overlap: bool
    barrier_tiles: tuple[int, ...] | None
    barrier_ns: tuple[float, ...] | None
    barrier_rule: str
    static_power_w: float | None
    fixed_overhead_s: float | None

    def __post_init__(self) -> None:
        where = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{where}.name must be a non-empty string, got {value!r}")
            elif f.name == "overlap":
                _checks.flag(value, f.name, where=where)
            elif f.name == "barrier_rule":
                _checks.choice(value, f.name, ("linear", "step"), where=where)
            elif f.name in ("barrier_tiles", "barrier_ns"):
                continue
            elif value is not None:
                _checks.number(value, f.name, 0.0, where=where)
        tiles, ns = self.barrier_tiles, self.barrier_ns
        if (tiles is None) != (ns is None):
            raise ConfigError(f"{where}: barrier_tiles and barrier_ns are both given or both None")
        if tiles is not None and ns is not None:
            if not tiles or len(tiles) != len(ns):
                raise ConfigError(
                    f"{where}: barrier_tiles and barrier_ns must be non-empty and of one length, "
                    f"got {tiles!r} and {ns!r}"
                )
            for t in tiles:
                _checks.positive_int(t, "barrier_tiles entry", where=where)
            for v in ns:
                _checks.number(v, "barrier_ns entry", 0.0, where=where)
            if list(tiles) != sorted(set(tiles)):
                raise ConfigError(f"{where}: barrier_tiles must increase, got {tiles!r}")
        if self.t_update_active_ns is not None and self.t_update_inactive_ns is not None:
            if self.t_update_active_ns < self.t_update_inactive_ns:
                raise ConfigError(
                    f"{where}: t_update_active_ns must be >= t_update_inactive_ns (an active "
                    f"update does the inactive work too)"
                )

    @property
    def energy_known(self) -> bool:
        """Every per-event energy is published."""
        return all(getattr(self, f.name) is not None for f in fields(self) if f.name[:2] == "e_")

    @property
    def time_known(self) -> bool:
        """Every per-event time and the barrier are published."""
        times = [getattr(self, f.name) for f in fields(self) if f.name[:2] == "t_"]
        return all(t is not None for t in times) and self.barrier_ns is not None

    def barrier(self, n_tiles: int) -> float:
        """Barrier time (ns) for ``n_tiles`` tiles in use (``nan`` if unknown)."""
        if self.barrier_tiles is None or self.barrier_ns is None:
            return float("nan")
        tiles, ns = self.barrier_tiles, self.barrier_ns
        if self.barrier_rule == "step":
            best = ns[0]
            for t, v in zip(tiles, ns):
                if t <= n_tiles:
                    best = v
            return float(best)
        if n_tiles <= tiles[0]:
            return float(ns[0])
        for (t0, v0), (t1, v1) in zip(zip(tiles, ns), zip(tiles[1:], ns[1:])):
            if n_tiles <= t1:
                return float(v0 + (n_tiles - t0) / (t1 - t0) * (v1 - v0))
        return float(ns[-1])

    def _value(self, name: str) -> float:
        v = getattr(self, name)
        return float("nan") if v is None else float(v)

    def energy_per_counter(self) -> list[float]:
        """pJ per unit of each chip counter (``nan`` where unknown)."""
        e = self._value
        inactive = e("e_update_inactive_pj")
        return [
            inactive,
            e("e_update_active_pj") - inactive,
            e("e_spike_pj"),
            e("e_message_out_pj"),
            e("e_message_in_pj"),
            e("e_synop_conv_pj"),
            e("e_synop_pool_pj"),
            e("e_synop_dense_pj"),
            e("e_synop_reset_pj"),
            e("e_hop_ew_pj"),
            e("e_hop_ns_pj"),
        ]

    def time_per_counter(self) -> tuple[list[float], list[float]]:
        """ns per unit of each chip counter on the neuron side and on the message side (zeros
        where unknown: the run still counts, the latency is reported unknown)."""

        def t(name: str) -> float:
            v = getattr(self, name)
            return 0.0 if v is None else float(v)

        inactive = t("t_update_inactive_ns")
        neuron = [inactive, t("t_update_active_ns") - inactive, t("t_spike_ns")]
        neuron += [t("t_message_out_ns")] + [0.0] * 7
        message = [0.0] * 4 + [t("t_message_in_ns")]
        message += [t(f"t_synop_{k}_ns") for k in ("conv", "pool", "dense", "reset")]
        message += [0.0, 0.0]
        return neuron, message


@dataclass(frozen=True)
class Profile:
    """A chip and its costs: what ``snnfast chip --profile NAME`` uses.

    Attributes:
        name: the profile's name (``"loihi1"``, ``"loihi1-sanafe"``, ``"loihi2"``).
        resources: the chip's limits and layout.
        costs: what each operation costs.
        description: one line for reports.
    """

    name: str
    resources: ChipResources
    costs: CostModel
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.resources, ChipResources):
            raise ConfigError(
                f"Profile.resources must be a ChipResources, got {type(self.resources).__name__}"
            )
        if not isinstance(self.costs, CostModel):
            raise ConfigError(f"Profile.costs must be a CostModel, got {type(self.costs).__name__}")

    def replace(self, **changes: Any) -> Profile:
        """A copy with the given fields changed; ``resources``/``costs`` may also be changed
        field by field: ``profile.replace(max_chips=2)`` changes ``resources.max_chips``."""
        own = {k: v for k, v in changes.items() if k in {f.name for f in fields(self)}}
        names = {f.name for f in fields(self.resources)} - set(own)
        res = {k: v for k, v in changes.items() if k in names}
        names = {f.name for f in fields(self.costs)} - set(own)
        cost = {k: v for k, v in changes.items() if k in names}
        rest = set(changes) - set(own) - set(res) - set(cost)
        if rest:
            raise ConfigError(f"Profile.replace: unknown field(s) {sorted(rest)}")
        out = dataclasses.replace(self, **own)
        if res:
            out = dataclasses.replace(out, resources=out.resources.replace(**res))
        if cost:
            out = dataclasses.replace(out, costs=out.costs.replace(**cost))
        return out
