"""Any PyTorch CNN as a :class:`snnfast.graph.Graph`, read with ``torch.fx``; :func:`from_torch`.

:func:`graph_from_torch` traces the model symbolically (``torch.fx.symbolic_trace``; the model
is never modified and must be in ``eval()`` mode) and maps each node to graph nodes:

==================================================  ===========================================
``nn.Conv2d``                                        :class:`~snnfast.graph.Conv` (any kernel,
                                                     stride, zero padding incl. ``"same"``,
                                                     ``groups``; dilation 1)
``nn.Linear``                                        :class:`~snnfast.graph.Dense`
``nn.BatchNorm2d`` / ``nn.BatchNorm1d``              folded into the conv / linear before it
``nn.ReLU``, ``F.relu``, ``torch.relu``, ``.relu()``  :class:`~snnfast.graph.Relu`
``nn.AvgPool2d``, ``F.avg_pool2d``                   :class:`~snnfast.graph.Pool`
``nn.AdaptiveAvgPool2d``, ``F.adaptive_avg_pool2d``  a pool whose kernel is input / output size
                                                     (when the output divides the input)
``x.mean((2, 3))``                                   global average pooling
``+``, ``torch.add``, ``+=``                          :class:`~snnfast.graph.Add`
``torch.cat(..., 1)``                                :class:`~snnfast.graph.Concat`
``nn.Flatten``, ``torch.flatten(x, 1)``,             :class:`~snnfast.graph.Flatten`
``x.view(n, -1)``, ``x.reshape(n, -1)``
``nn.Dropout*``, ``nn.Identity``, ``.contiguous()``  dropped
==================================================  ===========================================

Everything else raises :class:`~snnfast.errors.ConversionError` naming the node (its qualified
module path or function, and the op), saying why and suggesting the usual fix: max pooling,
other activations (sigmoid, tanh, GELU, ...), a batch norm that does not follow a conv or linear
layer, dilation, ``ceil_mode``, constants added to activations, data-dependent control flow that
fx cannot trace. Nothing is approximated silently: :func:`from_torch` also runs the model and
the graph on calibration images and refuses the conversion if their outputs differ.

This module imports torch; :func:`snnfast.from_torch` imports it only when called.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _checks
from .converted import ConversionConfig, ConvertedModel
from .errors import ConfigError, ConversionError, ShapeError
from .graph import Add, Concat, Conv, Dense, Flatten, Graph, Input, Node, Pool, Relu, pad4

__all__ = ["from_torch", "graph_from_torch"]

_CHECK_IMAGES = 8  # calibration images the graph is checked against the model on
_TOLERANCE = 1e-3  # largest |model - graph| output difference, relative to max(1, |output|)

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


def _fail(where: str, op: str, reason: str, fix: str = "") -> ConversionError:
    return ConversionError(where, op, reason, fix)


class _Reader:
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
            mean, std = _normalize(normalize, input_shape[0])
        self.input = Input("input", input_shape, mean, std)
        self.ours: dict[str, tuple[int, ...]] = {}

    # -- helpers ----------------------------------------------------------------------------

    def ref(self, arg: Any, where: str, op: str) -> str:
        """Our node name for an fx argument that must be a tensor."""
        import torch.fx as fx

        if not isinstance(arg, fx.Node):
            raise _fail(
                where,
                op,
                f"takes a constant ({arg!r}) where a tensor flows",
                "only tensors produced by the network can be combined",
            )
        name = self.alias.get(arg.name, arg.name)
        if name not in self.ours:
            raise _fail(
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
        raise _fail(fx_name, "shape", f"torch gives shape {tuple(want)}, the graph {have}")

    def same(self, fx_name: str, src: str) -> None:
        self.alias[fx_name] = src

    # -- the nodes ---------------------------------------------------------------------------

    def read(self, n: Any) -> None:
        if n.op == "placeholder":
            if self.ours:
                raise _fail(
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
            raise _fail(
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
            raise _fail(n.name, n.op, "is not an fx op conversion knows")

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
            raise _fail(
                where,
                kind,
                "max pooling has no exact integrate-and-fire equivalent",
                "replace it with nn.AvgPool2d of the same kernel and stride and retrain (or "
                "fine-tune)",
            )
        elif kind in _ACTIVATIONS:
            raise _fail(where, kind, "is not a ReLU", _RETRAIN)
        else:
            raise _fail(
                where,
                kind,
                "is not a layer conversion supports",
                "see snnfast.torch_graph for the supported layers",
            )

    def conv(self, m: Any, where: str, src: str) -> Conv:
        if tuple(m.dilation) != (1, 1):
            raise _fail(where, "Conv2d", f"has dilation {tuple(m.dilation)}", "use dilation 1")
        if m.padding_mode != "zeros":
            raise _fail(where, "Conv2d", f"pads with {m.padding_mode!r}", "use zero padding")
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
            raise _fail(
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
            raise _fail(
                where,
                kind,
                "does not directly follow a conv or linear layer it can be folded into",
                "put the batch norm right after a Conv2d / Linear (whose output nothing else "
                "reads), or fold it yourself",
            )
        if m.running_mean is None or m.running_var is None:
            raise _fail(
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
            raise _fail(
                where, "AvgPool2d", "uses ceil_mode=True", "use ceil_mode=False (the default)"
            )
        if divisor is not None:
            raise _fail(where, "AvgPool2d", "sets divisor_override", "leave it unset")
        pad = pad4(padding, where=where)
        if any(pad) and not count_include_pad:
            raise _fail(
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
            raise _fail(where, "AdaptiveAvgPool2d", f"input has shape {shape}")
        _, h, w = shape
        oh, ow = (output, output) if isinstance(output, int) else output
        oh = h if oh is None else oh
        ow = w if ow is None else ow
        if h % oh or w % ow:
            raise _fail(
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
            raise _fail(
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
                raise _fail(where, "torch.add", "scales an operand (alpha != 1)")
            self.add_node(n, list(n.args[:2]), where)
        elif f in (torch.cat, getattr(torch, "concat", torch.cat)):
            tensors = n.args[0]
            dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
            srcs = [self.ref(t, where, "cat") for t in tensors]
            nd = len(self.ours[srcs[0]]) + 1
            if dim % nd != 1:
                raise _fail(
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
            raise _fail(
                where,
                name,
                "max pooling has no exact integrate-and-fire equivalent",
                "replace it with average pooling and retrain (or fine-tune)",
            )
        elif name in _ACTIVATION_FUNCS:
            raise _fail(where, name, "is not a ReLU", _RETRAIN)
        else:
            raise _fail(
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
                raise _fail(
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
                raise _fail(
                    where,
                    "mean",
                    f"averages dims {dims} of a {shape} tensor",
                    "average over the spatial dims (2, 3) only",
                )
            self.add(Pool(where, src, shape[1:], shape[1:]), n.name)
        elif m in _ACTIVATION_FUNCS:
            raise _fail(where, f".{m}()", "is not a ReLU", _RETRAIN)
        else:
            raise _fail(
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


def _normalize(normalize: Any, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


def graph_from_torch(model: Any, input_shape: Sequence[int], *, normalize: Any = None) -> Graph:
    """Read ``model`` (a ``torch.nn.Module`` in eval mode) as a graph for ``(C, H, W)`` images.

    ``normalize=(mean, std)``: the per-channel normalisation of ``pixel / 255`` the model was
    trained with (stored in the graph's input node, folded into the first layers by conversion).

    Raises:
        ConversionError: a node conversion cannot express, or a model fx cannot trace.
        ConfigError: the model is in training mode, or a bad ``normalize``.
    """
    import torch
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise ConfigError(f"{type(model).__name__} is in training mode; call model.eval() first")
    shape = tuple(_checks.positive_int(s, "input size", where="input_shape") for s in input_shape)
    if len(shape) != 3:
        raise ShapeError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError, ...
        raise ConversionError(
            type(model).__name__,
            "torch.fx trace",
            f"cannot be traced ({type(exc).__name__}: {exc})",
            "data-dependent control flow (if / loops on tensor values) cannot be converted; "
            "write forward() without it",
        ) from exc
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.zeros((1, *shape), dtype=torch.float32, device=device)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    except Exception as exc:
        raise ConversionError(
            type(model).__name__,
            "forward",
            f"fails on a {shape} input ({type(exc).__name__}: {exc})",
        ) from exc
    metas: dict[str, tuple[int, ...] | None] = {}
    for n in gm.graph.nodes:
        tm = n.meta.get("tensor_meta")
        metas[n.name] = tuple(int(s) for s in tm.shape[1:]) if hasattr(tm, "shape") else None
    reader = _Reader(gm, metas, shape, normalize)
    out_name = None
    for n in gm.graph.nodes:
        reader.read(n)
        if n.op == "output":
            arg = n.args[0]
            if not isinstance(arg, fx.Node):
                raise _fail(
                    "output",
                    "output",
                    "the model returns more than one tensor",
                    "return the logits only",
                )
            out_name = reader.ref(arg, "output", "output")
    assert out_name is not None
    return Graph((reader.input, *reader.nodes), out_name)


def from_torch(
    model: Any,
    calibration_images: np.ndarray,
    *,
    config: ConversionConfig | None = None,
    normalize: Any = None,
) -> ConvertedModel:
    """Convert any PyTorch CNN into an integer SNN with Algorithm 1.

    Args:
        model: a ``torch.nn.Module`` in eval mode (read with ``torch.fx``; never modified).
        calibration_images: uint8 ``[N, C, H, W]`` images for the rate-based pass; their
            ``(C, H, W)`` is the network's input shape. The model sees ``pixel / 255``,
            normalised when ``normalize`` is given.
        config: conversion options (:class:`snnfast.convert.ConversionConfig`; default the
            paper's).
        normalize: ``(mean, std)`` per channel (or one number each) that the model was trained
            with on ``pixel / 255``; folded into the first layer.

    Raises:
        ConversionError: a node conversion cannot express (names it, says why and the fix), or
            the graph read from the model does not reproduce the model's outputs.
        ShapeError, ConfigError: bad images or options (see :func:`snnfast.convert.convert_graph`).
    """
    import torch

    from .convert import convert_graph

    if (
        not isinstance(calibration_images, np.ndarray)
        or calibration_images.dtype != np.uint8
        or calibration_images.ndim != 4
        or calibration_images.shape[0] == 0
    ):
        what = (
            f"shape {calibration_images.shape} dtype {calibration_images.dtype}"
            if isinstance(calibration_images, np.ndarray)
            else type(calibration_images).__name__
        )
        raise ShapeError(
            f"calibration_images must be a non-empty uint8 array [N, C, H, W], got {what}"
        )
    graph = graph_from_torch(model, calibration_images.shape[1:], normalize=normalize)
    sample = calibration_images[:_CHECK_IMAGES]
    x = graph.prepare(sample).transpose(0, 3, 1, 2)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        want = (
            model(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            .detach()
            .cpu()
            .double()
            .numpy()
        )
    got = graph.forward(sample, dtype=np.float64)[graph.output]
    if want.shape != got.shape:
        raise ConversionError(
            type(model).__name__,
            "output",
            f"the model's output has shape {want.shape[1:]}, the graph's {got.shape[1:]}",
        )
    diff = float(np.max(np.abs(want - got)))
    if diff > _TOLERANCE * max(1.0, float(np.max(np.abs(want)))):
        raise ConversionError(
            type(model).__name__,
            "output",
            "the graph read from the model does not reproduce its outputs (largest difference "
            f"{diff:.3g})",
            "an operation behaves differently from what the reader assumed; please report it with "
            "the model",
        )
    return convert_graph(graph, calibration_images, config=config)
