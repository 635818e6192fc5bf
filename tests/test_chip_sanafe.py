"""The chip model against SANA-FE itself (the optional ``sanafe`` package, pinned in
scripts/setup.sh): the same small network, placement and input simulated by both, with the same
constants; energy, simulated time and every neuron's spikes must agree. The shipped network's
comparison is benches/chip_crosscheck.py (its report: notes/chip-crosscheck.md)."""

from __future__ import annotations

import numpy as np
import pytest

from snnfast import AvgPool2d, Conv2d, Dense, Network
from snnfast.chip import Loihi1, map_network
from snnfast.chip.sanafe import SANAFE_VERSION, compare, synapses
from snnfast.errors import ConfigError

sanafe = pytest.importorskip("sanafe")


def small_net(rng) -> Network:
    return Network(
        [
            Conv2d(rng.integers(-30, 60, (4, 1, 3, 3)).astype(np.int16),
                   rng.integers(-5, 10, 4).astype(np.int32), 60, padding=1),
            AvgPool2d(2, 40, 60),
            Dense(rng.integers(-20, 40, (5, 4 * 5 * 5)).astype(np.int16),
                  np.zeros(5, np.int32), 50),
        ],
        (1, 10, 10),
    )  # fmt: skip


def test_the_pinned_sanafe_is_installed():
    from importlib.metadata import version

    assert version("sanafe") == SANAFE_VERSION


@pytest.mark.parametrize("reset", [1, 2])
def test_energy_time_and_spikes_agree_with_sanafe(reset):
    rng = np.random.default_rng(3)
    net = small_net(rng)
    m = map_network(net, Loihi1(soft_reset_compartments=reset, max_compartments=64))
    assert m.n_cores > 4  # several cores per layer, messages between tiles
    x = rng.integers(0, 256, (3, 1, 10, 10)).astype(np.uint8)
    c, d = compare(m, x, 8, threads=1)
    assert (c.timing_model, d.timing_model) == ("simple", "detailed")
    assert c.spikes_equal
    np.testing.assert_allclose(c.ours_energy_j, c.sanafe_energy_j, rtol=1e-9)
    np.testing.assert_allclose(c.ours_parts_j, c.sanafe_parts_j, rtol=1e-9)
    np.testing.assert_allclose(c.ours_latency_s, c.sanafe_latency_s, rtol=1e-9)
    assert sum(c.sanafe.spikes) > 0 and sum(c.sanafe.messages) > 0
    # SANA-FE's default scheduler adds NoC queueing and congestion to the same work: never
    # faster than the analytical model snnfast reproduces
    assert d.energy_ratio == pytest.approx(1.0, rel=1e-9)
    assert all(o <= s * (1 + 1e-9) for o, s in zip(d.ours_latency_s, d.sanafe_latency_s))


def test_explicit_synapses_are_the_engines_synapses():
    rng = np.random.default_rng(4)
    net = small_net(rng)
    for l in range(1, net.n_layers + 1):
        pre, post, w = synapses(net, l, 0)
        assert len(pre) == net.synapse_counts()[l]
        fan = np.bincount(pre, minlength=net.sizes[l - 1])
        np.testing.assert_array_equal(fan, net.group_fan_out(l, 0).reshape(-1))
        assert len(post) == len(w)


def test_what_sanafe_cannot_model_is_refused():
    rng = np.random.default_rng(5)
    w = rng.integers(-30, 60, (4, 1, 3, 3)).astype(np.int16)
    leaky = Network([Conv2d(w, np.zeros(4, np.int32), 60, leak=100)], (1, 6, 6))
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    with pytest.raises(ConfigError, match="leak"):
        compare(map_network(leaky), x, 2)
    tiny = Loihi1(cores_per_chip=4, grid_rows=2, grid_cols=2, tile_rows=1, tile_cols=1)
    with pytest.raises(ConfigError, match="8 x 16"):
        x10 = rng.integers(0, 256, (1, 1, 10, 10)).astype(np.uint8)
        compare(map_network(small_net(rng), tiny.replace(max_chips=None)), x10, 2)
