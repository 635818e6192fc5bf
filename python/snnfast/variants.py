"""SNN variants for few time steps: a conversion, a readout and an early-exit rule, combined.

The paper's SNN (Algorithm 1, membrane readout) loses about 5 points at 16 steps. Each option
that closes the gap is a named option of the converter (:class:`snnfast.convert.ConversionConfig`:
``v_init``, ``rounding``, ``threshold_balancing``), the trainer (QCFS, :mod:`snnfast.qcfs`),
the embedding (:data:`snnfast.embed.READOUTS`, e.g. ``"integrated"``) or the run
(``early_exit``). A :class:`Variant` names one combination; :func:`convert_variant` builds its
SNN for a number of time steps and :func:`select_early_exit` picks its early-exit ``k`` on
held-out images. The study that compares them is ``snnfast lowlatency``
(the ``paper`` subpackage's ``lowlatency`` module).

With a half-threshold start (``v_init = 0.5``) the final membrane potential is mostly the
rounding residue of the input, not the input itself, so such variants read the embedding out as
the integrated input (``"integrated"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from . import _checks, qcfs
from .convert import ConversionConfig, ConvertedModel, convert
from .embed import READOUTS, predict_from_output
from .errors import ConfigError
from .settings import RunSettings

__all__ = [
    "EARLY_EXIT_TOLERANCE",
    "SNN_READOUTS",
    "Variant",
    "convert_variant",
    "select_early_exit",
]

SNN_READOUTS = tuple(r for r in READOUTS if r != "ann")
"""The SNN readouts, in the order reports list them."""
EARLY_EXIT_TOLERANCE = 0.0025
"""Largest drop in validation accuracy :func:`select_early_exit` accepts (0.25 points)."""


@dataclass(frozen=True)
class Variant:
    """One way to build and run the SNN.

    Attributes:
        name: its label in reports.
        config: conversion options. With threshold balancing on, ``balance_timesteps`` is set
            to each evaluated ``T``, so every ``T`` is calibrated for itself.
        model: ANN model file (``None``: :data:`snnfast.ann.SHIPPED_MODEL`). The thresholds of
            a QCFS-trained model (:func:`snnfast.qcfs.load`) are used in the conversion.
        readout: the embedding readout of the main table (reports measure every readout of
            :data:`SNN_READOUTS`).
        early_exit: ``None`` (run all steps), a number of stable steps ``k``, or ``"auto"``
            (:func:`select_early_exit` on held-out training images).
    """

    name: str
    config: ConversionConfig = field(default_factory=ConversionConfig)
    model: str | None = None
    readout: str = "membrane"
    early_exit: int | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"variant name must be a non-empty string, got {self.name!r}")
        where = f"variant {self.name!r}"
        if not isinstance(self.config, ConversionConfig):
            raise ConfigError(f"{where}: config must be a ConversionConfig")
        _checks.choice(self.readout, "readout", SNN_READOUTS, where=where)
        if self.early_exit is not None and self.early_exit != "auto":
            try:
                _checks.positive_int(self.early_exit, "early_exit", where=where)
            except ConfigError:
                raise ConfigError(
                    f"{where}: early_exit must be None, 'auto' or a positive integer, "
                    f"got {self.early_exit!r}"
                ) from None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "config": asdict(self.config),
            "model": self.model,
            "readout": self.readout,
            "early_exit": self.early_exit,
        }


def convert_variant(
    variant: Variant, calibration_images: np.ndarray, timesteps: int
) -> tuple[ConvertedModel, qcfs.QCFSSpec | None]:
    """Convert ``variant``'s model for runs of ``timesteps`` steps; also return its QCFS spec.

    ``calibration_images`` is the calibration sample (:func:`snnfast.evaluation.
    calibration_images`).
    """
    arch, state, spec, _ = qcfs.load(variant.model)
    cfg = variant.config
    if cfg.threshold_balancing != "none":
        cfg = replace(cfg, balance_timesteps=int(timesteps))
    model = convert(
        state,
        arch,
        calibration_images=calibration_images,
        config=cfg,
        qcfs=spec,
    )
    return model, spec


def select_early_exit(
    converted: ConvertedModel,
    images: np.ndarray,
    labels: np.ndarray,
    timesteps: int,
    tolerance: float = EARLY_EXIT_TOLERANCE,
    threads: int | None = None,
) -> int | None:
    """The smallest ``k < timesteps`` whose early-exit accuracy on ``images`` is at most
    ``tolerance`` below the accuracy of full runs, or ``None`` when no ``k`` qualifies.

    Runs use :attr:`ConvertedModel.settings` (its ``v_init``). Pass images the model will not be
    scored on.

    Raises:
        ConfigError: ``tolerance`` outside ``[0, 1)``, or a bad ``timesteps`` / ``threads``.
        ShapeError: no images, or images of the wrong shape.
    """
    tolerance = _checks.number(
        tolerance, "tolerance", 0.0, 1.0, hi_open=True, where="select_early_exit"
    )
    base = converted.settings.replace(timesteps=timesteps, threads=threads)
    net = converted.network
    out = converted.output_layer

    def accuracy(k: int | None) -> float:
        s: RunSettings = base.replace(early_exit=k)
        res = net.run(
            images,
            s.timesteps,
            delay=s.delay,
            v_init=s.v_init,
            threads=s.threads,
            record=[out],
            early_exit=s.early_exit,
        )
        counts, membrane = res.spike_counts[out], res.membrane[out]
        assert counts is not None and membrane is not None  # recorded
        pred = predict_from_output(counts, membrane)
        return float(np.mean(pred == labels))

    full = accuracy(None)
    for k in range(1, base.timesteps):
        if accuracy(k) >= full - tolerance:
            return k
    return None
