"""The hardware side: chip profiles, the mapper, counted runs, energy and latency, NeuroBench
metrics, the core map and the SANA-FE cross-check.

- :mod:`snnfast.chip.profiles`: :class:`ChipResources` (limits and layout), :class:`CostModel`
  (per-operation energy and time, plus the paper's two calibration constants) and
  :class:`Profile` (the two together), every value named and sourced (``docs/loihi.md``,
  ``docs/loihi2.md``); unknown values are ``None`` with the reason.
- :mod:`snnfast.chip.loihi1`, :mod:`snnfast.chip.loihi2`: the shipped chips; :data:`PROFILES`
  holds ``"loihi1"`` (Davies et al. 2018), ``"loihi1-sanafe"`` (SANA-FE's silicon-fitted
  figures) and ``"loihi2"`` (published resources, costs unknown).
- :mod:`snnfast.chip.mapper`: :func:`map_network` places any layer graph on cores
  (:class:`Mapping`, one :class:`LayerMap` per layer; :mod:`snnfast.chip.partition` cuts a
  layer); what does not fit raises :class:`snnfast.errors.ResourceError`.
- :mod:`snnfast.chip.counting`: :func:`run_chip` runs the network counted per core and per step
  in the Rust core (:class:`ChipRun`).
- :mod:`snnfast.chip.energy`: :func:`estimate_energy` turns a counted run into energy and
  latency per image (:class:`EnergyReport`); :func:`estimate_network` maps, runs and estimates.
- :mod:`snnfast.chip.metrics`: :class:`NeuroBenchMetrics` of a counted run.
- :mod:`snnfast.chip.figures`: :func:`core_map`, the paper's Fig 3.
- :mod:`snnfast.chip.sanafe`: the same network, mapping and input simulated by SANA-FE
  (optional ``sanafe`` package).

The engine (:mod:`snnfast.network`) knows nothing of chips; a counted run is an opt-in observer
of the engine's steps. Another chip is another profile.
"""

from __future__ import annotations

from .counting import COUNTERS, ChipRun, run_chip, run_chip_checkpoints
from .energy import (
    EnergyReport,
    EnergySummary,
    ProfileReport,
    estimate_energy,
    estimate_network,
)
from .figures import core_map
from .loihi1 import LOIHI1, LOIHI1_SANAFE, EnergyModel, Loihi1, Loihi1Costs, SanafeLoihiCosts
from .loihi2 import LOIHI2, Loihi2, Loihi2Costs
from .mapper import (
    RESOURCES,
    LayerMap,
    Mapping,
    MappingSummary,
    check_deployable,
    map_network,
)
from .metrics import NeuroBenchMetrics, neurobench
from .profiles import ChipResources, CostModel, Profile, sources, unknown_fields

PROFILES: dict[str, Profile] = {p.name: p for p in (LOIHI1, LOIHI1_SANAFE, LOIHI2)}
"""The shipped profiles by name."""


def get_profile(name: str) -> Profile:
    """The shipped profile called ``name`` (``"loihi1"``, ``"loihi1-sanafe"``, ``"loihi2"``)."""
    from .. import _checks

    return PROFILES[_checks.choice(name, "profile", sorted(PROFILES), where="get_profile")]


__all__ = [
    "COUNTERS",
    "LOIHI1",
    "LOIHI1_SANAFE",
    "LOIHI2",
    "PROFILES",
    "RESOURCES",
    "ChipResources",
    "ChipRun",
    "CostModel",
    "EnergyModel",
    "EnergyReport",
    "EnergySummary",
    "LayerMap",
    "Loihi1",
    "Loihi1Costs",
    "Loihi2",
    "Loihi2Costs",
    "Mapping",
    "MappingSummary",
    "NeuroBenchMetrics",
    "Profile",
    "ProfileReport",
    "SanafeLoihiCosts",
    "check_deployable",
    "core_map",
    "estimate_energy",
    "estimate_network",
    "get_profile",
    "map_network",
    "neurobench",
    "run_chip",
    "run_chip_checkpoints",
    "sources",
    "unknown_fields",
]
