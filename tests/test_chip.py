"""The Loihi mapper: exact core counts, resource checks and errors, checked by hand and by brute
force against an explicit synapse matrix (helpers_chip, independent of snnfast.chip)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_chip import adjacency, core_of

from snnfast import AvgPool2d, Conv2d, Dense, Network
from snnfast.chip import (
    RESOURCES,
    EnergyModel,
    Loihi1,
    check_deployable,
    core_map,
    map_network,
    sources,
)
from snnfast.errors import ConfigError, ResourceError
from snnfast.paper.published import TABLE1_SPECS
from snnfast.paper.table1 import table1_deployability, table1_network

ONE = Loihi1(soft_reset_compartments=1)


def dense_net(n_in: int, n_out: int, w: int = 255, input_shape=None) -> Network:
    weight = np.full((n_out, n_in), w, dtype=np.int16)
    shape = input_shape or (1, 1, n_in)
    return Network([Dense(weight, np.zeros(n_out, np.int32), 1)], shape)


def rand_conv(rng, o, i, k, stride=1, padding=0) -> Conv2d:
    w = rng.integers(-255, 256, size=(o, i, k, k)).astype(np.int16)
    return Conv2d(w, np.zeros(o, np.int32), 3, stride=stride, padding=padding)


def rand_dense(rng, o, i) -> Dense:
    return Dense(rng.integers(-255, 256, size=(o, i)).astype(np.int16), np.zeros(o, np.int32), 3)


# -- hand-computable cases ------------------------------------------------------------------


def test_dense_2048_neurons_take_two_cores_then_four_with_soft_reset():
    net = dense_net(1, 2048)
    m = map_network(net, ONE)
    assert m.cores_per_layer == [1, 2]
    assert m.n_cores == 3 and m.n_chips == 1
    u = m.utilization()
    assert u[1]["compartments"] == (1024, 1024)
    assert u[1]["input_axons"] == (1, 4096)
    assert u[0]["output_axons"] == (2, 4096)  # the pixel reaches both dense cores
    assert u[0]["input_axons"] == (0, 4096)
    # Two compartments per neuron: 4096 compartments, 4 cores; each neuron adds a reset axon.
    m2 = map_network(net, Loihi1())
    assert m2.cores_per_layer == [1, 4]
    u2 = m2.utilization()
    assert u2[1]["compartments"] == (1024, 1024)
    assert u2[1]["input_axons"] == (1 + 512, 4096)
    assert u2[0]["output_axons"] == (4 + 1, 4096)


def test_fan_in_over_input_axons_is_a_resource_error():
    net = dense_net(5000, 10, input_shape=(1, 50, 100))
    with pytest.raises(ResourceError) as err:
        map_network(net, ONE)
    msg = str(err.value)
    assert "layer 1 (dense)" in msg and "input axons" in msg
    assert "5000" in msg and "4096" in msg


def test_soft_reset_axon_pushes_a_4096_fan_in_over_the_limit():
    net = dense_net(4096, 10, input_shape=(1, 64, 64))
    assert map_network(net, ONE).cores_per_layer[1] == 1
    with pytest.raises(ResourceError, match=r"4097 input axons .*4096"):
        map_network(net, Loihi1())
    ok, reason = check_deployable(net)
    assert not ok and "layer 1 (dense)" in reason
    assert check_deployable(net, ONE) == (True, "")


def test_synapse_memory_limits_a_dense_layer_exactly():
    # 4000 inputs, 40 outputs, 9-bit weights, 6 index bits (<= 64 compartments): an axon with b
    # synapses on a core takes ceil((15 b + 10) / 64) words; 4000 axons fit 16384 words only if
    # that is <= 4 words, i.e. b <= 16. Blocks of 40 split as ceil(40 / k): 14 is the largest
    # that fits, giving 3 cores.
    net = dense_net(4000, 40, input_shape=(1, 40, 100))
    m = map_network(net, ONE)
    lm = m.layers[1]
    assert lm.block == (14, 1, 1) and m.cores_per_layer[1] == 3
    assert (lm.weight_bits, lm.index_bits) == (9, 6)
    words = math.ceil((14 * 15 + 10) / 64)
    assert lm.usage["synapse_bits"][0] == 4000 * words * 64
    assert lm.usage["synapse_bits"].max() <= 16384 * 64
    assert lm.usage["compartments"].max() <= 14  # memory, not neurons, set the core count


def test_one_neuron_over_synapse_memory_is_a_resource_error():
    chip = Loihi1(soft_reset_compartments=1, synapse_memory_bits=64 * 100)
    with pytest.raises(ResourceError) as err:
        map_network(dense_net(200, 3, input_shape=(1, 10, 20)), chip)
    msg = str(err.value)
    assert "layer 1 (dense)" in msg and "synapse memory" in msg
    assert str(200 * 64) in msg and str(64 * 100) in msg


def test_weights_wider_than_nine_bits_warn_and_are_stored_at_nine():
    with pytest.warns(UserWarning, match=r"layer 1 \(dense\): max \|w\| = 300 needs 10 weight"):
        m = map_network(dense_net(4, 2, w=300))
    assert m.layers[1].weight_bits == 9 and len(m.notes) == 1
    assert "warning: layer 1 (dense)" in m.report()
    assert map_network(dense_net(4, 2, w=-255)).layers[1].weight_bits == 9
    assert map_network(dense_net(4, 2, w=1)).layers[1].weight_bits == 2
    assert map_network(dense_net(4, 2, w=1)).notes == ()


def test_max_chips_is_enforced_and_cores_are_placed_chip_after_chip():
    tiny = Loihi1(
        cores_per_chip=2,
        grid_rows=1,
        grid_cols=2,
        tile_rows=1,
        tile_cols=1,
        soft_reset_compartments=1,
    )
    net = dense_net(1, 2048)
    with pytest.raises(ResourceError) as err:
        map_network(net, tiny)
    msg = str(err.value)
    assert "layer 1 (dense)" in msg and "max_chips = 1" in msg and "3 cores = 2 chips" in msg
    m = map_network(net, tiny, max_chips=2)
    assert m.n_chips == 2
    assert [m.placement(c) for c in range(3)] == [(0, 0, 0), (0, 0, 1), (1, 0, 0)]
    assert m.placements.tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 0]]
    unlimited = Loihi1(
        cores_per_chip=2,
        grid_rows=1,
        grid_cols=2,
        tile_rows=1,
        tile_cols=1,
        soft_reset_compartments=1,
        max_chips=None,
    )
    assert map_network(net, unlimited).n_chips == 2
    with pytest.raises(ConfigError, match="max_chips"):
        map_network(net, tiny, max_chips=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_rows": 4}, "grid"),
        ({"tile_rows": 3}, "tile"),
        ({"soft_reset_compartments": 3}, "soft_reset_compartments"),
        ({"max_input_axons": 0}, "max_input_axons"),
        ({"max_chips": 0}, "max_chips"),
    ],
)
def test_bad_chip_descriptions_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Loihi1(**kwargs)


def test_entry_bits_follow_the_word_rounding():
    chip = Loihi1()
    # 19 bits per synapse (9 weight + 10 index): 1 synapse -> 29 bits -> 1 word; 3 -> 67 -> 2;
    # 64 -> 1226 -> 20 words; 65 -> one full entry + one entry of 1 synapse.
    got = chip.entry_bits(np.array([0, 1, 3, 64, 65]), 19)
    assert got.tolist() == [0, 64, 128, 20 * 64, 21 * 64]


# -- brute force against an explicit synapse matrix -----------------------------------------


def _brute_usage(net: Network, m, chip: Loihi1) -> list[dict[str, np.ndarray]]:
    reset = int(chip.soft_reset_compartments == 2)
    adj = [None] + [adjacency(net, l) for l in range(1, len(net.shapes))]
    out = []
    for lm in m.layers:
        core = core_of(lm)
        u = {k: np.zeros(lm.n_cores, dtype=np.int64) for k in ("neurons", *RESOURCES)}
        u["synapses"] = np.zeros(lm.n_cores, dtype=np.int64)
        nxt = m.layers[lm.index + 1] if lm.index + 1 < len(m.layers) else None
        for k in range(lm.n_cores):
            cols = core == k
            n = int(cols.sum())
            u["neurons"][k] = n
            u["compartments"][k] = n * chip.soft_reset_compartments
            per = np.zeros(0, dtype=np.int64)
            if adj[lm.index] is not None:
                per = adj[lm.index][:, cols].sum(axis=1)
            u["input_axons"][k] = int((per > 0).sum()) + reset * n
            u["synapses"][k] = int(per.sum()) + reset * n
            bits = lm.weight_bits + lm.index_bits
            u["synapse_bits"][k] = int(chip.entry_bits(per, bits).sum()) + reset * n * int(
                chip.entry_bits(1, bits)
            )
            dest = 0
            if nxt is not None:
                nxt_core = core_of(nxt)
                rows = adj[lm.index + 1][cols]
                for j in range(rows.shape[0]):
                    dest += len(np.unique(nxt_core[rows[j]]))
            u["output_axons"][k] = dest + reset * n
        out.append(u)
    return out


def _small_nets(rng):
    yield Network(
        [rand_conv(rng, 4, 1, 3, stride=2, padding=1), AvgPool2d(2, 7, 3), rand_dense(rng, 5, 36)],
        (1, 12, 12),
    )
    yield Network(
        [
            rand_conv(rng, 3, 2, 3),
            AvgPool2d(3, 4, 2),
            rand_conv(rng, 5, 3, 3, padding=2),
            rand_dense(rng, 6, 5 * 5 * 5),
            rand_dense(rng, 3, 6),
        ],
        (2, 11, 13),
    )


@pytest.mark.parametrize("reset", [1, 2])
@pytest.mark.parametrize("max_cx", [8, 20, 1024])
def test_per_core_usage_matches_brute_force(reset, max_cx):
    rng = np.random.default_rng(reset * 100 + max_cx)
    chip = Loihi1(soft_reset_compartments=reset, max_compartments=max_cx, max_chips=None)
    for net in _small_nets(rng):
        m = map_network(net, chip)
        brute = _brute_usage(net, m, chip)
        for lm, want in zip(m.layers, brute):
            for key, arr in want.items():
                np.testing.assert_array_equal(lm.usage[key], arr, err_msg=f"{lm.index} {key}")
        # Synapses stored (without reset synapses) are the engine's synapse counts.
        stored = [
            int(lm.usage["synapses"].sum() - (reset - 1) * lm.usage["neurons"].sum())
            for lm in m.layers
        ]
        assert stored == net.synapse_counts()
        assert sum(m.cores_per_layer) == m.n_cores
        assert m.core_layer.tolist() == sum(([lm.index] * lm.n_cores for lm in m.layers), [])


def test_partition_uses_the_fewest_cores_that_fit():
    # A conv layer of 32x24x24 neurons with 1 compartment each needs at least 18 cores, and
    # every candidate with fewer cores is over 1024 compartments.
    rng = np.random.default_rng(0)
    net = Network([rand_conv(rng, 32, 1, 5)], (1, 28, 28))
    m = map_network(net, ONE)
    assert m.cores_per_layer[1] == 18
    for u in m.utilization()[1:]:
        for r in RESOURCES:
            used, cap = u[r]
            assert 0 <= used <= cap


# -- the paper's architectures ------------------------------------------------------------


def test_32_64_10_fits_one_chip_and_respects_every_limit():
    net = table1_network("32-64-10")
    m = map_network(net)
    assert m.n_chips == 1 and m.n_cores <= 128
    # At least the cores the compartments alone need (2 per neuron), layer by layer.
    floor = [math.ceil(n * 2 / 1024) for n in net.sizes]
    assert all(c >= f for c, f in zip(m.cores_per_layer, floor))
    for u in m.utilization():
        assert all(used <= cap for used, cap in u.values())
    text = m.report()
    for word in ("input", "conv2d", "avgpool2d", "dense", f"{m.n_cores} cores"):
        assert word in text


def test_table1_only_the_largest_spec_fails_and_by_fan_in():
    rows = table1_deployability(Loihi1(max_chips=None))
    assert [r[0] for r in rows] == list(TABLE1_SPECS)
    failed = [r for r in rows if not r[1]]
    assert [r[0] for r in failed] == ["32-64-128-256-10"]
    assert "input axons" in failed[0][2] and "4097" in failed[0][2]
    assert failed[0][3] is None
    for _spec, ok, reason, cores, chips in rows[:-1]:
        assert ok and reason == "" and cores >= 1 and chips == math.ceil(cores / 128)
    # Native soft reset (one compartment) removes the reset axon: then it maps, on >1 chip.
    last = table1_deployability(Loihi1(max_chips=None, soft_reset_compartments=1))[-1]
    assert last[1] and last[4] > 1


def test_core_map_writes_a_png(tmp_path):
    m = map_network(table1_network("8-16-10"))
    path = tmp_path / "fig" / "cores.png"
    core_map(m, path, title="8-16-10")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    tiny = Loihi1(cores_per_chip=8, grid_rows=2, grid_cols=4, max_chips=None)
    multi = map_network(table1_network("4-8-10"), tiny)
    assert multi.n_chips > 1
    core_map(multi, tmp_path / "multi.png")
    assert (tmp_path / "multi.png").stat().st_size > 5000
    assert list(tmp_path.glob("**/.*.tmp")) == []
    with pytest.raises(ConfigError):
        core_map("not a mapping", tmp_path / "x.png")  # type: ignore[arg-type]


def test_every_profile_value_is_named_and_sourced():
    for profile in (Loihi1, EnergyModel):
        found = sources(profile)
        assert found and all(len(text) > 10 for text in found.values()), found
    assert "Davies" in sources(Loihi1())["max_compartments"]
    assert "Liu et al. 2022" in sources(EnergyModel)["static_power_w"]
    # frozen values, changed only by making a new profile (which is checked again)
    chip = Loihi1()
    with pytest.raises(AttributeError):
        chip.max_chips = 2  # type: ignore[misc]
    assert chip.replace(max_chips=2).max_chips == 2 and chip.max_chips == 1
    with pytest.raises(ConfigError, match="max_compartments"):
        chip.replace(max_compartments=0)


def test_mapping_summary_is_a_record():
    import json

    from snnfast.chip import MappingSummary

    m = map_network(table1_network("4-8-10"))
    s = m.summary()
    assert s.n_cores == m.n_cores and s.cores_per_layer == m.cores_per_layer
    assert s.report == m.report() and s.notes == list(m.notes)
    assert MappingSummary.from_json(json.loads(json.dumps(s.to_json()))) == s
