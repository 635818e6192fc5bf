"""The float graph: validation, shapes, storage, and its forward pass against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from snnfast.errors import ConfigError, ModelFormatError, ShapeError
from snnfast.graph import (
    Add,
    Concat,
    Conv,
    Dense,
    Flatten,
    Graph,
    Input,
    Pool,
    Quant,
    Relu,
    quantize,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rand(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def test_shapes_follow_pytorch() -> None:
    rng = np.random.default_rng(0)
    g = Graph(
        (
            Input("in", (3, 11, 9)),
            Conv("c1", "in", _rand(rng, 6, 3, 3, 2), _rand(rng, 6), (2, 1), (1, 0, 2, 1)),
            Relu("r1", "c1"),
            Conv("dw", "r1", _rand(rng, 6, 1, 3, 3), _rand(rng, 6), 1, 1, groups=6),
            Pool("p", "dw", (3, 2), (2, 2), (1, 1, 0, 0)),
            Relu("r2", "p"),
            Concat("cat", ("r2", "r2")),
            Flatten("f", "cat"),
            Dense("fc", "f", _rand(rng, 4, 12 * 3 * 5), _rand(rng, 4)),
        )
    )
    assert g.shapes["c1"] == (6, (11 + 1 + 0 - 3) // 2 + 1, (9 + 2 + 1 - 2) + 1)
    assert g.shapes["p"] == (6, 3, 5) and g.shapes["cat"] == (12, 3, 5)
    assert g.shapes["fc"] == (4,) and g.output == "fc"
    assert g.parameter_count() == 6 * 3 * 3 * 2 + 6 + 6 * 9 + 6 + 4 * 180 + 4


@pytest.mark.parametrize(
    "nodes, error, text",
    [
        ((Relu("r", "in"),), ConfigError, "starts with its Input"),
        ((Input("in", (1, 4, 4)), Relu("r", "nope")), ConfigError, "nope"),
        ((Input("in", (1, 4, 4)), Relu("in", "in")), ConfigError, "unique"),
        ((Input("in", (1, 4, 4)), Add("a", ("in",))), ShapeError, "two or more"),
        (
            (Input("in", (2, 4, 4)), Dense("d", "in", np.zeros((3, 5)), np.zeros(3))),
            ShapeError,
            "32",
        ),
        ((Input("in", (1, 2, 2)), Pool("p", "in", (3, 3))), ShapeError, "larger"),
    ],
)
def test_bad_graphs_name_the_node(nodes, error, text) -> None:
    with pytest.raises(error, match=text):
        Graph(nodes)


def test_conv_checks_groups_and_values() -> None:
    with pytest.raises(ShapeError, match="split"):
        Conv("c", "in", np.zeros((5, 1, 1, 1)), np.zeros(5), groups=2)
    with pytest.raises(ConfigError, match="NaN"):
        Conv("c", "in", np.full((1, 1, 1, 1), np.nan), np.zeros(1))
    with pytest.raises(ShapeError, match="per group"):
        Graph(
            (Input("in", (4, 3, 3)), Conv("c", "in", np.zeros((4, 1, 1, 1)), np.zeros(4), groups=2))
        )


def _torch_forward(g: Graph, x: np.ndarray) -> np.ndarray:
    vals = {}
    for n in g.nodes:
        if isinstance(n, Input):
            h = torch.from_numpy(x.astype(np.float32) / 255)
            if n.mean is not None:
                h = (h - torch.tensor(n.mean).view(1, -1, 1, 1)) / torch.tensor(n.std).view(
                    1, -1, 1, 1
                )
            vals[n.name] = h
        elif isinstance(n, Conv):
            t, b, l, r = n.padding
            h = F.pad(vals[n.input], (l, r, t, b))
            vals[n.name] = F.conv2d(
                h,
                torch.from_numpy(np.array(n.weight)),
                torch.from_numpy(np.array(n.bias)),
                n.stride,
                0,
                1,
                n.groups,
            )
        elif isinstance(n, Pool):
            t, b, l, r = n.padding
            h = F.pad(vals[n.input], (l, r, t, b))
            vals[n.name] = F.avg_pool2d(h, n.kernel, n.stride)
        elif isinstance(n, Dense):
            vals[n.name] = F.linear(
                torch.flatten(vals[n.input], 1),
                torch.from_numpy(np.array(n.weight)),
                torch.from_numpy(np.array(n.bias)),
            )
        elif isinstance(n, Add):
            vals[n.name] = sum(vals[i] for i in n.inputs)
        elif isinstance(n, Concat):
            vals[n.name] = torch.cat([vals[i] for i in n.inputs], 1)
        elif isinstance(n, Relu):
            vals[n.name] = torch.relu(vals[n.input])
        elif isinstance(n, Flatten):
            vals[n.name] = torch.flatten(vals[n.input], 1)
        elif isinstance(n, Quant):
            vals[n.name] = torch.from_numpy(quantize(vals[n.input].numpy(), n.scale, n.levels))
    return vals[g.output].numpy()


def test_forward_matches_pytorch_on_a_residual_inception_graph() -> None:
    rng = np.random.default_rng(1)
    c = 4
    g = Graph(
        (
            Input("in", (3, 10, 10), (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)),
            Conv("stem", "in", _rand(rng, c, 3, 3, 3), _rand(rng, c), 1, (1, 1, 1, 1)),
            Relu("stem.r", "stem"),
            Conv("a", "stem.r", _rand(rng, c, 1, 3, 3), _rand(rng, c), 1, 1, groups=c),
            Relu("a.r", "a"),
            Conv("b", "a.r", _rand(rng, c, c, 1, 1), _rand(rng, c)),
            Add("res", ("b", "stem.r")),
            Relu("res.r", "res"),
            Conv("br1", "res.r", _rand(rng, 2, c, 2, 2), _rand(rng, 2), 1, (0, 1, 0, 1)),
            Conv("br2", "res.r", _rand(rng, 3, c, 1, 1), _rand(rng, 3)),
            Concat("cat", ("br1", "br2")),
            Relu("cat.r", "cat"),
            Pool("gap", "cat.r", (5, 5), (5, 5)),
            Quant("q", "gap", 4, 0.8),
            Dense("fc", "q", _rand(rng, 5, 5 * 2 * 2), _rand(rng, 5)),
        )
    )
    x = np.random.default_rng(2).integers(0, 256, (7, 3, 10, 10), dtype=np.uint8)
    got = g.forward(x, batch_size=3)["fc"]
    np.testing.assert_allclose(got, _torch_forward(g, x), rtol=1e-4, atol=1e-4)
    inner = g.forward(x, ["res.r", "fc"], dtype=np.float64)
    assert inner["res.r"].shape == (7, c, 10, 10) and inner["res.r"].dtype == np.float64


def test_record_round_trip() -> None:
    rng = np.random.default_rng(3)
    g = Graph(
        (
            Input("in", (1, 6, 6), (0.5,), (0.25,)),
            Conv("c", "in", _rand(rng, 2, 1, 3, 3), _rand(rng, 2), 1, 1),
            Quant("q", "c", 8, 1.5),
            Pool("p", "q", 2),
            Dense("fc", "p", _rand(rng, 3, 18), _rand(rng, 3)),
        )
    )
    spec, arrays = g.to_record()
    g2 = Graph.from_record(spec, arrays)
    x = rng.integers(0, 256, (4, 1, 6, 6), dtype=np.uint8)
    np.testing.assert_array_equal(g.forward(x)["fc"], g2.forward(x)["fc"])
    spec["nodes"][1]["op"] = "maxpool"
    with pytest.raises(ModelFormatError, match="maxpool"):
        Graph.from_record(spec, arrays)
    with pytest.raises(ModelFormatError):
        Graph.from_record({"nodes": spec["nodes"][:1]}, arrays)


def test_forward_checks_images() -> None:
    g = Graph((Input("in", (1, 4, 4)), Flatten("f", "in")))
    with pytest.raises(ShapeError, match=r"\[N, 1, 4, 4\]"):
        g.forward(np.zeros((2, 1, 4, 5), dtype=np.uint8))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        g.forward(np.full((2, 1, 4, 4), 2.0))
    with pytest.raises(ShapeError, match="empty"):
        g.forward(np.zeros((0, 1, 4, 4), dtype=np.uint8))
    assert g.forward(np.zeros((2, 4, 4), dtype=np.uint8))["f"].shape == (2, 16)
