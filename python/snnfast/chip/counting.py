"""Running a network counted on its chip mapping: every core's events of every step, in the Rust
core (:func:`run_chip`).

The counters (:data:`COUNTERS`, per core): ``compartment_updates`` (every compartment, every
step), ``active_updates`` (compartments of neurons that spiked in that step), ``spikes``,
``messages_out`` / ``messages_in`` (one axon message per spike per destination core),
``synops_conv`` / ``synops_pool`` / ``synops_dense`` (synaptic events on the receiving core, by
the kind of their group), ``synops_reset`` (the reset synapse of the two-compartment soft reset;
its message counts as a message out and in on the neuron's own core) and ``hops_ew`` /
``hops_ns`` (tile hops of the messages a core sends). A spike's events belong to the step it is
emitted in, whatever the run's ``delay``: the chip sends and processes it then. With
``delay = 1`` the engine's own ``synops`` leave out the last step's spikes, which the chip
still delivers (its counts are higher by exactly those).

Each step also takes the time of its busiest core under the profile's linear time model
(:meth:`CostModel.time_per_counter`); :attr:`ChipRun.busy_s` sums it over the steps each image
ran (early exit included). The barrier, which depends only on the tiles in use, is the energy
model's to add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _core
from ..errors import ConfigError
from ..network import RunResult
from ..settings import RunSettings
from .loihi1 import LOIHI1
from .mapper import Mapping
from .profiles import Profile

__all__ = ["COUNTERS", "ChipRun", "run_chip", "run_chip_checkpoints"]

COUNTERS: tuple[str, ...] = tuple(_core.CHIP_COUNTERS)
"""The per-core counters of a chip run, in the order of :attr:`ChipRun.counts`' last axis."""


@dataclass(frozen=True, eq=False)
class ChipRun:
    """A run counted on a mapping.

    Attributes:
        mapping: where the network sits.
        profile: whose time model timed the steps (and whose costs price them).
        result: the engine's run (spike counts and potentials of the recorded layers).
        counts: int64 ``[N, cores, len(COUNTERS)]``: each image's events per core.
        busy_s: float64 ``[N]``: the busiest core's time summed over the steps run, barrier
            excluded.
        trace: int64 ``[N, T, cores, len(COUNTERS)]``, every step's counts (``trace=True``),
            else ``None``.
    """

    mapping: Mapping
    profile: Profile
    result: RunResult
    counts: np.ndarray
    busy_s: np.ndarray
    trace: np.ndarray | None = None

    def counter(self, name: str) -> np.ndarray:
        """One counter per image and core: int64 ``[N, cores]``."""
        if name not in COUNTERS:
            raise ConfigError(f"unknown chip counter {name!r}; choose from {list(COUNTERS)}")
        return self.counts[:, :, COUNTERS.index(name)]

    def per_layer(self, name: str) -> np.ndarray:
        """One counter summed over each layer's cores: int64 ``[N, layers]``."""
        c = self.counter(name)
        return np.stack([c[:, list(lm.cores)].sum(axis=1) for lm in self.mapping.layers], axis=1)


def _profile(mapping: Mapping, profile: Profile | None) -> Profile:
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"mapping must be a snnfast.chip.Mapping, got {type(mapping).__name__}")
    p = profile or mapping.profile or LOIHI1
    if not isinstance(p, Profile):
        raise ConfigError(f"profile must be a snnfast.chip.Profile, got {type(p).__name__}")
    return p


def run_chip_checkpoints(
    mapping: Mapping,
    images: np.ndarray,
    checkpoints: Sequence[int],
    settings: RunSettings | None = None,
    profile: Profile | None = None,
    *,
    record: Sequence[int] | None = None,
    trace: bool = False,
) -> list[ChipRun]:
    """One counted simulation read out after each checkpoint (see
    :meth:`snnfast.Network.run_checkpoints`); result ``k`` is exactly
    ``run_chip(..., settings.replace(timesteps=checkpoints[k]))``.

    Args:
        mapping: from :func:`snnfast.chip.map_network`.
        images: uint8 images.
        checkpoints: step counts; ``settings.timesteps`` is ignored.
        settings: how the run goes (delay, ``v_init``, early exit, threads).
        profile: whose time model times the steps (default the mapping's profile, else
            ``"loihi1"``).
        record: layers whose spike counts and potentials the results keep (default all).
        trace: keep every step's counts (only with one checkpoint).

    Raises:
        ConfigError: bad settings, or a trace asked for with several checkpoints.
        MemoryLimitError: the counts would not fit the memory limit.
    """
    p = _profile(mapping, profile)
    s = RunSettings() if settings is None else settings
    if not isinstance(s, RunSettings):
        raise ConfigError(f"run_chip: settings must be a RunSettings, got {s!r}")
    net = mapping.network
    if net is None:
        raise ConfigError("run_chip: the mapping has no network (make it with map_network)")
    neuron, message = p.costs.time_per_counter()
    counting = {
        "chip": mapping.native,
        "neuron_ns": neuron,
        "message_ns": message,
        "overlap": p.costs.overlap,
        "trace": bool(trace),
    }
    results, (counts, busy, steps_trace) = net.run_chip(
        images, checkpoints, counting, s.delay, s.v_init, s.threads, record, s.early_exit
    )
    k, cores = len(COUNTERS), mapping.n_cores
    n = results[0].n_images
    counts = counts.view(np.int64).reshape(len(results), n, cores, k)
    busy = busy.reshape(len(results), n) * 1e-9
    out = []
    for i, res in enumerate(results):
        tr = None
        if steps_trace is not None:
            tr = steps_trace.view(np.int64).reshape(n, res.timesteps, cores, k)
        out.append(ChipRun(mapping, p, res, counts[i], busy[i], tr))
    return out


def run_chip(
    mapping: Mapping,
    images: np.ndarray,
    settings: RunSettings | None = None,
    profile: Profile | None = None,
    *,
    record: Sequence[int] | None = None,
    trace: bool = False,
) -> ChipRun:
    """Run ``images`` through the mapped network, counted per core and per step (see the
    module docstring); ``settings`` default ``RunSettings()`` (16 steps).

    Raises:
        ConfigError: bad settings.
        MemoryLimitError: the counts would not fit the memory limit.
    """
    s = RunSettings() if settings is None else settings
    if not isinstance(s, RunSettings):
        raise ConfigError(f"run_chip: settings must be a RunSettings, got {s!r}")
    return run_chip_checkpoints(
        mapping, images, [s.timesteps], s, profile, record=record, trace=trace
    )[0]
