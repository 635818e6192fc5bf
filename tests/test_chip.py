"""The mapper: exact core counts, resource checks and errors, checked by hand and by brute
force against explicit synapse lists (helpers_chip, independent of snnfast.chip), on chains and
on layer graphs (residual layers with two groups, grouped and depthwise convolutions, pooling
with stride and padding, concatenation), and the chip profiles."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers_chip import brute_resources, core_of

from snnfast import (
    AvgPool2d,
    Conv2d,
    ConvSynapses,
    Dense,
    DenseSynapses,
    Network,
    PoolSynapses,
    SpikingLayer,
)
from snnfast.chip import (
    LOIHI1,
    LOIHI1_SANAFE,
    LOIHI2,
    PROFILES,
    RESOURCES,
    ChipResources,
    Loihi1,
    Loihi1Costs,
    Loihi2,
    SanafeLoihiCosts,
    check_deployable,
    core_map,
    get_profile,
    map_network,
    sources,
    unknown_fields,
)
from snnfast.chip.geometry import geometries
from snnfast.chip.mapper import _partition_all
from snnfast.errors import ConfigError, ResourceError
from snnfast.paper.published import TABLE1_SPECS
from snnfast.paper.table1 import table1_deployability, table1_network

ONE = Loihi1(soft_reset_compartments=1)
SMALL = {"cores_per_chip": 16, "grid_rows": 4, "grid_cols": 4, "max_chips": None}


def dense_net(n_in: int, n_out: int, w: int = 255, input_shape=None) -> Network:
    weight = np.full((n_out, n_in), w, dtype=np.int16)
    shape = input_shape or (1, 1, n_in)
    return Network([Dense(weight, np.zeros(n_out, np.int32), 1)], shape)


def rand_conv(rng, o, i, k, stride=1, padding=0) -> Conv2d:
    w = rng.integers(-255, 256, size=(o, i, k, k)).astype(np.int16)
    return Conv2d(w, np.zeros(o, np.int32), 3, stride=stride, padding=padding)


def rand_dense(rng, o, i) -> Dense:
    return Dense(rng.integers(-255, 256, size=(o, i)).astype(np.int16), np.zeros(o, np.int32), 3)


def graph_net(rng, reset: str = "subtract") -> Network:
    """Input 2x9x9; a padded conv; a depthwise strided conv with asymmetric padding; an
    overlapping padded pool of layer 1; a residual layer with two groups from layer 2 and a
    1x1 conv from layer 3; a concatenation; a dense layer from two sources."""

    def w(*s):
        return rng.integers(-40, 41, size=s).astype(np.int16)

    layers = [
        Conv2d(w(4, 2, 3, 3), np.zeros(4, np.int32), 30, stride=1, padding=1, reset=reset),
        SpikingLayer([ConvSynapses(w(4, 1, 3, 3), stride=2, padding=(1, 1, 0, 2), groups=4)], 25),
        SpikingLayer([PoolSynapses(3, 5, stride=2, padding=1, source=1)], 20, reset=reset),
        SpikingLayer(
            [
                PoolSynapses(1, 9, source=2),
                ConvSynapses(w(4, 4, 1, 1)),
                PoolSynapses(1, 7, source=2),
            ],
            30,
        ),
        SpikingLayer(
            [
                PoolSynapses(1, 6, source=4),
                ConvSynapses(w(2, 4, 3, 3), padding=1, source=2, channel_offset=4),
            ],
            30,
        ),
        SpikingLayer([DenseSynapses(w(5, 150)), DenseSynapses(w(5, 100), source=3)], 40),
    ]
    return Network(layers, (2, 9, 9))


def grouped_net(rng) -> Network:
    """A grouped conv (2 groups), a 2x2 pool with stride 1, a dense layer."""
    w = rng.integers(-50, 51, size=(6, 2, 3, 3)).astype(np.int16)
    return Network(
        [
            Conv2d(w, np.zeros(6, np.int32), 40, padding=1, groups=2),
            AvgPool2d(2, 9, 20, stride=1),
            rand_dense(rng, 4, 6 * 6 * 6),
        ],
        (4, 7, 7),
    )


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
    assert [lm.binding for lm in m2.layers][1] == "compartments"


def test_fan_in_over_input_axons_is_a_resource_error_with_its_facts():
    net = dense_net(5000, 10, input_shape=(1, 50, 100))
    with pytest.raises(ResourceError) as err:
        map_network(net, ONE)
    e = err.value
    assert "layer 1 (dense)" in str(e) and "input axons" in str(e)
    assert "5000" in str(e) and "4096" in str(e)
    assert (e.layer, e.resource, e.need, e.limit) == ("layer 1 (dense)", "input_axons", 5000, 4096)


def test_soft_reset_axon_pushes_a_4096_fan_in_over_the_limit():
    net = dense_net(4096, 10, input_shape=(1, 64, 64))
    assert map_network(net, ONE).cores_per_layer[1] == 1
    with pytest.raises(ResourceError, match=r"4097 input axons .*4096"):
        map_network(net, Loihi1())
    ok, reason = check_deployable(net)
    assert not ok and "layer 1 (dense)" in reason
    assert check_deployable(net, ONE) == (True, "")


def test_reset_to_zero_layers_take_one_compartment_and_no_reset_synapse():
    net = Network(
        [Dense(np.full((10, 4096), 3, np.int16), np.zeros(10, np.int32), 1, reset="zero")],
        (1, 64, 64),
    )
    m = map_network(net, Loihi1())  # fits: no soft-reset axon on the dense layer
    assert [lm.compartments for lm in m.layers] == [2, 1]
    assert m.layers[1].usage["input_axons"].tolist() == [4096]
    assert m.layers[1].usage["compartments"].tolist() == [10]
    assert m.layers[1].usage["synapses"].tolist() == [4096 * 10]


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
    assert lm.binding == "synapse_bits"


def test_one_neuron_over_synapse_memory_is_a_resource_error():
    chip = Loihi1(soft_reset_compartments=1, synapse_memory_bits=64 * 100)
    with pytest.raises(ResourceError) as err:
        map_network(dense_net(200, 3, input_shape=(1, 10, 20)), chip)
    msg = str(err.value)
    assert "layer 1 (dense)" in msg and "synapse memory" in msg
    assert str(200 * 64) in msg and str(64 * 100) in msg
    assert err.value.resource == "synapse_bits"


def test_weights_wider_than_the_chip_warn_and_take_an_exponent():
    with pytest.warns(UserWarning, match=r"layer 1 \(dense\): max \|w\| = 300 needs 10 weight"):
        m = map_network(dense_net(4, 2, w=300))
    lm = m.layers[1]
    assert (lm.weight_bits, lm.weight_exponent) == (9, 1) and len(m.notes) == 1
    assert "warning: layer 1 (dense)" in m.report() and "9/6 e1" in m.report()
    assert map_network(dense_net(4, 2, w=-255)).layers[1].weight_bits == 9
    assert map_network(dense_net(4, 2, w=1)).layers[1].weight_bits == 2
    assert map_network(dense_net(4, 2, w=1)).notes == ()
    # Loihi 2 stores 8-bit weights: 255 needs an exponent of 1 there.
    with pytest.warns(UserWarning, match="Loihi 2 synapse holds 8"):
        m2 = map_network(dense_net(4, 2, w=255), LOIHI2)
    assert (m2.layers[1].weight_bits, m2.layers[1].weight_exponent) == (8, 1)


def test_max_chips_is_enforced_and_cores_are_placed_chip_after_chip():
    tiny = dict(cores_per_chip=2, grid_rows=1, grid_cols=2, tile_rows=1, tile_cols=1)
    net = dense_net(1, 2048)
    with pytest.raises(ResourceError) as err:
        map_network(net, Loihi1(soft_reset_compartments=1, **tiny))
    msg = str(err.value)
    assert "layer 1 (dense)" in msg and "max_chips = 1" in msg and "3 cores = 2 chips" in msg
    assert (err.value.resource, err.value.need, err.value.limit) == ("cores", 3, 2)
    m = map_network(net, Loihi1(soft_reset_compartments=1, **tiny), max_chips=2)
    assert m.n_chips == 2
    assert [m.placement(c) for c in range(3)] == [(0, 0, 0), (0, 0, 1), (1, 0, 0)]
    assert m.placements.tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 0]]
    assert m.tiles.tolist() == [[0, 0], [1, 0], [2, 0]]  # chips side by side east-west
    unlimited = Loihi1(soft_reset_compartments=1, max_chips=None, **tiny)
    assert map_network(net, unlimited).n_chips == 2
    with pytest.raises(ConfigError, match="max_chips"):
        map_network(net, unlimited, max_chips=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_rows": 4}, "grid"),
        ({"tile_rows": 3}, "tile"),
        ({"soft_reset_compartments": 3}, "soft_reset_compartments"),
        ({"max_input_axons": 0}, "max_input_axons"),
        ({"max_chips": 0}, "max_chips"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_chip_descriptions_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Loihi1(**kwargs)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="snnfast.Network"):
        map_network("net")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Profile or ChipResources"):
        map_network(dense_net(2, 2), "loihi1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="profile"):
        get_profile("loihi3")


def test_entry_bits_follow_the_word_rounding():
    chip = Loihi1()
    # 19 bits per synapse (9 weight + 10 index): 1 synapse -> 29 bits -> 1 word; 3 -> 67 -> 2;
    # 64 -> 1226 -> 20 words; 65 -> one full entry + one entry of 1 synapse.
    got = chip.entry_bits(np.array([0, 1, 3, 64, 65]), 19)
    assert got.tolist() == [0, 64, 128, 20 * 64, 21 * 64]


# -- brute force against explicit synapse lists -----------------------------------------------


def _chains(rng):
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


def _check_against_brute(net: Network, chip: ChipResources) -> None:
    m = map_network(net, chip)
    want = brute_resources(net, m, chip)
    for key, arr in want.items():
        np.testing.assert_array_equal(m.usage(key), arr, err_msg=key)
    # the Python partition's own (factorised) figures are the same as the Rust core's
    parts = _partition_all(geometries(net), chip)
    for lm in m.layers:
        for key in ("neurons", "synapses", "index_bits", *RESOURCES):
            np.testing.assert_array_equal(
                parts[lm.index].usage[key], lm.usage[key], err_msg=f"{lm.index} {key}"
            )
        np.testing.assert_array_equal(lm.core_of.reshape(-1), core_of(lm))
    stored = [int(lm.usage["synapses"].sum()) for lm in m.layers]
    extra = [int(lm.usage["neurons"].sum()) * (lm.compartments > 1) for lm in m.layers]
    assert [s - e for s, e in zip(stored, extra)] == net.synapse_counts()
    assert sum(m.cores_per_layer) == m.n_cores
    assert m.core_layer.tolist() == sum(([lm.index] * lm.n_cores for lm in m.layers), [])


@pytest.mark.parametrize("reset", [1, 2])
@pytest.mark.parametrize("max_cx", [8, 20, 1024])
def test_per_core_usage_of_chains_matches_brute_force(reset, max_cx):
    rng = np.random.default_rng(reset * 100 + max_cx)
    chip = Loihi1(soft_reset_compartments=reset, max_compartments=max_cx, max_chips=None)
    for net in _chains(rng):
        _check_against_brute(net, chip)


@pytest.mark.parametrize("reset", [1, 2])
@pytest.mark.parametrize("max_cx", [12, 40, 1024])
def test_per_core_usage_of_graphs_matches_brute_force(reset, max_cx):
    rng = np.random.default_rng(7 * reset + max_cx)
    chip = Loihi1(soft_reset_compartments=reset, max_compartments=max_cx, **SMALL)
    for net in (graph_net(rng), graph_net(rng, reset="zero"), grouped_net(rng)):
        _check_against_brute(net, chip)


def test_grouped_convolutions_have_fewer_synapses_and_residual_layers_two_axon_groups():
    rng = np.random.default_rng(5)
    net = graph_net(rng)
    m = map_network(net, Loihi1(soft_reset_compartments=1, **SMALL))
    # layer 2 is depthwise: each neuron sees one input channel, 3x3 minus the padding
    assert m.layers[2].usage["synapses"].sum() == net.synapse_counts()[2]
    assert net.synapse_counts()[2] < 9 * 4 * 25
    # layer 4 adds two groups from layer 2 (one axon per source neuron) and one from layer 3
    lm = m.layers[4]
    assert lm.usage["input_axons"].sum() == 100 + 100
    assert lm.usage["synapses"].sum() == 100 + 100 + 4 * 100


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
            assert cap is not None and 0 <= used <= cap


def test_zoo_graphs_from_torch_map_and_count_exactly():
    torch = pytest.importorskip("torch")
    from snnfast import zoo
    from snnfast.torch_graph import from_torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 1, 28, 28), dtype=np.uint8)
    for name in ("resnet", "mobilenet"):
        entry = zoo.ENTRIES[name]
        cal = zoo.prepare(images, entry.input_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cm = from_torch(entry.factory().eval(), cal)
            m = map_network(cm.network, Loihi1(max_chips=None))
        parts = _partition_all(geometries(cm.network), m.chip)
        for lm in m.layers:
            for key in RESOURCES:
                np.testing.assert_array_equal(parts[lm.index].usage[key], lm.usage[key])
        kinds = {g.kind for l in range(1, cm.network.n_layers + 1)
                 for g in cm.network.synapse_groups(l)}  # fmt: skip
        assert "conv" in kinds and m.n_cores >= cm.network.n_layers + 1


# -- the paper's architectures ------------------------------------------------------------


def test_32_64_10_fits_one_chip_and_respects_every_limit():
    net = table1_network("32-64-10")
    m = map_network(net)
    assert m.n_chips == 1 and m.n_cores == 121
    # At least the cores the compartments alone need (2 per neuron), layer by layer.
    floor = [math.ceil(n * 2 / 1024) for n in net.sizes]
    assert all(c >= f for c, f in zip(m.cores_per_layer, floor))
    for u in m.utilization():
        assert all(cap is not None and used <= cap for used, cap in u.values())
    text = m.report()
    for word in ("input", "conv2d", "avgpool2d", "dense", f"{m.n_cores} cores", "binding"):
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
    # On one chip (the paper's deployment) 11 of 12 still map or need only more chips.
    one = table1_deployability()
    assert sum(r[1] for r in one) + sum(r[3] is not None and not r[1] for r in one) == 11
    # Native soft reset (one compartment) removes the reset axon: then it maps, on >1 chip.
    last = table1_deployability(Loihi1(max_chips=None, soft_reset_compartments=1))[-1]
    assert last[1] and last[4] > 1


def test_loihi2_maps_with_its_larger_cores_and_unchecked_axons():
    net = table1_network("32-64-128-256-10")  # not deployable on Loihi 1 (fan-in)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = map_network(net, LOIHI2.replace(max_chips=None))
    assert m.chip.limits["input_axons"] is None and m.chip.max_compartments == 8192
    assert [lm.compartments for lm in m.layers] == [1] * len(m.layers)
    assert "no limit" in m.report()
    m1 = map_network(table1_network("32-64-10"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m2 = map_network(table1_network("32-64-10"), LOIHI2)
    assert m2.n_cores < m1.n_cores


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


# -- profiles ---------------------------------------------------------------------------------


def test_every_profile_value_is_named_and_sourced():
    for cls in (Loihi1, Loihi2, Loihi1Costs, SanafeLoihiCosts):
        found = sources(cls)
        assert found and all(len(text) > 10 for text in found.values()), (cls, found)
    assert "Davies" in sources(Loihi1())["max_compartments"]
    assert "Liu et al. 2022" in sources(Loihi1Costs)["static_power_w"]
    assert "SANA-FE" in sources(SanafeLoihiCosts)["e_synop_dense_pj"]
    assert "brief" in sources(Loihi2)["max_compartments"]
    # frozen values, changed only by making a new one (which is checked again)
    chip = Loihi1()
    with pytest.raises(AttributeError):
        chip.max_chips = 2  # type: ignore[misc]
    assert chip.replace(max_chips=2).max_chips == 2 and chip.max_chips == 1
    with pytest.raises(ConfigError, match="max_compartments"):
        chip.replace(max_compartments=0)


def test_the_shipped_profiles_and_what_they_leave_unknown():
    assert sorted(PROFILES) == ["loihi1", "loihi1-sanafe", "loihi2"]
    assert get_profile("loihi1") is LOIHI1 and LOIHI1_SANAFE.resources == LOIHI1.resources
    assert LOIHI1.costs.energy_known and LOIHI1_SANAFE.costs.time_known
    assert not LOIHI2.costs.energy_known and not LOIHI2.costs.time_known
    unknown = unknown_fields(LOIHI2.costs)
    assert "e_synop_conv_pj" in unknown and "Intel publishes no" in unknown["e_synop_conv_pj"]
    assert unknown_fields(LOIHI1.costs) == {}
    assert unknown_fields(LOIHI2.resources) == {
        "max_input_axons": "no per-core axon limit is published for Loihi 2 (not checked)",
        "max_output_axons": "no per-core axon limit is published for Loihi 2 (not checked)",
    }
    # the SANA-FE figures are its arch/loihi.yaml's, the Davies ones Table 2's
    s = LOIHI1_SANAFE.costs
    assert (s.e_synop_conv_pj, s.e_synop_pool_pj, s.e_synop_dense_pj) == (24.0, 33.6, 35.5)
    assert (s.e_message_out_pj, s.e_spike_pj, s.e_hop_ns_pj) == (111.0, 69.3, 4.2)
    assert s.barrier(31) == 1800.0 and s.barrier(3) == 1000.0 and s.barrier(1) == 600.0
    d = LOIHI1.costs
    assert d.barrier(1) == 113.0 and d.barrier(100) == 465.0
    assert d.barrier(2) == pytest.approx(113 + (465 - 113) / 31)
    # replace() reaches into resources and costs
    p = LOIHI1.replace(max_chips=3, e_spike_pj=1.0)
    assert p.resources.max_chips == 3 and p.costs.e_spike_pj == 1.0 and p.name == "loihi1"
    with pytest.raises(ConfigError, match="unknown field"):
        LOIHI1.replace(nonsense=1)


def test_mapping_summary_is_a_record():
    import json

    from snnfast.chip import MappingSummary

    m = map_network(table1_network("4-8-10"))
    s = m.summary()
    assert s.n_cores == m.n_cores and s.cores_per_layer == m.cores_per_layer
    assert s.report == m.report() and s.notes == list(m.notes)
    assert s.binding == [lm.binding for lm in m.layers] and s.chip == "Loihi 1"
    assert MappingSummary.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_recounted_keeps_the_placement_and_recounts_the_resources():
    net = table1_network("4-8-10")
    m = map_network(net)
    one = m.recounted(m.chip.replace(soft_reset_compartments=1))
    assert [lm.block for lm in one.layers] == [lm.block for lm in m.layers]
    assert (one.usage("compartments") * 2 == m.usage("compartments")).all()
    assert (one.usage("input_axons") + one.usage("neurons") == m.usage("input_axons")).all()
    with pytest.raises(ResourceError, match="compartments"):
        m.recounted(m.chip.replace(max_compartments=8))


# -- the command ------------------------------------------------------------------------------


def test_chip_command_reports_every_profile(tmp_path, capsys):
    import json

    from snnfast import ann, cli

    conv = tmp_path / "snn.npz"
    assert cli.main(["-q", "convert", str(ann.SHIPPED_MODEL), "--out", str(conv)]) == 0
    out = tmp_path / "chip.json"
    args = ["chip", str(conv), "--timesteps", "2", "4", "--n-images", "2", "--json", str(out)]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    for name in ("loihi1", "loihi1-sanafe", "loihi2"):
        assert f"== profile {name}:" in text
    assert "binding" in text and "NeuroBench metrics" in text and "step" in text
    doc = json.loads(out.read_text())
    profiles = {p["profile"]: p for p in doc["profiles"]}
    assert list(profiles) == ["loihi1", "loihi1-sanafe", "loihi2"]
    for name in ("loihi1", "loihi1-sanafe"):
        energy = profiles[name]["energy"]
        assert [e["timesteps"] for e in energy] == [2, 4]
        assert all(e["latency_s"] > 0 and e["dynamic_energy_j"] > 0 for e in energy)
        assert energy[1]["dynamic_energy_j"] > energy[0]["dynamic_energy_j"]
        assert energy[0]["neurobench"]["synaptic_operations"] > 0
    # Loihi 2: counted and mapped, its unpublished costs unknown rather than invented
    loihi2 = profiles["loihi2"]["energy"][0]
    assert loihi2["latency_s"] is None and loihi2["dynamic_energy_j"] is None
    assert loihi2["unknown"] and loihi2["neurobench"]["synaptic_operations"] > 0
    assert profiles["loihi2"]["mapping"]["n_cores"] < profiles["loihi1"]["mapping"]["n_cores"]
