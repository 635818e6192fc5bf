"""Near-lossless SNNs at 4 to 8 time steps: conversion variants, early exit and their report.

The paper's SNN (Algorithm 1, membrane readout) loses about 5 points at 16 steps. Each option
that closes the gap is a named option of the converter (:class:`snnfast.convert.ConversionConfig`),
the trainer (:class:`snnfast.train.Recipe`, QCFS: :mod:`snnfast.qcfs`), the embedding
(:data:`snnfast.embed.READOUTS`) or the run (``early_exit``); this module combines them into
:class:`Variant` s, evaluates them at several numbers of time steps and writes the comparison
(:func:`lowlatency_report`). The standard variants (:func:`standard_variants`), each adding to
the one before:

1. **faithful**: the paper (``ConversionConfig()``, ``v_init = 0``, membrane readout);
2. **+v_init 0.5**: every neuron starts at half its threshold, so a spike count rounds instead
   of truncating the integrated input;
3. **+round**: weights, biases and thresholds rounded instead of truncated;
4. **+threshold balancing**: thresholds set on the spiking network itself at the run's ``T``
   (``threshold_balancing="mse"``, see :mod:`snnfast.convert`);
5. **QCFS L=...**: an ANN trained with the QCFS activation (:mod:`snnfast.qcfs`), converted
   with its trained thresholds, ``v_init = 0.5`` and rounding;
6. **QCFS L=... + early exit**: the same, each image stopped once its output decision has been
   stable for ``k`` steps, ``k`` chosen on held-out training images (:func:`select_early_exit`).

Variants 2-6 read the embedding out as the integrated input (``"integrated"``): once neurons
start at half their threshold the final membrane potential is mostly the rounding residue of
the input, not the input itself, and the membrane readout stops carrying the image.

Every figure is measured as in :func:`snnfast.pipeline.run_pipeline`: the training set is the
corpus, the test set the queries, cosine HNSW search, classification from the output spikes.
The estimated Loihi energy and latency per inference come from :func:`snnfast.energy
.estimate_network` on the first ``energy_images`` test images; the engine latency is the median
batch-1 single-thread simulation time on this machine (:func:`snnfast.latency.time_engine`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import ann, qcfs
from ._io import atomic_write
from .convert import ConversionConfig, ConvertedModel, convert
from .data import load_fashion_mnist
from .embed import READOUTS, Embeddings, embed_readouts, predict_from_output
from .energy import PAPER_LOIHI, estimate_network
from .errors import ConfigError
from .latency import time_engine
from .pipeline import _score, calibration_indices
from .retrieval import IndexMeta

__all__ = [
    "DEFAULT_TIMESTEPS",
    "SNN_READOUTS",
    "Variant",
    "ann_embeddings",
    "convert_variant",
    "lowlatency_report",
    "plot_variants",
    "render_lowlatency",
    "select_early_exit",
    "standard_variants",
]

DEFAULT_TIMESTEPS = (4, 8, 16)
SNN_READOUTS = tuple(r for r in READOUTS if r != "ann")
EARLY_EXIT_TOLERANCE = 0.0025
"""Largest drop in validation accuracy :func:`select_early_exit` accepts (0.25 points)."""
REPORT_MD = "lowlatency.md"
REPORT_JSON = "lowlatency.json"
PAPER_SNN16_ACCURACY = 0.8505
"""The paper's SNN accuracy at 16 steps (Table 2)."""


@dataclass(frozen=True)
class Variant:
    """One way to build and run the SNN.

    Attributes:
        name: its label in the report.
        config: conversion options. With threshold balancing on, ``balance_timesteps`` is set
            to each evaluated ``T``, so every ``T`` is calibrated for itself.
        model: ANN model file (``None``: :data:`snnfast.ann.SHIPPED_MODEL`). The thresholds of
            a QCFS-trained model (:func:`snnfast.qcfs.load`) are used in the conversion.
        readout: the embedding readout of the report's main table (every readout in
            :data:`SNN_READOUTS` is measured).
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
        if not isinstance(self.config, ConversionConfig):
            raise ConfigError(f"variant {self.name!r}: config must be a ConversionConfig")
        if self.readout not in SNN_READOUTS:
            raise ConfigError(
                f"variant {self.name!r}: readout must be one of {SNN_READOUTS}, "
                f"got {self.readout!r}"
            )
        ee = self.early_exit
        if not (
            ee is None
            or ee == "auto"
            or (isinstance(ee, (int, np.integer)) and not isinstance(ee, bool) and ee >= 1)
        ):
            raise ConfigError(
                f"variant {self.name!r}: early_exit must be None, 'auto' or a "
                f"positive integer, got {ee!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "config": asdict(self.config),
            "model": self.model,
            "readout": self.readout,
            "early_exit": self.early_exit,
        }


def standard_variants(
    qcfs_models: Sequence[str | os.PathLike[str]] = (),
    base_model: str | os.PathLike[str] | None = None,
) -> list[Variant]:
    """The variants of the module docstring: four conversions of ``base_model`` (a ReLU ANN;
    default the shipped one), then two rows (plain, early exit) per QCFS-trained model."""
    faithful = ConversionConfig()
    half = replace(faithful, v_init=0.5)
    rounded = replace(half, rounding="round")
    base = None if base_model is None else str(base_model)
    out = [
        Variant("faithful", faithful, base),
        Variant("+v_init 0.5", half, base, "integrated"),
        Variant("+round", rounded, base, "integrated"),
        Variant(
            "+threshold balancing", replace(rounded, threshold_balancing="mse"), base, "integrated"
        ),
    ]
    for path in qcfs_models:
        _, _, spec, _ = qcfs.load(path)
        if spec is None:
            raise ConfigError(f"{path} is not a QCFS-trained model (no 'qcfs' metadata)")
        label = f"QCFS L={spec.levels}"
        out.append(Variant(label, rounded, str(path), "integrated"))
        out.append(Variant(f"{label} + early exit", rounded, str(path), "integrated", "auto"))
    return out


def convert_variant(
    variant: Variant, calibration_images: np.ndarray, timesteps: int
) -> tuple[ConvertedModel, qcfs.QCFSSpec | None]:
    """Convert ``variant``'s model for runs of ``timesteps`` steps; also return its QCFS spec."""
    arch, state, spec, _ = qcfs.load(variant.model)
    cfg = variant.config
    if cfg.threshold_balancing != "none":
        cfg = replace(cfg, balance_timesteps=int(timesteps))
    model = convert(
        state,
        arch,
        calibration_images=calibration_images,
        config=cfg,
        activation_scales=None if spec is None else spec.scales,
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

    Runs use :attr:`ConvertedModel.run_settings`. Pass images the model will not be scored on.
    """
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance!r}")
    net = converted.network
    out = converted.output_layer
    settings = converted.run_settings

    def accuracy(k: int | None) -> float:
        res = net.run(images, timesteps, threads=threads, record=[out], early_exit=k, **settings)
        counts, membrane = res.spike_counts[out], res.membrane[out]
        assert counts is not None and membrane is not None  # recorded
        pred = predict_from_output(counts, membrane)
        return float(np.mean(pred == labels))

    full = accuracy(None)
    for k in range(1, int(timesteps)):
        if accuracy(k) >= full - tolerance:
            return k
    return None


def ann_embeddings(
    arch: ann.Architecture,
    state: dict[str, np.ndarray],
    spec: qcfs.QCFSSpec | None,
    images: np.ndarray,
    model_id: str,
) -> Embeddings:
    """The ANN's embedding (the layer before the output) and predictions; a QCFS-trained
    network runs with its quantised activations (:func:`snnfast.qcfs.forward`)."""
    emb, last = arch.embedding_layer, len(arch.layers) - 1
    vectors, predictions = [], []
    for start in range(0, images.shape[0], 1000):
        batch = images[start : start + 1000]
        if spec is None:
            acts = ann.forward(arch, state, batch)
            e, logits = acts[emb], acts[last]
        else:
            e, logits = qcfs.forward(arch, state, spec, batch, [emb, last])
        vectors.append(e.reshape(e.shape[0], -1))
        predictions.append(logits.argmax(axis=1))
    v = np.concatenate(vectors).astype(np.float32)
    return Embeddings(
        v, np.concatenate(predictions).astype(np.int64), IndexMeta(model_id, "ann", 0, v.shape[1])
    )


def _steps(timesteps: Sequence[int]) -> list[int]:
    steps = [timesteps] if isinstance(timesteps, (int, np.integer)) else list(timesteps)
    if not steps or any(
        isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in steps
    ):
        raise ConfigError(f"timesteps must be positive integers, got {timesteps!r}")
    return [int(t) for t in steps]


def lowlatency_report(
    out_dir: str | os.PathLike[str],
    variants: Sequence[Variant] | None = None,
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    *,
    qcfs_models: Sequence[str | os.PathLike[str]] = (),
    base_model: str | os.PathLike[str] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    calibration_size: int = 1000,
    validation_size: int = 5000,
    seed: int = 0,
    energy_images: int = 2000,
    latency_repeats: int = 200,
    index_params: dict[str, int] | None = None,
    recall_queries: int = 500,
    threads: int | None = None,
    progress: bool = True,
    data_root: str | os.PathLike[str] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``variants`` at each of ``timesteps`` and write ``lowlatency.md`` and
    ``lowlatency.json`` into ``out_dir`` (the JSON after every row, atomically).

    Args:
        out_dir: output directory.
        variants: default :func:`standard_variants` of ``qcfs_models`` and ``base_model``.
        timesteps: numbers of time steps to run.
        qcfs_models, base_model: model files of the default variants.
        n_train, n_test: first ``n`` training (corpus) / test (query) images (default all).
        calibration_size, seed: the calibration sample (as in :func:`snnfast.pipeline.
            calibration_indices`); ``validation_size`` further training images, disjoint from
            it, choose the early-exit ``k``.
        energy_images: test images of the Loihi energy estimate.
        latency_repeats: batch-1 engine runs timed per row.
        index_params, recall_queries: as in :func:`snnfast.pipeline.run_pipeline`.
        threads: engine and index threads (default all cores).
        progress: print a line per row and show progress bars.
        data_root: Fashion-MNIST directory.
        command: the command line to quote in the report.

    Returns:
        The JSON document: ``settings``, ``ann`` (one row per model) and ``rows`` (one per
        variant and ``T``, each with the metrics of every readout).
    """
    t_start = time.perf_counter()
    steps = _steps(timesteps)
    chosen = standard_variants(qcfs_models, base_model) if variants is None else list(variants)
    if not chosen or any(not isinstance(v, Variant) for v in chosen):
        raise ConfigError("variants must be a non-empty sequence of Variant")
    out = Path(out_dir)
    x_train, y_train = load_fashion_mnist("train", root=data_root, limit=n_train)
    x_test, y_test = load_fashion_mnist("test", root=data_root, limit=n_test)
    calib = calibration_indices(x_train.shape[0], calibration_size, seed)
    rest = np.setdiff1d(np.arange(x_train.shape[0]), calib)
    rng = np.random.default_rng(seed + 1)
    val = np.sort(rng.choice(rest, size=min(validation_size, rest.size), replace=False))
    n_recall = min(int(recall_queries), x_test.shape[0])
    recall_ids = np.sort(
        np.random.default_rng(seed).choice(x_test.shape[0], n_recall, replace=False)
    )
    params = dict(index_params or {})
    n_energy = min(int(energy_images), x_test.shape[0])
    doc: dict[str, Any] = {
        "settings": {
            "timesteps": steps,
            "n_train": int(x_train.shape[0]),
            "n_test": int(x_test.shape[0]),
            "calibration_size": int(calib.size),
            "validation_size": int(val.size),
            "seed": seed,
            "energy_images": n_energy,
            "latency_repeats": latency_repeats,
            "index_params": params,
            "recall_queries": n_recall,
            "early_exit_tolerance": EARLY_EXIT_TOLERANCE,
            "variants": [v.as_dict() for v in chosen],
            "command": command,
        },
        "ann": [],
        "rows": [],
    }

    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / REPORT_JSON, "w") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False)

    seen_models: set[str] = set()
    for variant in chosen:
        for T in steps:
            t0 = time.perf_counter()
            model, spec = convert_variant(variant, x_train[calib], T)
            key = str(ann.SHIPPED_MODEL if variant.model is None else variant.model)
            if key not in seen_models:
                seen_models.add(key)
                doc["ann"].append(
                    _ann_row(
                        key,
                        model,
                        spec,
                        x_train,
                        y_train,
                        x_test,
                        y_test,
                        recall_ids,
                        params,
                        threads,
                    )
                )
                say(f"ANN {key}: {_short(doc['ann'][-1])}")
            k = (
                select_early_exit(model, x_train[val], y_train[val], T, threads=threads)
                if isinstance(variant.early_exit, str)  # "auto"
                else variant.early_exit
            )
            run = {
                "timesteps": T,
                "threads": threads,
                "progress": False,
                "early_exit": k,
                **model.run_settings,
            }
            corpus = embed_readouts(model, x_train, SNN_READOUTS, **run)
            queries = embed_readouts(model, x_test, SNN_READOUTS, **run)
            metrics = {}
            for r in SNN_READOUTS:
                figures, _ = _score(
                    corpus[r], queries[r], y_train, y_test, recall_ids, params, threads
                )
                metrics[r] = {m: figures[m] for m in ("top1", "top3", "map_at_10", "recall_at_10")}
            del corpus
            settings = model.run_settings
            _, rep = estimate_network(
                model.network, x_test[:n_energy], T, threads=threads, early_exit=k, **settings
            )
            lat = time_engine(
                model.network,
                x_test,
                T,
                batch_size=1,
                threads=1,
                record=[model.embedding_layer, model.output_layer],
                repeats=latency_repeats,
                warmup=10,
                rapl_root=None,
                early_exit=k,
                **settings,
            )
            q = queries[variant.readout]
            doc["rows"].append(
                {
                    "variant": variant.name,
                    "timesteps": T,
                    "readout": variant.readout,
                    "model": key,
                    "model_id": model.model_id(),
                    "early_exit": k,
                    "v_init": settings["v_init"],
                    "thresholds": model.thresholds,
                    "threshold_rules": model.calibration.get("threshold_rules"),
                    "mean_steps": float(np.mean(q.steps)) if q.steps is not None else float(T),
                    "classification": float(np.mean(q.predictions == y_test)),
                    "readouts": metrics,
                    "loihi_energy_j": rep.total_energy_j,
                    "loihi_dynamic_energy_j": rep.dynamic_energy_j,
                    "loihi_latency_s": rep.latency_s,
                    "loihi_mean_steps": float(rep.steps_per_image.mean()),
                    "engine_latency_s": lat.per_item_s,
                    "seconds": time.perf_counter() - t0,
                }
            )
            save()
            say(
                f"{variant.name} T={T}: {_short(doc['rows'][-1])} "
                f"({doc['rows'][-1]['seconds']:.0f} s)"
            )
    doc["settings"]["total_s"] = time.perf_counter() - t_start
    save()
    with atomic_write(out / REPORT_MD, "w") as fh:
        fh.write(render_lowlatency(doc))
    return doc


def _ann_row(
    key: str,
    model: ConvertedModel,
    spec: qcfs.QCFSSpec | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    recall_ids: np.ndarray,
    params: dict[str, int],
    threads: int | None,
) -> dict[str, Any]:
    mid = model.model_id()
    corpus = ann_embeddings(model.arch, dict(model.ann_state), spec, x_train, mid)
    queries = ann_embeddings(model.arch, dict(model.ann_state), spec, x_test, mid)
    figures, _ = _score(corpus, queries, y_train, y_test, recall_ids, params, threads)
    return {
        "model": key,
        "qcfs": None if spec is None else spec.metadata(),
        "classification": figures["classification"],
        "readouts": {"ann": {m: figures[m] for m in ("top1", "top3", "map_at_10", "recall_at_10")}},
    }


def plot_variants(
    doc: dict[str, Any], path: str | os.PathLike[str], metric: str = "classification"
) -> None:
    """Fig 4 for the variants: ``metric`` (``"classification"``, or a figure of the main
    readout: ``"top1"``, ``"top3"``, ``"map_at_10"``) against T, one line per variant, with
    its ANN's value dashed in the same colour."""
    from .plots import metrics_vs_timesteps

    steps = list(doc["settings"]["timesteps"])
    ann_by_model = {a["model"]: a for a in doc["ann"]}
    series: dict[str, tuple[list[float], list[float]]] = {}
    reference: dict[str, float] = {}
    drawn: set[str] = set()
    for name in dict.fromkeys(row["variant"] for row in doc["rows"]):
        rows = {row["timesteps"]: row for row in doc["rows"] if row["variant"] == name}
        if any(T not in rows for T in steps):
            continue
        values = [100 * _figure(rows[T], metric) for T in steps]
        series[name] = (values, [0.0] * len(steps))
        model = rows[steps[0]]["model"]
        if model not in drawn:  # one dashed line per ANN, in its first variant's colour
            drawn.add(model)
            reference[name] = 100 * _figure(ann_by_model[model], metric)
    if not series:
        raise ConfigError("the document has no variant with a row at every T")
    labels = {
        "classification": "classification",
        "top1": "top-1",
        "top3": "top-3",
        "map_at_10": "mAP@10",
    }
    metrics_vs_timesteps(
        path,
        steps,
        series,
        reference=reference,
        title=f"{labels.get(metric, metric)} against T (dashed: the ANN)",
    )


def _figure(row: dict[str, Any], metric: str) -> float:
    if metric == "classification":
        return float(row["classification"])
    readout = row.get("readout", "ann")
    return float(row["readouts"][readout][metric])


def _short(row: dict[str, Any]) -> str:
    r = row["readouts"].get(row.get("readout", "ann"))
    text = f"acc {100 * row['classification']:.2f}"
    if r is not None:
        text += f", top-1 {100 * r['top1']:.2f}, top-3 {100 * r['top3']:.2f}"
    if "loihi_energy_j" in row:
        text += f", {row['mean_steps']:.2f} steps, {row['loihi_energy_j'] * 1e3:.3f} mJ"
    return text


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def render_lowlatency(doc: dict[str, Any]) -> str:
    """The Markdown report of a :func:`lowlatency_report` document."""
    s = doc["settings"]
    paper = PAPER_LOIHI[16]
    lines = [
        "# Low-latency SNN: accuracy, retrieval and energy at few time steps",
        "",
        f"`32-64-10`-family models; corpus {s['n_train']} training images, queries "
        f"{s['n_test']} test images; calibration {s['calibration_size']} training images "
        f"(seed {s['seed']}); early-exit `k` chosen on {s['validation_size']} other training "
        f"images (largest accuracy drop {100 * s['early_exit_tolerance']:.2f} points). Loihi "
        f"energy and latency per inference are estimates (`snnfast.energy`) over the first "
        f"{s['energy_images']} test images; engine latency is the median batch-1, one-thread "
        f"simulation time per image on this machine ({s['latency_repeats']} runs).",
        "",
    ]
    if s.get("command"):
        lines += ["Produced by:", "", "```", s["command"], "```", ""]
    lines += [
        "## Variants",
        "",
        "| variant | T | readout | early exit k | mean steps | classification % | top-1 % "
        "| top-3 % | mAP@10 % | engine latency ms | Loihi latency ms | Loihi energy mJ |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in doc["rows"]:
        r = row["readouts"][row["readout"]]
        lines.append(
            f"| {row['variant']} | {row['timesteps']} | {row['readout']} | "
            f"{'-' if row['early_exit'] is None else row['early_exit']} | "
            f"{row['mean_steps']:.2f} | {_pct(row['classification'])} | {_pct(r['top1'])} | "
            f"{_pct(r['top3'])} | {_pct(r['map_at_10'])} | "
            f"{row['engine_latency_s'] * 1e3:.3f} | {row['loihi_latency_s'] * 1e3:.3f} | "
            f"{row['loihi_energy_j'] * 1e3:.3f} |"
        )
    lines += [
        "",
        f"Paper, Loihi SNN(16): {100 * PAPER_SNN16_ACCURACY:.2f} % classification, "
        f"{paper.latency_s * 1e3:.3f} ms and {paper.energy_j * 1e3:.3f} mJ per image.",
        "",
        "## The ANNs",
        "",
        "| model | QCFS | classification % | top-1 % | top-3 % | mAP@10 % |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for a in doc["ann"]:
        q = a["qcfs"]
        label = (
            "-"
            if q is None
            else f"L={q['levels']}"
            + (f", input {q['input_levels']} levels" if q.get("input_levels") else "")
        )
        r = a["readouts"]["ann"]
        lines.append(
            f"| `{Path(a['model']).name}` | {label} | {_pct(a['classification'])} | "
            f"{_pct(r['top1'])} | {_pct(r['top3'])} | {_pct(r['map_at_10'])} |"
        )
    lines += [
        "",
        "## Readouts side by side (top-1 / top-3 / mAP@10, %)",
        "",
        "| variant | T | " + " | ".join(SNN_READOUTS) + " |",
        "|---|---:|" + "---|" * len(SNN_READOUTS),
    ]
    for row in doc["rows"]:
        cells = [
            " / ".join(_pct(row["readouts"][r][m]) for m in ("top1", "top3", "map_at_10"))
            for r in SNN_READOUTS
        ]
        lines.append(f"| {row['variant']} | {row['timesteps']} | " + " | ".join(cells) + " |")
    lines += ["", *_render_goals(doc)]
    return "\n".join(lines) + "\n"


def _render_goals(doc: dict[str, Any]) -> list[str]:
    """Each variant against the issue's goals, where its rows have the T a goal needs."""
    ann_acc = {a["model"]: a["classification"] for a in doc["ann"]}
    paper = PAPER_LOIHI[16]
    lines = [
        "## Goals",
        "",
        "Gaps are to the variant's own ANN. Goals: T = 8 within 1 point of the ANN, top-1 >= "
        "87.5 %, top-3 >= 94.5 %, energy below the paper's SNN(16) "
        f"{paper.energy_j * 1e3:.3f} mJ with accuracy above its {100 * PAPER_SNN16_ACCURACY:.2f}"
        " %; T = 4 within 2 points of the ANN.",
        "",
        "| variant | gap T=8 (pts) | top-1 T=8 % | top-3 T=8 % | energy T=8 mJ | gap T=4 (pts) "
        "| all met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    names = list(dict.fromkeys(row["variant"] for row in doc["rows"]))
    for name in names:
        by_t = {row["timesteps"]: row for row in doc["rows"] if row["variant"] == name}
        if 8 not in by_t or 4 not in by_t:
            continue
        r8, r4 = by_t[8], by_t[4]
        ref = ann_acc[r8["model"]]
        gap8 = 100 * (ref - r8["classification"])
        gap4 = 100 * (ref - r4["classification"])
        m8 = r8["readouts"][r8["readout"]]
        ok = (
            gap8 <= 1.0
            and gap4 <= 2.0
            and m8["top1"] >= 0.875
            and m8["top3"] >= 0.945
            and r8["loihi_energy_j"] < paper.energy_j
            and r8["classification"] > PAPER_SNN16_ACCURACY
        )
        lines.append(
            f"| {name} | {gap8:.2f} | {_pct(m8['top1'])} | {_pct(m8['top3'])} | "
            f"{r8['loihi_energy_j'] * 1e3:.3f} | {gap4:.2f} | "
            f"{'yes' if ok else 'no'} |"
        )
    return lines
