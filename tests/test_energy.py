"""Energy and latency from counted runs: hand-computed cases for each profile, linearity in the
counts, overrides, the barrier, early exit, Loihi 2's unknown costs, and the NeuroBench metrics
against brute force."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from helpers_chip import group_synapses
from test_chip import graph_net

from snnfast import Conv2d, Dense, Network
from snnfast.chip import (
    LOIHI1,
    LOIHI1_SANAFE,
    LOIHI2,
    EnergySummary,
    Loihi1,
    Loihi1Costs,
    NeuroBenchMetrics,
    estimate_energy,
    estimate_network,
    map_network,
    run_chip,
)
from snnfast.chip.metrics import nonzero_fan_out, parameter_count
from snnfast.errors import ConfigError
from snnfast.paper.hardware import compare_with_paper
from snnfast.paper.published import PAPER_LOIHI
from snnfast.paper.table1 import table1_network
from snnfast.settings import RunSettings

ONE = Loihi1(soft_reset_compartments=1)
PJ = 1e-12
NS = 1e-9


def one_pixel_net() -> Network:
    """A pixel feeding one dense neuron that never fires."""
    return Network([Dense(np.ones((1, 1), np.int16), np.zeros(1, np.int32), 2**23 - 1)], (1, 1, 1))


def white(n: int = 1) -> np.ndarray:
    return np.full((n, 1, 1, 1), 255, dtype=np.uint8)


def estimate(net, chip, t, profile=LOIHI1, images=None, **kw):
    m = map_network(net, profile.replace(resources=chip))
    return estimate_energy(run_chip(m, white() if images is None else images,
                                    RunSettings(timesteps=t, **kw)))  # fmt: skip


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, 28, 28)).astype(np.uint8)


# -- hand-computed ------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 16, 128])
def test_one_pixel_one_compartment_by_hand(t):
    rep = estimate(one_pixel_net(), ONE, t)
    assert rep.synaptic_j[0] == pytest.approx(t * 23.6 * PJ)
    assert rep.update_j[0] == pytest.approx(t * (81 + 52) * PJ)  # input active, dense idle
    assert rep.routing_j[0] == pytest.approx(t * 1.7 * PJ)  # cores 0 and 1 share a tile
    # Busiest core: the dense one, 5.3 (its update) + 3.5 (the synaptic event) ns per step,
    # above the input core's 8.4; barrier of one tile 113 ns.
    step = (3.5 + 5.3 + 113.0) * NS
    assert rep.step_per_image_s[0] == pytest.approx(step)
    fixed = LOIHI1.costs.fixed_overhead_s
    assert rep.latency_s == pytest.approx(t * step + fixed)
    assert rep.static_energy_j == pytest.approx(0.946 * rep.latency_s)
    assert rep.total_energy_j == pytest.approx(rep.static_energy_j + rep.dynamic_energy_j)
    assert rep.dynamic_power_w == pytest.approx(rep.dynamic_energy_j / rep.latency_s)


def test_one_pixel_two_compartment_soft_reset_by_hand():
    t = 10
    rep = estimate(one_pixel_net(), Loihi1(), t)
    # Each input spike: one synaptic event into the dense core and one reset event at home.
    assert rep.synaptic_j[0] == pytest.approx(2 * t * 23.6 * PJ)
    assert rep.update_j[0] == pytest.approx((2 * t * 81 + 2 * t * 52) * PJ)
    assert rep.routing_j[0] == pytest.approx(2 * t * 1.7 * PJ)
    # Input core: 2 active updates (16.8 ns) + its reset event (3.5 ns); dense core 10.6 + 3.5.
    assert rep.step_per_image_s[0] == pytest.approx((3.5 + 2 * 8.4 + 113.0) * NS)
    assert rep.layer_synops.tolist() == [t, t]
    assert rep.layer_messages.tolist() == [2 * t, 0]


def test_one_pixel_on_sanafe_costs_by_hand():
    t = 8
    rep = estimate(one_pixel_net(), ONE, t, LOIHI1_SANAFE)
    # input: access + update 72.8, spike 69.3, message out 111; dense: 72.8, dense synapse 35.5
    assert rep.update_j[0] == pytest.approx(t * (72.8 + 69.3 + 72.8) * PJ)
    assert rep.synaptic_j[0] == pytest.approx(t * 35.5 * PJ)
    assert rep.routing_j[0] == pytest.approx(t * 111.0 * PJ)
    # The two sides of a core overlap: input core 9.7 + 30 + 5.1 ns; dense core max(9.7, 16 +
    # 3.8); the barrier of one tile in use is SANA-FE's 0.6 us.
    assert rep.step_per_image_s[0] == pytest.approx((9.7 + 30 + 5.1 + 600.0) * NS)


def test_tile_hops_add_routing_energy():
    t = 8
    own_tiles = Loihi1(soft_reset_compartments=1, tile_rows=1, tile_cols=1)
    rep = estimate(one_pixel_net(), own_tiles, t)
    assert rep.routing_j[0] == pytest.approx(t * (1.7 + 3.0) * PJ)  # one hop east
    assert rep.n_tiles == 2
    assert rep.barrier_s == pytest.approx((113 + (465 - 113) / 31) * NS)


def test_early_exit_counts_only_the_steps_run():
    # One pixel feeding two dense neurons; neuron 0 fires every step, so the decision is
    # stable and the run stops after 3 steps.
    weight = np.array([[255], [0]], dtype=np.int16)
    net = Network([Dense(weight, np.zeros(2, np.int32), 255)], (1, 1, 1))
    rep = estimate(net, ONE, 50, images=white(2), early_exit=3)
    steps = rep.steps_per_image
    assert steps.max() < 50
    np.testing.assert_allclose(rep.update_j, steps * (81 + 81 + 52) * PJ)
    # Busiest core: the dense one, 2 synaptic events + 1 active + 1 idle update per step.
    step_ns = 2 * 3.5 + 8.4 + 5.3 + 113.0
    np.testing.assert_allclose(
        rep.latency_per_image_s, steps * step_ns * NS + LOIHI1.costs.fixed_overhead_s
    )


# -- linearity, overrides -------------------------------------------------------------------


def test_energy_is_linear_in_the_counts():
    net = table1_network("4-8-10", w_max=40)
    m = map_network(net)
    run = run_chip(m, _images(3), RunSettings(timesteps=16))
    r1 = estimate_energy(run)
    r2 = estimate_energy(dataclasses.replace(run, counts=2 * run.counts))
    r0 = estimate_energy(dataclasses.replace(run, counts=0 * run.counts))
    assert r1.synaptic_j.min() > 0
    for part in ("synaptic_j", "update_j", "routing_j", "layer_synops", "core_energy_j"):
        np.testing.assert_allclose(getattr(r2, part), 2 * getattr(r1, part), rtol=1e-12)
    assert r0.dynamic_energy_j == 0
    # compartment updates: every compartment every step at the inactive cost, plus the active
    # ones' difference
    comp = run.counter("compartment_updates").sum(axis=1)
    active = run.counter("active_updates").sum(axis=1)
    spikes_pj = (81 - 52) * active + 52 * comp
    np.testing.assert_allclose(r1.update_j, spikes_pj * PJ, rtol=1e-12)


def test_overriding_a_constant_changes_only_its_part():
    net = table1_network("4-8-10", w_max=40)
    x = _images(2, 1)
    s = RunSettings(timesteps=16)
    _, base = estimate_network(net, x, s)
    _, dbl = estimate_network(net, x, s, model=Loihi1Costs(e_synop_conv_pj=2 * 23.6))
    m = map_network(net)
    conv = run_chip(m, x, s).counter("synops_conv").sum(axis=1)
    np.testing.assert_allclose(dbl.synaptic_j - base.synaptic_j, conv * 23.6 * PJ)
    np.testing.assert_allclose(dbl.update_j, base.update_j)
    np.testing.assert_allclose(dbl.routing_j, base.routing_j)
    _, no_fixed = estimate_network(net, x, s, model=Loihi1Costs(fixed_overhead_s=0.0))
    np.testing.assert_allclose(
        base.latency_per_image_s - no_fixed.latency_per_image_s, LOIHI1.costs.fixed_overhead_s
    )
    _, hot = estimate_network(net, x, s, model=Loihi1Costs(static_power_w=2.0))
    assert hot.static_energy_j == pytest.approx(2.0 / 0.946 * base.static_energy_j)
    _, slow = estimate_network(net, x, s, model=Loihi1Costs(t_synop_conv_ns=7.0))
    assert slow.latency_s > base.latency_s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"e_synop_conv_pj": -1.0},
        {"t_synop_conv_ns": float("nan")},
        {"static_power_w": "1"},
        {"barrier_rule": "cubic"},
        {"barrier_tiles": (2, 1), "barrier_ns": (1.0, 2.0)},
        {"barrier_tiles": (1,), "barrier_ns": None},
        {"t_update_active_ns": 1.0},
    ],
)
def test_bad_cost_models_raise(kwargs):
    with pytest.raises(ConfigError):
        Loihi1Costs(**kwargs)


def test_calibration_reproduces_the_paper_runtimes():
    # fixed + T x step reproduces both measured runtimes when step is the paper's own.
    for costs in (LOIHI1.costs, LOIHI1_SANAFE.costs):
        step = (PAPER_LOIHI[128].latency_s - PAPER_LOIHI[16].latency_s) / 112
        for t, p in PAPER_LOIHI.items():
            assert costs.fixed_overhead_s + t * step == pytest.approx(p.latency_s)
        assert costs.fixed_overhead_s == pytest.approx(1.70e-3, abs=0.01e-3)
        # the library's sourced copy of the calibration is the paper's Loihi rows, exactly
        assert costs.static_power_w == PAPER_LOIHI[16].static_power_w
        assert costs.fixed_overhead_s == PAPER_LOIHI[16].latency_s - 16 * step


# -- whole networks ---------------------------------------------------------------------


def test_latency_is_the_busiest_core_of_each_step_plus_the_barrier():
    net = table1_network("4-8-10", w_max=40)
    m = map_network(net, Loihi1(max_compartments=256))
    run = run_chip(m, _images(3), RunSettings(timesteps=12), trace=True)
    rep = estimate_energy(run)
    neuron, message = (np.asarray(v) for v in LOIHI1.costs.time_per_counter())
    per_core = run.trace @ neuron + run.trace @ message  # Davies: the two sides in sequence
    busiest = per_core.max(axis=2)  # [N, T]
    barrier = LOIHI1.costs.barrier(m.n_tiles)
    want = (busiest + barrier).sum(axis=1) * NS + LOIHI1.costs.fixed_overhead_s
    np.testing.assert_allclose(rep.latency_per_image_s, want, rtol=1e-12)
    # the busiest core changes from step to step: a per-run average would be lower
    avg = run.counts @ neuron + run.counts @ message
    assert (avg.max(axis=1) < busiest.sum(axis=1)).all()
    assert rep.core_energy_j.sum() == pytest.approx(rep.dynamic_energy_j)
    assert rep.layer_energy_j.sum() == pytest.approx(rep.dynamic_energy_j)
    text = rep.report()
    assert "latency per image" in text and "NeuroBench" in text and "sparsity" in text


def test_latency_and_energy_grow_with_timesteps():
    net = table1_network("4-8-10", w_max=40)
    x = _images(2, seed=3)
    _, short = estimate_network(net, x, RunSettings(timesteps=8))
    _, long = estimate_network(net, x, RunSettings(timesteps=32))
    assert long.latency_s > short.latency_s > LOIHI1.costs.fixed_overhead_s
    assert long.dynamic_energy_j > short.dynamic_energy_j
    assert long.total_energy_j > short.total_energy_j
    assert long.latency_per_image_s.shape == (2,)


def test_loihi2_reports_its_counts_and_leaves_energy_and_latency_unknown():
    net = table1_network("4-8-10", w_max=40)
    m, rep = estimate_network(net, _images(2), RunSettings(timesteps=8), LOIHI2)
    assert m.chip.name == "Loihi 2"
    assert math.isnan(rep.dynamic_energy_j) and math.isnan(rep.latency_s)
    assert "e_synop_conv_pj" in rep.unknown and "static_power_w" in rep.unknown
    assert rep.neurobench.synaptic_operations > 0
    s = rep.summary()
    doc = json.loads(json.dumps(s.to_json()))
    assert doc["latency_s"] is None and doc["profile"] == "loihi2" and doc["unknown"]
    assert "unknown" in rep.report()
    back = EnergySummary.from_json(doc)
    assert math.isnan(back.latency_s) and back.neurobench == s.neurobench


def test_estimate_network_and_paper_table():
    net = table1_network("4-8-10", w_max=40)
    mapping, rep = estimate_network(net, _images(2), RunSettings(timesteps=16, threads=1))
    again = estimate_energy(run_chip(mapping, _images(2), RunSettings(timesteps=16, threads=1)))
    assert rep.total_energy_j == pytest.approx(again.total_energy_j)
    table = compare_with_paper([rep])
    assert "2.9840" in table and "dynamic energy" in table
    assert compare_with_paper([rep.summary()]) == table  # the record gives the same table
    _, rep7 = estimate_network(net, _images(1), RunSettings(timesteps=7))
    with pytest.raises(ConfigError, match="paper measured"):
        compare_with_paper([rep7])
    with pytest.raises(ConfigError, match="RunSettings"):
        estimate_network(net, _images(1), 16)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="CostModel"):
        estimate_network(net, _images(1), model="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ChipRun"):
        estimate_energy(mapping)  # type: ignore[arg-type]
    summary = rep.summary()
    assert summary.total_energy_j == rep.total_energy_j and summary.timesteps == 16
    assert summary.mean_steps == 16 and summary.n_cores == mapping.n_cores
    assert summary.step_s == pytest.approx(rep.step_s)
    assert EnergySummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary
    # a summary written before the profiles existed still loads
    old = {k: v for k, v in summary.to_json().items()
           if k not in ("profile", "step_s", "unknown", "neurobench")}  # fmt: skip
    assert EnergySummary.from_json(old).profile == "loihi1"


# -- NeuroBench metrics -----------------------------------------------------------------


def test_neurobench_metrics_against_brute_force():
    rng = np.random.default_rng(11)
    net = graph_net(rng)
    # zero some weights, so that effective ACs fall below the synaptic operations
    layers = list(net.layers)
    conv = layers[0]
    w = np.array(conv.weight)
    w[:, :, 0, :] = 0
    layers[0] = Conv2d(w, conv.bias, conv.threshold, padding=1)
    net = Network(layers, net.input_shape)
    m = map_network(net, Loihi1(max_compartments=40, cores_per_chip=16, grid_rows=4,
                                grid_cols=4, max_chips=None))  # fmt: skip
    x = rng.integers(0, 256, size=(3, 2, 9, 9), dtype=np.uint8)
    t = 10
    run = run_chip(m, x, RunSettings(timesteps=t))
    nb = estimate_energy(run).neurobench
    res = run.result
    assert nb.synaptic_operations == pytest.approx(res.synops.sum(axis=1).mean())
    eff = np.zeros(len(x))
    for l in range(1, net.n_layers + 1):
        spiking = net.layers[l - 1].as_spiking_layer()
        for g, ((src, kind, pre, post), syn) in enumerate(
            zip(group_synapses(net, l), spiking.groups)
        ):
            counts = res.spike_counts[src].reshape(len(x), -1)
            if kind == "pool":
                weights = np.full(len(pre), syn.weight)
            elif kind == "dense":
                weights = np.asarray(syn.weight)[post - syn.channel_offset, pre]
            else:
                wt = np.asarray(syn.weight)
                co, ho, wo = net.shapes[l]
                ipg = net.shapes[src][0] // net.synapse_groups(l)[g].groups
                o, rem = np.divmod(post, ho * wo)
                y, xx = np.divmod(rem, wo)
                ci, rem2 = np.divmod(pre, net.shapes[src][1] * net.shapes[src][2])
                r, c = np.divmod(rem2, net.shapes[src][2])
                (top, _, left, _), (sh, sw) = (net.synapse_groups(l)[g].padding,
                                               net.synapse_groups(l)[g].stride)  # fmt: skip
                weights = wt[o - syn.channel_offset, ci % ipg, r - y * sh + top, c - xx * sw + left]
            nz = np.bincount(pre[weights != 0], minlength=counts.shape[1])
            np.testing.assert_array_equal(
                nonzero_fan_out(net, l, g).reshape(-1), nz, err_msg=f"{l} {g}"
            )
            eff += counts @ nz
    assert nb.effective_acs == pytest.approx(eff.mean())
    assert nb.effective_acs < nb.synaptic_operations
    assert nb.dense_synops == sum(net.synapse_counts()) * t
    spikes = np.stack([s.reshape(len(x), -1).sum(axis=1) for s in res.spike_counts], 1)
    sizes = np.array(net.sizes)
    np.testing.assert_allclose(
        nb.activation_sparsity_by_layer, 1 - spikes.mean(axis=0) / (sizes * t), rtol=1e-12
    )
    assert nb.activation_sparsity == pytest.approx(
        1 - spikes[:, 1:].sum(axis=1).mean() / (sizes[1:].sum() * t)
    )
    assert nb.membrane_updates == sizes.sum() * t
    params, size = parameter_count(net)
    assert nb.parameter_count == params and nb.footprint_bytes == size
    assert nb.chip_footprint_bytes == m.usage("synapse_bits").sum() // 8
    assert NeuroBenchMetrics.from_json(json.loads(json.dumps(nb.to_json()))) == nb


def test_parameter_count_of_the_shipped_shape():
    net = table1_network("32-64-10")
    params, size = parameter_count(net)
    # conv 32x1x5x5 + 32, pool 1, conv 64x32x5x5 + 64, pool 1, dense 10x1024 + 10
    want = 800 + 32 + 1 + 51200 + 64 + 1 + 10240 + 10
    assert params == want and size == 2 * (800 + 1 + 51200 + 1 + 10240) + 4 * (32 + 64 + 10)
