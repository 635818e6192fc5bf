"""``snnfast lowlatency``: near-lossless SNNs at 4 to 8 time steps, compared (beyond the paper).

:func:`lowlatency_report` evaluates :class:`snnfast.variants.Variant` s at several numbers of
time steps and writes the comparison (``lowlatency.md``, ``lowlatency.json``). The standard
variants (:func:`standard_variants`), each adding to the one before:

1. **faithful**: the paper (``ConversionConfig()``, ``v_init = 0``, membrane readout);
2. **+v_init 0.5**: every neuron starts at half its threshold, so a spike count rounds instead
   of truncating the integrated input;
3. **+round**: weights, biases and thresholds rounded instead of truncated;
4. **+threshold balancing**: thresholds set on the spiking network itself at the run's ``T``
   (``threshold_balancing="mse"``, see :mod:`snnfast.convert`);
5. **QCFS L=...**: an ANN trained with the QCFS activation (:mod:`snnfast.qcfs`), converted
   with its trained thresholds, ``v_init = 0.5`` and rounding;
6. **QCFS L=... + early exit**: the same, each image stopped once its output decision has been
   stable for ``k`` steps, ``k`` chosen on held-out training images
   (:func:`snnfast.variants.select_early_exit`).

Variants 2-6 read the embedding out as the integrated input (``"integrated"``).

Every figure is measured by the library's one evaluation path
(:func:`snnfast.evaluation.evaluate_model`): the training set is the corpus, the test set the
queries, cosine HNSW search, classification from the output spikes, calibration on a seeded
sample of the whole training set. The estimated Loihi energy and latency per inference come
from :func:`snnfast.chip.estimate_network` on the first ``energy_images`` test images; the
engine latency is the median batch-1 single-thread simulation time on this machine
(:func:`snnfast.latency.time_engine`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import _checks, ann, qcfs
from .._io import atomic_write
from ..chip import estimate_network
from ..convert import ConversionConfig, ConvertedModel
from ..data import load_fashion_mnist
from ..errors import ConfigError, ModelFormatError
from ..evaluation import (
    CALIBRATION_SIZE,
    calibration_images,
    calibration_indices,
    evaluate_model,
    recall_sample,
)
from ..latency import time_engine
from ..variants import (
    EARLY_EXIT_TOLERANCE,
    SNN_READOUTS,
    Variant,
    convert_variant,
    select_early_exit,
)
from .config import ReproduceConfig
from .lowlatency_report import render_lowlatency, short_row
from .records import (
    LowLatencyAnn,
    LowLatencyReport,
    LowLatencyRow,
    LowLatencySettings,
    ReadoutScores,
)
from .study import ModelRef, Study, file_key

__all__ = [
    "DEFAULT_TIMESTEPS",
    "REPORT_JSON",
    "REPORT_MD",
    "lowlatency_models",
    "lowlatency_report",
    "lowlatency_section",
    "standard_variants",
]

DEFAULT_TIMESTEPS = (4, 8, 16)
REPORT_MD = "lowlatency.md"
REPORT_JSON = "lowlatency.json"


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


def _steps(timesteps: Sequence[int] | int) -> list[int]:
    steps = [timesteps] if isinstance(timesteps, (int, np.integer)) else list(timesteps)
    if not steps:
        raise ConfigError("timesteps must name at least one number of time steps")
    return [_checks.positive_int(t, "timesteps", where="lowlatency_report") for t in steps]


def lowlatency_report(
    out_dir: str | os.PathLike[str],
    variants: Sequence[Variant] | None = None,
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    *,
    qcfs_models: Sequence[str | os.PathLike[str]] = (),
    base_model: str | os.PathLike[str] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    calibration_size: int = CALIBRATION_SIZE,
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
) -> LowLatencyReport:
    """Evaluate ``variants`` at each of ``timesteps`` and write ``lowlatency.md`` and
    ``lowlatency.json`` into ``out_dir`` (the JSON after every row, atomically).

    Args:
        out_dir: output directory.
        variants: default :func:`standard_variants` of ``qcfs_models`` and ``base_model``.
        timesteps: numbers of time steps to run.
        qcfs_models, base_model: model files of the default variants.
        n_train, n_test: first ``n`` training (corpus) / test (query) images (default all).
        calibration_size, seed: the calibration sample (:mod:`snnfast.evaluation`: from the
            whole training set); ``validation_size`` further corpus images, disjoint from it,
            choose the early-exit ``k``.
        energy_images: test images of the Loihi energy estimate.
        latency_repeats: batch-1 engine runs timed per row.
        index_params, recall_queries: as in :func:`snnfast.evaluation.score_embeddings` and
            :func:`snnfast.evaluation.recall_sample`.
        threads: engine and index threads (default all cores).
        progress: print a line per row.
        data_root: Fashion-MNIST directory.
        command: the command line to quote in the report.

    Returns:
        The document: ``settings``, ``ann`` (one row per model) and ``rows`` (one per variant
        and ``T``, each with the metrics of every readout).

    Raises:
        ConfigError: bad counts, no variants, or no corpus image left to choose early exit on.
    """
    t_start = time.perf_counter()
    steps = _steps(timesteps)
    chosen = standard_variants(qcfs_models, base_model) if variants is None else list(variants)
    if not chosen or any(not isinstance(v, Variant) for v in chosen):
        raise ConfigError("variants must be a non-empty sequence of Variant")
    where = "lowlatency_report"
    energy_images = _checks.positive_int(energy_images, "energy_images", where=where)
    latency_repeats = _checks.positive_int(latency_repeats, "latency_repeats", where=where)
    validation_size = _checks.positive_int(validation_size, "validation_size", where=where)
    out = Path(out_dir)
    x_all, y_all = load_fashion_mnist("train", root=data_root)
    n = x_all.shape[0] if n_train is None else _checks.positive_int(n_train, "n_train", where=where)
    x_train, y_train = x_all[:n], y_all[:n]
    x_test, y_test = load_fashion_mnist("test", root=data_root, limit=n_test)
    calib = calibration_indices(x_all.shape[0], calibration_size, seed)
    calib_images = calibration_images(x_all, calibration_size, seed)
    rest = np.setdiff1d(np.arange(x_train.shape[0]), calib)
    if rest.size == 0:
        raise ConfigError(
            f"{where}: the {x_train.shape[0]} corpus images are all calibration images; "
            "early exit needs others (raise n_train)"
        )
    rng = np.random.default_rng(seed + 1)
    val = np.sort(rng.choice(rest, size=min(validation_size, rest.size), replace=False))
    recall_ids = recall_sample(x_test.shape[0], recall_queries, seed)
    params = dict(index_params or {})
    n_energy = min(energy_images, x_test.shape[0])
    settings = LowLatencySettings(
        timesteps=steps,
        n_train=int(x_train.shape[0]),
        n_test=int(x_test.shape[0]),
        calibration_size=int(calib.size),
        validation_size=int(val.size),
        seed=seed,
        energy_images=n_energy,
        latency_repeats=latency_repeats,
        index_params=params,
        recall_queries=int(recall_ids.size),
        early_exit_tolerance=EARLY_EXIT_TOLERANCE,
        variants=[v.as_dict() for v in chosen],
        command=command,
    )
    anns: list[LowLatencyAnn] = []
    rows: list[LowLatencyRow] = []

    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    def save(doc: LowLatencyReport) -> None:
        with atomic_write(out / REPORT_JSON, "w") as fh:
            json.dump(doc.to_json(), fh, indent=1, allow_nan=False)

    def evaluate(model: ConvertedModel, readouts: tuple[str, ...], **kwargs: Any) -> list[Any]:
        return evaluate_model(
            model,
            x_train,
            y_train,
            x_test,
            y_test,
            recall_ids=recall_ids,
            index_params=params,
            progress=False,
            readouts=readouts,
            **kwargs,
        )

    seen_models: set[str] = set()
    for variant in chosen:
        for T in steps:
            t0 = time.perf_counter()
            model, spec = convert_variant(variant, calib_images, T)
            key = str(ann.SHIPPED_MODEL if variant.model is None else variant.model)
            if key not in seen_models:
                seen_models.add(key)
                (a,) = evaluate(
                    model,
                    (),
                    timesteps=(),
                    ann_spec=spec,
                    settings=model.settings.replace(threads=threads),
                )
                anns.append(
                    LowLatencyAnn(
                        model=key,
                        qcfs=None if spec is None else spec.metadata(),
                        classification=_fraction(a.scores.classification),
                        readouts={"ann": ReadoutScores.of(a.scores)},
                    )
                )
                say(f"ANN {key}: {short_row(anns[-1])}")
            k = (
                select_early_exit(model, x_train[val], y_train[val], T, threads=threads)
                if isinstance(variant.early_exit, str)  # "auto"
                else variant.early_exit
            )
            run = model.settings.replace(timesteps=T, threads=threads, early_exit=k)
            scored = {
                s.scores.readout: s.scores
                for s in evaluate(
                    model, SNN_READOUTS, timesteps=(T,), include_ann=False, settings=run
                )
            }
            _, rep = estimate_network(model.network, x_test[:n_energy], run)
            lat = time_engine(
                model.network,
                x_test,
                run.replace(threads=1),
                1,
                record=[model.embedding_layer, model.output_layer],
                repeats=latency_repeats,
                warmup=10,
                rapl_root=None,
            )
            q = scored[variant.readout]
            rules = list(model.calibration.threshold_rules)
            rows.append(
                LowLatencyRow(
                    variant=variant.name,
                    timesteps=T,
                    readout=variant.readout,
                    model=key,
                    model_id=model.model_id(),
                    early_exit=k if k is None else int(k),
                    v_init=run.v_init,
                    thresholds=model.thresholds,
                    threshold_rules=None if rules is None else list(rules),
                    mean_steps=float(T) if q.mean_steps is None else q.mean_steps,
                    classification=_fraction(q.classification),
                    readouts={r: ReadoutScores.of(s) for r, s in scored.items()},
                    loihi_energy_j=rep.total_energy_j,
                    loihi_dynamic_energy_j=rep.dynamic_energy_j,
                    loihi_latency_s=rep.latency_s,
                    loihi_mean_steps=float(rep.steps_per_image.mean()),
                    engine_latency_s=lat.per_item_s,
                    seconds=time.perf_counter() - t0,
                )
            )
            save(LowLatencyReport(settings, anns, rows))
            say(f"{variant.name} T={T}: {short_row(rows[-1])} ({rows[-1].seconds:.0f} s)")
    doc = LowLatencyReport(
        replace(settings, total_s=time.perf_counter() - t_start), list(anns), list(rows)
    )
    save(doc)
    with atomic_write(out / REPORT_MD, "w") as fh:
        fh.write(render_lowlatency(doc))
    return doc


def _fraction(x: float | None) -> float:
    assert x is not None  # scored with predictions
    return x


def lowlatency_models(cfg: ReproduceConfig) -> list[str]:
    """The QCFS model files of the study's low-latency section, each checked to be one."""
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


def lowlatency_section(
    study: Study, ref: ModelRef, models: list[str], outdir: Path
) -> LowLatencyReport | None:
    """The low-latency variants on Table 2's images (cached), or ``None`` when not run."""
    cfg = study.cfg
    if not cfg.lowlatency:
        return None
    key = {
        "base": ref.key,
        "qcfs": [file_key(Path(m)) for m in models],
        "timesteps": list(cfg.lowlatency_timesteps),
        "n_train": cfg.table2_n_train,
        "n_test": cfg.table2_n_test,
        "calibration": [cfg.calibration_size, cfg.calibration_seed, "whole training set"],
        "energy_images": cfg.energy_images,
        "latency_repeats": cfg.batch1_images,
        "recall_queries": cfg.recall_queries,
    }

    def compute() -> dict[str, Any]:
        study.say("low-latency variants")
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
            progress=study.progress,
            data_root=cfg.data_root,
            command=f"snnfast reproduce (configuration {cfg.name})",
        ).to_json()

    return LowLatencyReport.from_json(study.cached("lowlatency", key, compute))
