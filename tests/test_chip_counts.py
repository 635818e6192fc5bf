"""Counted runs: every core's events of every step, from the Rust core's observer, against a
brute-force count in Python (per-step spikes from checkpoint runs, explicit synapse lists,
helpers_chip), on chains and layer graphs, for both delays, with and without the two-compartment
soft reset; the busiest-core time; and that counting changes nothing in the run."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_chip import brute_trace
from test_chip import graph_net, grouped_net

from snnfast import AvgPool2d, Conv2d, Dense, Network
from snnfast.chip import (
    COUNTERS,
    LOIHI1,
    LOIHI1_SANAFE,
    Loihi1,
    map_network,
    run_chip,
    run_chip_checkpoints,
)
from snnfast.errors import ConfigError
from snnfast.settings import RunSettings

SMALL = {"cores_per_chip": 16, "grid_rows": 4, "grid_cols": 4, "max_chips": None}


def chain(rng) -> Network:
    w1 = rng.integers(-20, 60, size=(4, 1, 3, 3)).astype(np.int16)
    w3 = rng.integers(-30, 50, size=(5, 4 * 4 * 4)).astype(np.int16)
    return Network(
        [
            Conv2d(w1, rng.integers(-5, 20, 4).astype(np.int32), 60, padding=0),
            AvgPool2d(2, 40, 60),
            Dense(w3, np.zeros(5, np.int32), 50),
        ],
        (1, 10, 10),
    )


def images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def busiest(trace: np.ndarray, profile) -> np.ndarray:
    """Sum over steps of the busiest core's time (s), from a trace and the profile's times."""
    neuron, message = (np.asarray(x) for x in profile.costs.time_per_counter())
    n = trace @ neuron
    m = trace @ message
    core = np.maximum(n, m) if profile.costs.overlap else n + m
    return core.max(axis=2).sum(axis=1) * 1e-9


@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("reset", [1, 2])
def test_every_step_of_every_core_matches_brute_force(delay, reset):
    rng = np.random.default_rng(10 * delay + reset)
    chip = Loihi1(soft_reset_compartments=reset, max_compartments=40, **SMALL)
    for net in (chain(rng), graph_net(rng), grouped_net(rng)):
        m = map_network(net, chip)
        x = images(rng, 3, net.input_shape)
        for profile in (LOIHI1, LOIHI1_SANAFE):
            run = run_chip(m, x, RunSettings(timesteps=6, delay=delay), profile, trace=True)
            want = brute_trace(net, m, x, 6, delay=delay)
            np.testing.assert_array_equal(run.trace, want)
            np.testing.assert_array_equal(run.trace.sum(axis=1), run.counts)
            np.testing.assert_allclose(run.busy_s, busiest(want, profile), rtol=1e-12)


def test_counting_changes_nothing_and_agrees_with_the_engine():
    rng = np.random.default_rng(3)
    net = graph_net(rng)
    m = map_network(net, Loihi1(max_compartments=40, **SMALL))
    x = images(rng, 4, net.input_shape)
    plain = net.run(x, 9)
    run = run_chip(m, x, RunSettings(timesteps=9, threads=2))
    for a, b in zip(plain.spike_counts, run.result.spike_counts):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(plain.membrane, run.result.membrane):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(plain.synops, run.result.synops)
    # delay 0: the chip's synaptic events are the engine's
    syn = sum(run.counter(k).sum(axis=1) for k in ("synops_conv", "synops_pool", "synops_dense"))
    np.testing.assert_array_equal(syn, plain.synops.sum(axis=1))
    spikes = run.per_layer("spikes")
    np.testing.assert_array_equal(spikes, plain.spikes_per_layer())
    np.testing.assert_array_equal(run.per_layer("active_updates"), 2 * spikes)
    np.testing.assert_array_equal(run.per_layer("synops_reset"), spikes)
    assert (run.counter("messages_out").sum(axis=1) == run.counter("messages_in").sum(axis=1)).all()
    np.testing.assert_array_equal(
        run.counter("compartment_updates").sum(axis=1), 9 * m.usage("compartments").sum()
    )


def test_delay_one_counts_every_spike_the_chip_delivers():
    rng = np.random.default_rng(4)
    net = chain(rng)
    m = map_network(net, Loihi1(soft_reset_compartments=1, max_compartments=40, **SMALL))
    x = images(rng, 2, net.input_shape)
    run = run_chip(m, x, RunSettings(timesteps=7, delay=1))
    last = net.run_checkpoints(x, [6, 7], delay=1)
    # the engine leaves out the last step's spikes; the chip still delivers them
    syn = sum(run.per_layer(k) for k in ("synops_conv", "synops_pool", "synops_dense"))
    undelivered = np.zeros_like(syn)
    for l in range(1, net.n_layers + 1):
        fan = net.fan_out(l - 1).reshape(-1)
        step7 = (last[1].spike_counts[l - 1] - last[0].spike_counts[l - 1]).reshape(2, -1)
        undelivered[:, l] = step7 @ fan
    np.testing.assert_array_equal(syn - undelivered, run.result.synops)


def test_checkpoints_and_early_exit_count_like_separate_runs():
    rng = np.random.default_rng(5)
    net = chain(rng)
    m = map_network(net, Loihi1(max_compartments=40, **SMALL))
    x = images(rng, 5, net.input_shape)
    s = RunSettings(timesteps=12, early_exit=2, threads=2)
    runs = run_chip_checkpoints(m, x, [3, 12, 7], s)
    assert [r.result.timesteps for r in runs] == [3, 7, 12]
    for r in runs:
        alone = run_chip(m, x, s.replace(timesteps=r.result.timesteps, threads=1))
        np.testing.assert_array_equal(r.counts, alone.counts)
        np.testing.assert_array_equal(r.busy_s, alone.busy_s)
        np.testing.assert_array_equal(r.result.steps, alone.result.steps)
    steps = runs[-1].result.steps
    assert steps.min() < 12  # some image exited early: only its steps were counted
    np.testing.assert_array_equal(
        runs[-1].counter("compartment_updates").sum(axis=1), steps * m.usage("compartments").sum()
    )


def test_bad_runs_are_refused():
    rng = np.random.default_rng(6)
    net = chain(rng)
    m = map_network(net, Loihi1(max_compartments=40, **SMALL))
    x = images(rng, 2, net.input_shape)
    with pytest.raises(ConfigError, match="trace"):
        run_chip_checkpoints(m, x, [2, 4], trace=True)
    with pytest.raises(ConfigError, match="RunSettings"):
        run_chip(m, x, 16)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Mapping"):
        run_chip("m", x)  # type: ignore[arg-type]
    other = map_network(chain(np.random.default_rng(7)), Loihi1(max_compartments=40, **SMALL))
    with pytest.raises(ConfigError, match="another network"):
        opts = {"chip": other.native, "neuron_ns": [0.0] * 11, "message_ns": [0.0] * 11}
        net.run_chip(x, [2], {**opts, "overlap": False, "trace": False})
    with pytest.raises(ConfigError, match="unknown chip counter"):
        run_chip(m, x).counter("joules")
    assert len(COUNTERS) == 11 and COUNTERS[0] == "compartment_updates"
