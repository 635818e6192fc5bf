"""Intel Loihi 1: its limits and layout (:class:`Loihi1`) and two sets of per-operation costs,
Davies et al. 2018's (:class:`Loihi1Costs`) and SANA-FE's (:class:`SanafeLoihiCosts`).

Every value is a named field with its source in the field's metadata
(:func:`snnfast.chip.sources`) and in ``docs/loihi.md``. The two cost sets are not mixed:

* :class:`Loihi1Costs` (profile ``"loihi1"``): Davies et al. 2018, Table 2 (pre-silicon
  simulation at 0.75 V); snnfast's original model.
* :class:`SanafeLoihiCosts` (profile ``"loihi1-sanafe"``): the per-event energies and latencies
  of SANA-FE's Loihi architecture description (``arch/loihi.yaml`` of SANA-FE 2.2.9, Boyle et al.,
  IEEE TCAD 2025), which its authors fitted on Loihi silicon (except the tile hops, from Davies
  2018), and its timing rule: a core's neuron processing and its message processing overlap,
  a step lasts as long as its busiest core plus a barrier looked up in a table by tiles in use.

Both take the paper's two measured calibration constants (static power, and the time per
inference that does not depend on the number of steps; Liu et al. 2022, Tables 3-4).
"""

from __future__ import annotations

from dataclasses import dataclass

from .profiles import ChipResources, CostModel, Profile, sourced

__all__ = ["LOIHI1", "LOIHI1_SANAFE", "EnergyModel", "Loihi1", "Loihi1Costs", "SanafeLoihiCosts"]

DAVIES_2018 = "Davies et al. 2018, IEEE Micro 38(1), Loihi"
DAVIES_2018_TABLE2 = "Davies et al. 2018, IEEE Micro 38(1), Table 2 (pre-silicon, 0.75 V)"
LIU_2022 = "Liu et al. 2022, PLoS ONE 17(4): e0264364"
SANAFE = "SANA-FE 2.2.9 arch/loihi.yaml (Boyle et al., IEEE TCAD 2025; fitted on Loihi silicon)"
SANAFE_TIMING = "SANA-FE 2.2.9 src/schedule.cpp"


@dataclass(frozen=True)
class Loihi1(ChipResources):
    """Resource limits and layout of an Intel Loihi 1 chip; every field can be overridden
    (see :class:`~snnfast.chip.ChipResources` for what each one means)."""

    name: str = sourced("Loihi 1", "Intel Loihi (Davies et al. 2018)")
    cores_per_chip: int = sourced(128, f"{DAVIES_2018}; the paper's Fig 3 (8 x 16)")
    grid_rows: int = sourced(8, "the paper's Fig 3")
    grid_cols: int = sourced(16, "the paper's Fig 3")
    tile_rows: int = sourced(
        2,
        f"4 cores per router tile ({DAVIES_2018}, floorplan); SANA-FE arch/loihi.yaml: 32 "
        "tiles of 4 cores in an 8 x 4 mesh",
    )
    tile_cols: int = sourced(2, "as tile_rows")
    max_compartments: int = sourced(
        1024, f"{DAVIES_2018}; nengo-loihi nengo_loihi/block.py MAX_COMPARTMENTS"
    )
    max_input_axons: int | None = sourced(
        4096, "nengo-loihi MAX_IN_AXONS; NxTF maxNumAxons; Liu et al. 2022 Methods (fan-in)"
    )
    max_output_axons: int | None = sourced(4096, "nengo-loihi MAX_OUT_AXONS")
    synapse_memory_bits: int = sourced(
        16384 * 64,
        "128 KiB: nengo-loihi MAX_SYNAPSE_BITS = 16384 * 64; NxTF maxNumSynMemWords = 16384",
    )
    synapse_word_bits: int = sourced(64, "nengo-loihi SynapseConfig.bits_per_axon")
    synapse_header_bits: int = sourced(
        10,
        "4 bits format id + 6 bits synapse count: nengo-loihi SYNAPSE_FMT_IDX_BITS + "
        "N_SYNAPSES_BITS; NxTF SynEntry numPrefixBits",
    )
    max_synapses_per_entry: int = sourced(64, "2**6: the 6-bit count field (nengo-loihi)")
    min_index_bits: int = sourced(6, "nengo-loihi INDEX_BITS_MAP (0, 6, ...)")
    max_weight_bits: int = sourced(
        9, f"1 to 9 bits signed, -256..255: {DAVIES_2018}; nengo-loihi builder/discretize.py"
    )
    soft_reset_compartments: int = sourced(
        2,
        "NxTF nxsdk_modules_ncl/dnn/src/dnn_layers.py and SNN Toolbox's Loihi backend: "
        "resetMode='soft' uses neuronSize = 2 (dendrite + soma) and a recurrent reset synapse "
        "group; reset to zero takes 1",
    )
    graded_spike_bits: int = sourced(0, f"binary spikes: {DAVIES_2018}")
    max_chips: int | None = sourced(1, "Liu et al. 2022 ran on one chip")


# Liu et al. 2022, Tables 3-4: Loihi runtime per image of 32-64-10 at batch 1 (2.984 ms at
# T = 16, 11.976 ms at T = 128) and static power (0.946 W at T = 16). The time that does not
# depend on T (host transfer, set-up, probes) is what the two runtimes imply at T = 0.
_STEP_S = (11.976e-3 - 2.984e-3) / (128 - 16)
_FIXED_S = 2.984e-3 - 16 * _STEP_S
_STATIC = f"{LIU_2022}, Table 4 (T = 16; 0.952 W at T = 128)"
_FIXED = f"{LIU_2022}, Table 3: 2.984 ms - 16 x (11.976 - 2.984) ms / 112 = 1.70 ms"


@dataclass(frozen=True)
class Loihi1Costs(CostModel):
    """Loihi 1 per-operation energy (pJ) and time (ns) of Davies et al. 2018, Table 2, plus the
    paper's two calibration constants (see :class:`~snnfast.chip.CostModel`)."""

    name: str = sourced("Davies et al. 2018", DAVIES_2018_TABLE2)
    e_update_active_pj: float | None = sourced(81.0, DAVIES_2018_TABLE2)
    e_update_inactive_pj: float | None = sourced(52.0, DAVIES_2018_TABLE2)
    e_spike_pj: float | None = sourced(
        0.0, f"{DAVIES_2018_TABLE2}: a spike's soma work is in the active update"
    )
    e_message_out_pj: float | None = sourced(1.7, f"{DAVIES_2018_TABLE2}: spike within a tile")
    e_message_in_pj: float | None = sourced(
        0.0, f"{DAVIES_2018_TABLE2}: a message costs its send and its hops"
    )
    e_hop_ew_pj: float | None = sourced(3.0, DAVIES_2018_TABLE2)
    e_hop_ns_pj: float | None = sourced(4.0, DAVIES_2018_TABLE2)
    e_synop_conv_pj: float | None = sourced(23.6, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    e_synop_pool_pj: float | None = sourced(23.6, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    e_synop_dense_pj: float | None = sourced(23.6, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    e_synop_reset_pj: float | None = sourced(23.6, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    t_update_active_ns: float | None = sourced(8.4, DAVIES_2018_TABLE2)
    t_update_inactive_ns: float | None = sourced(5.3, DAVIES_2018_TABLE2)
    t_spike_ns: float | None = sourced(0.0, "in the active update (as e_spike_pj)")
    t_message_out_ns: float | None = sourced(
        0.0,
        f"ASSUMPTION: a message's 2.1 ns within a tile ({DAVIES_2018_TABLE2}) is not in a "
        "core's step time (snnfast's original model)",
    )
    t_message_in_ns: float | None = sourced(0.0, "as e_message_in_pj")
    t_synop_conv_ns: float | None = sourced(3.5, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    t_synop_pool_ns: float | None = sourced(3.5, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    t_synop_dense_ns: float | None = sourced(3.5, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    t_synop_reset_ns: float | None = sourced(3.5, f"{DAVIES_2018_TABLE2}: synaptic spike op")
    overlap: bool = sourced(
        False,
        f"ASSUMPTION: a core processes its input spikes, then updates its compartments "
        f"({DAVIES_2018}, the core's pipeline), so its step time is the sum",
    )
    barrier_tiles: tuple[int, ...] | None = sourced(
        (1, 32), f"{DAVIES_2018_TABLE2}: mesh-wide barrier, 1 to 32 tiles"
    )
    barrier_ns: tuple[float, ...] | None = sourced((113.0, 465.0), DAVIES_2018_TABLE2)
    barrier_rule: str = sourced("linear", "ASSUMPTION: linear between the two published ends")
    static_power_w: float | None = sourced(0.946, _STATIC)
    fixed_overhead_s: float | None = sourced(_FIXED_S, _FIXED)


EnergyModel = Loihi1Costs
"""The default Loihi 1 cost model (its former name)."""


@dataclass(frozen=True)
class SanafeLoihiCosts(CostModel):
    """Loihi 1 per-event energy (pJ) and time (ns) of SANA-FE's Loihi architecture, its timing
    rule, and the paper's two calibration constants (see :class:`~snnfast.chip.CostModel`).

    SANA-FE charges every LIF compartment an access each step and an update when its potential,
    input or bias is not zero; snnfast charges the update on every compartment-step (SANA-FE's
    charge whenever potentials are never exactly zero, as in the cross-check). Pooling synapses
    are SANA-FE's sparse synapse (it has no pooling builder: explicit connections).
    """

    name: str = sourced("SANA-FE (Loihi, silicon-fitted)", SANAFE)
    e_update_active_pj: float | None = sourced(
        51.2 + 21.6, f"{SANAFE}: loihi_lif energy_access_neuron 51.2 + energy_update_neuron 21.6"
    )
    e_update_inactive_pj: float | None = sourced(
        51.2 + 21.6, f"{SANAFE}: access 51.2 + update 21.6 (update on every compartment-step)"
    )
    e_spike_pj: float | None = sourced(69.3, f"{SANAFE}: loihi_lif energy_spike_out")
    e_message_out_pj: float | None = sourced(111.0, f"{SANAFE}: loihi_out energy_message_out")
    e_message_in_pj: float | None = sourced(0.0, f"{SANAFE}: loihi_in energy_message_in")
    e_hop_ew_pj: float | None = sourced(3.0, f"{SANAFE}: energy_east_hop / energy_west_hop")
    e_hop_ns_pj: float | None = sourced(4.2, f"{SANAFE}: energy_north_hop / energy_south_hop")
    e_synop_conv_pj: float | None = sourced(24.0, f"{SANAFE}: loihi_conv_synapse")
    e_synop_pool_pj: float | None = sourced(33.6, f"{SANAFE}: loihi_sparse_synapse")
    e_synop_dense_pj: float | None = sourced(35.5, f"{SANAFE}: loihi_dense_synapse")
    e_synop_reset_pj: float | None = sourced(
        33.6, f"ASSUMPTION: one-synapse entries as {SANAFE} loihi_sparse_synapse"
    )
    t_update_active_ns: float | None = sourced(
        6.0 + 3.7, f"{SANAFE}: latency_access_neuron 6.0 + latency_update_neuron 3.7"
    )
    t_update_inactive_ns: float | None = sourced(6.0 + 3.7, f"{SANAFE}: access 6.0 + update 3.7")
    t_spike_ns: float | None = sourced(30.0, f"{SANAFE}: loihi_lif latency_spike_out")
    t_message_out_ns: float | None = sourced(5.1, f"{SANAFE}: loihi_out latency_message_out")
    t_message_in_ns: float | None = sourced(16.0, f"{SANAFE}: loihi_in latency_message_in")
    t_synop_conv_ns: float | None = sourced(3.1, f"{SANAFE}: loihi_conv_synapse")
    t_synop_pool_ns: float | None = sourced(4.7, f"{SANAFE}: loihi_sparse_synapse")
    t_synop_dense_ns: float | None = sourced(3.8, f"{SANAFE}: loihi_dense_synapse")
    t_synop_reset_ns: float | None = sourced(4.7, "as e_synop_reset_pj")
    overlap: bool = sourced(
        True,
        f"{SANAFE_TIMING}: a core's neuron and message processing are two timelines "
        "(schedule_messages_timestep_simple: the longer of the two)",
    )
    barrier_tiles: tuple[int, ...] | None = sourced((1, 2, 4, 29), f"{SANAFE}: latency_sync")
    barrier_ns: tuple[float, ...] | None = sourced(
        (600.0, 1000.0, 1400.0, 1800.0), f"{SANAFE}: latency_sync 0.6 / 1.0 / 1.4 / 1.8 us"
    )
    barrier_rule: str = sourced(
        "step", "SANA-FE 2.2.9 src/utils.hpp LookupTable: the largest key <= tiles in use"
    )
    static_power_w: float | None = sourced(0.946, f"{_STATIC}; SANA-FE models no static power")
    fixed_overhead_s: float | None = sourced(_FIXED_S, _FIXED)


LOIHI1 = Profile(
    "loihi1", Loihi1(), Loihi1Costs(), "Loihi 1, Davies et al. 2018 per-operation figures"
)
"""Loihi 1 with Davies et al. 2018's figures (snnfast's original model)."""

LOIHI1_SANAFE = Profile(
    "loihi1-sanafe",
    Loihi1(),
    SanafeLoihiCosts(),
    "Loihi 1, SANA-FE's silicon-fitted per-event figures and timing",
)
"""Loihi 1 with SANA-FE's silicon-fitted figures."""
