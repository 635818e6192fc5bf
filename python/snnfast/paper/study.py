"""One run of the study: its configuration, cache, data and converted models, and the trained
networks (from the cache, trained now, or trained in parallel processes).

Trained networks are model files under ``cache/models``, named by architecture, seed and the
hash of their recipe, and carry that key in their metadata; a file is used only when it loads
(:func:`snnfast.ann.load_model` checks its checksums) and its key matches.

**Speed.** :func:`train_parallel` trains the missing networks in ``jobs`` processes at once,
longest first; each trains on one thread (:attr:`snnfast.train.Recipe.threads`), so the weights
are those of a sequential run.

**Calibration.** Every conversion of the study follows the library's rule
(:mod:`snnfast.evaluation`): the calibration images come from the whole training set, so a
model's SNN is the same whatever corpus size a section uses.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import ann
from ..convert import ConversionConfig, ConvertedModel
from ..data import load_fashion_mnist
from ..errors import ModelFormatError
from ..evaluation import calibrate_and_convert
from ..train import Recipe
from .cache import Cache, canonical, digest, file_digest
from .config import TRAINED, ReproduceConfig

__all__ = [
    "MODEL_KEY_VERSION",
    "ModelRef",
    "Study",
    "file_key",
    "needed_models",
    "table2_model",
    "train_parallel",
    "trained",
]

MODEL_KEY_VERSION = 1
"""Version of a trained network's cache key (unchanged since the first study, so the networks
of earlier runs are reused)."""


@dataclass
class ModelRef:
    """A trained ANN: its file, a key naming its content, and its metadata."""

    key: str
    label: str
    path: Path
    metadata: dict[str, Any]

    def load(self) -> tuple[ann.Architecture, dict[str, np.ndarray]]:
        """The architecture and parameters of the file."""
        arch, state, _ = ann.load_model(self.path)
        return arch, state


@dataclass
class Study:
    """State of one :func:`~snnfast.paper.reproduce.reproduce` call: configuration, cache,
    data, converted models, progress and counters (``trained``, ``computed``, ``reused``)."""

    cfg: ReproduceConfig
    cache: Cache
    progress: bool
    stats: dict[str, int] = field(
        default_factory=lambda: {"trained": 0, "computed": 0, "reused": 0}
    )
    data_cache: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    converted_cache: dict[str, ConvertedModel] = field(default_factory=dict)
    bar: Any = None
    #: (architecture, seed) trained by this call (not counted as reused when loaded again).
    fresh: set[tuple[str, int]] = field(default_factory=set)

    def say(self, text: str) -> None:
        """One line of progress."""
        if self.progress:
            tqdm.write(text)

    def step(self) -> None:
        """Advance the overall progress bar by one section step."""
        if self.bar is not None:
            self.bar.update(1)

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole Fashion-MNIST split (loaded once)."""
        if split not in self.data_cache:
            self.data_cache[split] = load_fashion_mnist(split, root=self.cfg.data_root)
        return self.data_cache[split]

    def first(self, split: str, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` images of a split (all for ``None``)."""
        x, y = self.data(split)
        n = x.shape[0] if n is None else min(int(n), x.shape[0])
        return x[:n], y[:n]

    @property
    def conversion_key(self) -> dict[str, Any]:
        """What decides a conversion, for cache keys."""
        return {
            "conversion": asdict(ConversionConfig()),
            "calibration": [
                self.cfg.calibration_size,
                self.cfg.calibration_seed,
                "whole training set",
            ],
        }

    def converted(self, ref: ModelRef) -> ConvertedModel:
        """``ref``'s network converted with Algorithm 1 (once per call)."""
        if ref.key not in self.converted_cache:
            x, _ = self.data("train")
            self.converted_cache[ref.key] = calibrate_and_convert(
                ref.path,
                x,
                calibration_size=self.cfg.calibration_size,
                seed=self.cfg.calibration_seed,
            )
        return self.converted_cache[ref.key]

    def cached(self, kind: str, key: dict[str, Any], compute: Any) -> Any:
        """The cache entry of ``key``, or ``compute()`` stored under it (JSON data)."""
        value = self.cache.get(kind, key)
        if value is not None:
            self.stats["reused"] += 1
            return value
        value = canonical(compute())
        self.cache.put(kind, key, value)
        self.stats["computed"] += 1
        return value


def _model_file(study: Study, arch: str, seed: int) -> tuple[Recipe, dict[str, Any], Path]:
    """The recipe of ``arch`` trained with ``seed``, its cache key and its model file."""
    cfg = study.cfg
    recipe = Recipe(arch=arch, epochs=cfg.epochs, seed=int(seed), limit=cfg.train_limit)
    key = canonical({"v": MODEL_KEY_VERSION, "recipe": asdict(recipe)})
    return recipe, key, study.cache.root / "models" / f"{arch}-seed{seed}-{digest(key)}.npz"


def _cached_model(study: Study, arch: str, seed: int) -> ModelRef | None:
    """The cached network of ``arch`` and ``seed``, if there is a valid one."""
    _, key, path = _model_file(study, arch, seed)
    if not path.is_file():
        return None
    try:
        _, _, meta = ann.load_model(path)
    except ModelFormatError:
        return None
    if meta.get("reproduce_key") != key:
        return None
    return ModelRef(digest(key), f"{arch} seed {seed}", path, meta)


def trained(study: Study, arch: str, seed: int) -> ModelRef:
    """The network of ``arch`` trained with ``seed``: from the cache, else trained now."""
    from ..train import train

    ref = _cached_model(study, arch, seed)
    if ref is not None:
        if (arch, seed) not in study.fresh:
            study.stats["reused"] += 1
        return ref
    recipe, key, path = _model_file(study, arch, seed)
    study.say(f"training {arch}, seed {seed}, {study.cfg.epochs} epoch(s)")
    result = train(recipe, root=study.cfg.data_root, progress=study.progress)
    meta = {**result.metadata(), "reproduce_key": key}
    ann.save_model(path, result.arch, result.state, meta)
    study.stats["trained"] += 1
    study.fresh.add((arch, seed))
    return ModelRef(digest(key), f"{arch} seed {seed}", path, canonical(meta))


def needed_models(cfg: ReproduceConfig) -> list[tuple[str, int]]:
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
    """Train one network into the cache (in a worker process of :func:`train_parallel`)."""
    trained(Study(cfg, Cache(Path(cache_root)), progress=False), arch, seed)


def train_parallel(study: Study, jobs: int) -> None:
    """Train the networks missing from the cache in ``jobs`` processes at once.

    Each training uses one thread (:attr:`snnfast.train.Recipe.threads`), so this gives the same
    weights as training them one after the other, in about ``1 / jobs`` of the time."""
    todo = [p for p in needed_models(study.cfg) if _cached_model(study, *p) is None]
    if jobs < 2 or len(todo) < 2:
        return
    todo.sort(key=lambda p: -_training_cost(p[0]))
    workers = min(jobs, len(todo))
    study.say(f"training {len(todo)} networks in {workers} processes")
    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool,
        tqdm(total=len(todo), desc="training", unit="net", disable=not study.progress) as bar,
    ):
        futures = {
            pool.submit(_train_job, study.cfg, str(study.cache.root), arch, seed): (arch, seed)
            for arch, seed in todo
        }
        try:
            for done in as_completed(futures):
                done.result()
                arch, seed = futures[done]
                study.fresh.add((arch, seed))
                study.stats["trained"] += 1
                study.say(f"trained {arch}, seed {seed}")
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def table2_model(study: Study) -> ModelRef:
    """The network of Table 2 and Tables 3-5 (:attr:`ReproduceConfig.table2_model`)."""
    spec = study.cfg.table2_model
    if spec == TRAINED:
        return trained(study, study.cfg.sweep_arch, study.cfg.table1_seed)
    path = Path(ann.SHIPPED_MODEL if spec is None else spec)
    _, _, meta = ann.load_model(path)  # ModelFormatError with the path if missing/damaged
    label = "shipped model" if spec is None else str(path)
    return ModelRef(file_key(path), label, path, meta)


def file_key(path: Path) -> str:
    """16 hexadecimal digits naming a file's content."""
    return file_digest(path)[:16]
