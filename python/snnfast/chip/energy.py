"""Energy and latency of a run on a chip, from the exact per-core, per-step counts of a counted
run (:mod:`snnfast.chip.counting`) and a profile's costs (:class:`snnfast.chip.CostModel`).

**Dynamic energy** per image: every counter of every core times its cost
(:meth:`CostModel.energy_per_counter`): compartment updates (active when the neuron spikes),
spikes, axon messages out and in, tile hops, and synaptic events by group kind (the reset
synapse's too). It is split into synaptic, update (compartments and spikes) and routing
(messages and hops) energy.

**Latency** per image, as the chip spends it: each step takes its busiest core's time (the
profile's time model, counted step by step in the Rust core) plus the barrier for the number of
tiles in use, summed over the steps the image actually ran (fewer with early exit), plus the
profile's time per inference that does not depend on the number of steps.

**Static energy** = static power x chips x latency. The last two constants are the paper's
measured calibration (Liu et al. 2022, Tables 3-4; ``docs/loihi.md``), kept apart from the
per-event costs. A profile whose costs are not published (Loihi 2) gives ``nan`` energies and
latencies, and :attr:`EnergyReport.unknown` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._records import Record
from ..errors import ConfigError
from ..network import Network
from ..settings import RunSettings
from .counting import COUNTERS, ChipRun, run_chip
from .loihi1 import LOIHI1
from .mapper import Mapping, MappingSummary, map_network
from .metrics import NeuroBenchMetrics, neurobench
from .profiles import ChipResources, CostModel, Profile, unknown_fields

__all__ = [
    "EnergyReport",
    "EnergySummary",
    "ProfileReport",
    "estimate_energy",
    "estimate_network",
]

_SYNAPTIC = tuple(COUNTERS.index(k) for k in COUNTERS if k.startswith("synops"))
_UPDATE = tuple(COUNTERS.index(k) for k in ("compartment_updates", "active_updates", "spikes"))
_ROUTING = tuple(COUNTERS.index(k) for k in ("messages_out", "messages_in", "hops_ew", "hops_ns"))


@dataclass(frozen=True)
class EnergySummary(Record):
    """The means of an :class:`EnergyReport`, for reports and result files (``nan``, written
    as ``null``, where the profile's costs are unknown).

    Attributes:
        timesteps: the run's time steps; mean_steps: steps run on average (fewer with early
            exit).
        n_images, n_cores, n_chips: images averaged over, cores and chips used.
        latency_s: latency per image; step_s: mean time of one step (busiest core + barrier).
        static_power_w, dynamic_power_w, total_power_w: power.
        dynamic_energy_j, total_energy_j: energy per image.
        profile: the profile; unknown: what is unknown and why; neurobench: the metrics.
    """

    timesteps: int
    mean_steps: float
    n_images: int
    n_cores: int
    n_chips: int
    latency_s: float
    static_power_w: float
    dynamic_power_w: float
    total_power_w: float
    dynamic_energy_j: float
    total_energy_j: float
    profile: str = "loihi1"
    step_s: float = math.nan
    unknown: list[str] = field(default_factory=list)
    neurobench: NeuroBenchMetrics | None = None


@dataclass(frozen=True, eq=False)
class EnergyReport:
    """Estimated energy and latency of one counted run; scalar properties are means over images.

    Per-image arrays (float64 ``[N]``): ``steps_per_image``, ``latency_per_image_s``,
    ``step_per_image_s`` (mean step: busiest core + barrier), and the dynamic energy parts
    ``synaptic_j``, ``update_j``, ``routing_j``. Per layer (input first, mean per image):
    ``layer_spikes``, ``layer_synops`` (synaptic events on the layer's cores, reset events
    included), ``layer_messages`` (sent by the layer) and ``layer_energy_j``. Per core (mean per
    image): ``core_synops`` and ``core_energy_j``. ``barrier_s``: the barrier of one step.
    """

    profile: str
    timesteps: int
    steps_per_image: np.ndarray
    n_images: int
    n_cores: int
    n_chips: int
    n_tiles: int
    static_power_w: float
    barrier_s: float
    latency_per_image_s: np.ndarray
    step_per_image_s: np.ndarray
    synaptic_j: np.ndarray
    update_j: np.ndarray
    routing_j: np.ndarray
    layer_spikes: np.ndarray
    layer_synops: np.ndarray
    layer_messages: np.ndarray
    layer_energy_j: np.ndarray
    core_synops: np.ndarray
    core_energy_j: np.ndarray
    unknown: dict[str, str]
    neurobench: NeuroBenchMetrics

    @property
    def dynamic_per_image_j(self) -> np.ndarray:
        """Dynamic energy of each image."""
        return self.synaptic_j + self.update_j + self.routing_j

    @property
    def static_per_image_j(self) -> np.ndarray:
        """Static energy of each image: static power x latency."""
        return self.static_power_w * self.latency_per_image_s

    @property
    def total_per_image_j(self) -> np.ndarray:
        """Total energy of each image."""
        return self.dynamic_per_image_j + self.static_per_image_j

    @property
    def latency_s(self) -> float:
        """Mean latency per image."""
        return float(self.latency_per_image_s.mean())

    @property
    def step_s(self) -> float:
        """Mean time of one step over all steps run."""
        return float(
            (self.step_per_image_s * self.steps_per_image).sum() / self.steps_per_image.sum()
        )

    @property
    def dynamic_energy_j(self) -> float:
        """Mean dynamic energy per image."""
        return float(self.dynamic_per_image_j.mean())

    @property
    def static_energy_j(self) -> float:
        """Mean static energy per image."""
        return float(self.static_per_image_j.mean())

    @property
    def total_energy_j(self) -> float:
        """Mean total energy per image."""
        return float(self.total_per_image_j.mean())

    @property
    def dynamic_power_w(self) -> float:
        """Mean dynamic energy / mean latency."""
        return self.dynamic_energy_j / self.latency_s

    @property
    def total_power_w(self) -> float:
        """Static + dynamic power."""
        return self.static_power_w + self.dynamic_power_w

    def report(self) -> str:
        """The paper's Tables 3-5 layout for this run, the per-layer breakdown and the
        NeuroBench metrics."""

        def num(x: float, scale: float, fmt: str) -> str:
            return "unknown" if not math.isfinite(x) else format(x * scale, fmt)

        nb = self.neurobench
        lines = [
            f"{self.profile} estimate, T = {self.timesteps} (mean "
            f"{self.steps_per_image.mean():.1f} steps run), mean of {self.n_images} image(s), "
            f"{self.n_cores} cores on {self.n_chips} chip(s), {self.n_tiles} tiles",
            f"  latency per image   {num(self.latency_s, 1e3, '10.3f')} ms"
            f"   (step {num(self.step_s, 1e6, '.2f')} us, barrier "
            f"{num(self.barrier_s, 1e6, '.2f')} us)",
            f"  static power        {num(self.static_power_w, 1, '10.3f')} W",
            f"  dynamic power       {num(self.dynamic_power_w, 1, '10.4f')} W",
            f"  total power         {num(self.total_power_w, 1, '10.3f')} W",
            f"  dynamic energy      {num(self.dynamic_energy_j, 1e3, '10.4f')} mJ"
            f"   (synaptic {num(float(self.synaptic_j.mean()), 1e3, '.4f')}, updates "
            f"{num(float(self.update_j.mean()), 1e3, '.4f')}, routing "
            f"{num(float(self.routing_j.mean()), 1e3, '.4f')})",
            f"  total energy        {num(self.total_energy_j, 1e3, '10.4f')} mJ",
        ]
        reasons: dict[str, list[str]] = {}
        for name, why in sorted(self.unknown.items()):
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            lines.append(f"  unknown ({', '.join(names)}): {why}")
        eff = "not recorded" if nb.effective_acs is None else f"{nb.effective_acs:,.0f}"
        lines += [
            "NeuroBench metrics (per inference):",
            f"  synaptic operations {nb.synaptic_operations:,.0f} (effective ACs {eff}, "
            f"dense {nb.dense_synops:,.0f})",
            f"  activation sparsity {nb.activation_sparsity:.4f}; membrane updates "
            f"{nb.membrane_updates:,.0f}",
            f"  parameters {nb.parameter_count:,} ({nb.footprint_bytes:,} bytes; on chip "
            f"{nb.chip_footprint_bytes:,} bytes of synapse memory)",
            "",
            f"{'layer':>5}  {'spikes':>10}  {'synops':>12}  {'messages':>10}  "
            f"{'energy uJ':>10}  {'sparsity':>8}",
        ]
        for l in range(len(self.layer_spikes)):
            lines.append(
                f"{l:>5}  {self.layer_spikes[l]:>10.1f}  {self.layer_synops[l]:>12.1f}  "
                f"{self.layer_messages[l]:>10.1f}  {num(self.layer_energy_j[l], 1e6, '>10.3f')}"
                f"  {nb.activation_sparsity_by_layer[l]:>8.4f}"
            )
        return "\n".join(lines)

    def summary(self) -> EnergySummary:
        """The report's means."""
        return EnergySummary(
            timesteps=self.timesteps,
            mean_steps=float(self.steps_per_image.mean()),
            n_images=self.n_images,
            n_cores=self.n_cores,
            n_chips=self.n_chips,
            latency_s=self.latency_s,
            static_power_w=self.static_power_w,
            dynamic_power_w=self.dynamic_power_w,
            total_power_w=self.total_power_w,
            dynamic_energy_j=self.dynamic_energy_j,
            total_energy_j=self.total_energy_j,
            profile=self.profile,
            step_s=self.step_s,
            unknown=[f"{k}: {v}" for k, v in sorted(self.unknown.items())],
            neurobench=self.neurobench,
        )


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def estimate_energy(run: ChipRun) -> EnergyReport:
    """Estimate energy and latency per image of a counted run, with its profile's costs.

    Raises:
        ConfigError: ``run`` is not a :class:`~snnfast.chip.ChipRun`.
    """
    if not isinstance(run, ChipRun):
        raise ConfigError(
            f"estimate_energy needs a snnfast.chip.ChipRun (from run_chip), got "
            f"{type(run).__name__}"
        )
    costs: CostModel = run.profile.costs
    mapping = run.mapping
    counts = run.counts.astype(np.float64)
    steps = run.result.steps.astype(np.float64)
    pj = np.asarray(costs.energy_per_counter())
    per = counts * pj[None, None, :]  # [N, cores, K] pJ
    synaptic = per[:, :, list(_SYNAPTIC)].sum(axis=(1, 2)) * 1e-12
    update = per[:, :, list(_UPDATE)].sum(axis=(1, 2)) * 1e-12
    routing = per[:, :, list(_ROUTING)].sum(axis=(1, 2)) * 1e-12
    core_j = per.sum(axis=2) * 1e-12
    n_tiles = mapping.n_tiles
    barrier_s = costs.barrier(n_tiles) * 1e-9 if costs.time_known else math.nan
    if not costs.time_known:
        busy = np.full_like(run.busy_s, math.nan)
    else:
        busy = run.busy_s
    fixed = _nan(costs.fixed_overhead_s)
    latency = busy + steps * barrier_s + fixed
    step = (busy + steps * barrier_s) / np.maximum(steps, 1.0)
    layer_of = mapping.core_layer
    n_layers = len(mapping.layers)
    per_layer = np.stack([core_j[:, layer_of == l].sum(axis=1) for l in range(n_layers)], axis=1)
    syn: np.ndarray = np.sum([run.counter(COUNTERS[k]) for k in _SYNAPTIC], axis=0)
    unknown = unknown_fields(costs)
    static = _nan(costs.static_power_w) * mapping.n_chips
    return EnergyReport(
        profile=run.profile.name,
        timesteps=run.result.timesteps,
        steps_per_image=steps,
        n_images=run.result.n_images,
        n_cores=mapping.n_cores,
        n_chips=mapping.n_chips,
        n_tiles=n_tiles,
        static_power_w=static,
        barrier_s=barrier_s,
        latency_per_image_s=latency,
        step_per_image_s=step,
        synaptic_j=synaptic,
        update_j=update,
        routing_j=routing,
        layer_spikes=run.per_layer("spikes").mean(axis=0).astype(np.float64),
        layer_synops=np.stack(
            [syn[:, list(lm.cores)].sum(axis=1) for lm in mapping.layers], axis=1
        ).mean(axis=0),
        layer_messages=run.per_layer("messages_out").mean(axis=0).astype(np.float64),
        layer_energy_j=per_layer.mean(axis=0),
        core_synops=syn.mean(axis=0).astype(np.float64),
        core_energy_j=core_j.mean(axis=0),
        unknown=unknown,
        neurobench=neurobench(run),
    )


def estimate_network(
    net: Network,
    images: np.ndarray,
    settings: RunSettings | None = None,
    chip: Profile | ChipResources | None = None,
    model: CostModel | None = None,
) -> tuple[Mapping, EnergyReport]:
    """Map ``net``, run ``images`` counted on the mapping, and estimate the run's energy.

    Args:
        net: the network.
        images: uint8 images.
        settings: how the run goes (time steps, delay, ``v_init``, early exit, threads);
            default ``RunSettings()`` (16 steps). Pass a converted model's
            :attr:`~snnfast.convert.ConvertedModel.settings` (with the time steps wanted) to
            cost the network as it is meant to run.
        chip: a :class:`Profile` (default ``"loihi1"``) or the chip's resources (then costed
            with ``model``).
        model: per-operation costs, replacing the profile's.

    Raises:
        ConfigError: ``settings`` is not a :class:`~snnfast.settings.RunSettings`, or ``model``
            is not a :class:`CostModel`.
        ResourceError: the network does not fit the chip.
    """
    s = RunSettings() if settings is None else settings
    if not isinstance(s, RunSettings):
        raise ConfigError(f"estimate_network: settings must be a RunSettings, got {s!r}")
    if model is not None and not isinstance(model, CostModel):
        raise ConfigError(f"model must be a snnfast.chip.CostModel, got {type(model).__name__}")
    mapping = map_network(net, chip)
    profile = mapping.profile or LOIHI1.replace(resources=mapping.chip)
    if model is not None:
        profile = profile.replace(costs=model)
    return mapping, estimate_energy(run_chip(mapping, images, s, profile))


@dataclass(frozen=True)
class ProfileReport(Record):
    """One profile's mapping and its estimates at each number of steps (``snnfast chip
    --json``)."""

    profile: str
    mapping: MappingSummary
    energy: list[EnergySummary]
