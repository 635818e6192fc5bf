"""NIR in and out (snnfast.interop): the mapping, exact round trips, float graphs, bad input.

Needs the ``nir`` package (the ``interop`` extra); the cross-checks against snnTorch, Norse and
sinabs are in ``test_nir_interop.py``.
"""

from __future__ import annotations

import json
import warnings

import helpers_nir
import numpy as np
import pytest
from helpers_convert import fashion
from helpers_nir import zero_reset

import snnfast
from snnfast import cli
from snnfast.convert import ConversionConfig
from snnfast.embed import embed
from snnfast.errors import ConversionError, ModelFormatError, ShapeError
from snnfast.interop import NIRExportWarning, from_nir, input_spikes, read_nir, to_nir, write_nir

nir = pytest.importorskip("nir")

T = 16


@pytest.fixture(scope="module")
def shipped():
    return helpers_nir.shipped()


@pytest.fixture(scope="module")
def shipped_zero(shipped):
    return zero_reset(shipped)


def same_run(a, b, images, timesteps=T):
    ra, rb = a.run(images, timesteps), b.run(images, timesteps)
    assert len(ra.spike_counts) == len(rb.spike_counts)
    for l, (x, y) in enumerate(zip(ra.spike_counts, rb.spike_counts)):
        np.testing.assert_array_equal(x, y, err_msg=f"spike counts of layer {l}")
    return ra, rb


# -- export ------------------------------------------------------------------------------------


def test_export_writes_integer_units_and_metadata(shipped_zero):
    assert snnfast.to_nir is to_nir and snnfast.from_nir is from_nir
    g = to_nir(shipped_zero)
    assert isinstance(g, nir.NIRGraph)
    kinds = {k: type(n).__name__ for k, n in g.nodes.items()}
    assert kinds["input"] == "Input" and kinds["output"] == "Output"
    assert kinds["conv1"] == "IF" and kinds["conv1_conv"] == "Conv2d"
    assert kinds["pool1_sumpool"] == "SumPool2d" and kinds["fc_dense"] == "Affine"
    assert kinds["pool2_flatten"] == "Flatten"
    net = shipped_zero.network
    conv1 = net.layers[0]
    np.testing.assert_array_equal(g.nodes["conv1_conv"].weight, conv1.weight.astype(np.float32))
    np.testing.assert_array_equal(g.nodes["conv1_conv"].bias, conv1.bias.astype(np.float32))
    assert np.all(g.nodes["conv1"].v_threshold == conv1.threshold - 0.5)
    assert np.all(g.nodes["conv1"].v_reset == 0) and np.all(g.nodes["conv1"].r == 1)
    pool = net.layers[1]
    assert np.allclose(g.nodes["pool1"].v_threshold, (pool.threshold - 0.5) / pool.weight)
    meta = g.metadata
    assert meta["snnfast_semantics"] == "snnfast-integer-1" and meta["dt"] == 1e-3
    record = json.loads(meta["snnfast"])
    assert record["input_threshold"] == 255
    assert [m["snnfast_threshold"] for m in record["layers"]] == net.thresholds[1:]
    avg = to_nir(shipped_zero, pooling="avg")
    assert type(avg.nodes["pool1_avgpool"]).__name__ == "AvgPool2d"
    assert np.allclose(avg.nodes["pool1"].v_threshold, (pool.threshold - 0.5) / (4 * pool.weight))


def test_subtract_reset_exports_with_a_warning_zero_reset_without(shipped, shipped_zero):
    with pytest.warns(NIRExportWarning, match="reset by subtraction.*reset to zero"):
        to_nir(shipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_nir(shipped_zero)
    late = shipped_zero.replace(config=ConversionConfig(v_init=0.5))
    with pytest.warns(NIRExportWarning, match="v_init"):
        to_nir(late)


def test_a_subtract_reset_network_read_as_nir_spikes_differently(shipped):
    """What the export warning is about: NIR's reset to zero in place of subtraction."""
    with pytest.warns(NIRExportWarning):
        hard = from_nir(to_nir(shipped))
    images, labels = fashion("test", 1000)
    a, b = shipped.network.run(images, T), hard.network.run(images, T)
    same = np.mean(np.all(a.spike_counts[-1] == b.spike_counts[-1], axis=1))
    pa = helpers_nir.decide(a.spike_counts[-1], a.membrane[-1])
    pb = helpers_nir.decide(b.spike_counts[-1], b.membrane[-1])
    print(
        f"subtract reset read as NIR's reset to zero: identical output counts on {same:.1%}, "
        f"same class on {np.mean(pa == pb):.1%}, accuracy {np.mean(pa == labels):.1%} -> "
        f"{np.mean(pb == labels):.1%} (1,000 test images, T = {T})"
    )
    assert same < 0.5


def test_input_spikes_are_the_input_layers_spikes(shipped):
    images, _ = fashion("test", 20)
    train = input_spikes(images, T)
    assert train.shape == (T, 20, 1, 28, 28) and set(np.unique(train)) <= {0.0, 1.0}
    steps = list(range(1, T + 1))
    runs = shipped.network.run_checkpoints(images, steps, record=[0])
    counts = np.stack([r.spike_counts[0] for r in runs])  # after steps 1..T
    per_step = np.diff(np.concatenate([np.zeros_like(counts[:1]), counts]), axis=0)
    np.testing.assert_array_equal(train, per_step)
    low = input_spikes(images, 8, input_threshold=100, v_init=0.5)
    net = snnfast.Network(shipped.network.layers, (1, 28, 28), 100)
    np.testing.assert_array_equal(low.sum(0), net.run(images, 8, v_init=0.5).spike_counts[0])


# -- exact round trips -------------------------------------------------------------------------


def test_round_trip_of_the_shipped_model_is_exact(shipped_zero, tmp_path):
    images, _ = fashion("test", 300)
    back = from_nir(to_nir(shipped_zero))
    ra, rb = same_run(shipped_zero.network, back.network, images)
    for l in range(len(ra.membrane)):
        np.testing.assert_array_equal(ra.membrane[l], rb.membrane[l])
    assert back.thresholds == shipped_zero.thresholds
    assert back.layer_names == shipped_zero.layer_names
    path = tmp_path / "m.nir"
    write_nir(to_nir(shipped_zero, pooling="avg"), path)
    from_file = from_nir(path)
    same_run(shipped_zero.network, from_file.network, images)
    assert from_file.network.layers[1].groups[0].weight == shipped_zero.network.layers[1].weight


def _graph_network(seed: int, zero: bool = True) -> snnfast.Network:
    """A random layer graph: a residual addition, a concatenation, a grouped convolution, a
    pooling layer, a leaky layer, a CUBA layer and a dense output."""
    rng = np.random.default_rng(seed)

    def w(*shape, lo=-40, hi=60):
        return rng.integers(lo, hi, shape).astype(np.int16)

    reset = "zero" if zero else "subtract"
    b = lambda c: rng.integers(-20, 40, c).astype(np.int32)  # noqa: E731
    layers = [
        snnfast.SpikingLayer(
            snnfast.ConvSynapses(w(6, 1, 3, 3), padding=1), 300, b(6), reset=reset, name="a"
        ),
        snnfast.SpikingLayer(
            snnfast.ConvSynapses(w(6, 3, 3, 3), padding=1, groups=2),
            250,
            b(6),
            leak=200,
            reset=reset,
            name="b",
        ),
        snnfast.SpikingLayer(  # residual: conv of b plus identity of a
            [
                snnfast.ConvSynapses(w(6, 6, 3, 3), padding=1, source=2),
                snnfast.ConvSynapses(np.full((6, 1, 1, 1), 90, np.int16), groups=6, source=1),
            ],
            400,
            b(6),
            reset=reset,
            name="res",
        ),
        snnfast.SpikingLayer(  # concatenation: channels 0..3 from res, 4..7 from a
            [
                snnfast.ConvSynapses(w(4, 6, 1, 1), source=3),
                snnfast.ConvSynapses(w(4, 6, 3, 3), padding=1, source=1, channel_offset=4),
            ],
            200,
            b(8),
            reset=reset,
            du=1024,
            leak=300,
            name="cat",
        ),
        snnfast.SpikingLayer(snnfast.PoolSynapses(2, 17), 40, reset=reset, name="pool"),
        snnfast.SpikingLayer(
            snnfast.DenseSynapses(w(5, 8 * 6 * 6)), 500, b(5), reset=reset, name="out"
        ),
    ]
    return snnfast.Network(layers, (1, 12, 12), 255)


def test_round_trip_of_a_random_graph_is_exact(tmp_path):
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (64, 1, 12, 12)).astype(np.uint8)
    for seed in range(3):
        net = _graph_network(seed)
        g = to_nir(net)
        dests = [b for _, b in g.edges]
        assert dests.count("res") == 2 and dests.count("cat") == 2  # two edges into one neuron
        assert type(g.nodes["cat"]).__name__ == "CubaLIF" and type(g.nodes["b"]).__name__ == "LIF"
        path = tmp_path / f"g{seed}.nir"
        write_nir(g, path)
        back = from_nir(path)
        ra, rb = same_run(net, back.network, images, 24)
        assert ra.spike_counts[-1].sum() > 0 and ra.spike_counts[3].sum() > 0
        assert [l.leak for l in back.network.layers] == [l.leak for l in net.layers]
        assert back.network.layers[3].du == 1024
        assert back.network.synapse_counts() == net.synapse_counts()


# -- float graphs --------------------------------------------------------------------------


def test_requantised_import_keeps_threshold_ratios(shipped_zero):
    g = to_nir(shipped_zero)
    cfg = ConversionConfig(num_weight_bits=12, num_bias_bits=12, rounding="round")
    q = from_nir(g, config=cfg)
    for l, (old, new) in enumerate(zip(shipped_zero.network.layers, q.network.layers), start=1):
        s = q.param_scales[l]
        per = old.weight if old.kind == "avgpool2d" else 1  # a pool's weight is in its threshold
        assert new.threshold == int(np.floor(s * (old.threshold - 0.5) / per)) + 1
    images, _ = fashion("test", 500)
    a = shipped_zero.network.run(images, T).spike_counts[-1].argmax(1)
    b = q.network.run(images, T).spike_counts[-1].argmax(1)
    assert np.mean(a == b) >= 0.98


def _float_graph(v_th=1.0, pool_kind="SumPool2d", extra=None):
    """A small float NIR CNN: conv -> IF -> pool -> IF -> flatten -> affine -> IF."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (3, 4 * 5 * 5)).astype(np.float32)
    pool = getattr(nir, pool_kind)(
        kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
    )
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 12, 12])}),
        "c1": nir.Conv2d(
            input_shape=(12, 12),
            weight=w1,
            stride=1,
            padding=0,
            dilation=1,
            groups=1,
            bias=np.full(4, 0.05, np.float32),
        ),
        "n1": nir.IF(r=np.ones((4, 10, 10)), v_threshold=np.full((4, 10, 10), v_th)),
        "p": pool,
        "n2": nir.IF(r=np.ones((4, 5, 5)), v_threshold=np.full((4, 5, 5), 1.5)),
        "f": nir.Flatten(input_type={"input": np.array([4, 5, 5])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=w2, bias=np.zeros(3, np.float32)),
        "n3": nir.IF(r=np.ones(3), v_threshold=np.full(3, 1.0)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    nodes.update(extra or {})
    edges = [
        ("input", "c1"),
        ("c1", "n1"),
        ("n1", "p"),
        ("p", "n2"),
        ("n2", "f"),
        ("f", "fc"),
        ("fc", "n3"),
        ("n3", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _float_reference(g, spikes):
    """NIR's semantics of ``_float_graph`` in float64: v += r I; v > v_th fires; reset to 0."""
    from snnfast.graph import avg_pool, conv

    c1, fc = g.nodes["c1"], g.nodes["fc"]
    n = spikes.shape[1]
    v1, v2, v3 = np.zeros((n, 10, 10, 4)), np.zeros((n, 5, 5, 4)), np.zeros((n, 3))
    count = np.zeros((n, 3))
    th2 = float(g.nodes["n2"].v_threshold.reshape(-1)[0])
    th1 = float(g.nodes["n1"].v_threshold.reshape(-1)[0])
    each = 4.0 if type(g.nodes["p"]).__name__ == "SumPool2d" else 1.0
    for s in spikes.astype(np.float64):
        v1 += conv(s.transpose(0, 2, 3, 1), c1.weight.astype(np.float64), c1.bias, (1, 1))
        z1 = (v1 > th1).astype(np.float64)
        v1[z1 > 0] = 0
        v2 += avg_pool(z1, (2, 2), (2, 2)) * each
        z2 = (v2 > th2).astype(np.float64)
        v2[z2 > 0] = 0
        v3 += z2.transpose(0, 3, 1, 2).reshape(n, -1) @ fc.weight.T.astype(np.float64) + fc.bias
        z3 = v3 > 1.0
        v3[z3] = 0
        count += z3
    return count


def test_float_graph_matches_its_nir_semantics():
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (200, 1, 12, 12)).astype(np.uint8)
    spikes = input_spikes(images, 20)
    for kind in ("SumPool2d", "AvgPool2d"):
        g = _float_graph(pool_kind=kind)
        want = _float_reference(g, spikes)
        m = from_nir(
            g,
            config=ConversionConfig(
                num_weight_bits=16, num_bias_bits=16, rounding="round", clip=True
            ),
        )
        got = m.network.run(images, 20).spike_counts[-1]
        assert np.mean(np.all(got == want, axis=1)) >= 0.95, kind
        assert want.sum() > 100
        pool = m.network.layers[1].groups[0]
        assert isinstance(pool, snnfast.PoolSynapses)  # a pooling layer stays a pooling layer
        assert m.calibration.threshold_rules == ("nir",) * 3


def test_imported_model_embeds_with_every_readout():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (40, 1, 12, 12)).astype(np.uint8)
    m = from_nir(_float_graph(), calibration_images=images)
    assert m.calibration.n_images == 40
    for readout in ("spike_count", "membrane", "ann"):
        e = embed(m, images, readout, progress=False)
        assert e.vectors.shape == (40, 4 * 5 * 5)
    rates = m.graph.forward(images, [m.layer_nodes[1]])[m.layer_nodes[1]]
    counts = m.network.run(images, 64).spike_counts[1] / 64
    assert np.corrcoef(rates.reshape(-1), counts.reshape(-1))[0, 1] > 0.9  # the rate model


def test_chains_of_linear_nodes_compose():
    """Conv -> AvgPool -> Scale into one neuron equals the layers the chain stands for."""
    rng = np.random.default_rng(5)
    w = rng.integers(-3, 5, (3, 1, 3, 3)).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 10, 10])}),
        "c": nir.Conv2d(
            input_shape=(10, 10),
            weight=w,
            stride=1,
            padding=0,
            dilation=1,
            groups=1,
            bias=np.zeros(3, np.float32),
        ),
        "p": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "s": nir.Scale(scale=np.full((3, 4, 4), 2.0)),
        "n": nir.IF(r=np.ones((3, 4, 4)), v_threshold=np.full((3, 4, 4), 29.5)),
        "f": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
        "a": nir.Linear(weight=np.eye(48, dtype=np.float32)[:4]),
        "o": nir.IF(r=np.ones(4), v_threshold=np.full(4, 0.5)),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [
        ("input", "c"),
        ("c", "p"),
        ("p", "s"),
        ("s", "n"),
        ("n", "f"),
        ("f", "a"),
        ("a", "o"),
        ("o", "output"),
    ]
    m = from_nir(
        nir.NIRGraph(nodes=nodes, edges=edges, type_check=False),
        config=ConversionConfig(num_weight_bits=8, num_bias_bits=8, rounding="round"),
    )
    group = m.network.layers[0].groups[0]
    assert isinstance(group, snnfast.ConvSynapses)
    assert group.weight.shape == (3, 1, 4, 4) and tuple(group.stride) == (2, 2)
    composed = np.zeros((3, 1, 4, 4))
    for a in range(2):
        for b in range(2):
            composed[:, :, a : a + 3, b : b + 3] += 2 * w
    s = m.param_scales[1]
    np.testing.assert_allclose(group.weight, np.rint(composed * s))
    images = rng.integers(0, 256, (30, 1, 10, 10)).astype(np.uint8)
    res = m.network.run(images, 10)
    np.testing.assert_array_equal(res.spike_counts[-1], res.spike_counts[1].reshape(30, -1)[:, :4])


def test_leaky_graphs_need_a_time_step():
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Affine(weight=np.eye(4, dtype=np.float32), bias=np.zeros(4, np.float32)),
        "n": nir.LIF(
            tau=np.full(4, 0.02), r=np.full(4, 20.0), v_leak=np.zeros(4), v_threshold=np.ones(4)
        ),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    g = nir.NIRGraph(
        nodes=nodes, edges=[("input", "a"), ("a", "n"), ("n", "output")], type_check=False
    )
    with pytest.raises(ConversionError, match="n \\(nir.LIF\\).*no time step.*dt="):
        from_nir(g)
    m = from_nir(g, dt=1e-3)
    assert m.network.layers[0].leak == round(4096 * 1e-3 / 0.02)
    assert m.network.input_shape == (4, 1, 1)


# -- bad input ---------------------------------------------------------------------------------


def test_truncated_and_foreign_files_are_model_format_errors(shipped_zero, tmp_path):
    path = tmp_path / "m.nir"
    write_nir(to_nir(shipped_zero), path)
    data = path.read_bytes()
    cut = tmp_path / "cut.nir"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="cut.nir.*truncated or damaged"):
        from_nir(cut)
    foreign = tmp_path / "foreign.nir"
    foreign.write_bytes(b"PK\x03\x04 not a NIR file at all")
    with pytest.raises(ModelFormatError, match="not a NIR file"):
        from_nir(foreign)
    with pytest.raises(ModelFormatError, match="no such NIR file"):
        read_nir(tmp_path / "missing.nir")
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(ModelFormatError, match="not a readable NIR graph"):
        from_nir(other)


def test_a_damaged_snnfast_graph_is_refused(shipped_zero, tmp_path):
    g = to_nir(shipped_zero)
    g.nodes["conv1_conv"].weight = g.nodes["conv1_conv"].weight + 1
    with pytest.raises(ModelFormatError, match="checksum"):
        from_nir(g)


def test_unknown_nodes_are_conversion_errors_naming_them():
    g = _float_graph(
        extra={
            "n1": nir.LI(
                tau=np.ones((4, 10, 10)), r=np.ones((4, 10, 10)), v_leak=np.zeros((4, 10, 10))
            )
        }
    )
    with pytest.raises(ConversionError, match="n1 \\(nir.LI\\): is a leaky integrator") as exc:
        from_nir(g)
    assert exc.value.node == "n1" and exc.value.op == "nir.LI"
    g = _float_graph(extra={"n1": nir.Delay(delay=np.ones((4, 10, 10)))})
    with pytest.raises(ConversionError, match="n1 \\(nir.Delay\\)"):
        from_nir(g)
    g = _float_graph()
    g.edges.append(("n3", "c1"))
    with pytest.raises(ConversionError, match="recurrent loop"):
        from_nir(g)


def test_shape_mismatches_are_shape_errors_naming_the_node():
    bad_fc = nir.Affine(weight=np.zeros((3, 99), np.float32), bias=np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match="'fc' \\(nir.Affine\\): weight expects 99 inputs.*100"):
        from_nir(_float_graph(extra={"fc": bad_fc}))
    bad_if = nir.IF(r=np.ones((4, 6, 6)), v_threshold=np.ones((4, 6, 6)))
    with pytest.raises(ShapeError, match="'n2' \\(nir.IF\\): v_\\w+ has shape"):
        from_nir(_float_graph(extra={"n2": bad_if}))
    bad_out = nir.Output(output_type={"output": np.array([7])})
    with pytest.raises(ShapeError, match="'output' \\(nir.Output\\) declares shape \\(7,\\)"):
        from_nir(_float_graph(extra={"output": bad_out}))
    g = _float_graph()
    g.edges.append(("ghost", "n1"))
    with pytest.raises(ModelFormatError, match="missing node 'ghost'"):
        from_nir(g)


def test_export_refuses_what_nir_cannot_express():
    pad = snnfast.SpikingLayer(
        snnfast.ConvSynapses(np.ones((2, 1, 2, 2), np.int16), padding=(0, 1, 0, 1)), 5, reset="zero"
    )
    with pytest.raises(ConversionError, match="asymmetrically"):
        to_nir(snnfast.Network([pad], (1, 6, 6)))
    cuba = snnfast.Conv2d(
        np.ones((2, 1, 3, 3), np.int16), np.zeros(2, np.int32), 5, du=100, reset="zero"
    )
    with pytest.raises(ConversionError, match="dv = 0 with a current register"):
        to_nir(snnfast.Network([cuba], (1, 6, 6)))


# -- the command line --------------------------------------------------------------------------


def test_cli_export_and_import(shipped_zero, tmp_path, capsys):
    model = tmp_path / "m.npz"
    shipped_zero.save(model)
    out = tmp_path / "m.nir"
    assert cli.main(["export-nir", str(model), str(out)]) == 0
    assert "NIR nodes" in capsys.readouterr().out
    back = tmp_path / "back.npz"
    assert cli.main(["import-nir", str(out), "--out", str(back)]) == 0
    images, _ = fashion("test", 100)
    same_run(shipped_zero.network, snnfast.ConvertedModel.load(back).network, images)
    (tmp_path / "bad.nir").write_bytes(b"nothing")
    assert cli.main(["import-nir", str(tmp_path / "bad.nir"), "--out", str(back)]) == 2
    assert "not a NIR file" in capsys.readouterr().err


def test_cli_export_prints_the_reset_warning(shipped, tmp_path, capsys):
    model = tmp_path / "m.npz"
    shipped.save(model)
    assert cli.main(["export-nir", str(model), str(tmp_path / "m.nir"), "--pooling", "avg"]) == 0
    assert "reset by subtraction" in capsys.readouterr().err
