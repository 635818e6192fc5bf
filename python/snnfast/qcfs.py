"""Quantisation-aware ANN training for low-latency conversion: the QCFS activation.

The quantisation clip-floor-shift activation of Bu et al. (ICLR 2022, "Optimal ANN-SNN
conversion for high-accuracy and ultra-low-latency spiking neural networks") replaces ReLU::

    h(x) = lam / L * clip(floor(x * L / lam + 1/2), 0, L)

with one trainable threshold ``lam`` per layer and ``L`` quantisation levels. An integrate-and-
fire neuron with threshold ``lam``, soft reset and an initial membrane potential of ``lam / 2``
that receives a constant input ``x`` for ``T = L`` steps emits exactly
``clip(floor(x * L / lam + 1/2), 0, L)`` spikes, so an ANN trained with ``h`` computes the rates
its converted SNN can express (the conversion error that remains comes from inputs that are
not constant over time). The floor has a straight-through gradient (identity); ``clip``
passes no gradient to ``x`` outside ``[0, lam]``, and ``lam`` receives
``q - x / lam`` inside that range and 1 above it.

How snnfast applies it to the Table-1 CNNs (:mod:`snnfast.ann`):

- after every convolution (in place of ReLU; ``h(x) = h(ReLU(x))``) *and after every average
  pooling layer*: in the SNN a pooling layer is a spiking layer of its own, which can only emit
  ``T + 1`` different counts, so the ANN re-quantises the pooled value with a threshold of its
  own; the dense output layer keeps its logits;
- optionally the input: with ``input_levels = L`` the pixel ``p / 255`` becomes
  ``floor(p / 255 * L + 1/2) / L``, which is exactly the spike count / ``T`` of the SNN's input
  neuron (threshold 255) started at half its threshold after ``T = L`` steps;
- ``lam`` starts from the data (:func:`init_scales`: a percentile of each layer's activation on
  a training batch, earlier layers already quantised), as LSQ-style quantisers do; Bu et al.
  start from a constant, which suits networks with batch normalisation.

The thresholds are stored beside the ordinary parameters: the state dict keeps exactly the keys
of :mod:`snnfast.ann` and the model file (:func:`snnfast.ann.save_model`) carries a
:class:`QCFSSpec` in its metadata under ``"qcfs"``. :func:`snnfast.convert.convert` takes the
scales (``activation_scales=spec.scales``) and sets each layer's threshold from ``lam`` instead of
a percentile of the calibration activations.

Only the functions whose names say ``torch`` import PyTorch, inside.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks, ann
from .errors import ConfigError, ModelFormatError
from .graph import quantize

__all__ = [
    "METADATA_KEY",
    "SHIPPED_MODELS",
    "QCFSSpec",
    "forward",
    "init_scales",
    "load",
    "predict",
    "quantize",
    "quantize_input",
    "scaled_layers",
    "torch_activation",
]

METADATA_KEY = "qcfs"
"""Key of the :class:`QCFSSpec` in a model file's metadata."""
SHIPPED_MODELS: dict[int, Path] = {
    levels: ann.SHIPPED_MODEL.with_name(f"fmnist-32-64-10-qcfs-L{levels}.npz") for levels in (4, 8)
}
"""QCFS-trained ``32-64-10`` models shipped with the package, by ``L`` (input quantised too):
``train("32-64-10", epochs=20, qcfs_levels=L, qcfs_input=True)``."""
INIT_PERCENTILE = 99.9
"""Percentile of a layer's activation on the first training batch that initialises ``lam``."""


def scaled_layers(arch: ann.Architecture) -> list[str]:
    """Names of the layers followed by a QCFS activation: every convolution and pooling layer."""
    return [d.name for d in arch.layers if d.kind in ("conv", "pool")]


def _levels(value: Any, name: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not (1 <= value <= 1 << 16)
    ):
        raise ConfigError(f"{name} must be an integer in [1, 65536], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class QCFSSpec:
    """The quantisation a QCFS-trained model was trained with.

    Attributes:
        levels: ``L``, quantisation levels of every hidden activation.
        scales: ``lam`` of each quantised layer, keyed by layer name (``"conv1"``,
            ``"pool1"``, ...; see :func:`scaled_layers`).
        input_levels: levels of the input quantisation, or ``None`` (input not quantised).
    """

    levels: int
    scales: Mapping[str, float] = field(default_factory=dict)
    input_levels: int | None = None

    def __post_init__(self) -> None:
        _levels(self.levels, "levels")
        if self.input_levels is not None:
            _levels(self.input_levels, "input_levels")
        if not isinstance(self.scales, Mapping):
            raise ConfigError(
                f"scales must be a mapping of layer name to lam, got {type(self.scales).__name__}"
            )
        for name, lam in self.scales.items():
            if (
                isinstance(lam, bool)
                or not isinstance(lam, (int, float, np.number))
                or not (math.isfinite(float(lam)) and float(lam) > 0)
            ):
                raise ConfigError(
                    f"scale of {name!r} must be a positive finite number, got {lam!r}"
                )

    def check(self, arch: ann.Architecture) -> None:
        """Raise :class:`ConfigError` unless :attr:`scales` names exactly the QCFS layers of
        ``arch``."""
        want = scaled_layers(arch)
        if sorted(self.scales) != sorted(want):
            raise ConfigError(
                f"QCFS scales for {arch.spec} must name the layers {want}, "
                f"got {sorted(self.scales)}"
            )

    def metadata(self) -> dict[str, Any]:
        """JSON form stored in a model file's metadata under :data:`METADATA_KEY`."""
        return {
            "levels": self.levels,
            "input_levels": self.input_levels,
            "scales": {k: float(v) for k, v in self.scales.items()},
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> QCFSSpec | None:
        """The spec in a model file's metadata, or ``None`` for a ReLU-trained model.

        Raises:
            ModelFormatError: the ``"qcfs"`` entry is there but damaged.
        """
        entry = metadata.get(METADATA_KEY)
        if entry is None:
            return None
        try:
            return cls(
                int(entry["levels"]),
                {str(k): float(v) for k, v in dict(entry["scales"]).items()},
                None if entry.get("input_levels") is None else int(entry["input_levels"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(f"model metadata has a damaged QCFS entry: {exc}") from exc


def quantize_input(x: np.ndarray, levels: int) -> np.ndarray:
    """Input quantisation (``scale = 1``): the spike rate of an input neuron after ``levels``
    steps from half its threshold. ``x`` is float in [0, 1]."""
    return quantize(x, 1.0, levels)


def forward(
    arch: ann.Architecture,
    state: Mapping[str, Any],
    spec: QCFSSpec,
    images: np.ndarray,
    layers: Sequence[int] | None = None,
    batch_size: int = 500,
) -> list[np.ndarray]:
    """NumPy forward pass of a QCFS-trained network: the outputs of ``arch.layers[i]`` for each
    ``i`` in ``layers`` (default all; NCHW, the dense layer's logits ``[N, n_classes]``).

    The graph of :meth:`snnfast.ann.Architecture.graph` with ``qcfs=spec``: each conv and pool
    output passes through :func:`quantize` (and the input through :func:`quantize_input` when
    the spec says so). Memory grows with the layers kept: ask only for those you need.

    Raises:
        ConfigError: ``spec`` does not fit ``arch``, a bad layer index or batch size; plus
            what :func:`snnfast.ann.forward` raises for bad images or parameters.
    """
    graph = arch.graph(state, qcfs=spec)
    n = len(arch.layers)
    keep = list(range(n)) if layers is None else list(layers)
    for i in keep:
        _checks.integer(i, "layer", 0, n - 1, where=f"layers of {arch.spec}")
    names = [f"{d.name}.qcfs" if d.kind != "dense" else d.name for d in arch.layers]
    values = graph.forward(images, [names[i] for i in keep], batch_size=batch_size)
    return [values[names[i]] for i in keep]


def predict(
    arch: ann.Architecture, state: Mapping[str, Any], spec: QCFSSpec, images: np.ndarray
) -> np.ndarray:
    """Predicted class (argmax of the QCFS network's logits) of each image: int64 ``[N]``."""
    logits = forward(arch, state, spec, images, [len(arch.layers) - 1])[0]
    return logits.argmax(axis=1).astype(np.int64)


def load(
    path: str | os.PathLike[str] | None = None,
) -> tuple[ann.Architecture, dict[str, np.ndarray], QCFSSpec | None, dict[str, Any]]:
    """Read a model file (:func:`snnfast.ann.load_model`) with its QCFS spec, if it has one.

    Returns:
        ``(arch, state, spec, metadata)``; ``spec`` is ``None`` for a ReLU-trained model.

    Raises:
        ModelFormatError: what :func:`snnfast.ann.load_model` raises, or a QCFS entry that is
            damaged or does not fit the architecture.
    """
    arch, state, metadata = ann.load_model(path)
    spec = QCFSSpec.from_metadata(metadata)
    if spec is not None:
        try:
            spec.check(arch)
        except ConfigError as exc:
            raise ModelFormatError(f"{path}: {exc}") from exc
    return arch, state, spec, metadata


def torch_activation(levels: int, scale: float = 1.0, trainable: bool = True) -> Any:
    """A ``torch.nn.Module`` computing ``h(x)`` with a straight-through floor.

    Its threshold is the parameter (or, with ``trainable=False``, the non-persistent buffer)
    ``lam``. Setting
    the module's ``calibrating`` attribute makes its next forward pass first set ``lam`` to the
    :data:`INIT_PERCENTILE` percentile of ``ReLU(x)`` (see :func:`init_scales`).
    """
    import torch
    from torch import nn

    levels = _levels(levels, "levels")
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be positive and finite, got {scale!r}")

    class QCFS(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.levels = levels
            self.calibrating = False
            lam = torch.tensor(float(scale))
            if trainable:
                self.lam = nn.Parameter(lam)
            else:
                self.register_buffer("lam", lam, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.calibrating:
                with torch.no_grad():
                    act = torch.relu(x.detach()).cpu().numpy()
                    value = float(np.percentile(act, INIT_PERCENTILE)) if act.size else 0.0
                    self.lam.fill_(max(value, 1e-3))
                self.calibrating = False
            y = torch.clamp(x / self.lam, 0.0, 1.0) * self.levels + 0.5
            y = y + (torch.floor(y) - y).detach()  # floor forward, identity backward
            return y * (self.lam / self.levels)

        def extra_repr(self) -> str:
            return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}"

    return QCFS()


def init_scales(model: Any, images: Any) -> None:
    """Set every QCFS threshold of ``model`` from one forward pass over ``images``.

    Each activation takes the :data:`INIT_PERCENTILE` percentile of its input's ReLU, in layer
    order, so each layer sees the already-quantised output of the one before. Runs without
    gradients and in ``eval()`` mode (no dropout); the model's mode is restored.
    """
    import torch

    acts = [m for m in model.modules() if hasattr(m, "calibrating") and hasattr(m, "lam")]
    if not acts:
        raise ConfigError("the model has no QCFS activation to initialise")
    was_training = model.training
    model.eval()
    try:
        for m in acts:
            if isinstance(m.lam, torch.nn.Parameter) or m.lam.requires_grad:
                m.calibrating = True
        with torch.no_grad():
            model(images)
    finally:
        for m in acts:
            m.calibrating = False
        model.train(was_training)
