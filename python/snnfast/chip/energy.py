"""Energy and latency of a run on a chip, estimated from the engine's exact event counts.

The estimate has two separate parts.

**Count-based (dynamic) part**, from Davies et al. 2018 Table 2 (pre-silicon, 0.75 V), per
image:

* synaptic operations: every synaptic event of the run (the engine's ``synops``), plus, under
  two-compartment soft reset, one reset synapse event per spike; each costs ``e_synop_pj``;
* neuron updates: every compartment of every mapped core is updated every step. An update is
  counted *active* when the neuron spikes at that step; we only have per-run spike counts, so
  active updates = spikes x compartments per neuron (exact count of spiking neuron-steps) and
  the rest are inactive;
* spike routing: a spike sends one message to every core of the next layer it has synapses on
  (one discrete output axon per destination core) and, under soft reset, one to its own core.
  A message costs ``e_spike_tile_pj`` plus the east-west and north-south tile hops between the
  two cores' tiles (:class:`snnfast.chip.Loihi1` gives the grid and tile size; chips sit side
  by side east-west).

Per-core accounting is exact from geometry: a core's synaptic operations are the spikes of each
presynaptic neuron times that neuron's synapses on the core.

**Latency**: the cores of one step work in parallel and then synchronise, so a step takes the
busiest core's time (its synaptic operations x ``t_synop_ns`` + its neuron updates x the update
time) plus a barrier (``t_barrier`` grows linearly from 1 to 32 tiles). We know each core's work
per run, not per step, so the busiest core's per-run time / T is used: a lower bound when the
busiest core changes from step to step. Total latency = T x step + ``fixed_overhead_s``, where
T is the number of steps the image actually ran (``RunResult.steps``: fewer with early exit).

**Calibration from the paper** (kept apart from the counts): ``fixed_overhead_s`` is the time
per image that does not depend on T (host transfer, set-up, probes), and ``static_power_w`` the
static power per chip, both from Liu et al. 2022 Tables 3-4 (see ``docs/loihi.md``).
Static energy = static power x chips x latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._records import Record
from ..errors import ConfigError, ShapeError
from ..network import Network, RunResult
from ..settings import RunSettings
from .loihi1 import EnergyModel, Loihi1
from .mapper import Mapping, map_network

__all__ = [
    "EnergyReport",
    "EnergySummary",
    "estimate_energy",
    "estimate_network",
]


@dataclass(frozen=True)
class EnergySummary(Record):
    """The means of an :class:`EnergyReport`, for reports and result files.

    Attributes:
        timesteps: the run's time steps; mean_steps: steps run on average (fewer with early
            exit).
        n_images, n_cores, n_chips: images averaged over, cores and chips used.
        latency_s: latency per image.
        static_power_w, dynamic_power_w, total_power_w: power.
        dynamic_energy_j, total_energy_j: energy per image.
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


@dataclass(frozen=True, eq=False)
class EnergyReport:
    """Estimated energy and latency of one run; scalar properties are means over images.

    Per-image arrays (float64 ``[N]``): ``steps_per_image`` (``timesteps`` unless the run
    exited early), ``latency_per_image_s``, ``step_per_image_s`` and the dynamic energy parts
    ``synaptic_j``, ``update_j``, ``routing_j``.
    Per layer (input first, mean per image): ``layer_spikes``, ``layer_synops`` (including
    reset synapse events), ``layer_messages`` (sent by the layer) and ``layer_energy_j``
    (synaptic + update energy of the layer's cores + routing of its spikes).
    Per core (mean per image): ``core_synops``, ``core_busy_s`` (busy time per step) and
    ``core_energy_j``.
    """

    timesteps: int
    steps_per_image: np.ndarray
    n_images: int
    n_cores: int
    n_chips: int
    static_power_w: float
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
    core_busy_s: np.ndarray
    core_energy_j: np.ndarray

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
        """The paper's Tables 3-5 layout for this run, then the per-layer breakdown."""
        lines = [
            f"Loihi 1 estimate, T = {self.timesteps} (mean {self.steps_per_image.mean():.1f} "
            f"steps run), mean of {self.n_images} image(s), {self.n_cores} cores on "
            f"{self.n_chips} chip(s)",
            f"  latency per image   {self.latency_s * 1e3:10.3f} ms"
            f"   (step {self.step_per_image_s.mean() * 1e6:.2f} us)",
            f"  static power        {self.static_power_w:10.3f} W",
            f"  dynamic power       {self.dynamic_power_w:10.4f} W",
            f"  total power         {self.total_power_w:10.3f} W",
            f"  dynamic energy      {self.dynamic_energy_j * 1e3:10.4f} mJ"
            f"   (synaptic {self.synaptic_j.mean() * 1e3:.4f}, updates "
            f"{self.update_j.mean() * 1e3:.4f}, routing {self.routing_j.mean() * 1e3:.4f})",
            f"  total energy        {self.total_energy_j * 1e3:10.4f} mJ",
            "",
            f"{'layer':>5}  {'spikes':>10}  {'synops':>12}  {'messages':>10}  {'energy uJ':>10}",
        ]
        for l in range(len(self.layer_spikes)):
            lines.append(
                f"{l:>5}  {self.layer_spikes[l]:>10.1f}  {self.layer_synops[l]:>12.1f}  "
                f"{self.layer_messages[l]:>10.1f}  {self.layer_energy_j[l] * 1e6:>10.3f}"
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
        )


def _tile_xy(mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Tile coordinates of every core; chips sit side by side east-west."""
    chip = mapping.chip
    p = mapping.placements
    tiles_per_row = chip.grid_cols // chip.tile_cols
    x = p[:, 0] * tiles_per_row + p[:, 2] // chip.tile_cols
    y = p[:, 1] // chip.tile_rows
    return x, y


def _check_result(mapping: Mapping, result: RunResult) -> list[np.ndarray]:
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"mapping must be a snnfast.chip.Mapping, got {type(mapping).__name__}")
    if not isinstance(result, RunResult):
        raise ConfigError(f"result must be a snnfast.RunResult, got {type(result).__name__}")
    if len(result.spike_counts) != len(mapping.layers):
        raise ShapeError(
            f"the run has {len(result.spike_counts)} layers, the mapping {len(mapping.layers)}"
        )
    spikes = []
    for lm, sc in zip(mapping.layers, result.spike_counts):
        if sc is None:
            raise ConfigError(
                f"estimate_energy needs the spike counts of every layer; layer {lm.index} was "
                f"not recorded (run with record=None)"
            )
        if tuple(sc.shape[1:]) != lm.shape:
            raise ShapeError(
                f"layer {lm.index}: the run has neuron shape {tuple(sc.shape[1:])}, "
                f"the mapping {lm.shape}"
            )
        c, h, w = (lm.shape[0], 1, 1) if len(lm.shape) == 1 else lm.shape
        spikes.append(sc.reshape(sc.shape[0], c, h, w).astype(np.float64))
    return spikes


def estimate_energy(
    mapping: Mapping, result: RunResult, model: EnergyModel | None = None
) -> EnergyReport:
    """Estimate energy and latency per image of ``result`` run on ``mapping``'s cores.

    Args:
        mapping: from :func:`snnfast.chip.map_network` of the network that produced ``result``.
        result: a run with every layer recorded (``record=None``).
        model: per-operation costs and calibration (default :class:`EnergyModel`).

    Raises:
        ConfigError: a layer was not recorded, or the run's synaptic events do not match the
            mapping's geometry (the run comes from another network).
        ShapeError: the run's layer shapes differ from the mapping's.
    """
    model = EnergyModel() if model is None else model
    if not isinstance(model, EnergyModel):
        raise ConfigError(f"model must be an EnergyModel, got {type(model).__name__}")
    spikes = _check_result(mapping, result)
    chip = mapping.chip
    n, t = result.n_images, result.timesteps
    steps = np.asarray(result.steps, dtype=np.float64).reshape(n)  # < t where exited early
    k = chip.soft_reset_compartments
    reset = float(k > 1)
    n_layers = len(mapping.layers)
    tx, ty = _tile_xy(mapping)
    hop_pj = (
        model.e_spike_tile_pj
        + np.abs(tx[:, None] - tx[None, :]) * model.e_hop_ew_pj
        + np.abs(ty[:, None] - ty[None, :]) * model.e_hop_ns_pj
    )

    core_spikes = np.zeros((n, mapping.n_cores))
    core_synops = np.zeros((n, mapping.n_cores))
    core_route_pj = np.zeros((n, mapping.n_cores))
    layer_messages = np.zeros((n, n_layers))
    for lm, s in zip(mapping.layers, spikes):
        cores = slice(lm.first_core, lm.first_core + lm.n_cores)
        mc, mh, mw = (m.astype(np.float64) for m in lm.members)
        own = np.einsum("nchw,cg,hi,wx->ngix", s, mc, mh, mw, optimize=True)
        core_spikes[:, cores] = own.reshape(n, -1)
        if lm.factors is None:
            continue
        pre = mapping.layers[lm.index - 1]
        s_pre = spikes[lm.index - 1]
        pc, ph, pw = (f.astype(np.float64) for f in lm.factors)
        syn = np.einsum("nchw,cg,hi,wx->ngix", s_pre, pc, ph, pw, optimize=True).reshape(n, -1)
        # Messages from each core of the previous layer to each core of this one.
        q = [
            m.astype(np.float64)[:, :, None] * (f > 0)[:, None, :]
            for m, f in zip(pre.members, lm.factors)
        ]
        msgs = np.einsum("nchw,cGg,hIi,wXx->nGIXgix", s_pre, *q, optimize=True)
        msgs = msgs.reshape(n, pre.n_cores, lm.n_cores)
        engine = result.synops[:, lm.index].astype(np.float64)
        if result.delay == 0:
            if not np.array_equal(np.rint(syn.sum(axis=1)), engine):
                raise ConfigError(
                    f"layer {lm.index}: the run delivered {int(engine.sum())} synaptic events "
                    f"but the mapping's geometry predicts {int(syn.sum())}; the run is not from "
                    f"the mapped network"
                )
        else:
            # With delay 1 the last step's spikes are never delivered: keep the engine's exact
            # totals and share them out over cores in proportion to the spike counts.
            total = syn.sum(axis=1)
            scale = np.divide(engine, total, out=np.ones_like(engine), where=total > 0)
            syn *= scale[:, None]
            msgs *= scale[:, None, None]
        core_synops[:, cores] += syn
        pre_cores = slice(pre.first_core, pre.first_core + pre.n_cores)
        route = np.einsum("nab,ab->na", msgs, hop_pj[pre_cores, cores])
        core_route_pj[:, pre_cores] += route
        layer_messages[:, pre.index] += msgs.sum(axis=(1, 2))
    # Soft reset: each spike is also one reset synapse event and one message to its own core.
    core_synops += reset * core_spikes
    core_route_pj += reset * core_spikes * model.e_spike_tile_pj
    layer_messages += reset * np.stack(
        [core_spikes[:, list(lm.cores)].sum(axis=1) for lm in mapping.layers], axis=1
    )

    updates = mapping.usage("compartments").astype(np.float64)[None, :] * steps[:, None]
    active = np.minimum(k * core_spikes, updates)
    inactive = updates - active
    syn_pj = core_synops * model.e_synop_pj
    upd_pj = active * model.e_update_active_pj + inactive * model.e_update_inactive_pj
    busy_ns = (
        core_synops * model.t_synop_ns
        + active * model.t_update_active_ns
        + inactive * model.t_update_inactive_ns
    )
    n_tiles = len(set(zip(tx.tolist(), ty.tolist())))
    step_s = (busy_ns.max(axis=1) / steps + model.barrier_ns(n_tiles)) * 1e-9
    latency_s = steps * step_s + model.fixed_overhead_s

    core_pj = syn_pj + upd_pj + core_route_pj
    layer_of = mapping.core_layer
    per_layer = np.stack([core_pj[:, layer_of == l].sum(axis=1) for l in range(n_layers)], 1)
    layer_synops = np.stack([core_synops[:, layer_of == l].sum(axis=1) for l in range(n_layers)], 1)
    return EnergyReport(
        timesteps=t,
        steps_per_image=steps,
        n_images=n,
        n_cores=mapping.n_cores,
        n_chips=mapping.n_chips,
        static_power_w=model.static_power_w * mapping.n_chips,
        latency_per_image_s=latency_s,
        step_per_image_s=step_s,
        synaptic_j=syn_pj.sum(axis=1) * 1e-12,
        update_j=upd_pj.sum(axis=1) * 1e-12,
        routing_j=core_route_pj.sum(axis=1) * 1e-12,
        layer_spikes=np.array([s.sum(axis=(1, 2, 3)).mean() for s in spikes]),
        layer_synops=layer_synops.mean(axis=0),
        layer_messages=layer_messages.mean(axis=0),
        layer_energy_j=per_layer.mean(axis=0) * 1e-12,
        core_synops=core_synops.mean(axis=0),
        core_busy_s=(busy_ns / steps[:, None]).mean(axis=0) * 1e-9,
        core_energy_j=core_pj.mean(axis=0) * 1e-12,
    )


def estimate_network(
    net: Network,
    images: np.ndarray,
    settings: RunSettings | None = None,
    chip: Loihi1 | None = None,
    model: EnergyModel | None = None,
) -> tuple[Mapping, EnergyReport]:
    """Map ``net``, run ``images`` with every layer recorded, and estimate the run's energy.

    Args:
        net: the network.
        images: uint8 images.
        settings: how the run goes (time steps, delay, ``v_init``, early exit, threads);
            default ``RunSettings()`` (16 steps). Pass a converted model's
            :attr:`~snnfast.convert.ConvertedModel.settings` (with the time steps wanted) to
            cost the network as it is meant to run.
        chip: chip profile (default :class:`~snnfast.chip.Loihi1`).
        model: per-operation costs (default :class:`~snnfast.chip.EnergyModel`).

    Raises:
        ConfigError: ``settings`` is not a :class:`~snnfast.settings.RunSettings`.
        ResourceError: the network does not fit the chip.
    """
    s = RunSettings() if settings is None else settings
    if not isinstance(s, RunSettings):
        raise ConfigError(f"estimate_network: settings must be a RunSettings, got {s!r}")
    mapping = map_network(net, chip)
    result = net.run(
        images,
        s.timesteps,
        delay=s.delay,
        v_init=s.v_init,
        threads=s.threads,
        early_exit=s.early_exit,
    )
    return mapping, estimate_energy(mapping, result, model)
