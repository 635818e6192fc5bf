"""The one evaluation path: the calibration sample, then embed, index, search and score.

Every command and study that scores a converted model (``snnfast demo``, ``snnfast evaluate``,
``snnfast lowlatency``, ``snnfast reproduce``) goes through this module, so they measure the same
way.

**Calibration rule.** Algorithm 1's rate-based pass sees ``size`` images (default
:data:`CALIBRATION_SIZE` = 1,000) drawn without replacement, with
``numpy.random.default_rng(seed)``, from the **whole training split** (all 60,000 Fashion-MNIST
training images), whatever part of it an experiment uses as its retrieval corpus
(:func:`calibration_indices`, :func:`calibrate_and_convert`). A model's SNN is then one network:
a quick run on the first few thousand corpus images scores the network a full run scores, and
the network a command scores is the network it costs on the chip.

**Scoring** (:func:`score_embeddings`). A cosine HNSW index over the corpus embeddings
(:class:`snnfast.retrieval.RetrievalIndex`), the :data:`SEARCH_K` = 10 nearest corpus images
of every query, then (:func:`snnfast.metrics.evaluate_retrieval`) classification accuracy from
the model's predictions, top-1 and top-3 label accuracy, mAP@10 and, on a seeded sample of the
queries (:func:`recall_sample`), recall@10 of the index against exact search.

**Embedding** (:func:`evaluate_model`). The ANN readout (the baseline) and the SNN readouts at
every requested number of time steps; the SNN's step counts come from one simulation of the
longest (:func:`snnfast.embed.embed_checkpoints`), which gives exactly what separate runs would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import _checks, qcfs
from ._records import Record
from .convert import ConversionConfig, ConvertedModel, convert
from .embed import READOUTS, Embeddings, IndexMeta, embed, embed_checkpoints
from .errors import ConfigError, ShapeError
from .metrics import evaluate_retrieval
from .retrieval import RetrievalIndex, SearchResult, exact_search
from .settings import RunSettings

__all__ = [
    "CALIBRATION_SIZE",
    "SEARCH_K",
    "EmbeddingScores",
    "Scored",
    "ann_embeddings",
    "calibrate_and_convert",
    "calibration_images",
    "calibration_indices",
    "evaluate_model",
    "recall_sample",
    "score_embeddings",
]

CALIBRATION_SIZE = 1000
"""Images of Algorithm 1's calibration pass (the paper's setting)."""
SEARCH_K = 10
"""Neighbours retrieved per query (top-1, top-3 and mAP@10 read the first of them)."""


def calibration_indices(n: int, size: int = CALIBRATION_SIZE, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(size, n)`` calibration images among ``n``, seeded.

    Pass ``n`` = the size of the whole training split (see the module docstring).
    """
    n = _checks.positive_int(n, "n", where="calibration_indices")
    size = _checks.positive_int(size, "calibration_size", where="calibration_indices")
    seed = _checks.integer(seed, "seed", 0, where="calibration_indices")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)


def calibration_images(
    train_images: np.ndarray, size: int = CALIBRATION_SIZE, seed: int = 0
) -> np.ndarray:
    """The calibration sample of the rule: ``train_images[calibration_indices(len, size, seed)]``.

    Args:
        train_images: the whole training split (uint8 ``[N, 1, 28, 28]``), not a corpus slice.
    """
    if not isinstance(train_images, np.ndarray) or train_images.ndim < 1:
        raise ShapeError(
            f"train_images must be an image array [N, ...], got {type(train_images).__name__}"
        )
    return train_images[calibration_indices(train_images.shape[0], size, seed)]


def calibrate_and_convert(
    model_path: str | os.PathLike[str] | None,
    train_images: np.ndarray,
    *,
    calibration_size: int = CALIBRATION_SIZE,
    seed: int = 0,
    config: ConversionConfig | None = None,
) -> ConvertedModel:
    """Load an ANN model file and convert it with Algorithm 1 on the rule's calibration sample.

    A QCFS-trained model (:func:`snnfast.qcfs.load`) converts with its trained thresholds
    (``activation_scales``); a ReLU model with the percentile rule.

    Args:
        model_path: ANN model file; ``None`` for the shipped one.
        train_images: the whole training split.
        calibration_size, seed: the calibration sample.
        config: Algorithm 1 options (default the paper's).

    Raises:
        ModelFormatError: the model file is missing or damaged.
    """
    arch, state, spec, _ = qcfs.load(model_path)
    return convert(
        state,
        arch,
        calibration_images=calibration_images(train_images, calibration_size, seed),
        config=config,
        qcfs=spec,
    )


def recall_sample(n_queries: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted, seeded indices of ``min(size, n_queries)`` queries for recall@10."""
    n_queries = _checks.positive_int(n_queries, "n_queries", where="recall_sample")
    size = _checks.integer(size, "recall_queries", 0, where="recall_sample")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_queries, min(size, n_queries), replace=False))


@dataclass(frozen=True)
class EmbeddingScores(Record):
    """The retrieval figures of one embedding of the queries (fractions in [0, 1]).

    Attributes:
        name: ``"ANN"`` or ``"SNN(T)"``.
        readout: the embedding readout (:data:`snnfast.embed.READOUTS`).
        timesteps: simulation steps (0 for the ANN).
        classification: classification accuracy of the model's predictions.
        top1, top3: top-1 / top-3 label accuracy of the retrieval.
        map_at_10: mAP@10 (:mod:`snnfast.metrics`).
        recall_at_10: recall@10 of the index against exact search, or ``None`` when no query
            sample was given.
        n_queries: queries scored.
        recall_queries: queries of the recall@10 sample (0 without one).
        timings: seconds per stage: ``embed_corpus_s`` and ``embed_queries_s`` (for the SNN,
            the one simulation that serves every ``T``), ``index_build_s``, ``search_s``,
            ``exact_search_s``.
        synops_per_image: SNN only: mean synaptic events delivered into each layer, input
            first.
        mean_steps: SNN only: mean time steps the queries ran (fewer than ``timesteps`` with
            early exit).
    """

    name: str
    readout: str
    timesteps: int
    classification: float | None
    top1: float
    top3: float
    map_at_10: float
    recall_at_10: float | None
    n_queries: int
    recall_queries: int
    timings: dict[str, float]
    synops_per_image: list[float] | None = None
    mean_steps: float | None = None


@dataclass(frozen=True)
class Scored:
    """What :func:`score_embeddings` finds for one embedding: the figures and the neighbours."""

    scores: EmbeddingScores
    hits: SearchResult


def _labels(labels: np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(
            f"{name} must be {n} integer labels, got shape {arr.shape} dtype {arr.dtype}"
        )
    return arr


def score_embeddings(
    corpus: Embeddings,
    queries: Embeddings,
    corpus_labels: np.ndarray,
    query_labels: np.ndarray,
    *,
    recall_ids: np.ndarray | None = None,
    index_params: dict[str, int] | None = None,
    threads: int | None = None,
) -> Scored:
    """Index ``corpus``, retrieve the :data:`SEARCH_K` nearest of every query, score them.

    Args:
        corpus, queries: embeddings of the same model, readout and time steps.
        corpus_labels, query_labels: int ``[N]`` / ``[Q]`` classes.
        recall_ids: query rows on which to measure recall@10 against exact search
            (:func:`recall_sample`); ``None`` skips it.
        index_params: ``M``, ``ef_construction``, ``ef``, ``seed`` of
            :meth:`snnfast.retrieval.RetrievalIndex.build`.
        threads: index build and search threads (default all cores).

    Raises:
        IndexMismatchError: the queries were embedded differently from the corpus.
        ShapeError: labels that do not match the embeddings.
    """
    ys = _labels(corpus_labels, len(corpus), "corpus_labels")
    yq = _labels(query_labels, len(queries), "query_labels")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    index = RetrievalIndex.build(
        corpus.vectors, ys, corpus.meta, threads=threads, **dict(index_params or {})
    )
    timings["index_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    hits = index.search(queries.vectors, SEARCH_K, queries.meta, threads=threads)
    timings["search_s"] = time.perf_counter() - t
    approx = exact = None
    n_recall = 0
    if recall_ids is not None:
        ids = np.asarray(recall_ids, dtype=np.int64)
        t = time.perf_counter()
        exact, _ = exact_search(corpus.vectors, queries.vectors[ids], SEARCH_K)
        timings["exact_search_s"] = time.perf_counter() - t
        approx, n_recall = hits.ids[ids], int(ids.size)
    figures = evaluate_retrieval(yq, hits.labels, queries.predictions, approx, exact)
    meta = queries.meta
    snn = meta.readout != "ann"
    scores = EmbeddingScores(
        name=f"SNN({meta.timesteps})" if snn else "ANN",
        readout=meta.readout,
        timesteps=meta.timesteps,
        classification=figures.classification,
        top1=figures.top1,
        top3=figures.top3,
        map_at_10=figures.map_at_10,
        recall_at_10=figures.recall_at_10,
        n_queries=figures.n_queries,
        recall_queries=n_recall,
        timings=timings,
        synops_per_image=(
            queries.synops.mean(axis=0).tolist() if queries.synops is not None else None
        ),
        mean_steps=float(np.mean(queries.steps)) if queries.steps is not None else None,
    )
    return Scored(scores, hits)


def ann_embeddings(
    model: ConvertedModel,
    images: np.ndarray,
    spec: qcfs.QCFSSpec | None = None,
    *,
    batch_size: int = 1000,
    progress: bool = False,
) -> Embeddings:
    """The ANN baseline's embeddings (the layer before the output) and predictions.

    Without ``spec`` this is the ``"ann"`` readout of :func:`snnfast.embed.embed`; a
    QCFS-trained network (``spec`` from :func:`snnfast.qcfs.load`) runs with its quantised
    activations (:func:`snnfast.qcfs.forward`), which is the ANN it was trained as.
    """
    quantised = any(n.op == "quant" for n in model.graph.nodes)
    if spec is None or quantised:
        return embed(model, images, "ann", batch_size=batch_size, progress=progress)
    if model.arch is None:
        raise ConfigError("ann_embeddings: a QCFS spec needs a Table 1 model")
    arch = model.arch
    names = ("input", *(f"{d.name}.qcfs" if d.kind != "dense" else d.name for d in arch.layers))
    as_trained = model.replace(graph=arch.graph(model.ann_state, qcfs=spec), layer_nodes=names)
    e = embed(as_trained, images, "ann", batch_size=batch_size, progress=progress)
    return replace(e, meta=IndexMeta(model.model_id(), "ann", 0, e.meta.dim))


def evaluate_model(
    model: ConvertedModel,
    corpus_images: np.ndarray,
    corpus_labels: np.ndarray,
    query_images: np.ndarray,
    query_labels: np.ndarray,
    timesteps: Sequence[int] = (16,),
    readouts: Sequence[str] = ("membrane",),
    *,
    include_ann: bool = True,
    settings: RunSettings | None = None,
    ann_spec: qcfs.QCFSSpec | None = None,
    recall_ids: np.ndarray | None = None,
    index_params: dict[str, int] | None = None,
    batch_size: int = 1000,
    progress: bool = True,
) -> list[Scored]:
    """Embed the corpus and the queries with ``model``, index, search and score each embedding.

    Args:
        model: the converted model.
        corpus_images, corpus_labels: the corpus (uint8 images, int labels).
        query_images, query_labels: the queries.
        timesteps: SNN simulation lengths (may be empty: the ANN alone); one simulation of the
            longest serves every one.
        readouts: SNN readouts (:data:`snnfast.embed.READOUTS` but ``"ann"``).
        include_ann: also score the ANN baseline (first in the result).
        settings: how the SNN runs (``delay``, ``v_init``, ``early_exit``, ``threads``; its
            ``timesteps`` is not used); default :attr:`ConvertedModel.settings`. Its
            ``threads`` also build and search the index.
        ann_spec: the QCFS spec of a QCFS-trained model, for its ANN baseline
            (:func:`ann_embeddings`).
        recall_ids, index_params: as in :func:`score_embeddings`.
        batch_size: images per engine call (bounds memory).
        progress: show progress bars.

    Returns:
        One :class:`Scored` per embedding: the ANN first (with ``include_ann``), then for each
        ``T`` in the order given, each readout in the order given.

    Raises:
        ConfigError: no embedding asked for, a repeated ``T``, an unknown readout.
    """
    steps = [_checks.positive_int(t, "timesteps", where="evaluate_model") for t in timesteps]
    if len(set(steps)) != len(steps):
        raise ConfigError(f"evaluate_model: timesteps repeats a value: {steps}")
    names = list(readouts)
    snn_readouts = tuple(r for r in READOUTS if r != "ann")
    if any(r not in snn_readouts for r in names) or len(set(names)) != len(names):
        raise ConfigError(
            f"evaluate_model: readouts must be distinct entries of {snn_readouts}, got {readouts!r}"
        )
    if not (steps and names) and not include_ann:
        raise ConfigError("evaluate_model: nothing to evaluate (no time steps and no ANN)")
    run = model.settings if settings is None else settings
    if not isinstance(run, RunSettings):
        raise ConfigError(f"settings must be a RunSettings, got {type(run).__name__}")
    threads = run.threads
    out: list[Scored] = []
    if include_ann:
        t = time.perf_counter()
        corpus = ann_embeddings(model, corpus_images, ann_spec, progress=progress)
        t_corpus = time.perf_counter() - t
        t = time.perf_counter()
        queries = ann_embeddings(model, query_images, ann_spec, progress=progress)
        t_queries = time.perf_counter() - t
        out.append(
            _with_embed_times(
                score_embeddings(
                    corpus,
                    queries,
                    corpus_labels,
                    query_labels,
                    recall_ids=recall_ids,
                    index_params=index_params,
                    threads=threads,
                ),
                t_corpus,
                t_queries,
            )
        )
    if not (steps and names):
        return out

    def simulate(images: np.ndarray) -> tuple[dict[int, dict[str, Embeddings]], float]:
        t = time.perf_counter()
        result = embed_checkpoints(
            model, images, steps, names, run, batch_size=batch_size, progress=progress
        )
        return result, time.perf_counter() - t

    corpus_all, t_corpus = simulate(corpus_images)
    queries_all, t_queries = simulate(query_images)
    for T in steps:
        for r in names:
            scored = score_embeddings(
                corpus_all[T][r],
                queries_all[T][r],
                corpus_labels,
                query_labels,
                recall_ids=recall_ids,
                index_params=index_params,
                threads=threads,
            )
            out.append(_with_embed_times(scored, t_corpus, t_queries))
    return out


def _with_embed_times(scored: Scored, t_corpus: float, t_queries: float) -> Scored:
    timings = {"embed_corpus_s": t_corpus, "embed_queries_s": t_queries, **scored.scores.timings}
    return Scored(replace(scored.scores, timings=timings), scored.hits)
