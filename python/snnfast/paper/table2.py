"""The paper's Table 2 run: a trained ANN converted, evaluated as ANN and SNN(T) on Fashion-MNIST.

:func:`run_pipeline` loads a trained ANN, converts it with Algorithm 1 (calibration by the
library's rule: a seeded sample of the whole training set, :mod:`snnfast.evaluation`), embeds
the Fashion-MNIST training set (the corpus) and test set (the queries) with the ANN and with the
SNN at each requested number of time steps, builds a cosine HNSW index per embedding, retrieves
the 10 nearest corpus images of every query and reports, per embedding, the classification
accuracy, top-1 and top-3 label accuracy, mAP@10 and recall@10 of the index against exact
search, with the time each stage took (:func:`snnfast.evaluation.evaluate_model`).

``snnfast evaluate`` and ``snnfast demo`` print it beside the paper's numbers
(:func:`format_table2`); ``snnfast reproduce`` caches it (:func:`table2_section`) and renders
it (:func:`render_table2`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import _checks, ann
from .._io import atomic_write
from ..convert import ConversionConfig, ConvertedModel
from ..data import CLASS_NAMES, load_fashion_mnist
from ..errors import ConfigError, ModelFormatError
from ..evaluation import (
    CALIBRATION_SIZE,
    EmbeddingScores,
    calibrate_and_convert,
    evaluate_model,
    recall_sample,
)
from ..qcfs import QCFSSpec
from ..variants import SNN_READOUTS
from . import _markdown as md
from .cache import file_digest
from .config import FIGURES
from .published import PAPER_TABLE2
from .records import Table2
from .study import ModelRef, Study

__all__ = ["format_table2", "render_table2", "run_pipeline", "table2_section"]


def run_pipeline(
    model_path: str | os.PathLike[str] | None = None,
    timesteps: Sequence[int] = (16,),
    readout: str = "membrane",
    n_train: int | None = None,
    n_test: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    *,
    calibration_size: int = CALIBRATION_SIZE,
    seed: int = 0,
    config: ConversionConfig | None = None,
    delay: int = 0,
    v_init: float | None = None,
    recall_queries: int = 1000,
    index_params: dict[str, int] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    grid_path: str | os.PathLike[str] | None = None,
    converted: ConvertedModel | None = None,
) -> Table2:
    """Run the paper's evaluation and return its figures.

    Args:
        model_path: ANN model file (:func:`snnfast.ann.save_model`); default the shipped one.
        timesteps: SNN simulation lengths to evaluate, e.g. ``(16, 128)``.
        readout: SNN embedding readout, ``"membrane"`` (the paper's), ``"spike_count"`` or
            ``"integrated"`` (see :mod:`snnfast.embed`).
        n_train, n_test: use only the first ``n`` training (corpus) / test (query) images
            (default all). The calibration sample comes from the whole training set anyway.
        threads: engine and index threads (default all cores).
        progress: show progress bars.
        calibration_size, seed: the calibration sample (:mod:`snnfast.evaluation`); ``seed``
            also draws the recall@10 queries.
        config: Algorithm 1 options (default the paper's).
        delay, v_init: SNN run settings (see :class:`snnfast.settings.RunSettings`);
            ``v_init=None`` takes the converted model's (``config.v_init``, 0 by default).
        recall_queries: recall@10 against exact search is measured on this many test queries
            (a seeded sample; all when there are fewer).
        index_params: ``M``, ``ef_construction``, ``ef``, ``seed`` for
            :meth:`snnfast.retrieval.RetrievalIndex.build`.
        data_root: directory of the Fashion-MNIST files (default: see :mod:`snnfast.data`).
        grid_path: if given, also write the paper's Fig 6 query grid (PNG) there, with the
            first test image of each class as queries and the first SNN setting's results.
        converted: the model ``model_path`` converts to, when the caller has converted it
            already (with :func:`snnfast.evaluation.calibrate_and_convert`, ``calibration_size``
            and ``seed``); it is then not converted again.

    Raises:
        ConfigError: a bad readout, no time steps, or a QCFS-trained model.
        ModelFormatError: the model file is missing or damaged.
        DataError: Fashion-MNIST is missing.
    """
    t_start = time.perf_counter()
    _checks.choice(readout, "readout", SNN_READOUTS, where="run_pipeline")
    steps = [timesteps] if isinstance(timesteps, (int, np.integer)) else list(timesteps)
    if not steps:
        raise ConfigError("timesteps must name at least one simulation length")
    steps = [_checks.positive_int(t, "timesteps", where="run_pipeline") for t in steps]
    params = dict(index_params or {})
    timings: dict[str, float] = {}

    t = time.perf_counter()
    if converted is None:
        _, _, metadata = ann.load_model(model_path)
        if QCFSSpec.from_metadata(metadata) is not None:
            raise ConfigError(
                f"{model_path} is QCFS-trained: its ANN and conversion need its "
                "thresholds; evaluate it with snnfast.paper.lowlatency.lowlatency_report "
                "(snnfast lowlatency --qcfs-model FILE)"
            )
    x_all, y_all = load_fashion_mnist("train", root=data_root)
    n = x_all.shape[0] if n_train is None else _checks.positive_int(n_train, "n_train")
    x_train, y_train = x_all[:n], y_all[:n]
    x_test, y_test = load_fashion_mnist("test", root=data_root, limit=n_test)
    timings["load_s"] = time.perf_counter() - t

    if converted is None:
        t = time.perf_counter()
        model = calibrate_and_convert(
            model_path, x_all, calibration_size=calibration_size, seed=seed, config=config
        )
        timings["convert_s"] = time.perf_counter() - t
    else:
        model = converted

    settings = model.settings.replace(delay=delay, threads=threads)
    if v_init is not None:
        settings = settings.replace(v_init=v_init)
    scored = evaluate_model(
        model,
        x_train,
        y_train,
        x_test,
        y_test,
        steps,
        (readout,),
        settings=settings,
        recall_ids=recall_sample(x_test.shape[0], recall_queries, seed),
        index_params=params,
        progress=progress,
    )

    if grid_path is not None:
        from ..plots import query_grid

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
            scored[0].hits.ids[q_ids, :3],
            scored[1].hits.ids[q_ids, :3],
            random_ids,
            CLASS_NAMES,
            query_labels=y_test[q_ids],
            snn_title=scored[1].scores.name,
        )
        timings["grid_s"] = time.perf_counter() - t

    timings["total_s"] = time.perf_counter() - t_start
    return Table2(
        model=str(ann.SHIPPED_MODEL if model_path is None else model_path),
        arch=str(model.arch),
        model_id=model.model_id(),
        n_train=int(x_train.shape[0]),
        n_test=int(x_test.shape[0]),
        calibration={
            "size": min(int(calibration_size), int(x_all.shape[0])),
            "seed": seed,
            **model.calibration.to_json(),
        },
        config=asdict(model.config),
        thresholds=model.thresholds,
        readout=readout,
        delay=settings.delay,
        v_init=settings.v_init,
        index_params=params,
        results=[s.scores for s in scored],
        timings=timings,
    )


def format_table2(results: Sequence[EmbeddingScores]) -> str:
    """Our metrics beside the paper's Table 2 (percent), as ``snnfast evaluate`` prints them."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:6.2f}"

    lines = [
        f"{'model':<10}{'class.':>8}{'top-1':>8}{'top-3':>8}{'mAP@10':>8}{'recall@10':>10}   "
        f"paper: class. / top-1 / top-3",
    ]
    for r in results:
        paper = PAPER_TABLE2.get(r.name)
        ref = " / ".join(f"{p:.2f}" for p in paper) if paper else "—"
        lines.append(
            f"{r.name:<10}{pct(r.classification):>8}{pct(r.top1):>8}{pct(r.top3):>8}"
            f"{pct(r.map_at_10):>8}{pct(r.recall_at_10):>10}   {ref}"
        )
    return "\n".join(lines)


def table2_section(study: Study, ref: ModelRef, outdir: Path) -> Table2:
    """Table 2 of ``ref``'s network, cached with its Fig 6 grid, which is copied to ``outdir``."""
    cfg = study.cfg
    key = {
        "model": ref.key,
        "timesteps": list(cfg.table2_timesteps),
        "n_train": cfg.table2_n_train,
        "n_test": cfg.table2_n_test,
        "calibration": [cfg.calibration_size, cfg.calibration_seed, "whole training set"],
        "recall_queries": cfg.recall_queries,
        "pipeline": "run_pipeline",
    }
    grid = study.cache.path("table2", key, ".fig6.png")
    entry = study.cache.get("table2", key)
    if entry is not None and (not grid.is_file() or file_digest(grid) != entry.get("fig6")):
        entry = None
    if entry is None:
        study.say(f"Table 2 with {ref.label} (run_pipeline)")
        result = run_pipeline(
            ref.path,
            timesteps=cfg.table2_timesteps,
            n_train=cfg.table2_n_train,
            n_test=cfg.table2_n_test,
            threads=cfg.threads,
            progress=study.progress,
            calibration_size=cfg.calibration_size,
            seed=cfg.calibration_seed,
            recall_queries=cfg.recall_queries,
            data_root=cfg.data_root,
            grid_path=grid,
            converted=study.converted(ref),
        )
        entry = {"table2": result.to_json(), "fig6": file_digest(grid)}
        study.cache.put("table2", key, entry)
        study.stats["computed"] += 1
    else:
        study.stats["reused"] += 1
    with atomic_write(outdir / FIGURES["fig6"]) as fh:
        fh.write(grid.read_bytes())
    study.step()
    try:
        return Table2.from_json(entry["table2"])
    except (KeyError, TypeError) as exc:  # pragma: no cover - the digest guards the entry
        raise ModelFormatError(f"cache entry of Table 2 is malformed: {exc}") from exc


def render_table2(t2: Table2) -> list[str]:
    """The report's Table 2 section."""
    lines = [
        "## Table 2: test accuracies (retrieval)",
        "",
        f"Model: `{Path(t2.model).name}` ({t2.arch}), corpus {t2.n_train} training "
        f"images, {t2.n_test} test queries, readout `{t2.readout}`, cosine HNSW index, "
        "`snnfast.paper.table2.run_pipeline` (Algorithm-1 calibration: "
        f"{t2.calibration['size']} images drawn from the whole training set). Percent; "
        "Δ = ours − paper (percentage points). mAP@10 and recall@10 (index vs exact search) "
        "are ours only.",
        "",
    ]
    rows = []
    for r in t2.results:
        paper = PAPER_TABLE2.get(r.name)
        cells = [r.name]
        for i, value in enumerate((r.classification, r.top1, r.top3)):
            p = None if paper is None else paper[i]
            o = None if value is None else 100 * value
            cells += [md.num(p), md.num(o), md.diff(o, p)]
        cells += [
            md.num(100 * r.map_at_10),
            md.num(None if r.recall_at_10 is None else 100 * r.recall_at_10),
        ]
        rows.append(cells)
    head = ["model"]
    for m in ("class.", "top-1", "top-3"):
        head += [f"{m} paper", f"{m} ours", "Δ"]
    head += ["mAP@10 ours", "recall@10 ours"]
    return lines + md.table(head, rows) + [""]
