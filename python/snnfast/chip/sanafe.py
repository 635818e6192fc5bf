"""The same network, placement and input simulated by SANA-FE (Boyle et al., IEEE TCAD 2025;
the optional ``sanafe`` package, ``pip install sanafe==2.2.9``), to check snnfast's chip model
against an independent simulator with the same constants (:func:`simulate`, :func:`compare`).

How the network becomes a SANA-FE network (facts measured in ``/work/shared/notes``):

* every layer is a group of SANA-FE's Loihi LIF neurons (``loihi_lif``: soft reset, a bias, a
  threshold, no leak, no synaptic current), one per snnfast neuron, the input layer included
  (its bias is the pixel value), each on the SANA-FE core at the same place as its snnfast core
  (core ``(row, col)`` of the 8 x 16 grid is SANA-FE tile ``4 (col // 2) + row // 2``, core
  ``2 (row % 2) + col % 2``);
* SANA-FE fires on ``v > threshold`` in doubles, snnfast on ``v >= threshold`` in integers:
  potentials start half a unit up (``floor(v_init x threshold) + 0.5``), which makes the two
  rules the same and keeps every potential away from zero;
* every synapse is an explicit connection (SANA-FE's convolution builder has no padding and it
  has no pooling builder), of the synapse kind of its group: ``loihi_conv_synapse``,
  ``loihi_sparse_synapse`` for pooling, ``loihi_dense_synapse``;
* SANA-FE delivers each layer's spikes one step later, the engine's ``delay = 1``, and its
  neurons have one compartment: compare with a run of snnfast's ``"loihi1-sanafe"`` costs on
  the same placement with one compartment per neuron (:meth:`Mapping.recounted`).

Only what SANA-FE models can be compared: leak-free layers without a current register that
reset by subtraction, on one Loihi 1 chip of the 8 x 16 grid with 2 x 2 tiles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._records import Record
from ..errors import ConfigError
from ..layers import DU_NONE
from ..network import Network
from ..settings import RunSettings
from .counting import run_chip
from .energy import estimate_energy
from .geometry import shape3
from .loihi1 import LOIHI1_SANAFE
from .mapper import Mapping

__all__ = ["SANAFE_VERSION", "SanafeComparison", "SanafeRun", "compare", "simulate", "synapses"]

SANAFE_VERSION = "2.2.9"
"""The SANA-FE release the cross-check is written for (its ``arch/loihi.yaml`` constants are
the ``"loihi1-sanafe"`` profile's)."""

_SYNAPSE_HW = {"conv": "loihi_conv_synapse", "pool": "loihi_sparse_synapse",
               "dense": "loihi_dense_synapse"}  # fmt: skip


def _import() -> Any:
    try:
        import sanafe
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            f"the SANA-FE cross-check needs the sanafe package: pip install sanafe=="
            f"{SANAFE_VERSION} (or pip install 'snnfast[sanafe]')"
        ) from exc
    return sanafe


def synapses(net: Network, layer: int, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every synapse of group ``group`` of ``layer``: ``(pre, post, weight)``, the pre- and
    postsynaptic neurons as flat C, H, W indices of their layers (zero padding has none)."""
    geo = net.synapse_groups(layer)[group]
    syn = net.layers[layer - 1].as_spiking_layer().groups[group]
    ci, hi, wi = shape3(geo.source_shape)
    co, ho, wo = shape3(net.shapes[layer])
    c0, c1 = geo.channels
    if geo.kind == "dense":
        w = np.asarray(syn.weight, dtype=np.int64)  # [O, I]
        post, pre = np.meshgrid(np.arange(c0, c1), np.arange(ci * hi * wi), indexing="ij")
        return pre.reshape(-1), post.reshape(-1), w.reshape(-1)
    (kh, kw), (sh, sw), (top, _, left, _) = geo.kernel, geo.stride, geo.padding
    if geo.kind == "pool":
        o, k, yy, xx, dy, dx = np.meshgrid(
            np.arange(c1 - c0), [0], np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw),
            indexing="ij",
        )  # fmt: skip
        src_c = o
        weight = np.full(o.shape, int(syn.weight), dtype=np.int64)
    else:
        w = np.asarray(syn.weight, dtype=np.int64)  # [O, I / groups, KH, KW]
        ipg, opg = ci // geo.groups, (c1 - c0) // geo.groups
        o, k, yy, xx, dy, dx = np.meshgrid(
            np.arange(c1 - c0), np.arange(ipg), np.arange(ho), np.arange(wo), np.arange(kh),
            np.arange(kw), indexing="ij",
        )  # fmt: skip
        src_c = (o // opg) * ipg + k
        weight = w[o, k, dy, dx]
    r, c = yy * sh - top + dy, xx * sw - left + dx
    ok = (r >= 0) & (r < hi) & (c >= 0) & (c < wi)
    pre = (src_c * hi + r) * wi + c
    post = ((o + c0) * ho + yy) * wo + xx
    return pre[ok], post[ok], weight[ok]


@dataclass(frozen=True)
class SanafeRun(Record):
    """What SANA-FE measured, per image.

    Attributes:
        timesteps, timing_model: the run.
        energy_j, synapse_j, soma_j, network_j: dynamic energy per image and its parts.
        sim_time_s: simulated time per image (SANA-FE's ``sim_time``).
        spikes, messages, synaptic_events: per image (``neurons_fired``, ``packets_sent``,
            ``spikes``).
        spike_counts: per image, each layer's spike count per neuron (flat C, H, W).
        build_s, run_s: wall-clock seconds to build the chip and to simulate all images.
    """

    timesteps: int
    timing_model: str
    energy_j: list[float]
    synapse_j: list[float]
    soma_j: list[float]
    network_j: list[float]
    sim_time_s: list[float]
    spikes: list[int]
    messages: list[int]
    synaptic_events: list[int]
    spike_counts: list[list[list[int]]]
    build_s: float
    run_s: float


def _check(mapping: Mapping) -> Network:
    net = mapping.network
    if net is None:
        raise ConfigError("simulate: the mapping has no network")
    c = mapping.chip
    if (mapping.n_chips, c.grid_rows, c.grid_cols, c.tile_rows, c.tile_cols) != (1, 8, 16, 2, 2):
        raise ConfigError(
            "simulate: SANA-FE's Loihi is one chip of 8 x 16 cores in 2 x 2 tiles; the mapping "
            f"uses {mapping.n_chips} chip(s) of {c.grid_rows} x {c.grid_cols} cores"
        )
    for l, layer in enumerate(net.layers, start=1):
        s = layer.as_spiking_layer()
        if s.leak != 0 or s.du != DU_NONE or s.reset != "subtract":
            raise ConfigError(
                f"simulate: layer {l} has leak {s.leak}, du {s.du}, reset {s.reset!r}; the "
                "cross-check covers leak-free layers without a current that reset by subtraction"
            )
    return net


def _core(core: tuple[int, int, int], cores: Sequence[Any]) -> Any:
    _, row, col = core
    tile = 4 * (col // 2) + row // 2
    return cores[4 * tile + 2 * (row % 2) + col % 2]


def simulate(
    mapping: Mapping,
    images: np.ndarray,
    timesteps: int,
    *,
    v_init: float = 0.0,
    timing_models: Sequence[str] = ("detailed",),
) -> list[SanafeRun]:
    """Simulate ``images`` through the mapped network in SANA-FE (see the module docstring),
    once per SANA-FE timing model (``"simple"``: each step lasts as long as its busiest core's
    neuron or message processing; ``"detailed"``, SANA-FE's default: messages are scheduled in
    order through the NoC with its queueing and congestion estimates), on one chip build.

    Raises:
        ImportError: SANA-FE is not installed (the message says how to install it).
        ConfigError: the network or mapping is outside what the cross-check covers.
    """
    sanafe = _import()
    net = _check(mapping)
    imgs = net.check_images(images)
    t0 = time.perf_counter()
    arch = sanafe.load_loihi()
    cores = arch.cores()
    snn = sanafe.Network()
    thresholds = net.thresholds
    groups = []
    for l, lm in enumerate(mapping.layers):
        hw = "loihi_dense_synapse"
        if l:
            hw = _SYNAPSE_HW[net.synapse_groups(l)[0].kind]
        attrs = {"threshold": float(thresholds[l]), "reset_mode": "soft", "leak_decay": 1.0,
                 "input_decay": 0.0}  # fmt: skip
        g = snn.create_neuron_group(
            f"layer{l}", int(np.prod(lm.shape)), model_attributes=attrs,
            soma_hw_name="loihi_lif", default_synapse_hw_name=hw, log_spikes=True,
        )  # fmt: skip
        groups.append(g)
    for l in range(1, net.n_layers + 1):
        for gi, geo in enumerate(net.synapse_groups(l)):
            pre, post, weight = synapses(net, l, gi)
            for a in range(0, len(pre), 1 << 19):
                b = a + (1 << 19)
                pairs = list(zip(pre[a:b].tolist(), post[a:b].tolist()))
                groups[geo.source].connect_neurons_sparse(
                    groups[l], {"w": [float(x) for x in weight[a:b]]}, pairs
                )
    placements = mapping.placements
    biases = []
    for l, (lm, g) in enumerate(zip(mapping.layers, groups)):
        core = lm.core_of.reshape(-1)
        bias = np.zeros(len(core))
        if l:
            lb = net.layers[l - 1].as_spiking_layer().bias
            if lb is not None:
                bias = np.repeat(np.asarray(lb, dtype=np.float64), len(core) // len(lb))
        biases.append(bias)
        for i, n in enumerate(g.neurons):
            n.map_to_core(_core(tuple(placements[int(core[i])]), cores))
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    build = time.perf_counter() - t0
    mapped = chip.mapped_neuron_groups
    runs = []
    for model in timing_models:
        out: dict[str, list[Any]] = {k: [] for k in ("energy", "synapse", "soma", "network",
                                                     "time", "spikes", "messages", "events",
                                                     "counts")}  # fmt: skip
        t1 = time.perf_counter()
        for img in imgs:
            chip.reset()
            biases[0] = img.reshape(-1).astype(np.float64)
            for l, g in enumerate(groups):
                v0 = float(np.floor(v_init * thresholds[l])) + 0.5
                for i, n in enumerate(mapped[g.get_name()]):
                    n.set_attributes(
                        model_attributes={"bias": float(biases[l][i]), "potential": v0}
                    )
            r = chip.sim(timesteps, timing_model=model, spike_trace=True)
            e = r["energy"]
            out["energy"].append(float(e["total"]))
            out["synapse"].append(float(e["synapse"]))
            out["soma"].append(float(e["soma"]))
            out["network"].append(float(e["network"]))
            out["time"].append(float(r["sim_time"]))
            out["spikes"].append(int(r["neurons_fired"]))
            out["messages"].append(int(r["packets_sent"]))
            out["events"].append(int(r["spikes"]))
            out["counts"].append(_spike_counts(r["spike_trace"], mapping))
        runs.append(
            SanafeRun(
                timesteps=timesteps,
                timing_model=model,
                energy_j=out["energy"],
                synapse_j=out["synapse"],
                soma_j=out["soma"],
                network_j=out["network"],
                sim_time_s=out["time"],
                spikes=out["spikes"],
                messages=out["messages"],
                synaptic_events=out["events"],
                spike_counts=out["counts"],
                build_s=build,
                run_s=time.perf_counter() - t1,
            )
        )
    return runs


def _spike_counts(trace: Any, mapping: Mapping) -> list[list[int]]:
    """Per layer, each neuron's spikes in a SANA-FE spike trace (one entry per step, each a
    list of fired neuron addresses ``group.offset``)."""
    counts = [np.zeros(int(np.prod(lm.shape)), dtype=np.int64) for lm in mapping.layers]
    for step in trace:
        for address in step:
            group, offset = _address(address)
            counts[int(group[len("layer") :])][offset] += 1
    return [c.tolist() for c in counts]


def _address(address: Any) -> tuple[str, int]:
    if isinstance(address, str):
        group, offset = address.rsplit(".", 1)
        return group, int(offset)
    return str(address.group_name), int(address.neuron_offset)


@dataclass(frozen=True)
class SanafeComparison(Record):
    """snnfast's estimate beside SANA-FE's measurement, per image and in the mean.

    Attributes:
        timesteps, n_images, timing_model: the runs.
        ours_energy_j, sanafe_energy_j: dynamic energy per image.
        ours_latency_s, sanafe_latency_s: time per image (snnfast: busiest cores + barriers,
            no fixed overhead, which SANA-FE does not model).
        energy_ratio, latency_ratio: mean ours / mean SANA-FE.
        spikes_equal: every layer's spike counts were the same neuron for neuron.
        ours_parts_j, sanafe_parts_j: mean synaptic, update (soma) and network energy.
        sanafe: SANA-FE's run.
    """

    timesteps: int
    n_images: int
    timing_model: str
    ours_energy_j: list[float]
    sanafe_energy_j: list[float]
    ours_latency_s: list[float]
    sanafe_latency_s: list[float]
    energy_ratio: float
    latency_ratio: float
    spikes_equal: bool
    ours_parts_j: list[float]
    sanafe_parts_j: list[float]
    sanafe: SanafeRun


def compare(
    mapping: Mapping,
    images: np.ndarray,
    timesteps: int,
    *,
    timing_models: Sequence[str] = ("simple", "detailed"),
    threads: int | None = None,
) -> list[SanafeComparison]:
    """Run ``images`` counted with the ``"loihi1-sanafe"`` costs on ``mapping`` recounted with
    one compartment per neuron (SANA-FE's neuron), with ``delay = 1``, and simulate the same in
    SANA-FE (one build, each timing model); compare energy and latency per image.

    Raises:
        ImportError: SANA-FE is not installed.
        ConfigError: the network or mapping is outside what the cross-check covers.
    """
    _check(mapping)
    one = mapping.recounted(mapping.chip.replace(soft_reset_compartments=1))
    profile = LOIHI1_SANAFE.replace(resources=one.chip)
    run = run_chip(one, images, RunSettings(timesteps=timesteps, delay=1, threads=threads), profile)
    rep = estimate_energy(run)
    ours_e = rep.dynamic_per_image_j.tolist()
    ours_t = (rep.latency_per_image_s - (profile.costs.fixed_overhead_s or 0.0)).tolist()
    out = []
    for sim in simulate(one, images, timesteps, timing_models=timing_models):
        equal = all(
            np.array_equal(np.asarray(sim.spike_counts[i][l]), c[i].reshape(-1))
            for l, c in enumerate(run.result.spike_counts)
            if c is not None
            for i in range(len(images))
        )
        out.append(
            SanafeComparison(
                timesteps=timesteps,
                n_images=len(images),
                timing_model=sim.timing_model,
                ours_energy_j=ours_e,
                sanafe_energy_j=sim.energy_j,
                ours_latency_s=ours_t,
                sanafe_latency_s=sim.sim_time_s,
                energy_ratio=float(np.mean(ours_e) / np.mean(sim.energy_j)),
                latency_ratio=float(np.mean(ours_t) / np.mean(sim.sim_time_s)),
                spikes_equal=bool(equal),
                ours_parts_j=[
                    float(rep.synaptic_j.mean()),
                    float(rep.update_j.mean()),
                    float(rep.routing_j.mean()),
                ],
                sanafe_parts_j=[
                    float(np.mean(sim.synapse_j)),
                    float(np.mean(sim.soma_j)),
                    float(np.mean(sim.network_j)),
                ],
                sanafe=sim,
            )
        )
    return out
