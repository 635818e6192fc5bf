"""Embedding image catalogues: in this process, or on a Ray cluster (the ``scale`` extra).

- :func:`embed_source` embeds a folder, image file or ``.npy`` array in this process, batch by
  batch: what ``snnfast embed`` runs, and the reference the Ray path must equal.
- :func:`embed_dataset` maps a Ray dataset of images to a dataset of embeddings with a callable
  class: each worker (a Ray actor) loads the converted model once, then runs the engine on
  batches (the engine releases the GIL and holds no state between calls).
- :func:`embed_catalog` embeds a whole catalogue into a folder of shards, resumably: what
  ``snnfast embed-catalog`` runs.

Results do not depend on the batch size, the number of workers or threads, or the machine: the
engine is bit-exact per image, so a catalogue embedded on Ray equals ``snnfast embed`` of the
same images bit for bit.

**The catalogue folder** ``OUT/`` holds ``catalog.npz`` (the plan: the source's description and
fingerprint, its size, the shard size, the :class:`~snnfast.embed.IndexMeta`, run settings and
image options) and one :class:`~snnfast.embed.Embeddings` file per shard,
``shard-000000.npz`` ... (rows ``[k * shard_size, (k + 1) * shard_size)`` of the source, with
ids, labels and paths), each written atomically by the driver as soon as its rows are in. A
rerun with the same source, model and settings reuses every shard file that reads back intact
and embeds only the others; a plan that differs is refused rather than mixed. Images that
cannot be decoded are skipped with ``on_error="skip"`` (their ids are missing).

**Ray.** Ray is imported only by the functions that need it. :func:`init_ray` starts a local
Ray on this machine with all its cores (:func:`snnfast._checks.all_cores`), or connects to a
cluster (``address="ray://head:10001"`` or ``"auto"``). Each worker reserves one logical CPU and
runs ``threads_per_worker`` engine threads (default 2), so the logical CPUs left over run
Ray's own read tasks; by default there are ``CPUs // threads_per_worker`` workers. On a
cluster the workers read the images themselves, so the catalogue's files must be reachable at
the same paths from every node (a shared file system), and the model goes to the workers as
bytes through Ray's object store.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from . import _checks, _container
from ._records import Record
from .data import ImageBatch, ImageOptions, ImageSource
from .embed import READOUTS, Embeddings, IndexMeta, embed
from .errors import ConfigError, DataError, ModelFormatError
from .settings import RunSettings

if TYPE_CHECKING:
    from .convert import ConvertedModel

__all__ = [
    "CatalogSource",
    "CatalogResult",
    "INSTALL_HINT",
    "embed_source",
    "embed_dataset",
    "embed_catalog",
    "init_ray",
    "load_catalog",
    "shard_path",
]

INSTALL_HINT = "distributed embedding needs Ray: pip install 'snnfast[scale]'"
PLAN = "catalog.npz"
PLAN_KIND = "catalog"
PLAN_VERSION = 2
DEFAULT_SHARD_SIZE = 10_000
DEFAULT_THREADS_PER_WORKER = 2


@runtime_checkable
class CatalogSource(Protocol):
    """What :func:`embed_catalog` reads: images by row. :class:`snnfast.data.ImageSource` is
    one; so is any object with these members that pickles (to reach the workers)."""

    description: str

    def __len__(self) -> int: ...

    def fingerprint(self) -> str:
        """A string that changes whenever the images change (resuming checks it)."""
        ...

    def read_ids(
        self, ids: np.ndarray, shape: Sequence[int], options: ImageOptions | None = None
    ) -> ImageBatch:
        """The rows ``ids`` as images of ``shape``."""
        ...


@dataclass(frozen=True)
class CatalogResult(Record):
    """What :func:`embed_catalog` did.

    Attributes:
        out: the catalogue folder.
        images: rows in the source.
        embedded: images embedded by this run (skipped ones not counted).
        shards: shards in the plan.
        shards_embedded: shards this run wrote.
        shards_reused: shards found complete from an earlier run.
        seconds: wall time of this run.
    """

    out: str
    images: int
    embedded: int
    shards: int
    shards_embedded: int
    shards_reused: int
    seconds: float


# -- the embedding itself, shared by every path --------------------------------------------------


def _settings(model: ConvertedModel, settings: RunSettings | None) -> RunSettings:
    return model.settings if settings is None else settings


def _run(
    model: ConvertedModel, images: np.ndarray, readout: str, settings: RunSettings
) -> Embeddings:
    return embed(model, images, readout, settings, batch_size=max(1, images.shape[0]))


def _meta(model: ConvertedModel, readout: str, settings: RunSettings) -> IndexMeta:
    _checks.choice(readout, "readout", READOUTS)
    t = 0 if readout == "ann" else settings.timesteps
    return IndexMeta(model.model_id(), readout, t, model.embedding_dim)


def _concat(meta: IndexMeta, parts: list[Embeddings]) -> Embeddings:
    def cat(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return np.concatenate(values)

    vectors = cat("vectors")
    predictions = cat("predictions")
    if vectors is None or predictions is None:  # pragma: no cover - always present
        raise DataError("no embeddings to join")
    return Embeddings(
        vectors,
        predictions,
        meta,
        cat("synops"),
        cat("steps"),
        cat("labels"),
        cat("ids"),
        cat("paths"),
    )


def _with_columns(emb: Embeddings, batch: ImageBatch) -> Embeddings:
    return dataclasses.replace(emb, ids=batch.ids, labels=batch.labels, paths=batch.paths)


def _empty(meta: IndexMeta, model: ConvertedModel, readout: str) -> Embeddings:
    snn = readout != "ann"
    layers = model.network.n_layers + 1
    return Embeddings(
        np.zeros((0, meta.dim), np.float32),
        np.zeros(0, np.int64),
        meta,
        np.zeros((0, layers), np.int64) if snn else None,
        np.zeros(0, np.int32) if snn else None,
        ids=np.zeros(0, np.int64),
    )


def embed_source(
    model: ConvertedModel,
    source: str | os.PathLike[str] | np.ndarray | CatalogSource,
    *,
    readout: str = "membrane",
    settings: RunSettings | None = None,
    options: ImageOptions | None = None,
    labels: Any = None,
    batch_size: int = 1000,
    limit: int | None = None,
    progress: bool = False,
) -> Embeddings:
    """Embed every image of ``source`` in this process, ``batch_size`` at a time.

    Args:
        model: the converted model; images are made its input shape
            (:mod:`snnfast.data.images`).
        source: a folder, an image file, a ``.npy`` file, a uint8 array or a
            :class:`CatalogSource`.
        readout: one of :data:`snnfast.embed.READOUTS`.
        settings: run settings (default the model's own, :attr:`ConvertedModel.settings`).
        options: how images are decoded and resized.
        labels: labels of an array or ``.npy`` source (see :meth:`ImageSource.open`).
        limit: the first rows only.

    Returns:
        Embeddings with ``ids`` (rows of the source), ``labels`` and ``paths`` where known.

    Raises:
        DataError: a missing source, an undecodable image (unless skipped), nothing readable.
        MemoryLimitError: the embeddings would not fit.
    """
    from tqdm.auto import tqdm

    run = _settings(model, settings)
    meta = _meta(model, readout, run)
    src = _open_source(source, labels)
    bs = _checks.positive_int(batch_size, "batch_size")
    n = len(src) if limit is None else min(len(src), _checks.positive_int(limit, "limit"))
    _checks.check_memory(n * meta.dim * 4, f"embeddings of {n:,} images")
    shape = model.network.input_shape
    parts: list[Embeddings] = []
    with tqdm(total=n, unit="img", desc="embed", disable=not progress) as bar:
        for start in range(0, n, bs):
            batch = src.read_ids(np.arange(start, min(start + bs, n)), shape, options)
            if len(batch):
                parts.append(_with_columns(_run(model, batch.images, readout, run), batch))
            bar.update(min(bs, n - start))
    if not parts:
        raise DataError(f"no image of {src.description} could be read")
    return _concat(meta, parts)


def _open_source(source: Any, labels: Any = None) -> CatalogSource:
    if not isinstance(source, (str, os.PathLike, np.ndarray)) and isinstance(source, CatalogSource):
        if labels is not None:
            raise ConfigError("labels can be given only with a path or an array as the source")
        return source
    return ImageSource.open(source, labels)


# -- Ray --------------------------------------------------------------------------------------


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise DataError(INSTALL_HINT) from exc
    return ray


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Start Ray on this machine (``num_cpus``, default all cores) or connect to ``address``;
    an already running Ray in this process is used as it is. Returns the ``ray`` module."""
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": "ERROR",
        }
        if address is None:
            kwargs["num_cpus"] = _checks.all_cores() if num_cpus is None else num_cpus
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from exc
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its plans and progress notes
    return ray


@dataclass(frozen=True)
class _Spec:
    """What a worker needs to embed: the model file's bytes and the settings."""

    model_bytes: bytes
    readout: str
    settings: RunSettings
    options: ImageOptions


def _model_bytes(model: ConvertedModel | str | os.PathLike[str]) -> tuple[bytes, ConvertedModel]:
    from .convert import ConvertedModel

    if isinstance(model, ConvertedModel):
        with tempfile.TemporaryDirectory(prefix="snnfast-model-") as tmp:
            path = Path(tmp) / "model.npz"
            model.save(path)
            return path.read_bytes(), model
    loaded = ConvertedModel.load(model)
    return Path(model).read_bytes(), loaded


def _load_model(data: bytes) -> ConvertedModel:
    from .convert import ConvertedModel

    with tempfile.TemporaryDirectory(prefix="snnfast-model-") as tmp:
        path = Path(tmp) / "model.npz"
        path.write_bytes(data)
        return ConvertedModel.load(path)


_COLUMNS = ("id", "embedding", "prediction", "label", "path", "synops", "steps")


class _Embedder:
    """The callable class of ``map_batches``: loads the model once, embeds each batch."""

    def __init__(self, payload: Any) -> None:
        import ray

        spec, *rest = ray.get(payload)  # (spec,) or (spec, source, todo)
        source, todo = rest if rest else (None, None)
        self.model = _load_model(spec.model_bytes)
        self.spec = spec
        self.source, self.todo = source, todo
        self.meta = _meta(self.model, spec.readout, spec.settings)

    def _images(self, batch: dict[str, np.ndarray]) -> ImageBatch:
        shape = self.model.network.input_shape
        if self.source is not None:
            assert self.todo is not None
            return self.source.read_ids(self.todo[batch["id"]], shape, self.spec.options)
        from .data import convert_array

        raw = batch["image"]
        n = len(raw)
        ids = np.asarray(batch["id"], np.int64) if "id" in batch else np.arange(n, dtype=np.int64)
        labels = np.asarray(batch["label"], np.int64) if "label" in batch else None
        paths = np.asarray(batch["path"], dtype=str) if "path" in batch else None
        if raw.dtype == object:  # encoded files (Parquet of PNG / JPEG bytes) or ragged arrays
            images = np.stack([_decode(x, shape, self.spec.options) for x in raw])
        else:
            images = convert_array(np.asarray(raw), shape, self.spec.options)
        return ImageBatch(images, ids, labels, paths)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = self._images(batch)
        if len(images):
            emb = _run(self.model, images.images, self.spec.readout, self.spec.settings)
        else:
            emb = _empty(self.meta, self.model, self.spec.readout)
        n = len(images)
        layers = self.model.network.n_layers + 1
        return {
            "id": images.ids,
            "embedding": emb.vectors,
            "prediction": emb.predictions,
            "label": np.full(n, -1, np.int64) if images.labels is None else images.labels,
            "path": np.full(n, "", dtype="<U1") if images.paths is None else images.paths,
            "synops": np.zeros((n, layers), np.int64) if emb.synops is None else emb.synops,
            "steps": np.zeros(n, np.int32) if emb.steps is None else emb.steps,
        }


def _decode(value: Any, shape: Sequence[int], options: ImageOptions) -> np.ndarray:
    from .data import convert_array, read_image

    if isinstance(value, (bytes, bytearray, memoryview)):
        with tempfile.NamedTemporaryFile(prefix="snnfast-image-") as fh:
            fh.write(bytes(value))
            fh.flush()
            return read_image(fh.name, shape, options)
    return convert_array(np.asarray(value, dtype=np.uint8)[None], shape, options)[0]


def _workers(ray: Any, workers: int | None, threads: int) -> int:
    if workers is not None:
        return _checks.positive_int(workers, "workers")
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // threads)


def _map(
    dataset: Any,
    spec: _Spec,
    args: tuple[Any, ...],
    batch_size: int,
    workers: int | None,
) -> Any:
    ray = _ray()
    threads = spec.settings.threads or DEFAULT_THREADS_PER_WORKER
    spec = dataclasses.replace(spec, settings=spec.settings.replace(threads=threads))
    return dataset.map_batches(
        _Embedder,
        fn_constructor_args=(ray.put((spec, *args)),),  # by reference: one copy in the store
        batch_size=_checks.positive_int(batch_size, "batch_size"),
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=_workers(ray, workers, threads)),
        num_cpus=1,
    )


def embed_dataset(
    dataset: Any,  # ray.data.Dataset
    model: ConvertedModel | str | os.PathLike[str],
    *,
    readout: str = "membrane",
    settings: RunSettings | None = None,
    options: ImageOptions | None = None,
    batch_size: int = 256,
    workers: int | None = None,
) -> Any:
    """Map a Ray dataset of images to a Ray dataset of embeddings (lazily, as Ray does).

    Args:
        dataset: a ``ray.data.Dataset`` with a column ``image``: uint8 arrays ``[C, H, W]`` or
            ``[H, W]`` (``ray.data.read_images``, ``from_numpy``, NumPy shards) or encoded
            image files as bytes (Parquet); optional columns ``id`` (int), ``label`` (int) and
            ``path`` (str) are carried through.
        model: a converted model or the path of its file.
        readout, settings, options: as for :func:`embed_source`; ``settings.threads`` is the
            engine threads per worker (default 2).
        batch_size: images per engine call.
        workers: actors (default the cluster's CPUs // threads per worker).

    Returns:
        A dataset with columns ``id``, ``embedding`` (float32 ``[D]``), ``prediction``,
        ``label`` (-1 where unknown), ``path`` (``""`` where unknown), ``synops``, ``steps``.
    """
    data, loaded = _model_bytes(model)
    run = _settings(loaded, settings)
    _meta(loaded, readout, run)
    spec = _Spec(data, readout, run, options or ImageOptions())
    return _map(dataset, spec, (), batch_size, workers)


# -- catalogues --------------------------------------------------------------------------------


def shard_path(out: str | os.PathLike[str], k: int) -> Path:
    """The file of shard ``k`` in the catalogue folder ``out``."""
    return Path(out) / f"shard-{k:06d}.npz"


def _plan_body(
    src: CatalogSource,
    meta: IndexMeta,
    run: RunSettings,
    options: ImageOptions,
    shard_size: int,
) -> dict[str, Any]:
    return {
        "source": src.description,
        "fingerprint": src.fingerprint(),
        "images": len(src),
        "shard_size": shard_size,
        "meta": meta.to_json(),
        "settings": run.replace(threads=None).to_json(),
        "options": dataclasses.asdict(options),
    }


def _read_plan(out: Path) -> dict[str, Any]:
    return _container.read(out / PLAN, PLAN_KIND, [PLAN_VERSION], what="catalogue plan").body


def _shard_ok(out: Path, k: int, lo: int, hi: int, meta: IndexMeta) -> bool:
    path = shard_path(out, k)
    if not path.is_file():
        return False
    try:
        emb = Embeddings.load(path)
    except ModelFormatError as exc:
        warnings.warn(f"re-embedding shard {k}: {exc}", stacklevel=3)
        return False
    ids = emb.ids
    return (
        emb.meta == meta
        and ids is not None
        and (ids.size == 0 or (int(ids.min()) >= lo and int(ids.max()) < hi))
    )


def embed_catalog(
    source: str | os.PathLike[str] | np.ndarray | CatalogSource,
    model: ConvertedModel | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    readout: str = "membrane",
    settings: RunSettings | None = None,
    options: ImageOptions | None = None,
    labels: Any = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 256,
    workers: int | None = None,
    address: str | None = None,
    progress: bool = False,
) -> CatalogResult:
    """Embed ``source`` on Ray into shard files in the folder ``out`` (see the module
    docstring); a rerun resumes, embedding only the shards not yet written.

    Args:
        source: a folder, an image file, a ``.npy`` file, a uint8 array or a
            :class:`CatalogSource`.
        model: a converted model or its file.
        readout, settings, options, labels: as for :func:`embed_source`.
        shard_size: rows per shard file.
        batch_size: images per engine call; workers: as for :func:`embed_dataset`.
        address: a Ray cluster (``"ray://host:10001"``, ``"auto"``); default a local Ray.

    Raises:
        ConfigError: ``out`` holds a catalogue of another source, model or settings.
        DataError: Ray is not installed, or the source cannot be read.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    src = _open_source(source, labels)
    data, loaded = _model_bytes(model)
    run = _settings(loaded, settings)
    meta = _meta(loaded, readout, run)
    opts = options or ImageOptions()
    size = _checks.positive_int(shard_size, "shard_size")
    folder = Path(out)
    body = _plan_body(src, meta, run, opts, size)
    if (folder / PLAN).exists():
        old = _read_plan(folder)
        diff = [k for k in body if k != "source" and old.get(k) != body[k]]
        if diff:
            raise ConfigError(
                f"{folder} holds a catalogue with another {', '.join(diff)}: give another --out "
                "or remove it"
            )
    elif folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} exists and is not a catalogue folder")
    else:
        _container.write(folder / PLAN, PLAN_KIND, PLAN_VERSION, body, {})
    n = len(src)
    n_shards = max(1, math.ceil(n / size))
    bounds = [(k, k * size, min(n, (k + 1) * size)) for k in range(n_shards)]
    missing = [b for b in bounds if not _shard_ok(folder, *b, meta)]
    embedded = 0
    if missing:
        todo = np.concatenate([np.arange(lo, hi, dtype=np.int64) for _, lo, hi in missing])
        ray = init_ray(address)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        blocks = max(1, math.ceil(todo.size / (4 * batch_size)))
        positions = ray.data.range(todo.size, override_num_blocks=blocks)
        threads = run.threads or DEFAULT_THREADS_PER_WORKER
        spec = _Spec(data, readout, run.replace(threads=threads), opts)
        ds = _map(positions, spec, (src, todo), batch_size, workers)
        with tqdm(total=todo.size, unit="img", desc="embed-catalog", disable=not progress) as bar:
            for k, part in _shards(ds, missing, meta, loaded, readout):
                part.save(shard_path(folder, k))
                embedded += len(part)
                bar.update(next(hi - lo for kk, lo, hi in missing if kk == k))
    return CatalogResult(
        str(folder),
        n,
        embedded,
        n_shards,
        len(missing),
        n_shards - len(missing),
        time.perf_counter() - t0,
    )


def _shards(
    ds: Any,
    missing: list[tuple[int, int, int]],
    meta: IndexMeta,
    model: ConvertedModel,
    readout: str,
) -> Iterator[tuple[int, Embeddings]]:
    """Group the ordered output rows of ``ds`` into the ``missing`` shards, in order."""
    pending: list[Embeddings] = []
    index = 0

    def finish() -> tuple[int, Embeddings]:
        k = missing[index][0]
        part = _concat(meta, pending) if pending else _empty(meta, model, readout)
        return k, part

    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        emb = _batch_embeddings(batch, meta, readout)
        ids = emb.ids
        assert ids is not None
        while len(ids):
            _, lo, hi = missing[index]
            if ids[0] >= hi:  # this shard is complete
                yield finish()
                pending, index = [], index + 1
                continue
            cut = int(np.searchsorted(ids, hi))
            pending.append(_take(emb, slice(0, cut)))
            emb = _take(emb, slice(cut, None))
            ids = emb.ids
            assert ids is not None
    while index < len(missing):
        yield finish()
        pending, index = [], index + 1


def _take(emb: Embeddings, rows: slice) -> Embeddings:
    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[rows]

    return Embeddings(
        emb.vectors[rows],
        emb.predictions[rows],
        emb.meta,
        cut(emb.synops),
        cut(emb.steps),
        cut(emb.labels),
        cut(emb.ids),
        cut(emb.paths),
    )


def _batch_embeddings(batch: dict[str, np.ndarray], meta: IndexMeta, readout: str) -> Embeddings:
    snn = readout != "ann"
    labels = np.asarray(batch["label"], np.int64)
    paths = np.asarray(batch["path"], dtype=str)
    return Embeddings(
        np.ascontiguousarray(np.asarray(batch["embedding"], np.float32).reshape(-1, meta.dim)),
        np.asarray(batch["prediction"], np.int64),
        meta,
        np.ascontiguousarray(np.asarray(batch["synops"], np.int64)) if snn else None,
        np.asarray(batch["steps"], np.int32) if snn else None,
        None if (labels < 0).all() and labels.size else labels,
        np.asarray(batch["id"], np.int64),
        None if paths.size and not paths.any() else paths,
    )


def load_catalog(out: str | os.PathLike[str]) -> Embeddings:
    """Every shard of the catalogue folder ``out`` joined into one :class:`Embeddings`.

    Raises:
        ModelFormatError: no plan, a missing or damaged shard (rerun ``embed-catalog``), or
            shards that do not belong to the plan.
    """
    folder = Path(out)
    body = _read_plan(folder)
    try:
        meta = IndexMeta.from_json(body["meta"])
        n, size = int(body["images"]), int(body["shard_size"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelFormatError(f"{folder}: catalogue plan is damaged ({exc})") from exc
    n_shards = max(1, math.ceil(n / size))
    _checks.check_memory(n * meta.dim * 4, f"loading {n:,} embeddings from {folder}")
    parts = []
    for k in range(n_shards):
        path = shard_path(folder, k)
        if not path.is_file():
            raise ModelFormatError(f"{folder}: shard {k} is missing; rerun embed-catalog")
        part = Embeddings.load(path)
        if part.meta != meta:
            raise ModelFormatError(f"{path} does not belong to the catalogue's model or settings")
        if len(part):
            parts.append(part)
    if not parts:
        raise ModelFormatError(f"{folder}: the catalogue holds no embeddings")
    if any((p.labels is None) != (parts[0].labels is None) for p in parts):
        parts = [p if p.labels is not None else _unlabelled(p) for p in parts]
    if any((p.paths is None) != (parts[0].paths is None) for p in parts):
        parts = [
            p if p.paths is not None else dataclasses.replace(p, paths=np.full(len(p), ""))
            for p in parts
        ]
    return _concat(meta, parts)


def _unlabelled(p: Embeddings) -> Embeddings:
    return dataclasses.replace(p, labels=np.full(len(p), -1, np.int64))
