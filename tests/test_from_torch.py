"""Converting any PyTorch CNN: residual, depthwise, grouped, concatenated graphs end to end."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_convert import fashion

import snnfast
from snnfast.convert import ConversionConfig
from snnfast.embed import embed
from snnfast.errors import ConversionError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from snnfast.torch_graph import from_torch  # noqa: E402


def _rand_model(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


class Residual(nn.Module):
    def __init__(self, c: int = 4, project: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, 2 * c if project else c, 3, stride=2 if project else 1, padding=1)
        self.short = nn.Conv2d(c, 2 * c, 1, stride=2) if project else nn.Identity()
        self.pool = nn.AvgPool2d(7 if project else 14)
        self.fc = nn.Linear((2 * c if project else c) * 4, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        out = self.b(F.relu(self.bn(self.a(x))))
        out = F.relu(out + self.short(x))
        return self.fc(torch.flatten(self.pool(out), 1))


def _groups(layer):
    return layer.as_spiking_layer().groups


@pytest.mark.parametrize("project", [False, True])
def test_residual_block_becomes_one_layer_of_two_groups(project) -> None:
    calib, _ = fashion("train", 200)
    m = from_torch(_rand_model(Residual(project=project)), calib)
    names = list(m.layer_names)
    add = names.index("add")
    groups = _groups(m.network.layers[add - 1])
    assert len(groups) == 2
    main, skip = groups
    assert main.source == add - 1 and skip.source == names.index("stem")
    if project:
        assert skip.weight.shape == (8, 4, 1, 1) and skip.stride == (2, 2)
    else:  # an identity: a depthwise 1x1 group of one weight per channel
        assert skip.groups == 4 and skip.weight.shape == (4, 1, 1, 1)
        # Algorithm 1 across sources: weight 1 times slope(main source) / slope(skip source)
        ratio = m.slopes[main.source] / m.slopes[skip.source]
        want = m.config.quantize(ratio * m.param_scales[add])
        np.testing.assert_array_equal(skip.weight.reshape(-1), np.full(4, want))
    res = m.network.run(fashion("test", 5)[0], 16)
    assert res.synops[:, add].sum() > 0


def test_trained_residual_net_keeps_its_accuracy() -> None:
    from snnfast.train import FitOptions, fit

    x, y = fashion("train", 4000)
    xq, yq = fashion("test", 1000)
    torch.manual_seed(0)
    model = Residual(c=8)
    xt = torch.from_numpy(x.astype(np.float32) / 255)
    xv = xq.astype(np.float32) / 255
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state, _, _ = fit(
            model,
            xt,
            y,
            xv,
            yq,
            [{"params": list(model.parameters())}],
            FitOptions(4, 64, 1e-2, 0.01, 0.5, 0),
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    model.eval()
    m = from_torch(model, x[:500], config=ConversionConfig(v_init=0.5, rounding="round"))
    ann = embed(m, xq, "ann").predictions
    snn = embed(m, xq, "spike_count", timesteps=64).predictions
    acc_ann, acc_snn = (ann == yq).mean(), (snn == yq).mean()
    assert acc_ann > 0.65  # it learned something (0.722 when written)
    assert acc_snn >= acc_ann - 0.02, (acc_ann, acc_snn)


def test_depthwise_and_grouped_convolutions_stay_grouped() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, groups=6),
        nn.ReLU(),
        nn.Conv2d(6, 4, 1, groups=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 24 * 24, 10),
    )
    calib, _ = fashion("train", 100)
    m = from_torch(_rand_model(model), calib)
    dw, grouped = (_groups(m.network.layers[i])[0] for i in (1, 2))
    assert dw.groups == 6 and dw.weight.shape == (6, 1, 3, 3)
    assert grouped.groups == 2 and grouped.weight.shape == (4, 3, 1, 1)
    counts = m.network.synapse_counts()
    assert counts[2] == 6 * 24 * 24 * 9 and counts[3] == 4 * 24 * 24 * 3


class Inception(nn.Module):
    def __init__(self, union: bool) -> None:
        super().__init__()
        self.union = union
        self.stem = nn.Conv2d(1, 3, 3)
        self.b1 = nn.Conv2d(3, 2, 1)
        self.b2 = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(6 * 26 * 26, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        if self.union:
            y = F.relu(torch.cat([self.b1(x), self.b2(x)], 1))
        else:
            y = torch.cat([F.relu(self.b1(x)), F.relu(self.b2(x))], 1)
        return self.fc(torch.flatten(y, 1))


def test_concatenation_of_activations_splits_the_reader() -> None:
    calib, _ = fashion("train", 100)
    m = from_torch(_rand_model(Inception(union=False)), calib)
    assert m.network.n_layers == 4  # stem, b1, b2, fc
    fc = _groups(m.network.layers[-1])
    assert [g.source for g in fc] == [2, 3] and [g.weight.shape for g in fc] == [
        (10, 2 * 676),
        (10, 4 * 676),
    ]
    assert m.embedding_layers == (2, 3)
    e = embed(m, fashion("test", 4)[0], "spike_count", timesteps=8)
    assert e.vectors.shape == (4, 6 * 676)


def test_concatenation_before_the_activation_is_one_union_layer() -> None:
    calib, _ = fashion("train", 100)
    m = from_torch(_rand_model(Inception(union=True)), calib)
    assert m.network.n_layers == 3  # stem, the union, fc
    union = _groups(m.network.layers[1])
    assert [g.channel_offset for g in union] == [0, 2] and m.network.shapes[2] == (6, 26, 26)


def test_normalisation_folds_into_the_first_layer_exactly() -> None:
    mean, std = 0.3, 0.2
    torch.manual_seed(1)
    conv, fc = nn.Conv2d(1, 3, 3), nn.Linear(3 * 26 * 26, 10)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc).eval()
    folded = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 26 * 26, 10)
    ).eval()
    with torch.no_grad():
        folded[0].weight.copy_(conv.weight / std)
        folded[0].bias.copy_(conv.bias - conv.weight.sum((1, 2, 3)) * mean / std)
        folded[3].load_state_dict(fc.state_dict())
    calib, _ = fashion("train", 100)
    a = from_torch(model, calib, normalize=(mean, std))
    b = from_torch(folded, calib)
    assert a.thresholds == b.thresholds
    np.testing.assert_array_equal(a.network.layers[0].weight, b.network.layers[0].weight)
    assert np.abs(a.network.layers[0].bias.astype(int) - b.network.layers[0].bias).max() <= 1


@pytest.mark.parametrize(
    "make, node, fix",
    [
        (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)), "1", "ReLU between"),
        (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.ReLU()), "1", "before"),
    ],
)
def test_layer_patterns_without_spiking_form_are_refused(make, node, fix) -> None:
    calib, _ = fashion("train", 20)
    with pytest.raises(ConversionError, match=fix) as info:
        from_torch(_rand_model(make()), calib)
    assert info.value.node == node


def test_converted_graph_models_save_and_load(tmp_path) -> None:
    calib, _ = fashion("train", 100)
    m = from_torch(_rand_model(Residual(project=True)), calib)
    m.save(tmp_path / "m.npz")
    m2 = snnfast.ConvertedModel.load(tmp_path / "m.npz")
    assert m2.model_id() == m.model_id() and m2.layer_names == m.layer_names
    x, _ = fashion("test", 6)
    a, b = m.network.run(x, 12), m2.network.run(x, 12)
    np.testing.assert_array_equal(a.spike_counts[-1], b.spike_counts[-1])
    np.testing.assert_array_equal(embed(m, x, "ann").vectors, embed(m2, x, "ann").vectors)
