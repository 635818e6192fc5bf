"""The paper's Fig 4: classification, top-1 and top-3 against time steps, over independently
trained networks (mean and sample standard deviation), and the cached evaluations behind it
and behind Table 1's SNN column.

Each evaluation is cached per network and ``T`` (:meth:`Study.cached`), so a rerun computes
only the missing step counts, and those from one simulation of the longest
(:func:`snnfast.evaluation.evaluate_model`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import embed
from ..evaluation import EmbeddingScores, evaluate_model
from . import _markdown as md
from .config import FIGURES
from .records import MetricSummary, SeedSweep, SnnAccuracy, Sweep, SweepPoint
from .study import ModelRef, Study, trained

__all__ = ["METRICS", "classify", "evaluate_sweep", "plot_fig4", "render_fig4", "sweep_section"]

METRICS = (("classification", "classification"), ("top1", "top-1"), ("top3", "top-3"))
"""The metrics Fig 4 draws: (field, label)."""


def _classify_key(study: Study, ref: ModelRef, timesteps: int, n_test: int) -> dict[str, Any]:
    return {
        "model": ref.key,
        **study.conversion_key,
        "timesteps": timesteps,
        "n_test": n_test,
    }


def classify(study: Study, ref: ModelRef, timesteps: int, n_test: int | None) -> SnnAccuracy:
    """SNN classification accuracy on the first ``n_test`` test images (cached)."""
    xq, yq = study.first("test", n_test)

    def compute() -> dict[str, Any]:
        study.say(f"SNN classification of {ref.label} at T = {timesteps}")
        model = study.converted(ref)
        run = model.settings.replace(timesteps=timesteps, threads=study.cfg.threads)
        emb = embed(model, xq, settings=run, progress=study.progress)
        accuracy = float(np.mean(emb.predictions == yq))
        return SnnAccuracy(accuracy, int(xq.shape[0])).to_json()

    key = _classify_key(study, ref, timesteps, int(xq.shape[0]))
    return SnnAccuracy.from_json(study.cached("classify", key, compute))


def evaluate_sweep(
    study: Study,
    ref: ModelRef,
    timesteps: Sequence[int],
    n_train: int | None,
    n_test: int | None,
) -> list[SweepPoint]:
    """Retrieval figures of the ANN (``T = 0``) or the SNN's membrane embedding, for each ``T``
    of ``timesteps``, each cached; the missing ones from one evaluation."""
    xs, ys = study.first("train", n_train)
    xq, yq = study.first("test", n_test)

    def key(T: int) -> dict[str, Any]:
        return {
            "model": ref.key,
            **study.conversion_key,
            "timesteps": T,
            "readout": "ann" if T == 0 else "membrane",
            "n_train": int(xs.shape[0]),
            "n_test": int(xq.shape[0]),
            "k": 10,
        }

    found: dict[int, Any] = {T: study.cache.get("eval", key(T)) for T in timesteps}
    missing = [T for T in found if found[T] is None]
    study.stats["reused"] += len(found) - len(missing)
    if missing:
        t0 = time.perf_counter()
        model = study.converted(ref)
        snn = [T for T in missing if T]
        parts = ["ANN"] if 0 in missing else []
        if snn:
            parts.append(f"SNN(T) for T = {', '.join(map(str, snn))}")
        study.say(f"retrieval with {ref.label}, {' and '.join(parts)}")
        scored = evaluate_model(
            model,
            xs,
            ys,
            xq,
            yq,
            snn,
            ("membrane",),
            include_ann=0 in missing,
            settings=model.settings.replace(threads=study.cfg.threads),
            progress=study.progress,
        )
        for s in scored:
            point = _point(s.scores, int(xs.shape[0]), time.perf_counter() - t0)
            T = point.timesteps
            if T:  # Table 1's SNN column at this T comes for free
                assert point.classification is not None  # scored with predictions
                study.cache.put(
                    "classify",
                    _classify_key(study, ref, T, int(xq.shape[0])),
                    SnnAccuracy(point.classification, int(xq.shape[0])).to_json(),
                )
            value = point.to_json()
            study.cache.put("eval", key(T), value)
            study.stats["computed"] += 1
            found[T] = value
    return [SweepPoint.from_json(found[T]) for T in timesteps]


def _point(s: EmbeddingScores, n_train: int, seconds: float) -> SweepPoint:
    return SweepPoint(
        classification=s.classification,
        top1=s.top1,
        top3=s.top3,
        map_at_10=s.map_at_10,
        recall_at_10=s.recall_at_10,
        n_queries=s.n_queries,
        timesteps=s.timesteps,
        n_train=n_train,
        seconds=seconds,
    )


def sweep_section(study: Study) -> Sweep:
    """Fig 4: figures per seed and time step, then mean and sample std over seeds."""
    cfg = study.cfg
    per_seed = []
    for seed in cfg.seeds:
        ref = trained(study, cfg.sweep_arch, seed)
        points = evaluate_sweep(
            study, ref, (0, *cfg.timesteps), cfg.sweep_n_train, cfg.sweep_n_test
        )
        per_seed.append(SeedSweep(seed=seed, ann=points[0], snn=points[1:]))
        study.step()
    ddof = 1 if len(per_seed) > 1 else 0
    summary: dict[str, MetricSummary] = {}
    for metric, _ in (*METRICS, ("map_at_10", "mAP@10")):
        values = np.array(
            [[100 * getattr(p, metric) for p in e.snn] for e in per_seed], dtype=np.float64
        )
        ann_values = np.array([100 * getattr(e.ann, metric) for e in per_seed], dtype=np.float64)
        summary[metric] = MetricSummary(
            mean=values.mean(axis=0).tolist(),
            std=values.std(axis=0, ddof=ddof).tolist(),
            ann_mean=float(ann_values.mean()),
            ann_std=float(ann_values.std(ddof=ddof)),
        )
    first = per_seed[0].snn[0]
    return Sweep(
        arch=cfg.sweep_arch,
        seeds=list(cfg.seeds),
        timesteps=list(cfg.timesteps),
        n_train=first.n_train,
        n_test=first.n_queries,
        per_seed=per_seed,
        summary=summary,
    )


def plot_fig4(sweep: Sweep, path: Path) -> None:
    """Fig 4 of the sweep (PNG)."""
    from ..plots import metrics_vs_timesteps

    s = sweep.summary
    metrics_vs_timesteps(
        path,
        sweep.timesteps,
        {label: (s[m].mean, s[m].std) for m, label in METRICS},
        reference={label: s[m].ann_mean for m, label in METRICS},
        title=f"{sweep.arch}: mean ± std over {len(sweep.seeds)} network(s), "
        f"{sweep.n_train} corpus / {sweep.n_test} queries",
    )


def render_fig4(sweep: Sweep, lowlatency: bool) -> list[str]:
    """The report's Fig 4 section (with the low-latency variants' figure when they ran)."""
    lines = [
        "## Fig 4: accuracy against time steps",
        "",
        f"![Fig 4]({FIGURES['fig4']})",
        "",
        f"{sweep.arch}, {len(sweep.seeds)} independently trained network(s) "
        f"(seeds {', '.join(map(str, sweep.seeds))}), corpus {sweep.n_train} training "
        f"images, {sweep.n_test} test queries at every T; mean ± sample std in %. The paper "
        "shows this figure for 32-64-10 over five networks, as a plot only (no numbers).",
        "",
    ]
    s = sweep.summary
    keys = ("classification", "top1", "top3", "map_at_10")
    head = ["T", *(label for _, label in METRICS), "mAP@10"]
    rows = [
        [str(T), *(f"{s[k].mean[i]:.2f} ± {s[k].std[i]:.2f}" for k in keys)]
        for i, T in enumerate(sweep.timesteps)
    ]
    rows.append(["ANN", *(f"{s[k].ann_mean:.2f} ± {s[k].ann_std:.2f}" for k in keys)])
    lines += md.table(head, rows)
    if lowlatency:
        lines += [
            "",
            "### Fig 4 for the low-latency variants",
            "",
            f"![Fig 4, low-latency variants]({FIGURES['fig4_lowlatency']})",
            "",
            "Classification accuracy against T of each variant of the section *Low-latency "
            "variants* below (one network each; dashed: its ANN).",
        ]
    return lines
