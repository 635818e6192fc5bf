"""Energy and latency estimates: hand-computed cases, linearity in the counts, overrides, and
end-to-end runs of the engine checked against a brute-force per-core count."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_chip import adjacency, core_of

from snnfast import Dense, Network, RunResult
from snnfast.chip import (
    EnergyModel,
    EnergySummary,
    Loihi1,
    estimate_energy,
    estimate_network,
    map_network,
)
from snnfast.errors import ConfigError, ShapeError
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


def synthetic(net: Network, spikes: list[np.ndarray], t: int) -> RunResult:
    """A RunResult whose synaptic events are consistent with ``spikes``."""
    n = spikes[0].shape[0]
    synops = np.zeros((n, len(spikes)), dtype=np.int64)
    for l in range(1, len(spikes)):
        fan = net.fan_out(l - 1).reshape(-1)
        synops[:, l] = (spikes[l - 1].reshape(n, -1).astype(np.int64) * fan).sum(axis=1)
    steps = np.full(n, t, dtype=np.int32)
    updates = steps.astype(np.int64)[:, None] * np.array(net.sizes, dtype=np.int64)
    return RunResult(list(spikes), [None] * len(spikes), synops, updates, steps, t, 0, 0.0)


def random_spikes(net: Network, n: int, high: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, high + 1, size=(n, *s)).astype(np.int32) for s in net.shapes]


# -- hand-computed ------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 16, 128])
def test_one_pixel_one_compartment_by_hand(t):
    net = one_pixel_net()
    res = net.run(white(), t)
    assert res.spike_counts[0].sum() == t and res.spike_counts[1].sum() == 0
    model = EnergyModel()
    rep = estimate_energy(map_network(net, ONE), res, model)
    assert rep.synaptic_j[0] == pytest.approx(t * 23.6 * PJ)
    assert rep.update_j[0] == pytest.approx(t * (81 + 52) * PJ)  # input active, dense idle
    assert rep.routing_j[0] == pytest.approx(t * 1.7 * PJ)  # cores 0 and 1 share a tile
    # Busiest core: the dense core, 3.5 + 5.3 ns per step; barrier of one tile 113 ns.
    step = (3.5 + 5.3 + 113.0) * NS
    assert rep.step_per_image_s[0] == pytest.approx(step)
    assert rep.latency_s == pytest.approx(t * step + model.fixed_overhead_s)
    assert rep.static_energy_j == pytest.approx(0.946 * rep.latency_s)
    assert rep.total_energy_j == pytest.approx(rep.static_energy_j + rep.dynamic_energy_j)
    assert rep.dynamic_power_w == pytest.approx(rep.dynamic_energy_j / rep.latency_s)


def test_one_pixel_two_compartment_soft_reset_by_hand():
    t = 10
    net = one_pixel_net()
    rep = estimate_energy(map_network(net, Loihi1()), net.run(white(), t))
    # Each input spike: one synaptic event into the dense core and one reset event at home.
    assert rep.synaptic_j[0] == pytest.approx(2 * t * 23.6 * PJ)
    assert rep.update_j[0] == pytest.approx((2 * t * 81 + 2 * t * 52) * PJ)
    assert rep.routing_j[0] == pytest.approx(2 * t * 1.7 * PJ)
    # Input core: t reset events + 2t active updates = 20.3 ns/step; dense core 3.5 + 10.6.
    assert rep.step_per_image_s[0] == pytest.approx((3.5 + 2 * 8.4 + 113.0) * NS)
    assert rep.layer_synops.tolist() == [t, t]
    assert rep.layer_messages.tolist() == [2 * t, 0]


def test_tile_hops_add_routing_energy():
    t = 8
    net = one_pixel_net()
    own_tiles = Loihi1(soft_reset_compartments=1, tile_rows=1, tile_cols=1)
    rep = estimate_energy(map_network(net, own_tiles), net.run(white(), t))
    assert rep.routing_j[0] == pytest.approx(t * (1.7 + 3.0) * PJ)  # one hop east
    # Barrier for 2 tiles interpolates between 113 ns (1 tile) and 465 ns (32 tiles).
    model = EnergyModel()
    assert model.barrier_ns(2) == pytest.approx(113 + (465 - 113) / 31)
    assert model.barrier_ns(1) == 113 and model.barrier_ns(100) == 465


# -- linearity, overrides -------------------------------------------------------------------


def test_energy_is_linear_in_the_counts():
    net = table1_network("4-8-10")
    m = map_network(net)
    t = 16
    s = random_spikes(net, 3, t // 2)
    r0 = estimate_energy(m, synthetic(net, [np.zeros_like(x) for x in s], t))
    r1 = estimate_energy(m, synthetic(net, s, t))
    r2 = estimate_energy(m, synthetic(net, [2 * x for x in s], t))
    assert r1.synaptic_j.min() > 0
    np.testing.assert_allclose(r2.synaptic_j, 2 * r1.synaptic_j, rtol=1e-12)
    np.testing.assert_allclose(r2.routing_j, 2 * r1.routing_j, rtol=1e-12)
    np.testing.assert_allclose(r2.layer_synops, 2 * r1.layer_synops, rtol=1e-12)
    # Updates are affine: every compartment every step, active ones cost more.
    np.testing.assert_allclose(r2.update_j - r1.update_j, r1.update_j - r0.update_j, rtol=1e-9)
    assert r0.synaptic_j.max() == 0 and r0.routing_j.max() == 0
    assert r0.update_j[0] == pytest.approx(m.usage("compartments").sum() * t * 52 * PJ)


def test_overriding_a_constant_changes_only_its_part():
    net = table1_network("4-8-10")
    m = map_network(net)
    res = synthetic(net, random_spikes(net, 2, 8, seed=1), 16)
    base = estimate_energy(m, res)
    dbl = estimate_energy(m, res, EnergyModel(e_synop_pj=2 * 23.6))
    np.testing.assert_allclose(dbl.synaptic_j, 2 * base.synaptic_j)
    np.testing.assert_allclose(dbl.update_j, base.update_j)
    np.testing.assert_allclose(dbl.routing_j, base.routing_j)
    no_fixed = estimate_energy(m, res, EnergyModel(fixed_overhead_s=0.0))
    np.testing.assert_allclose(
        base.latency_per_image_s - no_fixed.latency_per_image_s, EnergyModel().fixed_overhead_s
    )
    hot = estimate_energy(m, res, EnergyModel(static_power_w=2.0))
    assert hot.static_energy_j == pytest.approx(2.0 / 0.946 * base.static_energy_j)
    slow = estimate_energy(m, res, EnergyModel(t_synop_ns=7.0))
    assert slow.latency_s > base.latency_s


@pytest.mark.parametrize(
    "kwargs",
    [
        {"e_synop_pj": -1.0},
        {"t_synop_ns": float("nan")},
        {"static_power_w": "1"},
        {"barrier_max_tiles": 0},
    ],
)
def test_bad_energy_model_raises(kwargs):
    with pytest.raises(ConfigError):
        EnergyModel(**kwargs)


def test_calibration_reproduces_the_paper_runtimes():
    # fixed + T x step reproduces both measured runtimes when step is the paper's own.
    model = EnergyModel()
    step = (PAPER_LOIHI[128].latency_s - PAPER_LOIHI[16].latency_s) / 112
    for t, p in PAPER_LOIHI.items():
        assert model.fixed_overhead_s + t * step == pytest.approx(p.latency_s)
    assert model.fixed_overhead_s == pytest.approx(1.70e-3, abs=0.01e-3)
    # the library's sourced copy of the calibration is the paper's Loihi rows, exactly
    assert model.static_power_w == PAPER_LOIHI[16].static_power_w
    assert model.fixed_overhead_s == PAPER_LOIHI[16].latency_s - 16 * step


# -- end to end ---------------------------------------------------------------------------


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, 28, 28)).astype(np.uint8)


def test_end_to_end_counts_are_exact_per_core():
    net = table1_network("4-8-10", w_max=40)
    chip = Loihi1(max_compartments=256)  # several cores per layer
    m = map_network(net, chip)
    res = net.run(_images(3), 12)
    rep = estimate_energy(m, res)
    spikes = [sc.reshape(sc.shape[0], -1).astype(np.float64) for sc in res.spike_counts]
    # Brute force: per-core synaptic events from an explicit synapse matrix, plus one reset
    # event per spike of the core's own neurons.
    want = np.zeros((res.n_images, m.n_cores))
    for lm in m.layers:
        core = core_of(lm) + lm.first_core
        for k in np.unique(core):
            want[:, k] += spikes[lm.index][:, core == k].sum(axis=1)
            if lm.index:
                a = adjacency(net, lm.index)
                want[:, k] += spikes[lm.index - 1] @ a[:, core == k].sum(axis=1)
    np.testing.assert_allclose(rep.core_synops, want.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rep.layer_spikes, [s.sum(axis=1).mean() for s in spikes], rtol=1e-12)
    assert rep.layer_synops.sum() == pytest.approx(
        res.synops.sum(axis=1).mean() + sum(s.sum(axis=1).mean() for s in spikes)
    )
    assert rep.core_energy_j.sum() == pytest.approx(rep.dynamic_energy_j)
    assert rep.layer_energy_j.sum() == pytest.approx(rep.dynamic_energy_j)
    assert rep.core_busy_s.max() * 1e9 + EnergyModel().barrier_ns(m.n_cores) >= 0
    text = rep.report()
    assert "latency per image" in text and "dynamic energy" in text


def test_latency_and_energy_grow_with_timesteps():
    net = table1_network("4-8-10", w_max=40)
    m = map_network(net)
    imgs = _images(2, seed=3)
    short = estimate_energy(m, net.run(imgs, 8))
    long = estimate_energy(m, net.run(imgs, 32))
    assert long.latency_s > short.latency_s > EnergyModel().fixed_overhead_s
    assert long.dynamic_energy_j > short.dynamic_energy_j
    assert long.total_energy_j > short.total_energy_j
    assert long.latency_per_image_s.shape == (2,)


def test_delay_one_keeps_the_engines_exact_totals():
    net = table1_network("4-8-10", w_max=40)
    m = map_network(net, ONE)
    res = net.run(_images(2), 10, delay=1)
    rep = estimate_energy(m, res)
    np.testing.assert_allclose(rep.layer_synops, res.synops.mean(axis=0), rtol=1e-12)


def test_estimate_network_and_paper_table():
    net = table1_network("4-8-10", w_max=40)
    mapping, rep = estimate_network(net, _images(2), RunSettings(timesteps=16, threads=1))
    again = estimate_energy(mapping, net.run(_images(2), 16, threads=1))
    assert rep.total_energy_j == pytest.approx(again.total_energy_j)
    table = compare_with_paper([rep])
    assert "2.9840" in table and "dynamic energy" in table
    assert compare_with_paper([rep.summary()]) == table  # the record gives the same table
    _, rep7 = estimate_network(net, _images(1), RunSettings(timesteps=7))
    with pytest.raises(ConfigError, match="paper measured"):
        compare_with_paper([rep7])
    # the run's settings all reach the engine
    s = RunSettings(timesteps=12, delay=1, v_init=0.5, early_exit=2, threads=1)
    _, rep_s = estimate_network(net, _images(2), s)
    want = estimate_energy(
        mapping, net.run(_images(2), 12, delay=1, v_init=0.5, early_exit=2, threads=1)
    )
    np.testing.assert_array_equal(rep_s.steps_per_image, want.steps_per_image)
    assert rep_s.total_energy_j == want.total_energy_j
    with pytest.raises(ConfigError, match="RunSettings"):
        estimate_network(net, _images(1), 16)  # type: ignore[arg-type]
    summary = rep.summary()
    assert summary.total_energy_j == rep.total_energy_j and summary.timesteps == 16
    assert summary.mean_steps == 16 and summary.n_cores == mapping.n_cores
    assert EnergySummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary


def test_mismatched_runs_are_rejected():
    net = table1_network("4-8-10", w_max=40)
    m = map_network(net)
    res = net.run(_images(1), 4, record=[0, 1])
    with pytest.raises(ConfigError, match="record"):
        estimate_energy(m, res)
    other = map_network(one_pixel_net())
    with pytest.raises(ShapeError):
        estimate_energy(other, net.run(_images(1), 4))
    good = synthetic(net, random_spikes(net, 1, 3), 4)
    bad = RunResult(
        good.spike_counts,
        good.membrane,
        good.synops + 1,
        good.neuron_updates,
        good.steps,
        4,
        0,
        0.0,
    )
    with pytest.raises(ConfigError, match="not from the mapped network"):
        estimate_energy(m, bad)
    with pytest.raises(ConfigError):
        estimate_energy(m, good, model="fast")  # type: ignore[arg-type]


def test_early_exit_counts_only_the_steps_run():
    # One pixel feeding two dense neurons; neuron 0 fires every step, so the decision is
    # stable and the run stops after 3 steps.
    weight = np.array([[255], [0]], dtype=np.int16)
    net = Network([Dense(weight, np.zeros(2, np.int32), 255)], (1, 1, 1))
    res = net.run(white(2), 50, early_exit=3)
    steps = res.steps.astype(float)
    assert steps.max() < 50
    rep = estimate_energy(map_network(net, ONE), res)
    np.testing.assert_array_equal(rep.steps_per_image, steps)
    np.testing.assert_allclose(rep.update_j, steps * (81 + 81 + 52) * PJ)
    # Busiest core: the dense one, 2 synaptic events + 1 active + 1 idle update per step.
    step_ns = 2 * 3.5 + 8.4 + 5.3 + 113.0
    np.testing.assert_allclose(
        rep.latency_per_image_s, steps * step_ns * NS + EnergyModel().fixed_overhead_s
    )
