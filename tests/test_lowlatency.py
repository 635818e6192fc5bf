"""Low-latency options: v_init, threshold balancing, QCFS training and conversion, readouts,
early exit, and the variant report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers_convert import fashion, random_state

import snnfast
from snnfast import ann, qcfs
from snnfast.ann import Architecture
from snnfast.convert import ConversionConfig, ConvertedModel, convert
from snnfast.embed import embed, embed_readouts
from snnfast.errors import ConfigError, ModelFormatError
from snnfast.evaluation import ann_embeddings
from snnfast.paper.lowlatency import lowlatency_report, standard_variants
from snnfast.settings import RunSettings
from snnfast.variants import Variant, select_early_exit

TINY = Architecture.parse("4-8-10")


@pytest.fixture(scope="module")
def tiny() -> tuple[dict[str, np.ndarray], np.ndarray, ConvertedModel]:
    state = random_state(TINY, seed=1)
    x, _ = fashion("train", 300)
    return state, x, convert(state, TINY, calibration_images=x)


def toy_state() -> dict[str, np.ndarray]:
    """Arch 1-2 with exactly representable parameters (as in test_convert)."""
    fc = np.full((2, 144), 0.125, dtype=np.float32)
    fc[1] = -0.125
    return {
        "conv1.weight": np.full((1, 1, 5, 5), 0.0625, dtype=np.float32),
        "conv1.bias": np.array([0.25], dtype=np.float32),
        "fc.weight": fc,
        "fc.bias": np.array([2.0**-6, -(2.0**-6)], dtype=np.float32),
    }


# -- v_init -----------------------------------------------------------------------------------


def test_v_init_starts_at_half_threshold_and_is_the_models_run_setting(tiny) -> None:
    state, x, plain = tiny
    half = convert(state, TINY, calibration_images=x, config=ConversionConfig(v_init=0.5))
    assert plain.settings.v_init == 0.0 and half.settings.v_init == 0.5
    assert plain.settings.v_init == 0.0 and half.settings.v_init == 0.5
    # the conversion itself does not depend on v_init (only balancing runs the SNN)
    assert half.thresholds == plain.thresholds
    # a neuron with bias b and no input ends one sub-threshold step at floor(v_init * th) + b
    th, b = 1000, 7
    net = snnfast.Network(
        [snnfast.Dense(np.zeros((1, 784), np.int16), np.array([b], np.int32), th)], (1, 28, 28), 255
    )
    img = np.zeros((1, 1, 28, 28), np.uint8)
    for v_init in (0.0, 0.5, 0.75):
        res = net.run(img, timesteps=1, v_init=v_init)
        assert res.membrane[1][0, 0] == math.floor(v_init * th) + b
    # embed uses the model's v_init unless told otherwise
    imgs = fashion("test", 20)[0]
    by_default = embed(half, imgs, "spike_count", timesteps=4, progress=False)
    explicit = embed(half, imgs, "spike_count", RunSettings(timesteps=4, v_init=0.5))
    zero = embed(half, imgs, "spike_count", RunSettings(timesteps=4, v_init=0.0))
    np.testing.assert_array_equal(by_default.vectors, explicit.vectors)
    assert not np.array_equal(by_default.vectors, zero.vectors)
    # half-threshold start rounds: more spikes than truncation in a short run
    assert by_default.vectors.sum() > zero.vectors.sum()


def test_bad_low_latency_config() -> None:
    for kw in (
        {"v_init": 1.0},
        {"v_init": -0.1},
        {"threshold_balancing": "max"},
        {"balance_timesteps": 0},
        {"balance_percentile": 0.0},
    ):
        with pytest.raises(ConfigError):
            ConversionConfig(**kw)


# -- threshold balancing ----------------------------------------------------------------------


def _integrated(
    model: ConvertedModel, layer: int, images: np.ndarray, steps: int, v_init: float
) -> np.ndarray:
    """Mean input per step of ``layer`` in the SNN, measured independently of convert()."""
    res = model.network.run(images, steps, v_init=v_init, record=[layer])
    th = model.thresholds[layer]
    total = (
        res.spike_counts[layer].astype(np.int64) * th
        + res.membrane[layer]
        - math.floor(v_init * th)
    )
    return np.maximum(total, 0) / steps


def test_spike_norm_thresholds_are_the_snn_input_percentile(tiny) -> None:
    state, x, plain = tiny
    cfg = ConversionConfig(
        v_init=0.5, threshold_balancing="spike-norm", balance_timesteps=6, balance_percentile=99.0
    )
    m = convert(state, TINY, calibration_images=x, config=cfg)
    assert list(m.calibration.threshold_rules) == ["spike-norm"] * 5
    assert m.thresholds != plain.thresholds
    for layer in range(1, m.network.n_layers + 1):
        # the input of a layer does not depend on its own threshold: measure it in m itself
        u = _integrated(m, layer, x, 6, 0.5)
        assert m.thresholds[layer] == max(1, int(np.percentile(u, 99.0))), layer
    # the next layer's bias follows the balanced threshold through the slope
    slope = m.slopes[2]  # after conv1, pool1
    conv2 = m.network.layers[2]
    b = state["conv2.bias"].astype(np.float64) * slope * m.param_scales[3]
    np.testing.assert_array_equal(conv2.bias, np.trunc(b).astype(np.int64))


def test_mse_thresholds_minimise_the_coding_error(tiny) -> None:
    state, x, plain = tiny
    x = x[:100]  # few enough neuron-image values that the search scores all of them
    steps = 4
    m = convert(
        state,
        TINY,
        calibration_images=x,
        config=ConversionConfig(v_init=0.5, threshold_balancing="mse", balance_timesteps=steps),
    )
    assert list(m.calibration.threshold_rules) == ["mse"] * 5

    def error(u: np.ndarray, th: int) -> float:
        counts = np.clip(np.floor((u * steps + math.floor(0.5 * th)) / th), 0, steps)
        return float(np.mean((th * counts / steps - u) ** 2))

    for layer in range(1, m.network.n_layers + 1):
        u = _integrated(m, layer, x, steps, 0.5)
        best = m.thresholds[layer]
        # no worse than the percentile rules or a nearby threshold
        for other in (
            plain.thresholds[layer],
            int(np.percentile(u, 99.9)),
            int(np.percentile(u, 99.0)),
            int(best * 1.1) + 1,
            max(1, int(best * 0.9)),
        ):
            assert error(u, best) <= error(u, max(other, 1)) * (1 + 1e-9), (layer, other)
    # balanced at T = 4 beats Algorithm 1's thresholds at T = 4 in agreement with the ANN
    test = fashion("test", 200)[0]
    ann_pred = ann.predict(TINY, state, test)
    agree = [
        np.mean(
            embed(model, test, settings=RunSettings(timesteps=steps, v_init=0.5)).predictions
            == ann_pred
        )
        for model in (plain, m)
    ]
    assert agree[1] > agree[0]


# -- QCFS -------------------------------------------------------------------------------------


def test_quantize_is_on_the_level_grid() -> None:
    x = np.linspace(-1, 5, 601)
    for levels, lam in ((4, 2.0), (8, 0.7), (1, 3.0)):
        q = qcfs.quantize(x, lam, levels)
        steps = q / (lam / levels)
        np.testing.assert_allclose(steps, np.rint(steps), atol=1e-5)
        assert q.min() == 0 and q.max() == pytest.approx(lam)
        assert len(np.unique(np.round(steps))) == levels + 1
        # round to nearest level within [0, lam]
        inside = (x > 0) & (x < lam)
        assert np.all(np.abs(q[inside] - x[inside]) <= lam / levels / 2 + 1e-6)
    # the input quantiser is the input neuron's count after T = L steps from half threshold
    p = np.arange(256)
    for steps in (4, 8):
        counts = (steps * p + math.floor(0.5 * 255)) // 255
        np.testing.assert_allclose(qcfs.quantize_input(p / 255.0, steps) * steps, counts, atol=1e-5)


def test_torch_activation_values_and_straight_through_gradient() -> None:
    torch = pytest.importorskip("torch")
    act = qcfs.torch_activation(4, 2.0)
    x = torch.tensor([-1.0, 0.1, 0.3, 0.9, 1.3, 1.9, 2.5, 4.0], requires_grad=True)
    y = act(x)
    np.testing.assert_allclose(y.detach().numpy(), qcfs.quantize(x.detach().numpy(), 2.0, 4))
    y.sum().backward()
    inside = (x > 0) & (x < 2.0)
    # the floor passes the gradient straight through inside (0, lam); clip stops it outside
    np.testing.assert_array_equal(x.grad.numpy(), inside.numpy().astype(np.float32))
    # d h / d lam: q - x / lam inside (q the quantised x / lam), 1 above, 0 below
    q = np.floor(np.clip(x.detach().numpy() / 2.0, 0, 1) * 4 + 0.5) / 4
    want = np.where(inside.numpy(), q - x.detach().numpy() / 2.0, (x > 2.0).numpy() * 1.0)
    assert act.lam.grad.item() == pytest.approx(want.sum(), abs=1e-5)


def test_init_scales_sets_percentiles_in_order() -> None:
    torch = pytest.importorskip("torch")
    from snnfast.train import build_torch_model

    torch.manual_seed(0)
    model = build_torch_model(TINY, 0.0, qcfs_levels=4, qcfs_input=True)
    x = torch.rand(64, 1, 28, 28)
    qcfs.init_scales(model, x)
    assert model.quant_input.lam.item() == 1.0  # fixed, not trainable, not in the state dict
    assert "quant_input.lam" not in model.state_dict()
    with torch.no_grad():
        h = model.quant_input(x)
        pre = model.conv1(h)
    want = np.percentile(torch.relu(pre).numpy(), qcfs.INIT_PERCENTILE)
    assert model.act["conv1"].lam.item() == pytest.approx(want, rel=1e-5)
    assert all(model.act[n].lam.item() > 0 for n in qcfs.scaled_layers(TINY))


def test_numpy_qcfs_forward_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    from snnfast.train import build_torch_model

    torch.manual_seed(1)
    model = build_torch_model(TINY, 0.5, qcfs_levels=4, qcfs_input=True).eval()
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(40, 1, 28, 28), dtype=np.uint8)
    qcfs.init_scales(model, torch.from_numpy(x.astype(np.float32) / 255))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    state = {k: v for k, v in sd.items() if not k.startswith("act.")}
    spec = qcfs.QCFSSpec(4, {n: float(sd[f"act.{n}.lam"]) for n in qcfs.scaled_layers(TINY)}, 4)
    with torch.no_grad():
        want = model(torch.from_numpy(x.astype(np.float32) / 255)).numpy()
    got = qcfs.forward(TINY, state, spec, x)
    assert len(got) == len(TINY.layers)
    # a value sitting exactly on a rounding boundary may flip by one level: compare logits
    close = np.isclose(got[-1], want, atol=1e-3, rtol=1e-3).all(axis=1)
    assert close.mean() >= 0.95
    np.testing.assert_array_equal(qcfs.forward(TINY, state, spec, x, [1])[0], got[1])
    for i, d in enumerate(TINY.layers[:-1]):
        levels = got[i] / (spec.scales[d.name] / 4)
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-4)


def test_spec_metadata_round_trip_and_damage(tmp_path) -> None:
    spec = qcfs.QCFSSpec(4, {n: 0.5 + i for i, n in enumerate(qcfs.scaled_layers(TINY))}, 4)
    path = tmp_path / "m.npz"
    ann.save_model(path, TINY, random_state(TINY), {qcfs.METADATA_KEY: spec.metadata()})
    arch, _, loaded, _ = qcfs.load(path)
    assert arch == TINY and loaded == spec
    ann.save_model(path, TINY, random_state(TINY), {})
    assert qcfs.load(path)[2] is None
    for bad in (
        {"levels": 4},
        {"levels": 0, "scales": spec.metadata()["scales"]},
        {"levels": 4, "scales": {"conv1": -1.0}},
        {"levels": 4, "scales": {"conv1": 1.0}},
    ):
        ann.save_model(path, TINY, random_state(TINY), {qcfs.METADATA_KEY: bad})
        with pytest.raises(ModelFormatError):
            qcfs.load(path)
    with pytest.raises(ConfigError):
        qcfs.QCFSSpec(4, {"conv1": float("nan")})


def test_qcfs_conversion_uses_lambda_by_hand() -> None:
    white = np.full((3, 1, 28, 28), 255, dtype=np.uint8)
    m = convert(
        toy_state(), "1-2", calibration_images=white, activation_scales={"conv1": 2.0, "pool1": 1.0}
    )
    assert list(m.calibration.threshold_rules) == ["scale", "scale", "percentile"]
    assert m.calibration.activation_scales == {"conv1": 2.0, "pool1": 1.0}
    # conv1: param_scale 1020, slope 1 -> threshold = 2.0 * 1020 = 2040 (Algorithm 1: 1830)
    assert m.network.layers[0].threshold == 2040
    # pool1: param_scale 1020, slope 1020 / 2040 -> threshold = 1.0 * 1020 * 0.5 = 510
    assert m.network.layers[1].threshold == 510
    # slope after pool1 = 0.5 * 1020 / 510 = 1 = 1 / lam: spike rate = activation / lam
    assert m.slopes[2] == pytest.approx(1.0)
    # fc: bias 2^-6 * 1 * 2040 = 31.875 -> 31
    assert m.network.layers[2].bias.tolist() == [31, -31]
    for bad in ({"fc": 1.0}, {"conv9": 1.0}, {"conv1": 0.0}):
        with pytest.raises(ConfigError):
            convert(toy_state(), "1-2", calibration_images=white, activation_scales=bad)


def test_qcfs_snn_counts_match_the_quantised_ann() -> None:
    """At T = L from half threshold, the first layer's spike counts are the QCFS levels."""
    state = random_state(TINY, seed=5)
    names = qcfs.scaled_layers(TINY)
    spec = qcfs.QCFSSpec(4, dict(zip(names, (0.6, 0.4, 0.5, 0.3))), 4)
    x, _ = fashion("train", 100)
    m = convert(
        state,
        TINY,
        calibration_images=x,
        activation_scales=spec.scales,
        config=ConversionConfig(v_init=0.5, rounding="round", num_weight_bits=14, num_bias_bits=24),
    )
    res = m.network.run(x, 4, v_init=0.5, record=[0, 1])
    # the input neurons emit exactly the quantised input
    np.testing.assert_allclose(
        res.spike_counts[0] / 4, qcfs.quantize_input(x / 255.0, 4), atol=1e-6
    )
    conv1 = qcfs.forward(TINY, state, spec, x, [0])[0]
    levels = np.rint(conv1 / (spec.scales["conv1"] / 4))
    # the integer weights round the float ones, and spike trains are not constant inputs:
    # almost every neuron matches, the rest by one level
    diff = np.abs(res.spike_counts[1] - levels)
    assert (diff == 0).mean() > 0.95 and (diff <= 1).mean() > 0.999


# -- readouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("v_init", [0.0, 0.5])
def test_integrated_readout_is_count_times_threshold_plus_membrane(tiny, v_init) -> None:
    _, _, m = tiny
    x = fashion("test", 30)[0]
    emb = m.embedding_layer
    res = m.network.run(x, 6, v_init=v_init)
    th = m.thresholds[emb]
    want = (
        res.spike_counts[emb].astype(np.int64) * th + res.membrane[emb] - math.floor(v_init * th)
    ).reshape(30, -1)
    np.testing.assert_array_equal(res.integrated_input(emb, th).reshape(30, -1), want)
    many = embed_readouts(m, x, settings=RunSettings(timesteps=6, v_init=v_init), batch_size=7)
    np.testing.assert_array_equal(many["integrated"].vectors, want.astype(np.float32))
    for r in ("membrane", "spike_count"):
        one = embed(m, x, r, RunSettings(timesteps=6, v_init=v_init))
        np.testing.assert_array_equal(many[r].vectors, one.vectors)
        np.testing.assert_array_equal(many[r].predictions, one.predictions)
        assert many[r].meta.readout == r
    # the integrated input is the sum of the layer's inputs: the same whatever the threshold
    # of the layer itself
    with pytest.raises(ConfigError):
        embed_readouts(m, x, ("membrane", "membrane"), progress=False)
    with pytest.raises(ConfigError):
        embed_readouts(m, x, ("ann", "weights"), progress=False)


def test_integrated_input_does_not_depend_on_the_layers_threshold() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-40, 60, size=(5, 784)).astype(np.int16)
    b = rng.integers(-5, 10, size=5).astype(np.int32)
    x = rng.integers(0, 256, size=(8, 1, 28, 28), dtype=np.uint8)
    totals = []
    for th in (500, 3000, 100000):
        net = snnfast.Network([snnfast.Dense(w, b, th)], (1, 28, 28), 255)
        totals.append(net.run(x, 7, v_init=0.5).integrated_input(1, th))
    np.testing.assert_array_equal(totals[0], totals[1])
    np.testing.assert_array_equal(totals[0], totals[2])


# -- early exit -------------------------------------------------------------------------------


def _region_classifier() -> tuple[snnfast.Network, np.ndarray, np.ndarray]:
    """Class c lights rows 2c..2c+1; output c sums them: an unambiguous decision at step 1."""
    w = np.zeros((10, 1, 28, 28), np.int16)
    for c in range(10):
        w[c, 0, 2 * c : 2 * c + 2] = 10
    net = snnfast.Network(
        [snnfast.Dense(w.reshape(10, -1), np.zeros(10, np.int32), 50)], (1, 28, 28), 255
    )
    labels = np.arange(40) % 10
    x = np.zeros((40, 1, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        x[i, 0, 2 * c : 2 * c + 2] = 255
    return net, x, labels


def test_early_exit_stops_easy_inputs_and_keeps_their_predictions() -> None:
    from snnfast.embed import predict_from_output

    net, x, labels = _region_classifier()
    full = net.run(x, 16, v_init=0.5)
    early = net.run(x, 16, v_init=0.5, early_exit=3)
    assert np.all(full.steps == 16)
    # the input spikes at step 1 (half threshold start), the decision is stable from then on
    assert early.steps.mean() < 16 and np.all(early.steps <= 4)
    for res in (full, early):
        np.testing.assert_array_equal(
            predict_from_output(res.spike_counts[1], res.membrane[1]), labels
        )
    assert early.synops.sum() < full.synops.sum()


def test_select_early_exit_and_embed_report_steps(tiny) -> None:
    state, x, _ = tiny
    m = convert(state, TINY, calibration_images=x, config=ConversionConfig(v_init=0.5))
    val, y = fashion("train", 300)
    ann_labels = ann.predict(TINY, state, val)  # a random network: score against the ANN
    k = select_early_exit(m, val, ann_labels, 12, tolerance=0.02)
    full = embed(m, val, timesteps=12, progress=False)
    acc_full = np.mean(full.predictions == ann_labels)
    if k is not None:
        assert 1 <= k < 12
        e = embed(m, val, settings=m.settings.replace(timesteps=12, early_exit=k))
        assert np.mean(e.predictions == ann_labels) >= acc_full - 0.02
        assert e.steps.mean() < 12 and e.steps.max() <= 12
        if k > 1:  # k - 1 was not good enough
            e1 = embed(m, val, settings=m.settings.replace(timesteps=12, early_exit=k - 1))
            assert np.mean(e1.predictions == ann_labels) < acc_full - 0.02
    assert np.all(full.steps == 12)
    with pytest.raises(ConfigError):
        select_early_exit(m, val, ann_labels, 12, tolerance=1.5)


# -- report -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qcfs_model(tmp_path_factory) -> str:
    pytest.importorskip("torch")
    from snnfast.train import train

    r = train(
        "4-8-10",
        epochs=1,
        limit=300,
        batch_size=32,
        threads=1,
        warmup_epochs=0.5,
        lr=0.01,
        weight_decay=0.0,
        qcfs_levels=4,
        qcfs_input=True,
        progress=False,
    )
    assert r.qcfs is not None and r.qcfs.levels == 4 and r.qcfs.input_levels == 4
    assert set(r.state) == set(TINY.state_shapes())
    x, y = fashion("test", 300)
    assert r.test_accuracy == pytest.approx(np.mean(qcfs.predict(TINY, r.state, r.qcfs, x) == y))
    path = tmp_path_factory.mktemp("q") / "q.npz"
    r.save(path)
    return str(path)


def test_standard_variants(qcfs_model) -> None:
    names = [v.name for v in standard_variants([qcfs_model])]
    assert names == [
        "faithful",
        "+v_init 0.5",
        "+round",
        "+threshold balancing",
        "QCFS L=4",
        "QCFS L=4 + early exit",
    ]
    with pytest.raises(ConfigError):
        standard_variants([ann.SHIPPED_MODEL])
    with pytest.raises(ConfigError):
        Variant("x", readout="ann")
    with pytest.raises(ConfigError):
        Variant("x", early_exit=0)


def test_lowlatency_report_small(qcfs_model, tmp_path) -> None:
    variants = [
        Variant("faithful"),
        Variant(
            "qcfs", ConversionConfig(v_init=0.5, rounding="round"), qcfs_model, "integrated", "auto"
        ),
    ]
    doc = lowlatency_report(
        tmp_path,
        variants,
        (4, 8),
        n_train=300,
        n_test=60,
        calibration_size=100,
        validation_size=100,
        energy_images=10,
        latency_repeats=3,
        recall_queries=20,
        threads=1,
        progress=False,
        command="pytest",
    )
    assert [(r.variant, r.timesteps) for r in doc.rows] == [
        ("faithful", 4),
        ("faithful", 8),
        ("qcfs", 4),
        ("qcfs", 8),
    ]
    assert len(doc.ann) == 2 and doc.ann[1].qcfs["levels"] == 4
    for row in doc.rows:
        assert set(row.readouts) == {"membrane", "spike_count", "integrated"}
        assert row.loihi_energy_j > 0 and row.engine_latency_s > 0
        assert 1 <= row.mean_steps <= row.timesteps
    q = [r for r in doc.rows if r.variant == "qcfs"]
    assert all(r.threshold_rules[:4] == ["scale"] * 4 for r in q)
    assert q[0].v_init == 0.5
    on_disk = json.loads((tmp_path / "lowlatency.json").read_text())
    assert on_disk["rows"] == doc.to_json()["rows"]
    assert type(doc).from_json(on_disk) == doc
    md = (tmp_path / "lowlatency.md").read_text()
    assert "| qcfs | 8 | integrated |" in md and "## Goals" in md and "pytest" in md
    # the QCFS ANN row uses the quantised forward pass
    arch, state, spec, _ = qcfs.load(qcfs_model)
    x, y = fashion("test", 60)
    model = convert(state, arch, calibration_images=x, activation_scales=spec.scales)
    e = ann_embeddings(model, x, spec)
    assert doc.ann[1].classification == pytest.approx(np.mean(e.predictions == y))
    np.testing.assert_array_equal(e.predictions, qcfs.predict(arch, state, spec, x))


def test_recipe_qcfs_fields_are_checked() -> None:
    from snnfast.train import Recipe

    assert Recipe().qcfs_levels is None and Recipe().qcfs_input is False  # the paper's ReLU
    for bad in (
        {"qcfs_levels": 0},
        {"qcfs_levels": 2.0},
        {"qcfs_input": True},
        {"qcfs_levels": 4, "qcfs_input": 1},
    ):
        with pytest.raises(ConfigError):
            Recipe(**bad)


def test_cli_converts_a_qcfs_model_with_its_thresholds(qcfs_model, tmp_path) -> None:
    from snnfast import cli

    out = tmp_path / "c.npz"
    assert (
        cli.main(
            [
                "-q",
                "convert",
                qcfs_model,
                "--out",
                str(out),
                "--v-init",
                "0.5",
                "--rounding",
                "round",
                "--calibration-size",
                "100",
            ]
        )
        == 0
    )
    m = ConvertedModel.load(out)
    assert m.settings.v_init == 0.5 and m.config.rounding == "round"
    assert list(m.calibration.threshold_rules) == ["scale"] * 4 + ["percentile"]
    spec = qcfs.load(qcfs_model)[2]
    assert m.calibration.activation_scales == pytest.approx(dict(spec.scales))


def test_cli_lowlatency(tmp_path, capsys) -> None:
    from snnfast import cli

    out = tmp_path / "ll"
    assert (
        cli.main(
            [
                "-q",
                "lowlatency",
                str(out),
                "--qcfs-model",
                "--timesteps",
                "4",
                "--n-train",
                "200",
                "--n-test",
                "30",
                "--energy-images",
                "5",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    doc = json.loads((out / "lowlatency.json").read_text())
    assert [r["variant"] for r in doc["rows"]] == [
        "faithful",
        "+v_init 0.5",
        "+round",
        "+threshold balancing",
    ]
    assert doc["settings"]["command"] == (
        f"snnfast lowlatency {out} --qcfs-model --timesteps 4 --energy-images 5 --n-train 200 "
        f"--n-test 30 --threads 1"
    )
    assert str(out / "lowlatency.md") in capsys.readouterr().out


def test_pipeline_refuses_a_qcfs_model(qcfs_model) -> None:
    from snnfast.paper.table2 import run_pipeline

    with pytest.raises(ConfigError, match="QCFS"):
        run_pipeline(qcfs_model, n_train=50, n_test=10, progress=False)
