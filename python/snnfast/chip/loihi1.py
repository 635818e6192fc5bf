"""The Loihi 1 chip profile: its limits and layout (:class:`Loihi1`) and what each operation costs
(:class:`EnergyModel`), every value named, sourced and overridable.

Both are frozen dataclasses; each field's source is in its metadata (:func:`sources`) and in
``docs/loihi.md``, which lists the facts with their references. Change a value by making a new
profile (``Loihi1(max_chips=2)``, ``EnergyModel(e_synop_pj=35.5)``); nothing is calibrated
silently.

The mapper (:mod:`snnfast.chip.mapper`) reads only the fields of :class:`Loihi1` and the energy
model (:mod:`snnfast.chip.energy`) only those of :class:`EnergyModel`, so another chip is another
module like this one with the same fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .. import _checks
from ..errors import ConfigError

__all__ = ["EnergyModel", "Loihi1", "sources"]

DAVIES_2018 = "Davies et al. 2018, IEEE Micro 38(1), Loihi"
DAVIES_2018_TABLE2 = "Davies et al. 2018, IEEE Micro 38(1), Table 2 (pre-silicon, 0.75 V)"
LIU_2022 = "Liu et al. 2022, PLoS ONE 17(4): e0264364"


def _sourced(default: Any, source: str) -> Any:
    return field(default=default, metadata={"source": source})


def sources(profile: Any) -> dict[str, str]:
    """The source of every field of a profile class or value (``{field: source}``)."""
    return {f.name: str(f.metadata.get("source", "")) for f in fields(profile)}


@dataclass(frozen=True)
class Loihi1:
    """Resource limits and layout of an Intel Loihi 1 chip; every field can be overridden.

    Attributes:
        cores_per_chip, grid_rows, grid_cols: neuromorphic cores and their grid (8 x 16).
        tile_rows, tile_cols: cores that share one router tile (used only for spike routing
            costs: within a tile against tile hops).
        max_compartments: compartments (neurons) per core.
        max_input_axons, max_output_axons: input axons (fan-in) and output axons per core.
        synapse_memory_bits: synapse memory per core.
        synapse_word_bits: synapse memory word; an entry is rounded up to whole words.
        synapse_header_bits: per-entry prefix (format id and synapse count).
        max_synapses_per_entry: synapses one entry holds.
        min_index_bits: smallest compartment-index width of a stored synapse.
        max_weight_bits: widest stored weight (sign included).
        soft_reset_compartments: compartments per neuron: 2 builds the reset by subtraction
            Loihi 1 lacks (a dendrite and a soma, one reset synapse, one input and one output
            axon per neuron on its own core); 1 = a native soft reset (e.g. Loihi 2).
        max_chips: chips a network may use; ``None`` = no limit (the paper used one).
    """

    cores_per_chip: int = _sourced(128, f"{DAVIES_2018}; the paper's Fig 3 (8 x 16)")
    grid_rows: int = _sourced(8, "the paper's Fig 3")
    grid_cols: int = _sourced(16, "the paper's Fig 3")
    tile_rows: int = _sourced(
        2, f"ASSUMPTION: 4 cores per router tile ({DAVIES_2018}, floorplan); no published size"
    )
    tile_cols: int = _sourced(2, "ASSUMPTION, as tile_rows")
    max_compartments: int = _sourced(
        1024, f"{DAVIES_2018}; nengo-loihi nengo_loihi/block.py MAX_COMPARTMENTS"
    )
    max_input_axons: int = _sourced(
        4096, "nengo-loihi MAX_IN_AXONS; NxTF maxNumAxons; Liu et al. 2022 Methods (fan-in)"
    )
    max_output_axons: int = _sourced(4096, "nengo-loihi MAX_OUT_AXONS")
    synapse_memory_bits: int = _sourced(
        16384 * 64,
        "128 KiB: nengo-loihi MAX_SYNAPSE_BITS = 16384 * 64; NxTF maxNumSynMemWords = 16384",
    )
    synapse_word_bits: int = _sourced(64, "nengo-loihi SynapseConfig.bits_per_axon")
    synapse_header_bits: int = _sourced(
        10,
        "4 bits format id + 6 bits synapse count: nengo-loihi SYNAPSE_FMT_IDX_BITS + "
        "N_SYNAPSES_BITS; NxTF SynEntry numPrefixBits",
    )
    max_synapses_per_entry: int = _sourced(64, "2**6: the 6-bit count field (nengo-loihi)")
    min_index_bits: int = _sourced(6, "nengo-loihi INDEX_BITS_MAP (0, 6, ...)")
    max_weight_bits: int = _sourced(
        9, f"1 to 9 bits signed, -256..255: {DAVIES_2018}; nengo-loihi builder/discretize.py"
    )
    soft_reset_compartments: int = _sourced(
        2,
        "NxTF nxsdk_modules_ncl/dnn/src/dnn_layers.py resetMode='soft' (dendrite + soma and "
        "a reset synapse); 1 for a native soft reset",
    )
    max_chips: int | None = _sourced(1, "Liu et al. 2022 ran on one chip")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "max_chips" and value is None:
                continue
            _checks.positive_int(value, f.name, where="Loihi1")
        if self.grid_rows * self.grid_cols != self.cores_per_chip:
            raise ConfigError(
                f"Loihi1 grid {self.grid_rows} x {self.grid_cols} does not hold "
                f"cores_per_chip = {self.cores_per_chip}"
            )
        if self.grid_rows % self.tile_rows or self.grid_cols % self.tile_cols:
            raise ConfigError(
                f"Loihi1 tile {self.tile_rows} x {self.tile_cols} does not divide the grid "
                f"{self.grid_rows} x {self.grid_cols}"
            )
        if self.soft_reset_compartments not in (1, 2):
            raise ConfigError(
                f"Loihi1.soft_reset_compartments must be 1 or 2, got {self.soft_reset_compartments}"
            )

    def replace(self, **changes: Any) -> Loihi1:
        """A copy with the given fields changed (and checked)."""
        return dataclasses.replace(self, **changes)

    @property
    def limits(self) -> dict[str, int]:
        """The per-core limit of each resource the mapper checks
        (:data:`snnfast.chip.mapper.RESOURCES`)."""
        return {
            "compartments": self.max_compartments,
            "input_axons": self.max_input_axons,
            "output_axons": self.max_output_axons,
            "synapse_bits": self.synapse_memory_bits,
        }

    def entry_bits(self, n: Any, bits_per_synapse: int) -> np.ndarray:
        """Synapse-memory bits taken by ``n`` synapses of one axon on one core (vectorised)."""
        n = np.asarray(n, dtype=np.int64)
        per = self.max_synapses_per_entry
        word = self.synapse_word_bits

        def words(k: np.ndarray | int) -> np.ndarray:
            bits = np.asarray(k, dtype=np.int64) * bits_per_synapse + self.synapse_header_bits
            return -(-bits // word) * word

        full, rem = np.divmod(n, per)
        return full * words(per) + np.where(rem > 0, words(rem), 0)


# Liu et al. 2022, Tables 3-4: Loihi runtime per image of 32-64-10 at batch 1 (2.984 ms at
# T = 16, 11.976 ms at T = 128) and static power (0.946 W at T = 16). The time that does not
# depend on T (host transfer, set-up, probes) is what the two runtimes imply at T = 0.
_STEP_S = (11.976e-3 - 2.984e-3) / (128 - 16)
_FIXED_S = 2.984e-3 - 16 * _STEP_S


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energy (pJ) and time (ns) of Loihi 1, plus two calibration constants.

    Attributes:
        e_synop_pj, t_synop_ns: one synaptic spike operation (minimum energy, maximum time).
        e_update_active_pj, e_update_inactive_pj, t_update_active_ns, t_update_inactive_ns:
            one neuron (compartment) update, when it spikes and when it does not.
        e_spike_tile_pj: a spike message within a tile.
        e_hop_ew_pj, e_hop_ns_pj: one tile hop east-west / north-south.
        t_barrier_min_ns, t_barrier_max_ns, barrier_max_tiles: the mesh-wide barrier at the
            end of each step, for 1 and for ``barrier_max_tiles`` tiles in use.
        static_power_w: static power of one chip (calibration, measured in the paper).
        fixed_overhead_s: time per image that does not depend on the number of steps
            (calibration: what the paper's two runtimes imply, 1.70 ms).
    """

    e_synop_pj: float = _sourced(23.6, DAVIES_2018_TABLE2)
    t_synop_ns: float = _sourced(3.5, DAVIES_2018_TABLE2)
    e_update_active_pj: float = _sourced(81.0, DAVIES_2018_TABLE2)
    e_update_inactive_pj: float = _sourced(52.0, DAVIES_2018_TABLE2)
    t_update_active_ns: float = _sourced(8.4, DAVIES_2018_TABLE2)
    t_update_inactive_ns: float = _sourced(5.3, DAVIES_2018_TABLE2)
    e_spike_tile_pj: float = _sourced(1.7, DAVIES_2018_TABLE2)
    e_hop_ew_pj: float = _sourced(3.0, DAVIES_2018_TABLE2)
    e_hop_ns_pj: float = _sourced(4.0, DAVIES_2018_TABLE2)
    t_barrier_min_ns: float = _sourced(113.0, f"{DAVIES_2018_TABLE2}: 1 tile")
    t_barrier_max_ns: float = _sourced(465.0, f"{DAVIES_2018_TABLE2}: 32 tiles")
    barrier_max_tiles: int = _sourced(32, DAVIES_2018_TABLE2)
    static_power_w: float = _sourced(0.946, f"{LIU_2022}, Table 4 (T = 16; 0.952 W at T = 128)")
    fixed_overhead_s: float = _sourced(
        _FIXED_S,
        f"{LIU_2022}, Table 3: 2.984 ms - 16 x (11.976 - 2.984) ms / 112 = 1.70 ms",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _checks.number(value, f.name, 0.0, where="EnergyModel")
        _checks.integer(self.barrier_max_tiles, "barrier_max_tiles", 1, where="EnergyModel")

    def replace(self, **changes: Any) -> EnergyModel:
        """A copy with the given fields changed (and checked)."""
        return dataclasses.replace(self, **changes)

    def barrier_ns(self, n_tiles: int) -> float:
        """Barrier time for ``n_tiles`` tiles in use (linear, clipped to the measured range)."""
        span = max(self.barrier_max_tiles - 1, 1)
        frac = min(max(n_tiles - 1, 0), span) / span
        return self.t_barrier_min_ns + frac * (self.t_barrier_max_ns - self.t_barrier_min_ns)
