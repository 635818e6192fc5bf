"""Layer graphs: residual additions, concatenations, grouped and depthwise convolutions,
rectangular kernels, strides, asymmetric padding, pooling with stride and padding, against the
NumPy reference on random graphs; their geometry, files and errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_engine import KERNELS, forced_kernels

import snnfast
from reference import simulate, synapses_per_source
from snnfast import ConvSynapses, DenseSynapses, PoolSynapses, SpikingLayer
from snnfast.errors import ConfigError, ModelFormatError, ShapeError

I16 = np.iinfo(np.int16)


def _axes(n_in: int, out: int | None) -> list[tuple[int, int, int, int]]:
    """(kernel, stride, before, after) along one axis whose output is ``out`` (any if None)."""
    found = []
    for k in range(1, 5):
        for s in range(1, 4):
            for b in range(3):
                for a in range(3):
                    if n_in + a + b >= k and (out is None or (n_in + a + b - k) // s + 1 == out):
                        found.append((k, s, b, a))
    return found


@st.composite
def graphs(draw: st.DrawFn) -> snnfast.Network:
    """Random small layer graphs over every group kind and option the engine has."""
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 9)), draw(st.integers(3, 9))
    shapes: list[tuple[int, ...]] = [(c, h, w)]
    big = draw(st.booleans())  # large weights and biases drive potentials into saturation
    wmax = int(I16.max) if big else 40
    bmax = 2**24 if big else 200
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers: list[snnfast.Layer] = []

    def weights(*shape: int) -> np.ndarray:
        return rng.integers(-wmax, wmax + 1, size=shape)

    def source(options: list[int]) -> tuple[int, int | None]:
        src = draw(st.sampled_from(options))
        return src, (None if src == len(shapes) - 1 and draw(st.booleans()) else src)

    for _ in range(draw(st.integers(1, 4))):
        spatial = [j for j, s in enumerate(shapes) if len(s) == 3]
        dense = not spatial or draw(st.integers(0, 3)) == 0
        groups: list[snnfast.layers.Synapses] = []
        channels = 0
        out_hw: tuple[int, int] | None = None
        for gi in range(draw(st.integers(1, 3))):
            offset = 0 if gi == 0 else draw(st.integers(0, channels))
            if dense:
                src, given = source(list(range(len(shapes))))
                o = draw(st.sampled_from([1, 3, 8, 16]))
                n_in = int(np.prod(shapes[src]))
                groups.append(DenseSynapses(weights(o, n_in), source=given, channel_offset=offset))
                channels = max(channels, offset + o)
                continue
            src, given = source(spatial)
            sc, sh, sw = shapes[src]
            rows = _axes(sh, None if out_hw is None else out_hw[0])
            cols = _axes(sw, None if out_hw is None else out_hw[1])
            if not rows or not cols:
                continue
            kh, sy, pt, pb = draw(st.sampled_from(rows))
            kw, sx, pl, pr = draw(st.sampled_from(cols))
            stride = (sy, sx) if sy != sx or draw(st.booleans()) else sy
            padding = (pt, pb, pl, pr)
            if pt == pb and pl == pr and draw(st.booleans()):
                padding = (pt, pl) if pt != pl else pt  # type: ignore[assignment]
            out_hw = ((sh + pt + pb - kh) // sy + 1, (sw + pl + pr - kw) // sx + 1)
            if draw(st.integers(0, 2)) == 0:
                wp = draw(st.integers(-wmax, wmax))
                groups.append(
                    PoolSynapses(
                        (kh, kw),
                        wp,
                        stride=None if (sy, sx) == (kh, kw) and draw(st.booleans()) else stride,
                        padding=padding,
                        source=given,
                        channel_offset=offset,
                    )
                )
                channels = max(channels, offset + sc)
            else:
                g = draw(st.sampled_from([d for d in range(1, sc + 1) if sc % d == 0]))
                o = g * draw(st.sampled_from([1, 2, 3, 8]))  # 8 and up: the vector kernels
                groups.append(
                    ConvSynapses(
                        weights(o, sc // g, kh, kw),
                        stride=stride,
                        padding=padding,
                        groups=g,
                        source=given,
                        channel_offset=offset,
                    )
                )
                channels = max(channels, offset + o)
        threshold = draw(st.one_of(st.integers(1, 300), st.integers(1, 2**24)))
        leak = draw(st.one_of(st.just(0), st.integers(0, 4096)))
        assert out_hw is not None or dense
        layer_shape = (channels,) if dense else (channels, *out_hw)  # type: ignore[misc]
        # No bias, one per channel, or one per neuron (shaped like the layer).
        bias_kind = draw(st.sampled_from(["none", "channel", "neuron"]))
        bias = None
        if bias_kind != "none":
            size = channels if bias_kind == "channel" else layer_shape
            bias = rng.integers(-bmax, bmax + 1, size=size)
        neuron = {
            "reset": draw(st.sampled_from(["subtract", "zero"])),
            "du": draw(st.one_of(st.just(4096), st.integers(0, 4096))),
        }
        shorthand = bias_kind != "neuron" and draw(st.booleans())
        layers.append(_layer(groups, threshold, bias, leak, shorthand, neuron))
        shapes.append(layer_shape)
    return snnfast.Network(layers, input_shape=(c, h, w), input_threshold=draw(st.integers(1, 400)))


def _layer(groups, threshold, bias, leak, shorthand: bool, neuron: dict) -> snnfast.Layer:
    """The layer, as a shorthand where one fits and ``shorthand`` asks for it."""
    square = all(
        isinstance(getattr(g, "stride", 1), (int, type(None)))
        and isinstance(getattr(g, "padding", 0), int)
        for g in groups
    )
    if shorthand and square and len(groups) == 1 and groups[0].channel_offset == 0:
        g = groups[0]
        zeros = np.zeros(0 if bias is None else len(bias), np.int64)
        b = zeros if bias is None else bias
        if isinstance(g, ConvSynapses) and bias is not None:
            return snnfast.Conv2d(
                g.weight,
                b,
                threshold,
                g.stride,
                g.padding,
                leak,
                groups=g.groups,
                source=g.source,
                **neuron,
            )
        if isinstance(g, PoolSynapses) and bias is None and g.kernel[0] == g.kernel[1]:
            return snnfast.AvgPool2d(
                g.kernel[0],
                g.weight,
                threshold,
                leak,
                stride=g.stride,
                padding=g.padding,
                source=g.source,
                **neuron,
            )
        if isinstance(g, DenseSynapses) and bias is not None:
            return snnfast.Dense(g.weight, b, threshold, leak, source=g.source, **neuron)
    return SpikingLayer(groups, threshold, bias=bias, leak=leak, **neuron)


def images_for(net: snnfast.Network, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *net.input_shape), dtype=np.uint8)


def assert_same(got: snnfast.RunResult, want: dict, net: snnfast.Network) -> None:
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(got.spike_counts[l], want["spike_counts"][l], f"counts {l}")
        np.testing.assert_array_equal(got.membrane[l], want["membrane"][l], f"membrane {l}")
    np.testing.assert_array_equal(got.synops, want["synops"])
    np.testing.assert_array_equal(got.steps, want["steps"])


@given(
    net=graphs(),
    n=st.integers(1, 3),
    timesteps=st.integers(1, 10),
    delay=st.sampled_from([0, 1]),
    v_init=st.sampled_from([0.0, 0.5, 0.3]),
    threads=st.integers(1, 3),
    early_exit=st.one_of(st.none(), st.integers(1, 4)),
    seed=st.integers(0, 2**32 - 1),
    kernels=st.sampled_from(KERNELS),
)
def test_graphs_match_reference(
    net, n, timesteps, delay, v_init, threads, early_exit, seed, kernels
):
    images = images_for(net, n, seed)
    opts = {"delay": delay, "v_init": v_init, "early_exit": early_exit}
    with forced_kernels(kernels):
        got = net.run(images, timesteps, threads=threads, **opts)
        alone = [net.run(images[i : i + 1], timesteps, threads=1, **opts) for i in range(n)]
    assert got.kernels == kernels
    assert_same(got, simulate(net, images, timesteps, **opts), net)
    for i, one in enumerate(alone):  # batch splits
        for l in range(net.n_layers + 1):
            np.testing.assert_array_equal(one.membrane[l][0], got.membrane[l][i])
        np.testing.assert_array_equal(one.synops[0], got.synops[i])


@given(net=graphs())
def test_graph_synapse_counts_match_reference(net):
    total = [0] * (net.n_layers + 1)
    fan = [np.zeros(s, np.int64) for s in net.shapes]
    for l in range(1, net.n_layers + 1):
        for geom in net.synapse_groups(l):
            got = net.group_fan_out(l, geom.index)
            want = synapses_per_source(net, l, geom.index)
            np.testing.assert_array_equal(got, want)
            assert geom.synapses == int(want.sum()) and geom.layer == l
            assert got.shape == net.shapes[geom.source] == geom.source_shape
            total[l] += geom.synapses
            fan[geom.source] += got
    assert net.synapse_counts() == total
    for l in range(net.n_layers):
        np.testing.assert_array_equal(net.fan_out(l), fan[l])


def residual_net() -> snnfast.Network:
    """input → conv a → conv b; layer 3 adds conv(b) and a pooled copy of a (residual), and
    layer 4 concatenates layer 3 with the input's pooled channels."""
    rng = np.random.default_rng(0)
    a = snnfast.Conv2d(rng.integers(-20, 60, (4, 1, 3, 3)), np.zeros(4, np.int64), 200, padding=1)
    b = snnfast.Conv2d(rng.integers(-20, 60, (4, 4, 3, 3)), np.zeros(4, np.int64), 300, padding=1)
    add = SpikingLayer(
        [
            ConvSynapses(rng.integers(-20, 60, (4, 4, 3, 3)), padding=1),
            PoolSynapses(1, 40, source=1),
        ],
        threshold=250,
        name="block1.add",
    )
    cat = SpikingLayer(
        [
            ConvSynapses(rng.integers(-20, 60, (4, 1, 1, 1)), groups=4),  # depthwise 1x1
            PoolSynapses(1, 60, source=0, channel_offset=4),
        ],
        threshold=100,
        bias=np.arange(5),
    )
    head = snnfast.Dense(rng.integers(-30, 30, (10, 5 * 8 * 8)), np.zeros(10, np.int64), 300)
    return snnfast.Network([a, b, add, cat, head], input_shape=(1, 8, 8))


def test_residual_and_concatenation_geometry():
    net = residual_net()
    assert net.shapes == [(1, 8, 8), (4, 8, 8), (4, 8, 8), (4, 8, 8), (5, 8, 8), (10,)]
    g = net.synapse_groups(3)
    assert [x.kind for x in g] == ["conv", "pool"] and [x.source for x in g] == [2, 1]
    assert g[0].channels == (0, 4) == g[1].channels and g[0].padding == (1, 1, 1, 1)
    cat = net.synapse_groups(4)
    assert cat[0].groups == 4 and cat[0].channels == (0, 4) and cat[1].channels == (4, 5)
    assert net.synapse_groups(0) == ()
    assert "block1.add" in repr(net)
    images = images_for(net, 3, 1)
    for delay in (0, 1):
        assert_same(net.run(images, 12, delay=delay), simulate(net, images, 12, delay=delay), net)
    # The input feeds layer 1 and (pooled) layer 4: fan_out counts both.
    np.testing.assert_array_equal(net.fan_out(0), net.group_fan_out(1, 0) + 1)


def test_shorthands_equal_their_spiking_layers():
    rng = np.random.default_rng(3)
    conv = snnfast.Conv2d(rng.integers(-40, 40, (6, 1, 3, 2)), rng.integers(-9, 9, 6), 90, 2, 1, 7)
    pool = snnfast.AvgPool2d(3, 30, 80, stride=2, padding=1)
    dense = snnfast.Dense(rng.integers(-40, 40, (5, 6 * 3 * 3)), rng.integers(-9, 9, 5), 70)
    short = snnfast.Network([conv, pool, dense], input_shape=(1, 12, 9))
    long = snnfast.Network([x.as_spiking_layer() for x in (conv, pool, dense)], (1, 12, 9))
    assert short.shapes == long.shapes
    images = images_for(short, 3, 2)
    a, b = short.run(images, 10), long.run(images, 10)
    for l in range(4):
        np.testing.assert_array_equal(a.membrane[l], b.membrane[l])
    assert_same(a, simulate(short, images, 10), short)


def test_graph_files_round_trip(tmp_path):
    net = residual_net()
    net.save(tmp_path / "g.npz", metadata={"zoo": "resnet-ish"})
    again, meta = snnfast.Network.load(tmp_path / "g.npz")
    assert meta == {"zoo": "resnet-ish"}
    assert [type(x) for x in again.layers] == [type(x) for x in net.layers]
    images = images_for(net, 2, 5)
    a, b = net.run(images, 8), again.run(images, 8)
    for l in range(net.n_layers + 1):
        np.testing.assert_array_equal(a.membrane[l], b.membrane[l])
    assert again.layers[2].name == "block1.add"


def test_first_version_chain_files_still_load(tmp_path):
    # The file as the first version wrote it: np.savez_compressed with a plain JSON header.
    rng = np.random.default_rng(9)
    w1, b1 = rng.integers(-30, 30, (3, 1, 3, 3)).astype(np.int16), np.arange(3, dtype=np.int32)
    w2, b2 = rng.integers(-30, 30, (4, 3 * 3 * 3)).astype(np.int16), np.zeros(4, np.int32)
    header = {
        "format": "snnfast.network",
        "version": 1,
        "input_shape": [1, 8, 8],
        "input_threshold": 200,
        "layers": [
            {"kind": "conv2d", "threshold": 50, "stride": 1, "padding": 0, "leak": 3},
            {"kind": "avgpool2d", "kernel": 2, "weight": 7, "threshold": 9, "leak": 0},
            {"kind": "dense", "threshold": 40, "leak": 0},
        ],
        "metadata": {"old": True},
    }
    path = tmp_path / "v1.npz"
    np.savez_compressed(
        path,
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        **{"layer0.weight": w1, "layer0.bias": b1, "layer2.weight": w2, "layer2.bias": b2},
    )
    net, meta = snnfast.Network.load(path)
    assert meta == {"old": True} and net.shapes == [(1, 8, 8), (3, 6, 6), (3, 3, 3), (4,)]
    want = snnfast.Network(
        [snnfast.Conv2d(w1, b1, 50, leak=3), snnfast.AvgPool2d(2, 7, 9), snnfast.Dense(w2, b2, 40)],
        (1, 8, 8),
        200,
    )
    images = images_for(net, 2, 0)
    np.testing.assert_array_equal(net.run(images, 9).membrane[3], want.run(images, 9).membrane[3])
    # A new file is a checksummed container: a flipped byte is caught.
    net.save(tmp_path / "v2.npz")
    with zipfile.ZipFile(tmp_path / "v2.npz") as zf:
        assert "header.npy" in zf.namelist()


def test_damaged_graph_files_are_named_errors(tmp_path):
    net = residual_net()
    body, arrays = net.to_container()
    body["layers"][2]["synapses"][1]["source"] = 7
    with pytest.raises(ModelFormatError, match="source"):
        snnfast.Network.from_container(body, arrays)
    body, arrays = net.to_container()
    del arrays["layer3.synapses0.weight"]
    with pytest.raises(ModelFormatError, match="damaged"):
        snnfast.Network.from_container(body, arrays)


W3 = np.ones((2, 1, 3, 3), np.int16)


@pytest.mark.parametrize(
    ("layers", "error", "words"),
    [
        ([SpikingLayer([ConvSynapses(W3, source=1)], 5)], ConfigError, "source"),
        ([SpikingLayer([], 5)], ShapeError, "at least one synapse group"),
        (
            [SpikingLayer([ConvSynapses(np.ones((3, 1, 3, 3), np.int16), groups=2)], 5)],
            ShapeError,
            "divide",
        ),
        (
            [SpikingLayer([ConvSynapses(W3), ConvSynapses(W3, stride=2)], 5)],
            ShapeError,
            "agree on H and W",
        ),
        (
            [SpikingLayer([ConvSynapses(W3), DenseSynapses(np.ones((2, 36), np.int16))], 5)],
            ShapeError,
            "dense groups",
        ),
        ([SpikingLayer([ConvSynapses(W3, padding=(1, 2, 3))], 5)], ConfigError, "padding"),
        ([SpikingLayer([ConvSynapses(W3, stride=(1, 0))], 5)], ConfigError, "stride"),
        ([SpikingLayer([ConvSynapses(W3)], 5, bias=np.zeros(3))], ShapeError, "bias"),
        ([SpikingLayer([PoolSynapses((7, 2), 3)], 5)], ShapeError, "kernel 7x2"),
        ([SpikingLayer([ConvSynapses(W3, channel_offset=-1)], 5)], ConfigError, "channel_offset"),
        ([SpikingLayer(ConvSynapses(W3), 5), SpikingLayer("conv", 5)], ConfigError, "synapses"),
        (
            [SpikingLayer([ConvSynapses(W3), ConvSynapses(W3)], 5, bias=np.array([2**31 - 20, 0]))],
            ConfigError,
            "accumulator",
        ),
    ],
)
def test_bad_graphs_name_the_layer_and_problem(layers, error, words):
    with pytest.raises(error) as info:
        snnfast.Network(layers, input_shape=(1, 6, 6))
    assert "layer" in str(info.value) and words in str(info.value), str(info.value)


def test_one_group_is_accepted_without_a_list():
    net = snnfast.Network([SpikingLayer(PoolSynapses(2, 5), 3)], input_shape=(1, 6, 6))
    assert net.shapes[1] == (1, 3, 3)
    with forced_kernels("portable"):
        assert net.run(np.zeros((1, 1, 6, 6), np.uint8), 2).kernels == "portable"
