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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks
from ._torch_reader import Reader, fail
from .converted import ConversionConfig, ConvertedModel
from .errors import ConfigError, ConversionError, ShapeError
from .graph import Graph

__all__ = ["from_torch", "graph_from_torch", "load_torch_model"]

_CHECK_IMAGES = 8  # calibration images the graph is checked against the model on
_TOLERANCE = 1e-3  # largest |model - graph| output difference, relative to max(1, |output|)


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
    reader = Reader(gm, metas, shape, normalize)
    out_name = None
    for n in gm.graph.nodes:
        reader.read(n)
        if n.op == "output":
            arg = n.args[0]
            if not isinstance(arg, fx.Node):
                raise fail(
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


def load_torch_model(target: str, weights: str | os.PathLike[str] | None = None) -> Any:
    """A torch model made by ``target`` (``"package.module:factory"`` or
    ``"path/to/file.py:factory"``), with the state dict in ``weights`` loaded, in eval mode.

    ``factory`` is a function or class called with no arguments (or an ``nn.Module``
    instance). ``weights``: a ``.safetensors`` file, an snnfast zoo file
    (:func:`snnfast.zoo.train_entry`), or a file ``torch.load(..., weights_only=True)`` reads
    (a state dict, or a dict holding one under ``"state_dict"``); nothing is unpickled beyond
    tensors. Importing ``target`` runs that module's code: it is the user's own model code.

    Raises:
        ConfigError: ``target`` is not ``MODULE:FACTORY`` or cannot be imported or called.
        ModelFormatError: the weights file is unreadable or does not fit the model.
    """
    import importlib
    import importlib.util
    import sys

    import torch

    if not isinstance(target, str) or target.count(":") != 1:
        raise ConfigError(f"the model must be given as MODULE:FACTORY, got {target!r}")
    where, name = target.split(":")
    try:
        if where.endswith(".py") or os.sep in where:
            spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            if spec is None or spec.loader is None:
                raise ImportError(f"no Python file at {where}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(where)
        factory = getattr(module, name)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise ConfigError(f"cannot import {target}: {type(exc).__name__}: {exc}") from exc
    model = factory if isinstance(factory, torch.nn.Module) else factory()
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{target} made a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        model.load_state_dict(_state_dict(Path(weights)))
    return model.eval()


def _state_dict(path: Path) -> dict[str, Any]:
    import torch

    from . import _container
    from .errors import ModelFormatError

    if not path.is_file():
        raise ModelFormatError(f"no weights file at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        if _container.sniff(path) is not None:
            contents = _container.read(path, "torch_state", [2], what="torch weights")
            return {k: torch.from_numpy(np.array(v)) for k, v in contents.arrays.items()}
        state = torch.load(path, map_location="cpu", weights_only=True)
    except ModelFormatError:
        raise
    except Exception as exc:  # pickle, zip, safetensors and torch errors
        raise ModelFormatError(f"{path} is not a readable weights file: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelFormatError(f"{path} does not hold a state dict of tensors")
    return state
