"""The paper's Tables 3-5 and Figs 3 and 5: latency measured on this machine, the chip model's
latency, power and energy estimates, and the chip model beside the paper's Loihi measurements.

Measured here (:mod:`snnfast.latency`): the ANN in PyTorch and NumPy at batch 1 and a large
batch, the snnfast engine at batch 1 on one thread and a large batch on all threads. Estimated
(:mod:`snnfast.chip`): Loihi 1 latency, power and energy per image of the same converted network
that Table 2 scores. CPU energy comes from RAPL where readable, else it is left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import latency
from ..chip import EnergyReport, EnergySummary, core_map, estimate_network, map_network
from ..errors import ConfigError
from .config import FIGURES
from .published import PAPER_LOIHI
from .records import AnnTimings, EngineTimings, Hardware
from .study import ModelRef, Study

__all__ = ["compare_with_paper", "hardware_section", "plot_fig5"]


def compare_with_paper(reports: Sequence[EnergyReport | EnergySummary]) -> str:
    """A table of our estimates beside the paper's Loihi figures, for runs with T = 16 or 128.

    Raises:
        ConfigError: no report has a number of time steps the paper measured.
    """
    rows = [r for r in reports if r.timesteps in PAPER_LOIHI]
    if not rows:
        raise ConfigError(
            f"the paper measured T in {sorted(PAPER_LOIHI)}; got reports for T = "
            f"{[r.timesteps for r in reports]}"
        )
    head = f"{'T':>4}  {'quantity':<18}{'ours':>10}{'paper':>10}{'ours/paper':>12}"
    lines = [head]
    for r in rows:
        p = PAPER_LOIHI[r.timesteps]
        for name, ours, theirs, unit, scale in (
            ("latency", r.latency_s, p.latency_s, "ms", 1e3),
            ("static power", r.static_power_w, p.static_power_w, "W", 1.0),
            ("dynamic power", r.dynamic_power_w, p.dynamic_power_w, "W", 1.0),
            ("dynamic energy", r.dynamic_energy_j, p.dynamic_energy_j, "mJ", 1e3),
            ("total energy", r.total_energy_j, p.energy_j, "mJ", 1e3),
        ):
            lines.append(
                f"{r.timesteps:>4}  {name + ' (' + unit + ')':<18}{ours * scale:>10.4f}"
                f"{theirs * scale:>10.4f}{ours / theirs:>12.2f}"
            )
    return "\n".join(lines)


def hardware_section(study: Study, ref: ModelRef, outdir: Path) -> Hardware:
    """Tables 3-5 (cached) and Figs 3 and 5 of ``ref``'s network."""
    cfg = study.cfg
    model = study.converted(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # wide weights: reported via notes
        mapping = map_network(model.network)
    core_map(mapping, outdir / FIGURES["fig3"], title=f"{model.arch} on Loihi 1 cores")
    steps = sorted(set(cfg.timesteps) | set(cfg.table2_timesteps))
    machine = latency.machine_info()
    key = {
        "model": ref.key,
        **study.conversion_key,
        "steps": steps,
        "settings": [
            cfg.ann_large_batch,
            cfg.engine_large_batch,
            cfg.batch1_images,
            cfg.large_repeats,
            cfg.energy_images,
            cfg.threads,
        ],
        "machine": [machine.cpu_model, machine.usable_cpus],
    }

    def compute() -> dict[str, Any]:
        n_img = max(
            cfg.batch1_images, cfg.ann_large_batch, cfg.engine_large_batch, cfg.energy_images
        )
        images, _ = study.first("test", n_img)
        arch, state = ref.load()
        study.say("timing the ANN (PyTorch, NumPy)")
        b1 = cfg.batch1_images
        torch_1 = torch_large = torch_error = torch_threads = None
        try:
            torch_1 = latency.time_torch_ann(
                arch, state, images, 1, threads=cfg.threads, repeats=b1, warmup=10
            ).summary()
            torch_large = latency.time_torch_ann(
                arch,
                state,
                images,
                cfg.ann_large_batch,
                threads=cfg.threads,
                repeats=cfg.large_repeats,
                warmup=1,
            ).summary()
            torch_threads = cfg.threads or machine.usable_cpus
        except ImportError as exc:
            torch_error = f"PyTorch not available: {exc}"
        ann_timings = AnnTimings(
            numpy_1=latency.time_numpy_ann(arch, state, images, 1, repeats=b1, warmup=3).summary(),
            numpy_large=latency.time_numpy_ann(
                arch, state, images, cfg.ann_large_batch, repeats=cfg.large_repeats, warmup=0
            ).summary(),
            torch_1=torch_1,
            torch_large=torch_large,
            torch_error=torch_error,
        )
        net = model.network
        engine: dict[str, EngineTimings] = {}
        chip: dict[str, EnergySummary] = {}
        reports = []
        for T in steps:
            study.say(f"timing the engine and the chip model at T = {T}")
            run = model.settings.replace(timesteps=T)
            batch1 = latency.time_engine(
                net, images, run.replace(threads=1), 1, repeats=b1, warmup=3
            ).summary()
            large = None
            if T in cfg.table2_timesteps:
                large = latency.time_engine(
                    net,
                    images,
                    run.replace(threads=cfg.threads),
                    cfg.engine_large_batch,
                    repeats=cfg.large_repeats,
                    warmup=0,
                ).summary()
            engine[str(T)] = EngineTimings(batch1=batch1, large=large)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                _, rep = estimate_network(
                    net, images[: cfg.energy_images], run.replace(threads=cfg.threads)
                )
            chip[str(T)] = rep.summary()
            if T in PAPER_LOIHI:
                reports.append(rep)
        return Hardware(
            machine=machine,
            ann=ann_timings,
            engine=engine,
            chip=chip,
            compare_with_paper=compare_with_paper(reports) if reports else None,
            torch_threads=torch_threads,
        ).to_json()

    hw = Hardware.from_json(study.cached("hardware", key, compute))
    hw = replace(hw, mapping=mapping.summary())
    plot_fig5(hw, steps, outdir / FIGURES["fig5"], str(model.arch))
    study.step()
    return hw


def plot_fig5(hw: Hardware, steps: list[int], path: Path, arch: str) -> None:
    """Fig 5: runtime per image against T: the engine measured, the chip model, the paper."""
    from ..plots import runtime_vs_timesteps

    series = {
        "snnfast engine, this CPU, batch 1, 1 thread (measured)": (
            steps,
            [1e3 * hw.engine[str(T)].batch1.per_item_s for T in steps],
        ),
        "Loihi 1 chip model (estimated)": (
            steps,
            [1e3 * hw.chip[str(T)].latency_s for T in steps],
        ),
    }
    large = [T for T in steps if hw.engine[str(T)].large is not None]
    if large:
        series["snnfast engine, this CPU, large batch, all threads (per image)"] = (
            large,
            [1e3 * _large(hw, T).per_item_s for T in large],
        )
    paper = sorted(PAPER_LOIHI)
    runtime_vs_timesteps(
        path,
        series,
        {"Loihi (paper, measured)": (paper, [1e3 * PAPER_LOIHI[T].latency_s for T in paper])},
        title=f"{arch}: runtime per image",
    )


def _large(hw: Hardware, T: int) -> latency.MeasurementSummary:
    m = hw.engine[str(T)].large
    assert m is not None
    return m
