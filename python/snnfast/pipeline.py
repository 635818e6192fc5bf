"""The paper's whole evaluation in one call: convert, embed, index, search, score.

:func:`run_pipeline` loads a trained ANN, converts it with Algorithm 1, embeds the Fashion-MNIST
training set (the corpus) and test set (the queries) with the ANN and with the SNN at each
requested number of time steps, builds a cosine HNSW index per embedding, retrieves the 10
nearest corpus images of every query and reports, per embedding, the classification accuracy,
top-1 and top-3 label accuracy, mAP@10 and recall@10 of the index against exact search, with
the time each stage took.

Calibration (the rate-based pass of Algorithm 1): ``calibration_size`` training images (default
1,000) drawn without replacement with ``numpy.random.default_rng(seed)`` from the corpus images.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from . import ann
from .convert import ConversionConfig, ConvertedModel, convert
from .data import CLASS_NAMES, load_fashion_mnist
from .embed import READOUTS, Embeddings, embed
from .errors import ConfigError
from .metrics import evaluate_retrieval
from .qcfs import QCFSSpec
from .retrieval import RetrievalIndex, SearchResult, exact_search

__all__ = ["run_pipeline", "calibration_indices"]

SEARCH_K = 10


def calibration_indices(n: int, size: int = 1000, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(size, n)`` calibration images among ``n``, seeded."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"calibration_size must be a positive integer, got {size!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(int(size), n), replace=False)).astype(np.int64)


def _score(
    corpus: Embeddings,
    queries: Embeddings,
    corpus_labels: np.ndarray,
    query_labels: np.ndarray,
    recall_ids: np.ndarray,
    index_params: dict[str, int],
    threads: int | None,
) -> tuple[dict[str, Any], SearchResult]:
    """Build the index over ``corpus``, search ``queries``, compute every figure."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    index = RetrievalIndex.build(
        corpus.vectors, corpus_labels, corpus.meta, threads=threads, **index_params
    )
    timings["index_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    found = index.search(queries.vectors, SEARCH_K, queries.meta, threads=threads)
    timings["search_s"] = time.perf_counter() - t
    t = time.perf_counter()
    exact_ids, _ = exact_search(corpus.vectors, queries.vectors[recall_ids], SEARCH_K)
    timings["exact_search_s"] = time.perf_counter() - t
    figures = evaluate_retrieval(
        query_labels, found.labels, queries.predictions, found.ids[recall_ids], exact_ids
    )
    return {**figures.as_dict(), "recall_queries": int(recall_ids.size), "timings": timings}, found


def run_pipeline(
    model_path: str | os.PathLike[str] | None = None,
    timesteps: tuple[int, ...] | list[int] = (16,),
    readout: str = "membrane",
    n_train: int | None = None,
    n_test: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    *,
    calibration_size: int = 1000,
    seed: int = 0,
    config: ConversionConfig | None = None,
    delay: int = 0,
    v_init: float | None = None,
    recall_queries: int = 1000,
    index_params: dict[str, int] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    grid_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the paper's evaluation and return its figures as a JSON-serialisable dict.

    Args:
        model_path: ANN model file (:func:`snnfast.ann.save_model`); default the shipped one.
        timesteps: SNN simulation lengths to evaluate, e.g. ``(16, 128)``.
        readout: SNN embedding readout, ``"membrane"`` (the paper's), ``"spike_count"`` or
            ``"integrated"`` (see :mod:`snnfast.embed`).
        n_train, n_test: use only the first ``n`` training / test images (default all).
        threads: engine and index threads (default all cores).
        progress: show progress bars.
        calibration_size, seed: the calibration sample (see the module docstring).
        config: Algorithm 1 options (default the paper's).
        delay, v_init: SNN run settings (see :meth:`snnfast.Network.run`); ``v_init=None``
            takes the converted model's (``config.v_init``, 0 by default).
        recall_queries: recall@10 against exact search is measured on this many test queries
            (a seeded sample; all when there are fewer).
        index_params: ``M``, ``ef_construction``, ``ef``, ``seed`` for
            :meth:`snnfast.retrieval.RetrievalIndex.build`.
        data_root: directory of the Fashion-MNIST files (default: see :mod:`snnfast.data`).
        grid_path: if given, also write the paper's Fig 6 query grid (PNG) there, with the
            first test image of each class as queries and the first SNN setting's results.

    Returns:
        ``{"model", "arch", "model_id", "n_train", "n_test", "calibration", "config",
        "readout", "delay", "v_init", "index_params", "results": [...], "timings"}``; each
        entry of ``results`` has ``name`` (``"ANN"`` or ``"SNN(T)"``), ``readout``,
        ``timesteps``, the :class:`snnfast.metrics.RetrievalMetrics` fields,
        ``recall_queries``, per-stage ``timings`` and, for the SNN, ``synops_per_image``
        (mean synaptic events delivered into each layer, input first).
    """
    t_start = time.perf_counter()
    if readout not in READOUTS or readout == "ann":
        raise ConfigError(
            f"readout must be one of {[r for r in READOUTS if r != 'ann']}, got {readout!r}"
        )
    steps = [timesteps] if isinstance(timesteps, (int, np.integer)) else list(timesteps)
    if not steps:
        raise ConfigError("timesteps must name at least one simulation length")
    params = dict(index_params or {})
    timings: dict[str, float] = {}

    t = time.perf_counter()
    arch, state, metadata = ann.load_model(model_path)
    if QCFSSpec.from_metadata(metadata) is not None:
        raise ConfigError(
            f"{model_path} is QCFS-trained: its ANN and conversion need its "
            "thresholds; evaluate it with snnfast.lowlatency.lowlatency_report "
            "(snnfast lowlatency --qcfs-model FILE)"
        )
    x_train, y_train = load_fashion_mnist("train", root=data_root, limit=n_train)
    x_test, y_test = load_fashion_mnist("test", root=data_root, limit=n_test)
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    calib = calibration_indices(x_train.shape[0], calibration_size, seed)
    model: ConvertedModel = convert(state, arch, calibration_images=x_train[calib], config=config)
    timings["convert_s"] = time.perf_counter() - t

    n_recall = min(int(recall_queries), x_test.shape[0])
    recall_ids = np.sort(
        np.random.default_rng(seed).choice(x_test.shape[0], n_recall, replace=False)
    )
    results: list[dict[str, Any]] = []
    found: dict[str, SearchResult] = {}
    runs: list[tuple[str, str, int]] = [("ANN", "ann", 0)]
    runs += [(f"SNN({int(T)})", readout, int(T)) for T in steps]
    for name, ro, T in runs:
        opts: dict[str, Any] = {
            "readout": ro,
            "timesteps": max(T, 1),
            "threads": threads,
            "progress": progress,
            "delay": delay,
            "v_init": v_init,
        }
        t = time.perf_counter()
        corpus = embed(model, x_train, **opts)
        t_corpus = time.perf_counter() - t
        t = time.perf_counter()
        queries = embed(model, x_test, **opts)
        t_queries = time.perf_counter() - t
        row, found[name] = _score(corpus, queries, y_train, y_test, recall_ids, params, threads)
        row["timings"] = {
            "embed_corpus_s": t_corpus,
            "embed_queries_s": t_queries,
            **row["timings"],
        }
        entry: dict[str, Any] = {"name": name, "readout": ro, "timesteps": T, **row}
        if queries.synops is not None:
            entry["synops_per_image"] = queries.synops.mean(axis=0).tolist()
        results.append(entry)

    if grid_path is not None:
        from .plots import query_grid

        t = time.perf_counter()
        q_ids = np.array(
            [
                np.flatnonzero(y_test == c)[0]
                for c in range(len(CLASS_NAMES))
                if (y_test == c).any() and (y_train == c).any()
            ],
            dtype=np.int64,
        )
        rng = np.random.default_rng(seed)
        same = [np.flatnonzero(y_train == y_test[q]) for q in q_ids]
        random_ids = np.stack([rng.choice(s, 3, replace=s.size < 3) for s in same])
        query_grid(
            grid_path,
            x_test[q_ids],
            x_train,
            found["ANN"].ids[q_ids, :3],
            found[runs[1][0]].ids[q_ids, :3],
            random_ids,
            CLASS_NAMES,
            query_labels=y_test[q_ids],
            snn_title=runs[1][0],
        )
        timings["grid_s"] = time.perf_counter() - t

    timings["total_s"] = time.perf_counter() - t_start
    return {
        "model": str(ann.SHIPPED_MODEL if model_path is None else model_path),
        "arch": arch.spec,
        "model_id": model.model_id(),
        "n_train": int(x_train.shape[0]),
        "n_test": int(x_test.shape[0]),
        "calibration": {"size": int(calib.size), "seed": seed, **dict(model.calibration)},
        "config": asdict(model.config),
        "thresholds": model.thresholds,
        "readout": readout,
        "delay": delay,
        "v_init": model.run_settings["v_init"] if v_init is None else v_init,
        "index_params": params,
        "results": results,
        "timings": timings,
    }
