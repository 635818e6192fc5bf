"""The neuron's reset modes and Loihi's CUBA current (docs/neuron.md), worked by hand, and the
defaults that keep every earlier result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_engine import KERNELS, forced_kernels, small_cnn

import snnfast
from reference import simulate
from snnfast.errors import ConfigError


def one_neuron(weight: int, threshold: int, **neuron) -> snnfast.Network:
    """An input pixel that spikes every step (255) feeding one dense neuron."""
    layer = snnfast.Dense(np.array([[weight]]), np.array([0]), threshold, **neuron)
    return snnfast.Network([layer], input_shape=(1, 1, 1), input_threshold=255)


def trace(net: snnfast.Network, steps: int) -> list[tuple[int, int]]:
    """(membrane, spike count) of the neuron after 1, 2, ... steps."""
    out = []
    for r in net.run_checkpoints(np.full((1, 1, 1, 1), 255, np.uint8), list(range(1, steps + 1))):
        out.append((int(r.membrane[1][0, 0]), int(r.spike_counts[1][0, 0])))
    return out


def test_current_decays_and_feeds_the_potential():
    # du = 2048 removes half of u each step, the removed part rounded toward zero:
    # u = 100, 150, 175, 175 - 87 + 100 = 188, 188 - 94 + 100 = 194;
    # v integrates u (threshold far away): 100, 250, 425, 613, 807.
    net = one_neuron(100, 10**6, du=2048)
    assert [v for v, _ in trace(net, 5)] == [100, 250, 425, 613, 807]
    # du = 0 keeps all of u: u = 100 t, v = 100 t (t + 1) / 2.
    net = one_neuron(100, 10**6, du=0)
    assert [v for v, _ in trace(net, 4)] == [100, 300, 600, 1000]
    # du = 4096 (default): no current memory, the plain integrator.
    assert [v for v, _ in trace(one_neuron(100, 10**6), 4)] == [100, 200, 300, 400]


def test_negative_currents_decay_toward_zero():
    net = one_neuron(-3, 10**6, du=2048)  # u = -3, -3 + 2 = ... |u|·du >> 12 truncates
    # u: -3, -(3 - 1) - 3 = -5, -(5 - 2) - 3 = -6, -(6 - 3) - 3 = -6; v sums them.
    assert [v for v, _ in trace(net, 4)] == [-3, -8, -14, -20]


def test_reset_to_zero_forgets_the_excess():
    # Input 70 per step, threshold 100: subtract keeps the excess, zero forgets it.
    sub = trace(one_neuron(70, 100), 4)
    zero = trace(one_neuron(70, 100, reset="zero"), 4)
    assert sub == [(70, 0), (40, 1), (10, 2), (80, 2)]
    assert zero == [(70, 0), (0, 1), (70, 1), (0, 2)]


def test_reset_to_zero_keeps_the_current():
    # Lava's LIF resets v only: the current carries on after a spike.
    net = one_neuron(60, 100, du=2048, reset="zero")
    # u = 60, 90, 105, 112; v = 60, 150 -> spike -> 0, 105 -> spike -> 0, 112 -> spike -> 0.
    assert trace(net, 4) == [(60, 0), (0, 1), (0, 2), (0, 3)]


@pytest.mark.parametrize("kernels", KERNELS)
def test_explicit_defaults_change_nothing(kernels):
    net = small_cnn(11)
    explicit = snnfast.Network(
        [dataclasses.replace(layer, reset="subtract", du=4096) for layer in net.layers],
        net.input_shape,
    )
    images = np.random.default_rng(12).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    with forced_kernels(kernels):
        a, b = (
            net.run(images, 20, delay=1, v_init=0.5),
            explicit.run(images, 20, delay=1, v_init=0.5),
        )
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(a.membrane[l], b.membrane[l])
        np.testing.assert_array_equal(a.spike_counts[l], b.spike_counts[l])
    # The defaults are not written into files (so model ids and files stay as they were).
    body, _ = net.to_container()
    assert all("du" not in e and "reset" not in e for e in body["layers"])


def test_cuba_and_zero_reset_networks_match_the_reference_and_files(tmp_path):
    net = small_cnn(13)
    layers = [
        dataclasses.replace(layer, reset=r, du=d)
        for layer, r, d in zip(
            net.layers, ["zero", "subtract", "zero", "subtract"], [100, 0, 4096, 3000]
        )
    ]
    cuba = snnfast.Network(layers, net.input_shape)
    images = np.random.default_rng(14).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    got = cuba.run(images, 16)
    want = simulate(cuba, images, 16)
    for l in range(cuba.n_layers + 1):
        np.testing.assert_array_equal(got.membrane[l], want["membrane"][l])
        np.testing.assert_array_equal(got.spike_counts[l], want["spike_counts"][l])
    cuba.save(tmp_path / "cuba.npz")
    again, _ = snnfast.Network.load(tmp_path / "cuba.npz")
    assert [(x.reset, x.du) for x in again.layers] == [(x.reset, x.du) for x in layers]
    np.testing.assert_array_equal(again.run(images, 16).membrane[4], got.membrane[4])


@pytest.mark.parametrize(
    ("neuron", "words"),
    [
        ({"du": 4097}, "du must be an integer in [0, 4096]"),
        ({"du": -1}, "du must be"),
        ({"reset": "hard"}, "reset must be one of 'subtract', 'zero'"),
        ({"reset": 0}, "reset must be one of"),
        ({"du": 2.5}, "du must be an integer"),
    ],
)
def test_bad_neuron_settings_are_named(neuron, words):
    with pytest.raises(ConfigError, match="layer 1") as info:
        one_neuron(1, 5, **neuron)
    assert words in str(info.value)


def test_a_current_register_bounds_the_bias():
    # With a current register v + u + b must fit 32 bits for |u| up to 2^23.
    big = 2**31 - 2**24 + 1
    snnfast.Network(
        [snnfast.Dense(np.ones((1, 1), np.int16), np.array([big]), 5)], input_shape=(1, 1, 1)
    )
    with pytest.raises(ConfigError, match="accumulator"):
        snnfast.Network(
            [snnfast.Dense(np.ones((1, 1), np.int16), np.array([big]), 5, du=10)],
            input_shape=(1, 1, 1),
        )
