"""Intel Loihi 2: its published resources (:class:`Loihi2`); its per-operation energy and time
are not published (:class:`Loihi2Costs`: every cost ``None``, with the reason).

Sources (``docs/loihi2.md``): Intel Labs, *Taking Neuromorphic Computing to the Next Level with
Loihi 2*, technology brief (2021) for the chip's resources; Orchard et al. 2021, *Efficient
Neuromorphic Signal Processing with Loihi 2* (arXiv:2111.03746) for its neuron and spike model;
Lava's ``Dense`` process (``lava-nc/lava``, ``src/lava/proc/dense/process.py``) for 8-bit
weights with a shared exponent and graded spikes (``num_message_bits``); Timcheck, Pierro and
Shrestha, *A Compute and Communication Runtime Model for Loihi 2* (arXiv:2601.10035) for the
router layout (four neurocores per router, 8 x 4 routers). Intel gives Loihi 2's speed only as
factors over Loihi 1 and no energy per operation, so snnfast reports its resources, mapping
and counts, and leaves its energy and latency unknown rather than invent them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profiles import ChipResources, CostModel, Profile, sourced

__all__ = ["LOIHI2", "Loihi2", "Loihi2Costs"]

BRIEF = "Intel Labs, Loihi 2 technology brief (2021)"
LAVA = "Lava src/lava/proc/dense/process.py (Dense: num_weight_bits, weight_exp)"
TIMCHECK = "Timcheck, Pierro, Shrestha 2026, arXiv:2601.10035, Sec. II and VI"
NO_ENCODING = (
    "ASSUMPTION: Intel publishes no Loihi 2 synapse encoding; Loihi 1's (nengo-loihi) is used"
)
NO_ENERGY = (
    "UNKNOWN: Intel publishes no per-operation energy for Loihi 2 (technology brief 2021; "
    "Orchard et al. 2021 report whole workloads only)"
)
NO_TIME = (
    "UNKNOWN: Intel gives Loihi 2's speed only as factors over Loihi 1 (technology brief 2021), "
    "not per-operation times"
)


@dataclass(frozen=True)
class Loihi2(ChipResources):
    """Resource limits and layout of an Intel Loihi 2 chip (see
    :class:`~snnfast.chip.ChipResources`); limits Intel does not publish are ``None`` (not
    checked) and the synapse encoding is Loihi 1's (an assumption, said in each source)."""

    name: str = sourced("Loihi 2", BRIEF)
    cores_per_chip: int = sourced(128, f"{BRIEF}: 128 neuromorphic cores")
    grid_rows: int = sourced(8, f"{BRIEF}: an 8 x 16 mesh of cores")
    grid_cols: int = sourced(16, f"{BRIEF}: an 8 x 16 mesh of cores")
    tile_rows: int = sourced(2, f"{TIMCHECK}: four neurocores per router")
    tile_cols: int = sourced(2, f"{TIMCHECK}: an 8 x 4 grid of routers")
    max_compartments: int = sourced(8192, f"{BRIEF}: up to 8,192 neurons per core")
    max_input_axons: int | None = sourced(
        None, "UNKNOWN: no per-core axon limit is published for Loihi 2 (not checked)"
    )
    max_output_axons: int | None = sourced(
        None, "UNKNOWN: no per-core axon limit is published for Loihi 2 (not checked)"
    )
    synapse_memory_bits: int = sourced(
        128 * 1024 * 8,
        f"{BRIEF}: up to 128 KB of synaptic memory per core (192 KB in all, flexibly allocated)",
    )
    synapse_word_bits: int = sourced(64, NO_ENCODING)
    synapse_header_bits: int = sourced(10, NO_ENCODING)
    max_synapses_per_entry: int = sourced(64, NO_ENCODING)
    min_index_bits: int = sourced(6, NO_ENCODING)
    max_weight_bits: int = sourced(
        8, f"{LAVA}: 8-bit weights (sign included in mixed-sign mode) with a shared exponent"
    )
    soft_reset_compartments: int = sourced(
        1,
        f"{BRIEF}; Orchard et al. 2021: neuron models are programs on the core, so a reset by "
        "subtraction needs no second compartment (ASSUMPTION: one compartment per neuron)",
    )
    graded_spike_bits: int = sourced(
        0,
        f"binary, as snnfast's neurons; Loihi 2 can send graded spikes of up to 32 bits "
        f"({BRIEF}; Lava Dense num_message_bits), an option that changes no count here",
    )
    max_chips: int | None = sourced(1, "one chip, as for Loihi 1 (override for boards)")


@dataclass(frozen=True)
class Loihi2Costs(CostModel):
    """Loihi 2's per-operation costs: none is published, so every one is ``None``."""

    name: str = sourced("Loihi 2 (unpublished)", NO_ENERGY)
    e_update_active_pj: float | None = sourced(None, NO_ENERGY)
    e_update_inactive_pj: float | None = sourced(None, NO_ENERGY)
    e_spike_pj: float | None = sourced(None, NO_ENERGY)
    e_message_out_pj: float | None = sourced(None, NO_ENERGY)
    e_message_in_pj: float | None = sourced(None, NO_ENERGY)
    e_hop_ew_pj: float | None = sourced(None, NO_ENERGY)
    e_hop_ns_pj: float | None = sourced(None, NO_ENERGY)
    e_synop_conv_pj: float | None = sourced(None, NO_ENERGY)
    e_synop_pool_pj: float | None = sourced(None, NO_ENERGY)
    e_synop_dense_pj: float | None = sourced(None, NO_ENERGY)
    e_synop_reset_pj: float | None = sourced(None, NO_ENERGY)
    t_update_active_ns: float | None = sourced(None, NO_TIME)
    t_update_inactive_ns: float | None = sourced(None, NO_TIME)
    t_spike_ns: float | None = sourced(None, NO_TIME)
    t_message_out_ns: float | None = sourced(None, NO_TIME)
    t_message_in_ns: float | None = sourced(None, NO_TIME)
    t_synop_conv_ns: float | None = sourced(None, NO_TIME)
    t_synop_pool_ns: float | None = sourced(None, NO_TIME)
    t_synop_dense_ns: float | None = sourced(None, NO_TIME)
    t_synop_reset_ns: float | None = sourced(None, NO_TIME)
    overlap: bool = sourced(False, NO_TIME)
    barrier_tiles: tuple[int, ...] | None = sourced(
        None, f"{NO_TIME}; the brief states only chip-wide steps under 200 ns"
    )
    barrier_ns: tuple[float, ...] | None = sourced(None, NO_TIME)
    barrier_rule: str = sourced("linear", NO_TIME)
    static_power_w: float | None = sourced(None, "UNKNOWN: no Loihi 2 static power is published")
    fixed_overhead_s: float | None = sourced(
        None, "UNKNOWN: no Loihi 2 per-inference host time is published for this workload"
    )


LOIHI2 = Profile(
    "loihi2", Loihi2(), Loihi2Costs(), "Loihi 2 resources (energy and time unpublished)"
)
"""Loihi 2: published resources; energy and latency unknown."""
