"""``snnfast reproduce OUTDIR``: the paper's Tables 1-5 and Figs 3-6, with our numbers beside them.

:func:`reproduce` writes ``OUTDIR/report.md`` (every number of the paper next to ours and the
difference), ``OUTDIR/results.json`` (the same, machine-readable) and four PNGs:

- **Table 1**: the twelve architectures trained with :func:`snnfast.train.train`, converted
  with Algorithm 1 and simulated; ANN train / validation / test accuracy and SNN test accuracy at
  ``table1_timesteps`` (128 by default: the paper's SNN column for ``32-64-10``, 90.01 %, is its
  Table 2 SNN(128) figure), and deployability on one Loihi 1 chip from
  :func:`snnfast.chip.table1_deployability`, with the reason where a network does not fit.
- **Table 2**: classification, top-1, top-3 (and our mAP@10, recall@10) of the ANN, SNN(16) and
  SNN(128), from :func:`snnfast.pipeline.run_pipeline` on the Table-2 model (the shipped
  ``32-64-10`` by default).
- **Tables 3-5**: latency measured on this machine (PyTorch and NumPy ANN, batch 1 and a large
  batch; the snnfast engine, batch 1 on one thread and a large batch on all threads, at T = 16
  and 128), CPU power and energy from RAPL where readable, and the Loihi 1 chip model's latency,
  power and energy estimates (:mod:`snnfast.energy`), beside the paper's rows.
- **Fig 3** core map; **Fig 4** classification / top-1 / top-3 against time steps, mean and
  sample standard deviation over independently trained networks; **Fig 5** runtime against time
  steps (the engine measured here, the chip model, the paper's two measurements); **Fig 6** one
  query per class with three random same-class corpus images, the ANN's and the SNN's top 3.
- **Beyond the paper**: the low-latency variants of :mod:`snnfast.lowlatency` (half-threshold
  start, rounding, threshold balancing, QCFS-trained networks, early exit) at
  ``lowlatency_timesteps`` on Table 2's images, with the Table-2 model as the ReLU ANN and the
  QCFS models of ``lowlatency_models``: their table, and Fig 4 for the variants.

**Resuming.** Trained models, evaluations and measurements are cached under ``OUTDIR/cache``.
Each entry is named by a hash of everything that decides it (recipe, model file, conversion,
time steps, image counts, ...) and stores that key; an entry is used only when it parses and its
stored key equals the one asked for. Every file is written atomically (:func:`atomic_write`), so
an interrupted run (Ctrl-C included) leaves either a complete entry or none; a rerun computes only
what is missing.

**Speed.** ``jobs=N`` (``--jobs N``) trains the missing networks in ``N`` processes at once,
longest first; each trains on one thread, so the weights are those of a sequential run. Fig 4's
step counts come from one simulation per network, read out at each of them
(:meth:`snnfast.Network.run_checkpoints`).

**Calibration.** Every conversion here takes its Algorithm-1 calibration images from the whole
training set (:func:`snnfast.pipeline.calibration_indices` over 60,000 images), so a model's
SNN is the same whatever corpus size an experiment uses. :func:`run_pipeline` (Table 2) draws
them from its corpus, which is the same when its corpus is the whole training set.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.auto import tqdm

from . import ann, latency, qcfs
from ._core import __version__
from ._io import atomic_write
from .chip import TABLE1_SPECS, map_network, table1_deployability
from .convert import ConversionConfig, ConvertedModel, convert
from .data import load_fashion_mnist
from .embed import embed, embed_checkpoints
from .energy import PAPER_LOIHI, compare_with_paper, estimate_network
from .errors import ConfigError, ModelFormatError
from .lowlatency import lowlatency_report, plot_variants, render_lowlatency
from .metrics import evaluate_retrieval
from .pipeline import calibration_indices, run_pipeline
from .retrieval import RetrievalIndex
from .train import Recipe

__all__ = [
    "FIGURES",
    "PAPER_TABLE1",
    "PAPER_TABLE1_TIMESTEPS",
    "PAPER_TABLE3",
    "PAPER_TABLE4",
    "PAPER_TABLE5",
    "TRAINED",
    "ReproduceConfig",
    "full_config",
    "quick_config",
    "render_report",
    "reproduce",
    "tiny_config",
]

# -- the paper's numbers (Liu et al. 2022, PLoS ONE 17(4): e0264364) --------------------------

PAPER_TABLE1: dict[str, tuple[float, float, float, float | None]] = {
    # architecture: ANN train, ANN validation, ANN test, SNN test accuracy (%); None = N/A
    "4-8-10": (85.03, 85.37, 83.96, 83.73),
    "8-16-10": (89.11, 88.43, 87.41, 86.98),
    "16-32-10": (89.41, 88.72, 87.85, 87.41),
    "32-64-10": (93.99, 90.68, 90.07, 90.01),
    "4-8-16-10": (87.47, 87.20, 86.16, 86.02),
    "8-16-32-10": (90.43, 89.03, 88.40, 76.54),
    "16-32-64-10": (90.36, 89.25, 87.91, 87.85),
    "32-64-128-10": (93.37, 90.08, 89.43, 88.18),
    "4-8-16-32-10": (89.14, 88.57, 87.87, 87.49),
    "8-16-32-64-10": (92.11, 90.20, 89.51, 84.19),
    "16-32-64-128-10": (94.27, 90.60, 89.76, 85.79),
    "32-64-128-256-10": (93.38, 90.78, 90.21, None),
}
"""The paper's Table 1. The last network was not deployable on Loihi (maximum fan-in)."""

PAPER_TABLE1_TIMESTEPS = 128
"""Time steps behind Table 1's SNN column: its 32-64-10 entry equals Table 2's SNN(128)."""

PAPER_TABLE3: tuple[tuple[str, int, str, float], ...] = (
    # model, batch size, hardware, runtime per example (ms)
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 0.216),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 0.0073),
    ("ANN", 1, "Intel CPU (i7-8750H)", 0.2634),
    ("ANN", 128, "Intel CPU (i7-8750H)", 0.013),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 0.778),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 0.356),
    ("ANN", 1, "NVIDIA GPU (V100)", 1.296),
    ("ANN", 4096, "NVIDIA GPU (V100)", 0.0075),
    ("ANN", 1, "NVIDIA GPU (T4)", 1.204),
    ("ANN", 4096, "NVIDIA GPU (T4)", 0.010),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 2.984),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 11.976),
)
"""The paper's Table 3, inference latency."""

PAPER_TABLE4: tuple[tuple[str, int, str, float, float, float], ...] = (
    # model, batch size, hardware, static, dynamic, total power (W)
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 196.0, 19.1, 215.1),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 196.0, 44.189, 240.189),
    ("ANN", 1, "Intel CPU (i7-8750H)", 22.0, 1.805, 23.805),
    ("ANN", 128, "Intel CPU (i7-8750H)", 22.0, 5.633, 27.633),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 0.142, 9.082, 9.224),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 0.142, 2.698, 2.84),
    ("ANN", 1, "NVIDIA GPU (V100)", 24.0, 16.441, 40.441),
    ("ANN", 4096, "NVIDIA GPU (V100)", 24.0, 20.511, 44.511),
    ("ANN", 1, "NVIDIA GPU (T4)", 17.0, 14.049, 31.049),
    ("ANN", 4096, "NVIDIA GPU (T4)", 17.0, 18.228, 35.228),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 0.946, 0.044, 0.991),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 0.952, 0.064, 1.016),
)
"""The paper's Table 4, inference power."""

PAPER_TABLE5: tuple[tuple[str, int, str, float, float], ...] = (
    # model, batch size, hardware, energy per example (mJ), relative to SNN(16) on Loihi
    ("ANN", 1, "Intel Xeon CPU (Gold 6148)", 46.787, 15.6),
    ("ANN", 262144, "Intel Xeon CPU (Gold 6148)", 1.753, 0.585),
    ("ANN", 1, "Intel CPU (i7-8750H)", 9.522, 3.178),
    ("ANN", 128, "Intel CPU (i7-8750H)", 0.316, 0.105),
    ("ANN", 1, "ARM CPU (Cortex-A72)", 7.379, 2.463),
    ("ANN", 2048, "ARM CPU (Cortex-A72)", 1.02, 0.34),
    ("ANN", 1, "NVIDIA GPU (V100)", 52.399, 17.5),
    ("ANN", 4096, "NVIDIA GPU (V100)", 0.337, 0.112),
    ("ANN", 1, "NVIDIA GPU (T4)", 37.399, 12.5),
    ("ANN", 4096, "NVIDIA GPU (T4)", 0.366, 0.12),
    ("SNN (16)", 1, "Loihi chip (neuromorphic cores)", 2.996, 1.0),
    ("SNN (128)", 1, "Loihi chip (neuromorphic cores)", 12.17, 4.0),
)
"""The paper's Table 5, inference energy."""

FIGURES: dict[str, str] = {
    "fig3": "fig3_core_map.png",
    "fig4": "fig4_accuracy_vs_timesteps.png",
    "fig5": "fig5_runtime_vs_timesteps.png",
    "fig6": "fig6_retrieval_examples.png",
    "fig4_lowlatency": "fig4_lowlatency_variants.png",
}
"""The PNG files :func:`reproduce` writes into ``OUTDIR``."""

TRAINED = "trained"
"""``ReproduceConfig.table2_model`` value: use this run's seed-``table1_seed`` network of
``sweep_arch`` instead of a model file."""

CACHE_VERSION = 1
_SEARCH_K = 10
_METRICS = (("classification", "classification"), ("top1", "top-1"), ("top3", "top-3"))


# -- configuration ----------------------------------------------------------------------------


def _pos_int(value: Any, name: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(
            f"ReproduceConfig.{name} must be a positive integer"
            f"{' or None' if allow_none else ''}, got {value!r}"
        )


@dataclass(frozen=True)
class ReproduceConfig:
    """What :func:`reproduce` runs; :func:`full_config` is the paper's whole study.

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
        lowlatency: run the low-latency variants (:func:`snnfast.lowlatency.lowlatency_report`).
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
        for name in ("archs", "seeds", "timesteps", "table2_timesteps", "lowlatency_timesteps"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise ConfigError(
                    f"ReproduceConfig.{name} must be a non-empty sequence, got {value!r}"
                )
            object.__setattr__(self, name, tuple(value))
        for spec in (*self.archs, self.sweep_arch):
            ann.Architecture.parse(spec)
        if len(set(self.archs)) != len(self.archs):
            raise ConfigError(f"ReproduceConfig.archs lists an architecture twice: {self.archs}")
        for s in (*self.seeds, self.table1_seed, self.calibration_seed):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise ConfigError(f"ReproduceConfig: seeds must be integers >= 0, got {s!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"ReproduceConfig.seeds repeats a seed: {self.seeds}")
        for t in (
            *self.timesteps,
            *self.table2_timesteps,
            self.table1_timesteps,
            *self.lowlatency_timesteps,
        ):
            _pos_int(t, "timesteps")
        if not isinstance(self.lowlatency, bool):
            raise ConfigError(
                f"ReproduceConfig.lowlatency must be True or False, got {self.lowlatency!r}"
            )
        models = self.lowlatency_models
        if models is not None:
            if (
                isinstance(models, (str, bytes))
                or not isinstance(models, Sequence)
                or any(not isinstance(m, str) or not m for m in models)
            ):
                raise ConfigError(
                    f"ReproduceConfig.lowlatency_models must be None or a "
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
            _pos_int(getattr(self, name), name)
        for name in (
            "train_limit",
            "table1_n_test",
            "sweep_n_train",
            "sweep_n_test",
            "table2_n_train",
            "table2_n_test",
            "threads",
        ):
            _pos_int(getattr(self, name), name, allow_none=True)
        if self.train_limit is not None and self.train_limit < 24:
            raise ConfigError(
                f"ReproduceConfig.train_limit must be at least 24 (a validation "
                f"split needs some images), got {self.train_limit}"
            )
        if self.sweep_n_train is not None and self.sweep_n_train < _SEARCH_K:
            raise ConfigError(f"ReproduceConfig.sweep_n_train must be at least {_SEARCH_K}")
        if self.table2_n_train is not None and self.table2_n_train < _SEARCH_K:
            raise ConfigError(f"ReproduceConfig.table2_n_train must be at least {_SEARCH_K}")

    def as_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return json.loads(json.dumps(asdict(self)))

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


# -- the cache --------------------------------------------------------------------------------


def _canonical(obj: Any) -> Any:
    """``obj`` as JSON would give it back (tuples become lists)."""
    return json.loads(json.dumps(obj, sort_keys=True))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _dump_json(obj: Any, fh: IO[str]) -> None:
    """Serialise ``obj`` into an open file (one place, so tests can interrupt a cache write)."""
    json.dump(obj, fh, indent=1, allow_nan=True)


class _Cache:
    """JSON entries and model files under ``root``, each named by the hash of its key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: str, key: dict[str, Any], suffix: str = ".json") -> Path:
        return self.root / kind / f"{_digest({'v': CACHE_VERSION, 'kind': kind, **key})}{suffix}"

    def get(self, kind: str, key: dict[str, Any]) -> Any | None:
        """The stored value, or ``None`` if absent, unreadable or stored under another key."""
        path = self.path(kind, key)
        try:
            with open(path) as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != _canonical(key):
            return None
        return entry.get("value")

    def put(self, kind: str, key: dict[str, Any], value: Any) -> None:
        entry = {
            "kind": kind,
            "key": _canonical(key),
            "value": value,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        with atomic_write(self.path(kind, key), "w") as fh:
            _dump_json(entry, fh)


@dataclass
class _ModelRef:
    """A trained ANN: its file, a key naming its content, and its metadata."""

    key: str
    label: str
    path: Path
    metadata: dict[str, Any]

    def load(self) -> tuple[ann.Architecture, dict[str, np.ndarray]]:
        arch, state, _ = ann.load_model(self.path)
        return arch, state


def _file_key(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


@dataclass
class _Run:
    """State of one :func:`reproduce` call: configuration, cache, data, progress, counters."""

    cfg: ReproduceConfig
    cache: _Cache
    progress: bool
    stats: dict[str, int] = field(
        default_factory=lambda: {"trained": 0, "computed": 0, "reused": 0}
    )
    _data: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _converted: dict[str, ConvertedModel] = field(default_factory=dict)
    bar: Any = None
    #: (architecture, seed) trained by this call (not counted as reused when loaded again).
    fresh: set[tuple[str, int]] = field(default_factory=set)

    def say(self, text: str) -> None:
        if self.progress:
            tqdm.write(text)

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._data:
            self._data[split] = load_fashion_mnist(split, root=self.cfg.data_root)
        return self._data[split]

    def first(self, split: str, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.data(split)
        n = x.shape[0] if n is None else min(int(n), x.shape[0])
        return x[:n], y[:n]

    @property
    def conversion_key(self) -> dict[str, Any]:
        return {
            "conversion": asdict(ConversionConfig()),
            "calibration": [
                self.cfg.calibration_size,
                self.cfg.calibration_seed,
                "whole training set",
            ],
        }

    def converted(self, ref: _ModelRef) -> ConvertedModel:
        if ref.key not in self._converted:
            x, _ = self.data("train")
            calib = calibration_indices(
                x.shape[0], self.cfg.calibration_size, self.cfg.calibration_seed
            )
            arch, state = ref.load()
            self._converted[ref.key] = convert(state, arch, calibration_images=x[calib])
        return self._converted[ref.key]

    def cached(self, kind: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
        value = self.cache.get(kind, key)
        if value is not None:
            self.stats["reused"] += 1
            return value
        value = _canonical(compute())
        self.cache.put(kind, key, value)
        self.stats["computed"] += 1
        return value


# -- models -----------------------------------------------------------------------------------


def _model_file(run: _Run, arch: str, seed: int) -> tuple[Recipe, dict[str, Any], Path]:
    """The recipe of ``arch`` trained with ``seed``, its cache key and its model file."""
    cfg = run.cfg
    recipe = Recipe(arch=arch, epochs=cfg.epochs, seed=int(seed), limit=cfg.train_limit)
    key = _canonical({"v": CACHE_VERSION, "recipe": asdict(recipe)})
    return recipe, key, run.cache.root / "models" / f"{arch}-seed{seed}-{_digest(key)}.npz"


def _cached_model(run: _Run, arch: str, seed: int) -> _ModelRef | None:
    """The cached network of ``arch`` and ``seed``, if there is a valid one."""
    _, key, path = _model_file(run, arch, seed)
    if not path.is_file():
        return None
    try:
        _, _, meta = ann.load_model(path)
    except ModelFormatError:
        return None
    if meta.get("reproduce_key") != key:
        return None
    return _ModelRef(_digest(key), f"{arch} seed {seed}", path, meta)


def _trained(run: _Run, arch: str, seed: int) -> _ModelRef:
    """The network of ``arch`` trained with ``seed``: from the cache, else trained now."""
    from .train import train

    ref = _cached_model(run, arch, seed)
    if ref is not None:
        if (arch, seed) not in run.fresh:
            run.stats["reused"] += 1
        return ref
    recipe, key, path = _model_file(run, arch, seed)
    run.say(f"training {arch}, seed {seed}, {run.cfg.epochs} epoch(s)")
    result = train(recipe, root=run.cfg.data_root, progress=run.progress)
    meta = {**result.metadata(), "reproduce_key": key}
    ann.save_model(path, result.arch, result.state, meta)
    run.stats["trained"] += 1
    run.fresh.add((arch, seed))
    return _ModelRef(_digest(key), f"{arch} seed {seed}", path, _canonical(meta))


def _needed_models(cfg: ReproduceConfig) -> list[tuple[str, int]]:
    """Every (architecture, seed) the run trains, without repeats."""
    pairs = [(cfg.sweep_arch, int(s)) for s in cfg.seeds]
    pairs += [(a, int(cfg.table1_seed)) for a in cfg.archs]
    if cfg.table2_model == TRAINED:
        pairs.append((cfg.sweep_arch, int(cfg.table1_seed)))
    return list(dict.fromkeys(pairs))


def _training_cost(arch: str) -> int:
    """Multiply-accumulates of one forward pass: orders the parallel training, longest first."""
    cost = 0
    for d in ann.Architecture.parse(arch).layers:
        if d.kind == "conv":
            cost += d.size * d.in_shape[0] * d.kernel**2
        elif d.kind == "dense":
            cost += d.size * math.prod(d.in_shape)
    return cost


def _train_job(cfg: ReproduceConfig, cache_root: str, arch: str, seed: int) -> None:
    """Train one network into the cache (in a worker process of :func:`_train_parallel`)."""
    _trained(_Run(cfg, _Cache(Path(cache_root)), progress=False), arch, seed)


def _train_parallel(run: _Run, jobs: int) -> None:
    """Train the networks missing from the cache in ``jobs`` processes at once.

    Each training uses one thread (:attr:`snnfast.train.Recipe.threads`), so this gives the same
    weights as training them one after the other, in about ``1 / jobs`` of the time."""
    todo = [p for p in _needed_models(run.cfg) if _cached_model(run, *p) is None]
    if jobs < 2 or len(todo) < 2:
        return
    todo.sort(key=lambda p: -_training_cost(p[0]))
    workers = min(jobs, len(todo))
    run.say(f"training {len(todo)} networks in {workers} processes")
    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool,
        tqdm(total=len(todo), desc="training", unit="net", disable=not run.progress) as bar,
    ):
        futures = {
            pool.submit(_train_job, run.cfg, str(run.cache.root), arch, seed): (arch, seed)
            for arch, seed in todo
        }
        try:
            for done in as_completed(futures):
                done.result()
                arch, seed = futures[done]
                run.fresh.add((arch, seed))
                run.stats["trained"] += 1
                run.say(f"trained {arch}, seed {seed}")
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _table2_model(run: _Run) -> _ModelRef:
    spec = run.cfg.table2_model
    if spec == TRAINED:
        return _trained(run, run.cfg.sweep_arch, run.cfg.table1_seed)
    path = Path(ann.SHIPPED_MODEL if spec is None else spec)
    _, _, meta = ann.load_model(path)  # ModelFormatError with the path if missing/damaged
    label = "shipped model" if spec is None else str(path)
    return _ModelRef(_file_key(path), label, path, meta)


# -- evaluations ------------------------------------------------------------------------------


def _classify(run: _Run, ref: _ModelRef, timesteps: int, n_test: int | None) -> dict[str, Any]:
    """SNN classification accuracy on the first ``n_test`` test images."""
    xq, yq = run.first("test", n_test)
    key = {
        "model": ref.key,
        **run.conversion_key,
        "timesteps": timesteps,
        "n_test": int(xq.shape[0]),
    }

    def compute() -> dict[str, Any]:
        run.say(f"SNN classification of {ref.label} at T = {timesteps}")
        emb = embed(
            run.converted(ref),
            xq,
            timesteps=timesteps,
            threads=run.cfg.threads,
            progress=run.progress,
        )
        return {"classification": float(np.mean(emb.predictions == yq)), "n_test": int(xq.shape[0])}

    return run.cached("classify", key, compute)


def _evaluate(
    run: _Run, ref: _ModelRef, timesteps: Sequence[int], n_train: int | None, n_test: int | None
) -> list[dict[str, Any]]:
    """Retrieval figures of the ANN (``T = 0``) or the SNN's membrane embedding, for each ``T``
    of ``timesteps``. The SNN's missing ``T`` come from one simulation of the longest
    (:func:`snnfast.embed.embed_checkpoints`), which gives what separate runs would."""
    xs, ys = run.first("train", n_train)
    xq, yq = run.first("test", n_test)

    def key(timesteps: int) -> dict[str, Any]:
        return {
            "model": ref.key,
            **run.conversion_key,
            "timesteps": timesteps,
            "readout": "ann" if timesteps == 0 else "membrane",
            "n_train": int(xs.shape[0]),
            "n_test": int(xq.shape[0]),
            "k": _SEARCH_K,
        }

    found: dict[int, Any] = {T: run.cache.get("eval", key(T)) for T in timesteps}
    missing = [T for T in found if found[T] is None]
    run.stats["reused"] += len(found) - len(missing)
    if not missing:
        return [found[T] for T in timesteps]
    t0 = time.perf_counter()
    model = run.converted(ref)
    opts: dict[str, Any] = {"threads": run.cfg.threads, "progress": run.progress}
    embedded = {}
    if 0 in missing:
        run.say(f"retrieval with {ref.label}, ANN")
        embedded[0] = (embed(model, xs, "ann", **opts), embed(model, xq, "ann", **opts))
    snn = [T for T in missing if T]
    if snn:
        run.say(f"retrieval with {ref.label}, SNN(T) for T = {', '.join(map(str, snn))}")
        corpus = embed_checkpoints(model, xs, snn, ("membrane",), **opts)
        queries = embed_checkpoints(model, xq, snn, ("membrane",), **opts)
        for T in snn:
            embedded[T] = (corpus[T]["membrane"], queries[T]["membrane"])
        del corpus, queries
    for T in missing:
        c, q = embedded.pop(T)
        index = RetrievalIndex.build(c.vectors, ys, c.meta, threads=run.cfg.threads)
        hits = index.search(q.vectors, _SEARCH_K, q.meta, threads=run.cfg.threads)
        figures = evaluate_retrieval(yq, hits.labels, q.predictions).as_dict()
        if T:
            run.cache.put(
                "classify",
                {
                    "model": ref.key,
                    **run.conversion_key,
                    "timesteps": T,
                    "n_test": int(xq.shape[0]),
                },
                {"classification": figures["classification"], "n_test": int(xq.shape[0])},
            )
        value = _canonical(
            {
                **figures,
                "timesteps": T,
                "n_train": int(xs.shape[0]),
                "seconds": time.perf_counter() - t0,
            }
        )
        run.cache.put("eval", key(T), value)
        run.stats["computed"] += 1
        found[T] = value
    return [found[T] for T in timesteps]


# -- sections ---------------------------------------------------------------------------------


def _table1(run: _Run) -> dict[str, Any]:
    cfg = run.cfg
    deploy = {
        spec: (ok, reason, cores, chips)
        for spec, ok, reason, cores, chips in table1_deployability()
    }
    rows = []
    for spec in TABLE1_SPECS:
        paper = PAPER_TABLE1[spec]
        ok, reason, cores, chips = deploy[spec]
        row: dict[str, Any] = {
            "arch": spec,
            "paper": {
                "train": paper[0],
                "val": paper[1],
                "test": paper[2],
                "snn_test": paper[3],
                "deployable": paper[3] is not None,
            },
            "deployable": ok,
            "reason": reason,
            "n_cores": cores,
            "n_chips": chips,
            "run": spec in cfg.archs,
        }
        if spec in cfg.archs:
            ref = _trained(run, spec, cfg.table1_seed)
            meta = ref.metadata
            snn = _classify(run, ref, cfg.table1_timesteps, cfg.table1_n_test)
            row["ours"] = {
                "train": 100 * meta["train_accuracy"],
                "val": 100 * meta["val_accuracy"],
                "test": 100 * meta["test_accuracy"],
                "snn_test": 100 * snn["classification"],
                "snn_n_test": snn["n_test"],
                "best_epoch": meta.get("best_epoch"),
            }
        rows.append(row)
        run.bar.update(1)
    return {"timesteps": cfg.table1_timesteps, "seed": cfg.table1_seed, "rows": rows}


def _sweep(run: _Run) -> dict[str, Any]:
    """Fig 4: figures per seed and time step, then mean and sample std over seeds."""
    cfg = run.cfg
    per_seed = []
    for seed in cfg.seeds:
        ref = _trained(run, cfg.sweep_arch, seed)
        figures = _evaluate(run, ref, (0, *cfg.timesteps), cfg.sweep_n_train, cfg.sweep_n_test)
        entry: dict[str, Any] = {"seed": seed, "ann": figures[0], "snn": figures[1:]}
        per_seed.append(entry)
        run.bar.update(1)
    ddof = 1 if len(per_seed) > 1 else 0
    summary: dict[str, Any] = {}
    for metric, _ in (*_METRICS, ("map_at_10", "mAP@10")):
        values = np.array(
            [[100 * e["snn"][i][metric] for i in range(len(cfg.timesteps))] for e in per_seed]
        )
        ann_values = np.array([100 * e["ann"][metric] for e in per_seed])
        summary[metric] = {
            "mean": values.mean(axis=0).tolist(),
            "std": values.std(axis=0, ddof=ddof).tolist(),
            "ann_mean": float(ann_values.mean()),
            "ann_std": float(ann_values.std(ddof=ddof)),
        }
    first = per_seed[0]["snn"][0]
    return {
        "arch": cfg.sweep_arch,
        "seeds": list(cfg.seeds),
        "timesteps": list(cfg.timesteps),
        "n_train": first["n_train"],
        "n_test": first["n_queries"],
        "per_seed": per_seed,
        "summary": summary,
    }


def _table2(run: _Run, ref: _ModelRef, outdir: Path) -> dict[str, Any]:
    cfg = run.cfg
    key = {
        "model": ref.key,
        "timesteps": list(cfg.table2_timesteps),
        "n_train": cfg.table2_n_train,
        "n_test": cfg.table2_n_test,
        "calibration": [cfg.calibration_size, cfg.calibration_seed],
        "recall_queries": cfg.recall_queries,
        "pipeline": "run_pipeline",
    }
    grid = run.cache.path("table2", key, ".fig6.png")
    value = run.cache.get("table2", key) if grid.is_file() else None
    if value is None:
        run.say(f"Table 2 with {ref.label} (run_pipeline)")
        value = _canonical(
            run_pipeline(
                ref.path,
                timesteps=cfg.table2_timesteps,
                n_train=cfg.table2_n_train,
                n_test=cfg.table2_n_test,
                threads=cfg.threads,
                progress=run.progress,
                calibration_size=cfg.calibration_size,
                seed=cfg.calibration_seed,
                recall_queries=cfg.recall_queries,
                data_root=cfg.data_root,
                grid_path=grid,
            )
        )
        run.cache.put("table2", key, value)
        run.stats["computed"] += 1
    else:
        run.stats["reused"] += 1
    with atomic_write(outdir / FIGURES["fig6"]) as fh:
        fh.write(grid.read_bytes())
    run.bar.update(1)
    return value


def _hardware(run: _Run, ref: _ModelRef, outdir: Path) -> dict[str, Any]:
    """Tables 3-5 and Figs 3 and 5: latency measured here and the chip model's estimates."""
    from .plots import core_map

    cfg = run.cfg
    model = run.converted(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # wide weights: reported via notes
        mapping = map_network(model.network)
    core_map(mapping, outdir / FIGURES["fig3"], title=f"{model.arch} on Loihi 1 cores")
    steps = sorted(set(cfg.timesteps) | set(cfg.table2_timesteps))
    machine = latency.machine_info()
    key = {
        "model": ref.key,
        **run.conversion_key,
        "steps": steps,
        "settings": [
            cfg.ann_large_batch,
            cfg.engine_large_batch,
            cfg.batch1_images,
            cfg.large_repeats,
            cfg.energy_images,
            cfg.threads,
        ],
        "machine": [machine["cpu_model"], machine["usable_cpus"]],
    }

    def compute() -> dict[str, Any]:
        n_img = max(
            cfg.batch1_images, cfg.ann_large_batch, cfg.engine_large_batch, cfg.energy_images
        )
        images, _ = run.first("test", n_img)
        arch, state = ref.load()
        out: dict[str, Any] = {"machine": machine, "ann": {}, "engine": {}, "chip": {}}
        run.say("timing the ANN (PyTorch, NumPy)")
        b1 = cfg.batch1_images
        try:
            out["ann"]["torch_1"] = latency.time_torch_ann(
                arch, state, images, 1, threads=cfg.threads, repeats=b1, warmup=10
            ).as_dict()
            out["ann"]["torch_large"] = latency.time_torch_ann(
                arch,
                state,
                images,
                cfg.ann_large_batch,
                threads=cfg.threads,
                repeats=cfg.large_repeats,
                warmup=1,
            ).as_dict()
            out["torch_threads"] = cfg.threads or machine["usable_cpus"]
        except ImportError as exc:
            out["ann"]["torch_error"] = f"PyTorch not available: {exc}"
        out["ann"]["numpy_1"] = latency.time_numpy_ann(
            arch, state, images, 1, repeats=b1, warmup=3
        ).as_dict()
        out["ann"]["numpy_large"] = latency.time_numpy_ann(
            arch, state, images, cfg.ann_large_batch, repeats=cfg.large_repeats, warmup=0
        ).as_dict()
        net = model.network
        reports = []
        for T in steps:
            run.say(f"timing the engine and the chip model at T = {T}")
            row = {
                "batch1": latency.time_engine(
                    net, images, T, 1, threads=1, repeats=b1, warmup=3
                ).as_dict()
            }
            if T in cfg.table2_timesteps:
                row["large"] = latency.time_engine(
                    net,
                    images,
                    T,
                    cfg.engine_large_batch,
                    threads=cfg.threads,
                    repeats=cfg.large_repeats,
                    warmup=0,
                ).as_dict()
            out["engine"][str(T)] = row
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                _, rep = estimate_network(net, images[: cfg.energy_images], T, threads=cfg.threads)
            out["chip"][str(T)] = {
                "latency_s": rep.latency_s,
                "static_power_w": rep.static_power_w,
                "dynamic_power_w": rep.dynamic_power_w,
                "total_power_w": rep.total_power_w,
                "dynamic_energy_j": rep.dynamic_energy_j,
                "total_energy_j": rep.total_energy_j,
                "n_images": rep.n_images,
            }
            if T in PAPER_LOIHI:
                reports.append(rep)
        out["compare_with_paper"] = compare_with_paper(reports) if reports else None
        return out

    value = run.cached("hardware", key, compute)
    value["mapping"] = {
        "n_cores": mapping.n_cores,
        "n_chips": mapping.n_chips,
        "cores_per_layer": mapping.cores_per_layer,
        "report": mapping.report(),
        "notes": list(mapping.notes),
    }
    _fig5(value, steps, outdir / FIGURES["fig5"], str(model.arch))
    run.bar.update(1)
    return value


# -- figures ----------------------------------------------------------------------------------


def _fig4(sweep: dict[str, Any], path: Path) -> None:
    from .plots import metrics_vs_timesteps

    s = sweep["summary"]
    metrics_vs_timesteps(
        path,
        sweep["timesteps"],
        {label: (s[m]["mean"], s[m]["std"]) for m, label in _METRICS},
        reference={label: s[m]["ann_mean"] for m, label in _METRICS},
        title=f"{sweep['arch']}: mean ± std over {len(sweep['seeds'])} network(s), "
        f"{sweep['n_train']} corpus / {sweep['n_test']} queries",
    )


def _lowlatency_models(cfg: ReproduceConfig) -> list[str]:
    """The QCFS model files of the low-latency section, each checked to be one."""
    if not cfg.lowlatency:
        return []
    models = [
        str(p)
        for p in (
            qcfs.SHIPPED_MODELS.values() if cfg.lowlatency_models is None else cfg.lowlatency_models
        )
    ]
    for m in models:
        if qcfs.load(m)[2] is None:  # ModelFormatError with the path if missing or damaged
            raise ModelFormatError(
                f"{m} is not a QCFS-trained model (ReproduceConfig.lowlatency_models)"
            )
    return models


def _lowlatency(
    run: _Run, ref: _ModelRef, models: list[str], outdir: Path
) -> dict[str, Any] | None:
    """The low-latency variants (:mod:`snnfast.lowlatency`) on Table 2's images."""
    cfg = run.cfg
    if not cfg.lowlatency:
        return None
    key = {
        "base": ref.key,
        "qcfs": [_file_key(Path(m)) for m in models],
        "timesteps": list(cfg.lowlatency_timesteps),
        "n_train": cfg.table2_n_train,
        "n_test": cfg.table2_n_test,
        "calibration": [cfg.calibration_size, cfg.calibration_seed],
        "energy_images": cfg.energy_images,
        "latency_repeats": cfg.batch1_images,
        "recall_queries": cfg.recall_queries,
    }

    def compute() -> dict[str, Any]:
        run.say("low-latency variants")
        return lowlatency_report(
            outdir / "lowlatency",
            timesteps=cfg.lowlatency_timesteps,
            qcfs_models=models,
            base_model=ref.path,
            n_train=cfg.table2_n_train,
            n_test=cfg.table2_n_test,
            calibration_size=cfg.calibration_size,
            seed=cfg.calibration_seed,
            energy_images=cfg.energy_images,
            latency_repeats=cfg.batch1_images,
            recall_queries=cfg.recall_queries,
            threads=cfg.threads,
            progress=run.progress,
            data_root=cfg.data_root,
            command=f"snnfast reproduce (configuration {cfg.name})",
        )

    return run.cached("lowlatency", key, compute)


def _fig5(hw: dict[str, Any], steps: list[int], path: Path, arch: str) -> None:
    from .plots import runtime_vs_timesteps

    series = {
        "snnfast engine, this CPU, batch 1, 1 thread (measured)": (
            steps,
            [1e3 * hw["engine"][str(T)]["batch1"]["per_item_s"] for T in steps],
        ),
        "Loihi 1 chip model (estimated)": (
            steps,
            [1e3 * hw["chip"][str(T)]["latency_s"] for T in steps],
        ),
    }
    large = [T for T in steps if "large" in hw["engine"][str(T)]]
    if large:
        series["snnfast engine, this CPU, large batch, all threads (per image)"] = (
            large,
            [1e3 * hw["engine"][str(T)]["large"]["per_item_s"] for T in large],
        )
    paper = sorted(PAPER_LOIHI)
    runtime_vs_timesteps(
        path,
        series,
        {"Loihi (paper, measured)": (paper, [1e3 * PAPER_LOIHI[T].latency_s for T in paper])},
        title=f"{arch}: runtime per image",
    )


# -- the report -------------------------------------------------------------------------------


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _diff(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None:
        return "—"
    return f"{ours - paper:+.2f}"


def _ratio(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None or paper == 0:
        return "—"
    return f"{ours / paper:.3g}×"


def _paper(x: float) -> str:
    """A paper number as printed (no rounding)."""
    return f"{x:g}"


def _sig(x: float | None, unit: float = 1.0) -> str:
    return "—" if x is None else f"{x * unit:.4g}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _render_table1(t1: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    lines = [
        "## Table 1: architectures and accuracies",
        "",
        "Each cell is *paper / ours (ours − paper, percentage points)*, in %. "
        f"Our networks: seed {t1['seed']}, "
        f"{cfg['epochs']} epoch(s)"
        + (f" on the first {cfg['train_limit']} images" if cfg["train_limit"] else "")
        + f". SNN test accuracy at T = {t1['timesteps']} time steps (the paper's column is "
        f"T = {PAPER_TABLE1_TIMESTEPS}: its 32-64-10 entry equals Table 2's SNN(128)). "
        "Deployability: the paper's (N/A in its SNN column) and our chip model's "
        "(`snnfast.chip.table1_deployability`, one Loihi 1 chip).",
        "",
    ]
    rows = []
    notes = []
    for r in t1["rows"]:
        p, o = r["paper"], r.get("ours")
        paper_snn = "N/A" if p["snn_test"] is None else _num(p["snn_test"])
        if o is None:
            cells = [
                f"{_num(p[k])} / not run in {cfg['name']} mode" for k in ("train", "val", "test")
            ]
            cells.append(f"{paper_snn} / not run")
        else:
            cells = [
                f"{_num(p[k])} / {_num(o[k])} ({_diff(o[k], p[k])})"
                for k in ("train", "val", "test")
            ]
            n = o["snn_n_test"]
            cells.append(
                f"{paper_snn} / {_num(o['snn_test'])} "
                f"({_diff(o['snn_test'], p['snn_test'])})"
                + ("" if n == 10000 else f", {n} test images")
            )
        cores = "—" if r["n_cores"] is None else f"{r['n_cores']} / {r['n_chips']}"
        ours_ok = "yes" if r["deployable"] else "no"
        if not r["deployable"]:
            notes.append(f"- **{r['arch']}** not deployable (chip model): {r['reason']}")
        rows.append([r["arch"], *cells, f"{'yes' if p['deployable'] else 'no'} / {ours_ok}", cores])
    lines += _table(
        [
            "architecture",
            "ANN train",
            "ANN val",
            "ANN test",
            f"SNN test (T={t1['timesteps']})",
            "deployable paper / ours",
            "cores / chips (ours)",
        ],
        rows,
    )
    return lines + [""] + notes + [""]


def _paper_table2() -> dict[str, tuple[float, float, float]]:
    """The paper's Table 2 as the CLI holds it (imported late: the CLI imports this module)."""
    from .cli import PAPER_TABLE2

    return dict(PAPER_TABLE2)


def _render_table2(t2: dict[str, Any]) -> list[str]:
    paper_table = _paper_table2()
    lines = [
        "## Table 2: test accuracies (retrieval)",
        "",
        f"Model: `{Path(t2['model']).name}` ({t2['arch']}), corpus {t2['n_train']} training "
        f"images, {t2['n_test']} test queries, readout `{t2['readout']}`, cosine HNSW index, "
        "`snnfast.pipeline.run_pipeline` (Algorithm-1 calibration: "
        f"{t2['calibration']['size']} images drawn from this corpus). Percent; "
        "Δ = ours − paper (percentage points). mAP@10 and recall@10 (index vs exact search) "
        "are ours only.",
        "",
    ]
    rows = []
    for r in t2["results"]:
        paper = paper_table.get(r["name"])
        cells = [r["name"]]
        for i, key in enumerate(("classification", "top1", "top3")):
            p = None if paper is None else paper[i]
            o = None if r[key] is None else 100 * r[key]
            cells += [_num(p), _num(o), _diff(o, p)]
        cells += [
            _num(100 * r["map_at_10"]),
            _num(None if r["recall_at_10"] is None else 100 * r["recall_at_10"]),
        ]
        rows.append(cells)
    head = ["model"]
    for m in ("class.", "top-1", "top-3"):
        head += [f"{m} paper", f"{m} ours", "Δ"]
    head += ["mAP@10 ours", "recall@10 ours"]
    return lines + _table(head, rows) + [""]


_XEON_1, _XEON_LARGE, _LOIHI_16, _LOIHI_128 = 0, 1, 10, 11  # rows of the paper's Tables 3-5


def _loihi_row(timesteps: int) -> int | None:
    return {16: _LOIHI_16, 128: _LOIHI_128}.get(timesteps)


def _measured_rows(hw: dict[str, Any], cfg: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Our measured rows: (model, batch, hardware, measurement dict, paper row or None)."""
    cpu = hw["machine"]["cpu_model"]
    threads = hw.get("torch_threads", "?")
    big = cfg["ann_large_batch"]
    rows: list[tuple[Any, ...]] = []
    a = hw["ann"]
    if "torch_1" in a:
        rows.append(("ANN (PyTorch)", 1, f"{cpu}, {threads} thread(s)", a["torch_1"], _XEON_1))
        rows.append(
            ("ANN (PyTorch)", big, f"{cpu}, {threads} thread(s)", a["torch_large"], _XEON_LARGE)
        )
    rows.append(("ANN (NumPy)", 1, cpu, a["numpy_1"], _XEON_1))
    rows.append(("ANN (NumPy)", big, cpu, a["numpy_large"], _XEON_LARGE))
    for T, e in sorted(hw["engine"].items(), key=lambda kv: int(kv[0])):
        if "large" not in e:
            continue
        ref = _loihi_row(int(T))
        rows.append((f"SNN ({T}) snnfast engine", 1, f"{cpu}, 1 thread", e["batch1"], ref))
        rows.append(
            (
                f"SNN ({T}) snnfast engine",
                cfg["engine_large_batch"],
                f"{cpu}, all threads",
                e["large"],
                ref,
            )
        )
    return rows


def _against(
    ours: float | None,
    table: Sequence[tuple[Any, ...]],
    row: int | None,
    col: int,
    scale: float = 1.0,
) -> str:
    """``ours / paper`` against column ``col`` of paper row ``row``, naming that row."""
    if row is None or ours is None:
        return "—"
    model, batch, hardware = table[row][:3]
    return f"{_ratio(ours * scale, table[row][col])} (vs {model}, batch {batch}, {hardware})"


def _render_hardware(hw: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    rapl = hw["machine"]["rapl_readable"]
    not_here = "not readable here"
    ours = _measured_rows(hw, cfg)
    chip = {int(T): c for T, c in hw["chip"].items() if int(T) in PAPER_LOIHI}
    lines = [
        "## Table 3: inference latency",
        "",
        "Paper rows as published; ours measured on this machine (median of timed calls after "
        "warm-up; batch 1 cycles through real test images) and the Loihi 1 chip model's "
        f"estimate (mean over {cfg['energy_images']} test images). Ratio: ours / the paper row "
        f"named. Load average while measuring: {hw['machine']['load_average']} on "
        f"{hw['machine']['usable_cpus']} usable CPU(s); on a shared machine our times are upper "
        "bounds.",
        "",
    ]
    rows = [["paper", m, str(b), hwname, _paper(ms), ""] for m, b, hwname, ms in PAPER_TABLE3]
    for m, b, hwname, meas, i in ours:
        ms = 1e3 * meas["per_item_s"]
        rows.append(
            ["ours, measured", m, str(b), hwname, _sig(ms), _against(ms, PAPER_TABLE3, i, 3)]
        )
    for T, c in sorted(chip.items()):
        ms = 1e3 * c["latency_s"]
        rows.append(
            [
                "ours, chip model",
                f"SNN ({T})",
                "1",
                "Loihi 1 (estimate)",
                _sig(ms),
                _against(ms, PAPER_TABLE3, _loihi_row(T), 3),
            ]
        )
    lines += _table(
        ["source", "model", "batch", "hardware", "ms per example", "ours / paper"], rows
    )
    lines += [
        "",
        "## Table 4: inference power",
        "",
        "Our CPU rows: mean RAPL package power during the timed calls (static and dynamic are "
        "not separable from RAPL); "
        + (
            "RAPL is readable here."
            if rapl
            else f"RAPL is {not_here}, so there is no CPU power figure (none is invented)."
        )
        + " Chip model: static power is the paper's calibration, dynamic power is estimated "
        "from our exact event counts.",
        "",
    ]
    rows = [
        ["paper", m, str(b), hwname, _paper(s), _paper(d), _paper(t), ""]
        for m, b, hwname, s, d, t in PAPER_TABLE4
    ]
    for m, b, hwname, meas, i in ours:
        p = meas["power_w"]
        rows.append(
            [
                "ours, measured",
                m,
                str(b),
                hwname,
                "—",
                "—",
                _sig(p) if p is not None else not_here,
                _against(p, PAPER_TABLE4, i, 5),
            ]
        )
    for T, c in sorted(chip.items()):
        rows.append(
            [
                "ours, chip model",
                f"SNN ({T})",
                "1",
                "Loihi 1 (estimate)",
                _sig(c["static_power_w"]),
                _sig(c["dynamic_power_w"]),
                _sig(c["total_power_w"]),
                _against(c["total_power_w"], PAPER_TABLE4, _loihi_row(T), 5),
            ]
        )
    lines += _table(
        [
            "source",
            "model",
            "batch",
            "hardware",
            "static W",
            "dynamic W",
            "total W",
            "ours / paper (total)",
        ],
        rows,
    )
    ref16 = chip.get(16, {}).get("total_energy_j")
    lines += [
        "",
        "## Table 5: inference energy",
        "",
        "Our CPU rows: RAPL package energy per example over the timed calls"
        + ("." if rapl else f" ({not_here}).")
        + " Relative: to the same source's SNN(16) on Loihi (ours: the chip model's estimate).",
        "",
    ]
    rows = [
        ["paper", m, str(b), hwname, _paper(e), f"{_paper(r)}×", ""]
        for m, b, hwname, e, r in PAPER_TABLE5
    ]
    for m, b, hwname, meas, i in ours:
        e = meas["energy_per_item_j"]
        rows.append(
            [
                "ours, measured",
                m,
                str(b),
                hwname,
                _sig(e, 1e3) if e is not None else not_here,
                _ratio(e, ref16),
                _against(e, PAPER_TABLE5, i, 3, 1e3),
            ]
        )
    for T, c in sorted(chip.items()):
        e = c["total_energy_j"]
        rows.append(
            [
                "ours, chip model",
                f"SNN ({T})",
                "1",
                "Loihi 1 (estimate)",
                _sig(e, 1e3),
                _ratio(e, ref16),
                _against(e, PAPER_TABLE5, _loihi_row(T), 3, 1e3),
            ]
        )
    lines += _table(
        ["source", "model", "batch", "hardware", "mJ per example", "relative", "ours / paper"], rows
    )
    odd = [
        f"{m}, batch {b}, {h}: {_paper(e)} mJ printed, {_paper(t3[3])} ms × "
        f"{_paper(t4[5])} W = {t3[3] * t4[5]:.3g} mJ"
        for t3, t4, (m, b, h, e, _) in zip(PAPER_TABLE3, PAPER_TABLE4, PAPER_TABLE5)
        if abs(t3[3] * t4[5] / e - 1) > 0.2
    ]
    if odd:
        lines += [
            "",
            "The paper's Table 5 says its energies are Table 3 × Table 4; rows where "
            "that is off by more than 20 % in the paper itself (copied as printed): "
            + "; ".join(odd)
            + ".",
        ]
    if hw.get("compare_with_paper"):
        lines += [
            "",
            "Chip model against the paper's Loihi measurements "
            "(`snnfast.energy.compare_with_paper`):",
            "",
            "```",
            hw["compare_with_paper"],
            "```",
        ]
    return lines + [""]


def _render_figures(results: dict[str, Any]) -> list[str]:
    hw, sweep = results["hardware"], results["sweep"]
    m = hw["mapping"]
    lines = [
        "## Fig 3: the network on Loihi 1 cores",
        "",
        f"![Fig 3]({FIGURES['fig3']})",
        "",
        f"{m['n_cores']} cores on {m['n_chips']} chip(s); cores per layer (input first): "
        f"{m['cores_per_layer']}.",
        "",
        "```",
        m["report"],
        "```",
        "",
        "## Fig 4: accuracy against time steps",
        "",
        f"![Fig 4]({FIGURES['fig4']})",
        "",
        f"{sweep['arch']}, {len(sweep['seeds'])} independently trained network(s) "
        f"(seeds {', '.join(map(str, sweep['seeds']))}), corpus {sweep['n_train']} training "
        f"images, {sweep['n_test']} test queries at every T; mean ± sample std in %. The paper "
        "shows this figure for 32-64-10 over five networks, as a plot only (no numbers).",
        "",
    ]
    s = sweep["summary"]
    head = ["T", *(label for _, label in _METRICS), "mAP@10"]
    rows = []
    for i, T in enumerate(sweep["timesteps"]):
        rows.append(
            [
                str(T),
                *(
                    f"{s[k]['mean'][i]:.2f} ± {s[k]['std'][i]:.2f}"
                    for k in ("classification", "top1", "top3", "map_at_10")
                ),
            ]
        )
    rows.append(
        [
            "ANN",
            *(
                f"{s[k]['ann_mean']:.2f} ± {s[k]['ann_std']:.2f}"
                for k in ("classification", "top1", "top3", "map_at_10")
            ),
        ]
    )
    lines += _table(head, rows)
    if results.get("lowlatency"):
        lines += [
            "",
            "### Fig 4 for the low-latency variants",
            "",
            f"![Fig 4, low-latency variants]({FIGURES['fig4_lowlatency']})",
            "",
            "Classification accuracy against T of each variant of the section *Low-latency "
            "variants* below (one network each; dashed: its ANN).",
        ]
    steps = sorted(int(T) for T in hw["engine"])
    lines += [
        "",
        "## Fig 5: runtime against time steps",
        "",
        f"![Fig 5]({FIGURES['fig5']})",
        "",
        "Per image, ms. Engine: measured on this machine, batch 1 on one thread. Chip model: "
        "estimated Loihi 1 latency. Paper: its two Loihi measurements (Table 3).",
        "",
    ]
    rows = []
    for T in steps:
        paper = PAPER_LOIHI.get(T)
        chip_ms = 1e3 * hw["chip"][str(T)]["latency_s"]
        rows.append(
            [
                str(T),
                _sig(1e3 * hw["engine"][str(T)]["batch1"]["per_item_s"]),
                _sig(chip_ms),
                "—" if paper is None else _paper(1e3 * paper.latency_s),
                _ratio(chip_ms, None if paper is None else 1e3 * paper.latency_s),
            ]
        )
    lines += _table(
        ["T", "engine batch 1 (ms)", "chip model (ms)", "paper Loihi (ms)", "chip model / paper"],
        rows,
    )
    snn_name = results["table2"]["results"][1]["name"]
    lines += [
        "",
        "## Fig 6: retrieval examples",
        "",
        f"![Fig 6]({FIGURES['fig6']})",
        "",
        "One query per class (the first test image of the class), three random corpus images "
        f"of the same class, the ANN's top 3 and {snn_name}'s top 3 (Table 2's model).",
        "",
    ]
    return lines


def render_report(results: dict[str, Any]) -> str:
    """The Markdown report of a :func:`reproduce` results dict (``results.json``)."""
    cfg = results["config"]
    mach = results["hardware"]["machine"]
    lines = [
        "# snnfast reproduce: Liu et al. 2022 beside our numbers",
        "",
        f"Configuration **{cfg['name']}**; snnfast {results['version']}; written "
        f"{results['finished']}; wall time {results['wall_s']:.0f} s "
        f"({results['cache']['trained']} network(s) trained, {results['cache']['computed']} "
        f"result(s) computed, {results['cache']['reused']} reused from the cache).",
        "",
        "Paper: Liu, Mahjoubfar, Prusinski, Stevens, *Neuromorphic computing for content-based "
        "image retrieval*, PLoS ONE 17(4): e0264364 (2022). Their numbers are copied verbatim; "
        "ours come from this run.",
        "",
        "## This machine",
        "",
        f"- CPU: {mach['cpu_model']}; {mach['logical_cpus']} logical CPU(s), "
        f"{mach['usable_cpus']} usable, {mach['physical_cores'] or '?'} physical core(s); "
        f"{mach['memory_gib'] or '?'} GiB memory",
        f"- {mach['platform']}; Python {mach['python']}, NumPy {mach['numpy']}, "
        f"PyTorch {mach['torch'] or 'not installed'}; OMP_WAIT_POLICY={mach['omp_wait_policy']}",
        f"- RAPL energy counters: {'readable' if mach['rapl_readable'] else 'not readable here'}"
        f"; load average when measured: {mach['load_average']}",
        "",
    ]
    cuts = results["cuts"]
    if cuts:
        lines += [f"## What the {cfg['name']} run leaves out (against the full run)", ""]
        lines += [f"- {c}" for c in cuts] + [""]
    lines += _render_table1(results["table1"], cfg)
    lines += _render_table2(results["table2"])
    lines += _render_hardware(results["hardware"], cfg)
    lines += _render_figures(results)
    if results.get("lowlatency"):
        lines += ["## Low-latency variants (beyond the paper)", ""]
        body = render_lowlatency(results["lowlatency"]).splitlines()[1:]  # without its title
        lines += [("#" + line) if line.startswith("## ") else line for line in body]
    return "\n".join(lines) + "\n"


# -- the entry point --------------------------------------------------------------------------


def reproduce(
    outdir: str | Path,
    quick: bool = False,
    progress: bool = True,
    config: ReproduceConfig | None = None,
    jobs: int = 1,
) -> Path:
    """Reproduce the paper's tables and figures into ``outdir``; return the report's path.

    Args:
        outdir: output folder (created); its ``cache/`` subfolder makes reruns resume.
        quick: use :func:`quick_config` (about 10 minutes on 2 cores) instead of
            :func:`full_config` (hours); ignored when ``config`` is given.
        progress: progress bars and one line per step.
        config: what to run (overrides ``quick``).
        jobs: train the networks missing from the cache in this many processes at once (each
            on one thread, so the weights are those of ``jobs=1``); then evaluate with all
            cores.

    Raises:
        ConfigError: an invalid configuration.
        ModelFormatError: the Table-2 model file is missing or damaged.
        DataError: Fashion-MNIST is missing.
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else (quick_config() if quick else full_config())
    if not isinstance(cfg, ReproduceConfig):
        raise ConfigError(f"config must be a ReproduceConfig, got {type(cfg).__name__}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    latency.ensure_passive_omp()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(cfg, _Cache(out / "cache"), progress)
    total = len(TABLE1_SPECS) + len(cfg.seeds) + 2
    with tqdm(total=total, desc="reproduce", unit="step", disable=not progress) as bar:
        run.bar = bar
        _train_parallel(run, jobs)
        ref2 = _table2_model(run)
        qcfs_models = _lowlatency_models(cfg)
        sweep = _sweep(run)  # first: Table 1 reuses its SNN classification where it can
        table1 = _table1(run)
        _fig4(sweep, out / FIGURES["fig4"])
        table2 = _table2(run, ref2, out)
        hardware = _hardware(run, ref2, out)
        low = _lowlatency(run, ref2, qcfs_models, out)
        if low is not None:
            plot_variants(low, out / FIGURES["fig4_lowlatency"])
    results = {
        "version": __version__,
        "config": cfg.as_dict(),
        "cuts": cfg.cuts(),
        "table2_model": {"label": ref2.label, "path": str(ref2.path), "key": ref2.key},
        "table1": table1,
        "sweep": sweep,
        "table2": table2,
        "hardware": hardware,
        "lowlatency": low,
        "paper": {
            "table1": PAPER_TABLE1,
            "table1_timesteps": PAPER_TABLE1_TIMESTEPS,
            "table2": _paper_table2(),
            "table3": PAPER_TABLE3,
            "table4": PAPER_TABLE4,
            "table5": PAPER_TABLE5,
        },
        "figures": dict(FIGURES),
        "cache": dict(run.stats),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - t0,
    }
    results = _canonical(results)
    with atomic_write(out / "results.json", "w") as fh:
        _dump_json(results, fh)
    report = out / "report.md"
    with atomic_write(report, "w") as fh:
        fh.write(render_report(results))
    if progress:
        tqdm.write(f"wrote {report} in {results['wall_s']:.0f} s")
    return report
