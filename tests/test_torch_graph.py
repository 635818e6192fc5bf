"""Reading PyTorch models with torch.fx: every supported layer kind, every refused one."""

from __future__ import annotations

import numpy as np
import pytest

from snnfast.errors import ConfigError, ConversionError
from snnfast.graph import Graph

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from snnfast.torch_graph import from_torch, graph_from_torch  # noqa: E402


def _images(shape, n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def _check(model: nn.Module, shape, normalize=None) -> Graph:
    """The graph of ``model`` reproduces its outputs on random images."""
    torch.manual_seed(0)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = graph_from_torch(model, shape, normalize=normalize)
    x = _images(shape)
    h = torch.from_numpy(x.astype(np.float32) / 255)
    if normalize is not None:
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalize)
        h = (h - mean) / std
    with torch.no_grad():
        want = model(h).numpy()
    got = g.forward(x)[g.output]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training  # never switched
    return g


class Lambda(nn.Module):
    def __init__(self, fn, *modules):
        super().__init__()
        self.mods = nn.ModuleList(modules)
        self.fn = fn

    def forward(self, x):
        return self.fn(x, *self.mods)


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return bn


SUPPORTED = {
    "conv rectangular, strided, padded": lambda: nn.Sequential(
        nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0)),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(3),
    ),
    "conv same (odd kernel)": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.ReLU()),
    "conv same (even kernel)": lambda: nn.Sequential(nn.Conv2d(3, 4, 4, padding="same"), nn.ReLU()),
    "conv valid, no bias": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding="valid", bias=False)),
    "grouped conv": lambda: nn.Sequential(nn.Conv2d(4, 6, 3, groups=2, padding=1), nn.ReLU()),
    "depthwise separable": lambda: nn.Sequential(
        nn.Conv2d(4, 4, 3, groups=4, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 1), nn.ReLU()
    ),
    "batch norm folded": lambda: nn.Sequential(nn.Conv2d(4, 5, 3), _bn(5), nn.ReLU()),
    "batch norm 1d folded": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(4 * 8 * 8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)
    ),
    "avg pool with stride and padding": lambda: nn.Sequential(
        nn.Conv2d(4, 4, 1), nn.ReLU(), nn.AvgPool2d(3, stride=2, padding=1)
    ),
    "F.avg_pool2d": lambda: Lambda(lambda x, c: F.avg_pool2d(F.relu(c(x)), 2), nn.Conv2d(4, 3, 3)),
    "adaptive avg pool": lambda: nn.Sequential(
        nn.Conv2d(4, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten(), nn.Linear(24, 2)
    ),
    "global average pool head": lambda: nn.Sequential(
        nn.Conv2d(4, 3, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)
    ),
    "x.mean((2, 3)) head": lambda: Lambda(
        lambda x, c, l: l(F.relu(c(x)).mean((2, 3))), nn.Conv2d(4, 3, 1), nn.Linear(3, 2)
    ),
    "view and reshape": lambda: Lambda(
        lambda x, c, l: l(torch.relu(c(x)).view(x.size(0), -1).reshape(x.shape[0], -1)),
        nn.Conv2d(4, 2, 3),
        nn.Linear(72, 3),
    ),
    "dropout and identity dropped": lambda: nn.Sequential(
        nn.Dropout(0.5), nn.Conv2d(4, 3, 3), nn.Identity(), nn.ReLU(), nn.Dropout2d(0.2)
    ),
    "residual x + f(x)": lambda: Lambda(
        lambda x, a, b: torch.relu(x + b(torch.relu(a(x)))),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, padding=1),
    ),
    "residual torch.add and +=": lambda: Lambda(_iadd_block, nn.Conv2d(4, 4, 1), _bn(4)),
    "torch.cat on channels": lambda: Lambda(
        lambda x, a, b: torch.cat([F.relu(a(x)), F.relu(b(x))], 1),
        nn.Conv2d(4, 2, 1),
        nn.Conv2d(4, 3, 3, padding=1),
    ),
}


def _iadd_block(x, conv, bn):
    out = bn(conv(x))
    out += x
    return torch.add(F.relu(out), x).relu()


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_supported_layers(name) -> None:
    model = SUPPORTED[name]()
    if any(isinstance(m, nn.LazyLinear) for m in model.modules()):
        model(torch.zeros(1, 3, 8, 8))
    shape = (
        (3, 8, 8) if "rectangular" in name or "conv same" in name or "valid" in name else (4, 8, 8)
    )
    _check(model, shape)


def test_batch_norm_folds_into_one_node() -> None:
    g = _check(nn.Sequential(nn.Conv2d(4, 5, 3), _bn(5), nn.ReLU()), (4, 8, 8))
    assert [n.op for n in g.nodes] == ["input", "conv", "relu"]


def test_normalisation_is_kept_in_the_graph() -> None:
    g = _check(
        nn.Sequential(nn.Conv2d(3, 2, 3)), (3, 6, 6), normalize=((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    )
    assert g.input.mean == (0.5, 0.4, 0.3)
    with pytest.raises(ConfigError, match="std"):
        graph_from_torch(nn.Conv2d(3, 2, 3).eval(), (3, 6, 6), normalize=(0.5, 0.0))


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.c(x)
        return x


REFUSED = {
    "max pooling": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), "1", "AvgPool2d"),
    "sigmoid": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid()), "1", "ReLU"),
    "GELU": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.GELU()), "1", "ReLU"),
    "F.gelu": (lambda: Lambda(lambda x, c: F.gelu(c(x)), nn.Conv2d(1, 2, 3)), "gelu", "ReLU"),
    "torch.tanh": (
        lambda: Lambda(lambda x, c: torch.tanh(c(x)), nn.Conv2d(1, 2, 3)),
        "tanh",
        "ReLU",
    ),
    "batch norm after relu": (
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2)),
        "2",
        "Conv2d",
    ),
    "control flow": (_Branchy, "_Branchy", "control flow"),
    "dilation": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), "0", "dilation"),
    "ceil mode": (lambda: nn.Sequential(nn.AvgPool2d(3, ceil_mode=True)), "0", "ceil_mode"),
    "adaptive pool that does not divide": (
        lambda: nn.Sequential(nn.AdaptiveAvgPool2d(3)),
        "0",
        "divide",
    ),
    "cat on height": (lambda: Lambda(lambda x: torch.cat([x, x], 2)), "cat", "dim 1"),
    "constant added": (lambda: Lambda(lambda x: x + 1.0), "add", "constant"),
    "linear on an image": (lambda: nn.Sequential(nn.Linear(8, 3)), "0", "flatten"),
    "reshape to something else": (
        lambda: Lambda(lambda x: x.view(x.size(0), 2, -1)),
        "view",
        "flattening",
    ),
    "two outputs": (lambda: Lambda(lambda x: (x, x)), "output", "logits"),
    "layer norm": (lambda: nn.Sequential(nn.LayerNorm(8)), "0", "supports"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_layers_name_the_node_and_the_fix(name) -> None:
    make, node, fix = REFUSED[name]
    with pytest.raises(ConversionError, match=fix) as info:
        graph_from_torch(make().eval(), (1, 8, 8))
    assert node in info.value.node and info.value.reason


def test_training_mode_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ConfigError, match="eval"):
        graph_from_torch(model, (1, 8, 8))
    assert model.training


def test_from_torch_of_the_shipped_model_gives_convert_s_integers() -> None:
    from helpers_convert import fashion

    from snnfast.ann import load_model
    from snnfast.convert import convert
    from snnfast.train import build_torch_model

    arch, state, _ = load_model()
    model = build_torch_model(arch)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    model.eval()
    calib, _ = fashion("train", 300)
    a = from_torch(model, calib)
    b = convert(state, arch, calibration_images=calib)
    assert a.thresholds == b.thresholds and a.network.input_shape == (1, 28, 28)
    for la, lb in zip(a.network.layers, b.network.layers):
        assert la.kind == lb.kind
        for f in ("weight", "bias"):
            if isinstance(getattr(lb, f, None), np.ndarray):
                np.testing.assert_array_equal(getattr(la, f), getattr(lb, f))
    assert a.embedding_layers == b.embedding_layers == (4,)


def test_from_torch_checks_its_images() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()
    with pytest.raises(Exception, match="uint8"):
        from_torch(model, np.zeros((2, 1, 8, 8), dtype=np.float32))
