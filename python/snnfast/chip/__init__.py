"""The hardware side: a chip profile, the mapper, the energy and latency model, the core map.

- :mod:`snnfast.chip.loihi1`: the Loihi 1 profile: :class:`Loihi1` (limits and layout) and
  :class:`EnergyModel` (per-operation energy and time, plus the paper's two calibration
  constants), every value named and sourced (``docs/loihi.md``).
- :mod:`snnfast.chip.mapper`: :func:`map_network` places a :class:`snnfast.Network` on cores
  (:class:`Mapping`, one :class:`LayerMap` per layer) and :func:`check_deployable` says whether
  it fits; the limits that do not fit raise :class:`snnfast.errors.ResourceError`.
- :mod:`snnfast.chip.energy`: :func:`estimate_energy` turns a run's exact event counts on a
  mapping into energy and latency per image (:class:`EnergyReport`);
  :func:`estimate_network` maps, runs and estimates in one call.
- :mod:`snnfast.chip.figures`: :func:`core_map`, the paper's Fig 3.

The engine (:mod:`snnfast.network`) knows nothing of chips: this package reads its results.
A second chip is a second profile module with the same fields as :mod:`~snnfast.chip.loihi1`.
"""

from __future__ import annotations

from .energy import EnergyReport, EnergySummary, estimate_energy, estimate_network
from .figures import core_map
from .loihi1 import EnergyModel, Loihi1, sources
from .mapper import (
    RESOURCES,
    LayerMap,
    Mapping,
    MappingSummary,
    check_deployable,
    map_network,
)

__all__ = [
    "RESOURCES",
    "EnergyModel",
    "EnergyReport",
    "EnergySummary",
    "LayerMap",
    "Loihi1",
    "Mapping",
    "MappingSummary",
    "check_deployable",
    "core_map",
    "estimate_energy",
    "estimate_network",
    "map_network",
    "sources",
]
