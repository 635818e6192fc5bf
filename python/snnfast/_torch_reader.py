"""The node-by-node reader behind :func:`snnfast.torch_graph.graph_from_torch`.

:class:`Reader` walks a traced ``torch.fx`` graph and appends :mod:`snnfast.graph` nodes, one
builder per module type, function or method; anything else raises
:class:`~snnfast.errors.ConversionError` in one place with the node's name, why, and the fix.
Torch is imported inside the methods that need it.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, ConversionError
from .graph import Add, Concat, Conv, Dense, Flatten, Graph, Input, Node, Pool, Relu, pad4

__all__ = ["Reader", "fail", "normalisation"]


_ACTIVATIONS = (
    "Sigmoid",
    "Tanh",
    "GELU",
    "SiLU",
    "ELU",
    "SELU",
    "CELU",
    "LeakyReLU",
    "PReLU",
    "ReLU6",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Mish",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "Softsign",
    "Tanhshrink",
)
_ACTIVATION_FUNCS = {
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "prelu",
    "relu6",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "mish",
    "softplus",
    "softmax",
    "log_softmax",
    "softsign",
}
_RETRAIN = "use ReLU there and retrain: only ReLU (or QCFS) activations become spiking neurons"


def fail(where: str, op: str, reason: str, fix: str = "") -> ConversionError:
    return ConversionError(where, op, reason, fix)


class Reader:
    """Turns a traced fx graph into graph nodes."""

    def __init__(
        self,
        gm: Any,
        shapes: dict[str, tuple[int, ...] | None],
        input_shape: tuple[int, int, int],
        normalize: Any,
    ) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.meta = shapes
        self.nodes: list[Node] = []
        self.alias: dict[str, str] = {}
        self.uses: dict[str, int] = {}
        for n in gm.graph.nodes:
            for a in n.all_input_nodes:
                self.uses[a.name] = self.uses.get(a.name, 0) + 1
        mean = std = None
        if normalize is not None:
            mean, std = normalisation(normalize, input_shape[0])
        self.input = Input("input", input_shape, mean, std)
        self.ours: dict[str, tuple[int, ...]] = {}

    # -- helpers ----------------------------------------------------------------------------

    def ref(self, arg: Any, where: str, op: str) -> str:
        """Our node name for an fx argument that must be a tensor."""
        import torch.fx as fx

        if not isinstance(arg, fx.Node):
            raise fail(
                where,
                op,
                f"takes a constant ({arg!r}) where a tensor flows",
                "only tensors produced by the network can be combined",
            )
        name = self.alias.get(arg.name, arg.name)
        if name not in self.ours:
            raise fail(
                where,
                op,
                f"reads {arg.name!r}, which is not a tensor of the network (a size or a constant)",
            )
        return name

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... when a module is called more than once."""
        taken = {"input", *(n.name for n in self.nodes)}
        if name not in taken:
            return name
        k = 2
        while f"{name}_{k}" in taken:
            k += 1
        return f"{name}_{k}"

    def add(self, node: Node, fx_name: str) -> None:
        node = dataclasses.replace(node, name=self.unique(node.name))
        self.nodes.append(node)
        self.ours[node.name] = self._shape_of(node)
        self.alias[fx_name] = node.name
        self.match(fx_name, node.name)

    def _shape_of(self, node: Node) -> tuple[int, ...]:
        g = Graph((self.input, *self.nodes))
        return g.shapes[node.name]

    def match(self, fx_name: str, ours: str) -> None:
        """Make our shape agree with torch's (a flatten where torch drops the spatial axes)."""
        want = self.meta.get(fx_name)
        have = self.ours[ours]
        if want is None or tuple(want) == have:
            return
        if len(want) == 1 and math.prod(have) == want[0]:
            flat = Flatten(f"{ours}.flatten", ours)
            self.nodes.append(flat)
            self.ours[flat.name] = (want[0],)
            self.alias[fx_name] = flat.name
            return
        raise fail(fx_name, "shape", f"torch gives shape {tuple(want)}, the graph {have}")

    def same(self, fx_name: str, src: str) -> None:
        self.alias[fx_name] = src

    # -- the nodes ---------------------------------------------------------------------------

    def read(self, n: Any) -> None:
        if n.op == "placeholder":
            if self.ours:
                raise fail(
                    n.name,
                    "input",
                    "the model takes more than one input",
                    "convert a model of one image tensor",
                )
            self.ours["input"] = self.input.shape
            self.alias[n.name] = "input"
            self.match(n.name, "input")
            return
        if n.op == "output":
            return
        if n.op == "get_attr":
            raise fail(
                n.target,
                "get_attr",
                "uses a parameter or buffer directly in forward()",
                "use nn.Conv2d / nn.Linear modules for layers with weights",
            )
        if n.op == "call_module":
            self.module(n)
        elif n.op == "call_function":
            self.function(n)
        elif n.op == "call_method":
            self.method(n)
        else:  # pragma: no cover - fx has no other ops
            raise fail(n.name, n.op, "is not an fx op conversion knows")

    def module(self, n: Any) -> None:
        from torch import nn

        m = self.modules[n.target]
        where = str(n.target)
        kind = type(m).__name__
        if isinstance(
            m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)
        ):
            self.same(n.name, self.ref(n.args[0], where, kind))
            return
        src = self.ref(n.args[0], where, kind)
        if isinstance(m, nn.Conv2d):
            self.add(self.conv(m, where, src), n.name)
        elif isinstance(m, nn.Linear):
            self.add(self.linear(m, where, src), n.name)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            self.batchnorm(m, where, kind, src, n.name)
        elif isinstance(m, nn.ReLU):
            self.add(Relu(where, src), n.name)
        elif isinstance(m, nn.AvgPool2d):
            self.add(
                self.avgpool(
                    where,
                    src,
                    m.kernel_size,
                    m.stride,
                    m.padding,
                    m.ceil_mode,
                    m.count_include_pad,
                    m.divisor_override,
                ),
                n.name,
            )
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.add(self.adaptive(where, src, m.output_size), n.name)
        elif isinstance(m, nn.Flatten):
            self.flatten(n.name, where, src, m.start_dim, m.end_dim)
        elif isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d, nn.MaxPool1d)):
            raise fail(
                where,
                kind,
                "max pooling has no exact integrate-and-fire equivalent",
                "replace it with nn.AvgPool2d of the same kernel and stride and retrain (or "
                "fine-tune)",
            )
        elif kind in _ACTIVATIONS:
            raise fail(where, kind, "is not a ReLU", _RETRAIN)
        else:
            raise fail(
                where,
                kind,
                "is not a layer conversion supports",
                "see snnfast.torch_graph for the supported layers",
            )

    def conv(self, m: Any, where: str, src: str) -> Conv:
        if tuple(m.dilation) != (1, 1):
            raise fail(where, "Conv2d", f"has dilation {tuple(m.dilation)}", "use dilation 1")
        if m.padding_mode != "zeros":
            raise fail(where, "Conv2d", f"pads with {m.padding_mode!r}", "use zero padding")
        kh, kw = m.kernel_size
        if isinstance(m.padding, str):
            if m.padding == "valid":
                pad = (0, 0, 0, 0)
            else:  # "same": torch puts the odd pixel at the bottom / right
                th, tw = kh - 1, kw - 1
                pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            pad = pad4(tuple(m.padding), where=where)
        weight = m.weight.detach().cpu().double().numpy()
        bias = (
            np.zeros(weight.shape[0]) if m.bias is None else m.bias.detach().cpu().double().numpy()
        )
        return Conv(where, src, weight, bias, tuple(m.stride), pad, m.groups)

    def linear(self, m: Any, where: str, src: str) -> Dense:
        if len(self.ours[src]) != 1:
            raise fail(
                where,
                "Linear",
                f"is applied to a {self.ours[src]} tensor, not to flat features",
                "flatten before the linear layer",
            )
        weight = m.weight.detach().cpu().double().numpy()
        bias = (
            np.zeros(weight.shape[0]) if m.bias is None else m.bias.detach().cpu().double().numpy()
        )
        return Dense(where, src, weight, bias)

    def batchnorm(self, m: Any, where: str, kind: str, src: str, fx_name: str) -> None:
        prev = self.nodes[-1] if self.nodes else None
        ok = (
            prev is not None
            and prev.name == src
            and isinstance(prev, (Conv, Dense))
            and (isinstance(prev, Conv)) == (kind == "BatchNorm2d")
            and self.uses_of_ours(src) == 1
        )
        if not ok:
            raise fail(
                where,
                kind,
                "does not directly follow a conv or linear layer it can be folded into",
                "put the batch norm right after a Conv2d / Linear (whose output nothing else "
                "reads), or fold it yourself",
            )
        if m.running_mean is None or m.running_var is None:
            raise fail(
                where,
                kind,
                "keeps no running statistics (track_running_stats=False)",
                "train with running statistics",
            )
        mean = m.running_mean.detach().cpu().double().numpy()
        var = m.running_var.detach().cpu().double().numpy()
        gamma = np.ones_like(mean) if m.weight is None else m.weight.detach().cpu().double().numpy()
        beta = np.zeros_like(mean) if m.bias is None else m.bias.detach().cpu().double().numpy()
        scale = gamma / np.sqrt(var + float(m.eps))
        assert isinstance(prev, (Conv, Dense))
        w = np.asarray(prev.weight, dtype=np.float64)
        w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        b = (np.asarray(prev.bias, dtype=np.float64) - mean) * scale + beta
        folded: Node
        if isinstance(prev, Conv):
            folded = Conv(prev.name, prev.input, w, b, prev.stride, prev.padding, prev.groups)
        else:
            folded = Dense(prev.name, prev.input, w, b)
        self.nodes[-1] = folded
        self.same(fx_name, prev.name)

    def uses_of_ours(self, ours: str) -> int:
        fx_names = [k for k, v in self.alias.items() if v == ours]
        return sum(self.uses.get(k, 0) for k in fx_names)

    def avgpool(
        self,
        where: str,
        src: str,
        kernel: Any,
        stride: Any,
        padding: Any,
        ceil_mode: bool,
        count_include_pad: bool,
        divisor: Any,
    ) -> Pool:
        if ceil_mode:
            raise fail(
                where, "AvgPool2d", "uses ceil_mode=True", "use ceil_mode=False (the default)"
            )
        if divisor is not None:
            raise fail(where, "AvgPool2d", "sets divisor_override", "leave it unset")
        pad = pad4(padding, where=where)
        if any(pad) and not count_include_pad:
            raise fail(
                where,
                "AvgPool2d",
                "pads without counting the padding (count_include_pad=False), so edge windows "
                "average fewer values",
                "use count_include_pad=True or no padding",
            )
        k = _pair(kernel)
        s = (
            k
            if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
            else _pair(stride)
        )
        return Pool(where, src, k, s, pad)

    def adaptive(self, where: str, src: str, output: Any) -> Pool:
        shape = self.ours[src]
        if len(shape) != 3:
            raise fail(where, "AdaptiveAvgPool2d", f"input has shape {shape}")
        _, h, w = shape
        oh, ow = (output, output) if isinstance(output, int) else output
        oh = h if oh is None else oh
        ow = w if ow is None else ow
        if h % oh or w % ow:
            raise fail(
                where,
                "AdaptiveAvgPool2d",
                f"output {oh}x{ow} does not divide the input {h}x{w}, so its windows differ in "
                "size",
                "choose an output size that divides the input, or an AvgPool2d",
            )
        k = (h // oh, w // ow)
        return Pool(where, src, k, k)

    def flatten(self, fx_name: str, where: str, src: str, start: int, end: int) -> None:
        shape = self.ours[src]
        nd = len(shape) + 1
        if start % nd not in (1,) or end % nd != nd - 1:
            raise fail(
                where,
                "flatten",
                f"flattens dims {start}..{end} of a {nd}-D tensor",
                "flatten from dim 1 to the end (keep the batch dim)",
            )
        if len(shape) == 1:
            self.same(fx_name, src)
            return
        self.add(Flatten(where, src), fx_name)

    def function(self, n: Any) -> None:
        import torch
        import torch.nn.functional as F

        f = n.target
        name = getattr(f, "__name__", str(f))
        where = n.name
        if f in (operator.add, operator.iadd, torch.add) or name in ("add", "add_"):
            if f is torch.add and n.kwargs.get("alpha", 1) != 1:
                raise fail(where, "torch.add", "scales an operand (alpha != 1)")
            self.add_node(n, list(n.args[:2]), where)
        elif f in (torch.cat, getattr(torch, "concat", torch.cat)):
            tensors = n.args[0]
            dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
            srcs = [self.ref(t, where, "cat") for t in tensors]
            nd = len(self.ours[srcs[0]]) + 1
            if dim % nd != 1:
                raise fail(
                    where,
                    "torch.cat",
                    f"concatenates along dim {dim}",
                    "concatenate channels (dim 1)",
                )
            self.add(Concat(where, tuple(srcs)), n.name)
        elif f in (F.relu, torch.relu, getattr(torch, "relu_", None), getattr(F, "relu_", None)):
            self.add(Relu(where, self.ref(n.args[0], where, "relu")), n.name)
        elif f is torch.flatten:
            start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
            end = n.args[2] if len(n.args) > 2 else n.kwargs.get("end_dim", -1)
            self.flatten(n.name, where, self.ref(n.args[0], where, "flatten"), start, end)
        elif f is F.avg_pool2d:
            a = _args(
                n,
                [
                    "input",
                    "kernel_size",
                    "stride",
                    "padding",
                    "ceil_mode",
                    "count_include_pad",
                    "divisor_override",
                ],
                {
                    "stride": None,
                    "padding": 0,
                    "ceil_mode": False,
                    "count_include_pad": True,
                    "divisor_override": None,
                },
            )
            self.add(
                self.avgpool(
                    where,
                    self.ref(a["input"], where, "avg_pool2d"),
                    a["kernel_size"],
                    a["stride"],
                    a["padding"],
                    a["ceil_mode"],
                    a["count_include_pad"],
                    a["divisor_override"],
                ),
                n.name,
            )
        elif f is F.adaptive_avg_pool2d:
            a = _args(n, ["input", "output_size"], {})
            self.add(
                self.adaptive(
                    where, self.ref(a["input"], where, "adaptive_avg_pool2d"), a["output_size"]
                ),
                n.name,
            )
        elif f in (F.dropout, F.dropout2d, getattr(F, "dropout1d", F.dropout)):
            self.same(n.name, self.ref(n.args[0], where, name))
        elif f in (operator.getitem, getattr) or name in ("size", "getattr", "getitem"):
            return  # a size or attribute, used as a view argument
        elif name in ("max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d"):
            raise fail(
                where,
                name,
                "max pooling has no exact integrate-and-fire equivalent",
                "replace it with average pooling and retrain (or fine-tune)",
            )
        elif name in _ACTIVATION_FUNCS:
            raise fail(where, name, "is not a ReLU", _RETRAIN)
        else:
            raise fail(
                where,
                f"call_function {name}",
                "is not an operation conversion supports",
                "see snnfast.torch_graph for the supported operations",
            )

    def add_node(self, n: Any, operands: Sequence[Any], where: str) -> None:
        srcs = [self.ref(a, where, "add") for a in operands]
        self.add(Add(where, tuple(srcs)), n.name)

    def method(self, n: Any) -> None:
        where = n.name
        m = n.target
        if m in ("size", "dim"):
            return
        src = self.ref(n.args[0], where, m)
        if m in ("contiguous", "clone", "detach", "float"):
            self.same(n.name, src)
        elif m in ("relu", "relu_"):
            self.add(Relu(where, src), n.name)
        elif m in ("add", "add_", "__add__", "__iadd__"):
            self.add_node(n, [n.args[0], n.args[1]], where)
        elif m in ("view", "reshape", "flatten"):
            want = self.meta.get(n.name)
            have = self.ours[src]
            if m == "flatten":
                start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
                end = n.args[2] if len(n.args) > 2 else n.kwargs.get("end_dim", -1)
                self.flatten(n.name, where, src, start, end)
            elif want is not None and tuple(want) == have:
                self.same(n.name, src)
            elif want is not None and len(want) == 1 and want[0] == math.prod(have):
                if len(have) == 1:
                    self.same(n.name, src)
                else:
                    self.add(Flatten(where, src), n.name)
            else:
                raise fail(
                    where,
                    m,
                    f"reshapes {have} to {want}",
                    "only flattening (x.view(x.size(0), -1)) is supported",
                )
        elif m == "mean":
            dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
            shape = self.ours[src]
            dims = (
                tuple(sorted(d % 4 for d in (dims if isinstance(dims, (tuple, list)) else (dims,))))
                if dims is not None
                else None
            )
            if len(shape) != 3 or dims != (2, 3):
                raise fail(
                    where,
                    "mean",
                    f"averages dims {dims} of a {shape} tensor",
                    "average over the spatial dims (2, 3) only",
                )
            self.add(Pool(where, src, shape[1:], shape[1:]), n.name)
        elif m in _ACTIVATION_FUNCS:
            raise fail(where, f".{m}()", "is not a ReLU", _RETRAIN)
        else:
            raise fail(
                where,
                f"call_method {m}",
                "is not an operation conversion supports",
                "see snnfast.torch_graph for the supported operations",
            )


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1] if len(v) > 1 else v[0]))
    return (int(v), int(v))


def _args(n: Any, names: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    out.update(zip(names, n.args))
    out.update(n.kwargs)
    return out


def normalisation(normalize: Any, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    try:
        mean, std = normalize
        mean = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), (channels,))
        std = np.broadcast_to(np.asarray(std, dtype=np.float64).reshape(-1), (channels,))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"normalize must be (mean, std), each one number or one per channel ({channels}): {exc}"
        ) from exc
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ConfigError(f"normalize: mean must be finite and std positive, got {normalize!r}")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
