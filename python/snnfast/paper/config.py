"""What ``snnfast reproduce`` runs: :class:`ReproduceConfig` and its three sizes.

:func:`full_config` is the paper's whole study (hours on 2 cores, resumable),
:func:`quick_config` a cut-down run of about 10 minutes whose report lists every cut
(:meth:`ReproduceConfig.cuts`), :func:`tiny_config` a run of seconds for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from .. import _checks, ann
from .._records import Record
from ..errors import ConfigError
from ..evaluation import SEARCH_K
from ..train import Recipe
from .published import PAPER_TABLE1_TIMESTEPS, TABLE1_SPECS

__all__ = [
    "FIGURES",
    "TRAINED",
    "ReproduceConfig",
    "full_config",
    "quick_config",
    "tiny_config",
]

FIGURES: dict[str, str] = {
    "fig3": "fig3_core_map.png",
    "fig4": "fig4_accuracy_vs_timesteps.png",
    "fig5": "fig5_runtime_vs_timesteps.png",
    "fig6": "fig6_retrieval_examples.png",
    "fig4_lowlatency": "fig4_lowlatency_variants.png",
}
"""The PNG files :func:`~snnfast.paper.reproduce.reproduce` writes into ``OUTDIR``."""

TRAINED = "trained"
"""``ReproduceConfig.table2_model`` value: use this run's seed-``table1_seed`` network of
``sweep_arch`` instead of a model file."""


@dataclass(frozen=True)
class ReproduceConfig(Record):
    """What :func:`~snnfast.paper.reproduce.reproduce` runs; :func:`full_config` is the paper's
    whole study. A record: ``to_json`` / ``from_json`` give its JSON form.

    Attributes:
        name: a label for the report (``"full"``, ``"quick"``, ...).
        archs: Table-1 architectures to train (the other rows are listed as not run).
        table1_seed: training seed of the Table-1 networks.
        epochs: training epochs of every network (default: :class:`snnfast.train.Recipe`'s,
            the recipe of the shipped model).
        train_limit: train (and score the ANN) on the first ``n`` images only; None for all.
        table1_timesteps: time steps of Table 1's SNN test accuracy.
        table1_n_test: test images for Table 1's SNN accuracy (None: all 10,000).
        sweep_arch: architecture of the Fig 4 time-step sweep.
        seeds: training seeds of the independently trained networks of Fig 4.
        timesteps: time steps of Figs 4 and 5.
        sweep_n_train, sweep_n_test: corpus / query images of Fig 4 (None: all).
        table2_model: ANN model file of Table 2 and Tables 3-5; None: the shipped model;
            :data:`TRAINED`: this run's ``sweep_arch`` network of seed ``table1_seed``.
        table2_timesteps: SNN time steps of Table 2 (the paper's: 16 and 128).
        table2_n_train, table2_n_test: corpus / query images of Table 2 (None: all).
        calibration_size, calibration_seed: the Algorithm-1 calibration sample.
        recall_queries: queries on which Table 2's recall@10 against exact search is measured.
        ann_large_batch: batch size of the large-batch ANN timing.
        engine_large_batch: images per call of the large-batch engine timing.
        batch1_images: timed batch-1 calls (one image each) per setting.
        large_repeats: timed calls per large-batch setting.
        energy_images: test images the chip model's estimates average over.
        threads: engine, index and torch threads (None: all cores).
        data_root: Fashion-MNIST directory (None: see :mod:`snnfast.data`).
        lowlatency: run the low-latency variants
            (:func:`snnfast.paper.lowlatency.lowlatency_report`).
        lowlatency_models: their QCFS-trained model files; None: the shipped ones
            (:data:`snnfast.qcfs.SHIPPED_MODELS`); empty: the conversion variants only.
        lowlatency_timesteps: time steps of the low-latency variants.
    """

    name: str = "full"
    archs: tuple[str, ...] = TABLE1_SPECS
    table1_seed: int = 0
    epochs: int = Recipe.epochs
    train_limit: int | None = None
    table1_timesteps: int = PAPER_TABLE1_TIMESTEPS
    table1_n_test: int | None = None
    sweep_arch: str = "32-64-10"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    timesteps: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
    sweep_n_train: int | None = None
    sweep_n_test: int | None = None
    table2_model: str | None = None
    table2_timesteps: tuple[int, ...] = (16, 128)
    table2_n_train: int | None = None
    table2_n_test: int | None = None
    calibration_size: int = 1000
    calibration_seed: int = 0
    recall_queries: int = 1000
    ann_large_batch: int = 10000
    engine_large_batch: int = 1000
    batch1_images: int = 200
    large_repeats: int = 3
    energy_images: int = 200
    threads: int | None = None
    data_root: str | None = None
    lowlatency: bool = True
    lowlatency_models: tuple[str, ...] | None = None
    lowlatency_timesteps: tuple[int, ...] = (4, 8, 16)

    def __post_init__(self) -> None:
        where = "ReproduceConfig"
        for name in ("archs", "seeds", "timesteps", "table2_timesteps", "lowlatency_timesteps"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise ConfigError(f"{where}.{name} must be a non-empty sequence, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for spec in (*self.archs, self.sweep_arch):
            ann.Architecture.parse(spec)
        if len(set(self.archs)) != len(self.archs):
            raise ConfigError(f"{where}.archs lists an architecture twice: {self.archs}")
        for s in (*self.seeds, self.table1_seed, self.calibration_seed):
            _checks.integer(s, "seed", 0, where=where)
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{where}.seeds repeats a seed: {self.seeds}")
        for t in (
            *self.timesteps,
            *self.table2_timesteps,
            self.table1_timesteps,
            *self.lowlatency_timesteps,
        ):
            _checks.positive_int(t, "timesteps", where=where)
        _checks.flag(self.lowlatency, "lowlatency", where=where)
        models = self.lowlatency_models
        if models is not None:
            if (
                isinstance(models, (str, bytes))
                or not isinstance(models, Sequence)
                or any(not isinstance(m, str) or not m for m in models)
            ):
                raise ConfigError(
                    f"{where}.lowlatency_models must be None or a "
                    f"sequence of model file names, got {models!r}"
                )
            object.__setattr__(self, "lowlatency_models", tuple(models))
        for name in (
            "epochs",
            "calibration_size",
            "recall_queries",
            "ann_large_batch",
            "engine_large_batch",
            "batch1_images",
            "large_repeats",
            "energy_images",
        ):
            _checks.positive_int(getattr(self, name), name, where=where)
        for name in (
            "train_limit",
            "table1_n_test",
            "sweep_n_train",
            "sweep_n_test",
            "table2_n_train",
            "table2_n_test",
            "threads",
        ):
            if getattr(self, name) is not None:
                _checks.positive_int(getattr(self, name), name, where=where)
        if self.train_limit is not None:
            _checks.integer(
                self.train_limit,
                "train_limit (a validation split needs some images)",
                24,
                where=where,
            )
        for name in ("sweep_n_train", "table2_n_train"):
            if getattr(self, name) is not None:
                _checks.integer(getattr(self, name), name, SEARCH_K, where=where)

    def cuts(self) -> list[str]:
        """What differs from :func:`full_config`, one readable line per setting."""
        full = full_config()
        lines = []
        for f in fields(self):
            if f.name == "name":
                continue
            mine, theirs = getattr(self, f.name), getattr(full, f.name)
            if mine == theirs:
                continue
            if f.name == "archs":
                rest = [a for a in theirs if a not in mine]
                lines.append(
                    f"Table 1 trains {len(mine)} of {len(theirs)} architectures "
                    f"({', '.join(mine)}); not run: {', '.join(rest) or 'none'}"
                )
            else:
                lines.append(
                    f"`{f.name}` = {_show(f.name, mine)} (full run: {_show(f.name, theirs)})"
                )
        return lines


_NONE_MEANS = {
    "table2_model": "the shipped model",
    "lowlatency_models": "the shipped QCFS models",
    "threads": "all cores",
    "data_root": "the default",
}


def _show(name: str, value: Any) -> str:
    if value is None:
        return _NONE_MEANS.get(name, "all")
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


def full_config() -> ReproduceConfig:
    """The paper's whole study: 12 architectures, the shipped model's training recipe, 5 seeds,
    every image, T = 4..128.

    Hours on a 2-core machine (mostly training); resumable.
    """
    return ReproduceConfig()


def quick_config() -> ReproduceConfig:
    """About 10 minutes on 2 cores: 2 small Table-1 networks of 2 epochs, a Fig-4 sweep over 2
    seeds of ``4-8-10`` on 5,000 corpus / 1,000 query images, Table 2 and the low-latency
    variants (T = 4 and 8) with the shipped models on 10,000 / 1,000 images, and short latency
    measurements."""
    return replace(
        full_config(),
        name="quick",
        archs=("4-8-10", "8-16-10"),
        epochs=2,
        table1_n_test=1000,
        sweep_arch="4-8-10",
        seeds=(0, 1),
        sweep_n_train=5000,
        sweep_n_test=1000,
        table2_n_train=10000,
        table2_n_test=1000,
        recall_queries=500,
        ann_large_batch=1000,
        engine_large_batch=200,
        batch1_images=100,
        large_repeats=2,
        energy_images=100,
        lowlatency_timesteps=(4, 8),
    )


def tiny_config() -> ReproduceConfig:
    """Seconds: one ``4-8-10`` trained for 1 epoch on 600 images (2 seeds), T in (4, 8), 300
    corpus / 100 query images, Table 2 on this run's own network. For tests."""
    return replace(
        full_config(),
        name="tiny",
        archs=("4-8-10",),
        epochs=1,
        train_limit=600,
        table1_timesteps=8,
        table1_n_test=100,
        sweep_arch="4-8-10",
        seeds=(0, 1),
        timesteps=(4, 8),
        sweep_n_train=300,
        sweep_n_test=100,
        table2_model=TRAINED,
        table2_n_train=300,
        table2_n_test=100,
        calibration_size=100,
        recall_queries=50,
        ann_large_batch=100,
        engine_large_batch=20,
        batch1_images=5,
        large_repeats=1,
        energy_images=5,
        lowlatency_models=(),
        lowlatency_timesteps=(4, 8),
    )
