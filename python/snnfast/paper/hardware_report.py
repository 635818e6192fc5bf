"""The report's Tables 3-5 and its Fig 3 and Fig 5 sections (from a :class:`Hardware` section)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..latency import MeasurementSummary
from . import _markdown as md
from .config import FIGURES, ReproduceConfig
from .published import PAPER_LOIHI, PAPER_TABLE3, PAPER_TABLE4, PAPER_TABLE5
from .records import Hardware

__all__ = ["render_fig3", "render_fig5", "render_hardware"]

_XEON_1, _XEON_LARGE, _LOIHI_16, _LOIHI_128 = 0, 1, 10, 11  # rows of the paper's Tables 3-5


def _loihi_row(timesteps: int) -> int | None:
    return {16: _LOIHI_16, 128: _LOIHI_128}.get(timesteps)


def _measured_rows(
    hw: Hardware, cfg: ReproduceConfig
) -> list[tuple[str, int, str, MeasurementSummary, int | None]]:
    """Our measured rows: (model, batch, hardware, measurement, paper row or None)."""
    cpu = hw.machine.cpu_model
    threads = "?" if hw.torch_threads is None else hw.torch_threads
    big = cfg.ann_large_batch
    rows: list[tuple[str, int, str, MeasurementSummary, int | None]] = []
    a = hw.ann
    if a.torch_1 is not None and a.torch_large is not None:
        rows.append(("ANN (PyTorch)", 1, f"{cpu}, {threads} thread(s)", a.torch_1, _XEON_1))
        rows.append(
            ("ANN (PyTorch)", big, f"{cpu}, {threads} thread(s)", a.torch_large, _XEON_LARGE)
        )
    rows.append(("ANN (NumPy)", 1, cpu, a.numpy_1, _XEON_1))
    rows.append(("ANN (NumPy)", big, cpu, a.numpy_large, _XEON_LARGE))
    for T, e in sorted(hw.engine.items(), key=lambda kv: int(kv[0])):
        if e.large is None:
            continue
        ref = _loihi_row(int(T))
        rows.append((f"SNN ({T}) snnfast engine", 1, f"{cpu}, 1 thread", e.batch1, ref))
        rows.append(
            (
                f"SNN ({T}) snnfast engine",
                cfg.engine_large_batch,
                f"{cpu}, all threads",
                e.large,
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
    return f"{md.ratio(ours * scale, table[row][col])} (vs {model}, batch {batch}, {hardware})"


def render_hardware(hw: Hardware, cfg: ReproduceConfig) -> list[str]:
    """Tables 3, 4 and 5 beside the paper's, and the chip model against its measurements."""
    rapl = hw.machine.rapl_readable
    not_here = "not readable here"
    ours = _measured_rows(hw, cfg)
    chip = {int(T): c for T, c in hw.chip.items() if int(T) in PAPER_LOIHI}
    lines = [
        "## Table 3: inference latency",
        "",
        "Paper rows as published; ours measured on this machine (median of timed calls after "
        "warm-up; batch 1 cycles through real test images) and the Loihi 1 chip model's "
        f"estimate (mean over {cfg.energy_images} test images). Ratio: ours / the paper row "
        f"named. Load average while measuring: {hw.machine.load_average} on "
        f"{hw.machine.usable_cpus} usable CPU(s); on a shared machine our times are upper "
        "bounds.",
        "",
    ]
    rows = [["paper", m, str(b), name, md.paper(ms), ""] for m, b, name, ms in PAPER_TABLE3]
    for m, b, name, meas, i in ours:
        ms = 1e3 * meas.per_item_s
        rows.append(
            ["ours, measured", m, str(b), name, md.sig(ms), _against(ms, PAPER_TABLE3, i, 3)]
        )
    for T, c in sorted(chip.items()):
        ms = 1e3 * c.latency_s
        rows.append(
            [
                "ours, chip model",
                f"SNN ({T})",
                "1",
                "Loihi 1 (estimate)",
                md.sig(ms),
                _against(ms, PAPER_TABLE3, _loihi_row(T), 3),
            ]
        )
    lines += md.table(
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
        ["paper", m, str(b), name, md.paper(s), md.paper(d), md.paper(t), ""]
        for m, b, name, s, d, t in PAPER_TABLE4
    ]
    for m, b, name, meas, i in ours:
        p = meas.power_w
        rows.append(
            [
                "ours, measured",
                m,
                str(b),
                name,
                "—",
                "—",
                md.sig(p) if p is not None else not_here,
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
                md.sig(c.static_power_w),
                md.sig(c.dynamic_power_w),
                md.sig(c.total_power_w),
                _against(c.total_power_w, PAPER_TABLE4, _loihi_row(T), 5),
            ]
        )
    lines += md.table(
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
    ref16 = chip[16].total_energy_j if 16 in chip else None
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
        ["paper", m, str(b), name, md.paper(e), f"{md.paper(r)}×", ""]
        for m, b, name, e, r in PAPER_TABLE5
    ]
    for m, b, name, meas, i in ours:
        e = meas.energy_per_item_j
        rows.append(
            [
                "ours, measured",
                m,
                str(b),
                name,
                md.sig(e, 1e3) if e is not None else not_here,
                md.ratio(e, ref16),
                _against(e, PAPER_TABLE5, i, 3, 1e3),
            ]
        )
    for T, c in sorted(chip.items()):
        e = c.total_energy_j
        rows.append(
            [
                "ours, chip model",
                f"SNN ({T})",
                "1",
                "Loihi 1 (estimate)",
                md.sig(e, 1e3),
                md.ratio(e, ref16),
                _against(e, PAPER_TABLE5, _loihi_row(T), 3, 1e3),
            ]
        )
    lines += md.table(
        ["source", "model", "batch", "hardware", "mJ per example", "relative", "ours / paper"], rows
    )
    odd = [
        f"{m}, batch {b}, {h}: {md.paper(e)} mJ printed, {md.paper(t3[3])} ms × "
        f"{md.paper(t4[5])} W = {t3[3] * t4[5]:.3g} mJ"
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
    if hw.compare_with_paper:
        lines += [
            "",
            "Chip model against the paper's Loihi measurements "
            "(`snnfast.paper.hardware.compare_with_paper`):",
            "",
            "```",
            hw.compare_with_paper,
            "```",
        ]
    return lines + [""]


def render_fig3(hw: Hardware) -> list[str]:
    """The report's Fig 3 section: the core map and the mapping's table."""
    m = hw.mapping
    assert m is not None  # set by hardware_section
    return [
        "## Fig 3: the network on Loihi 1 cores",
        "",
        f"![Fig 3]({FIGURES['fig3']})",
        "",
        f"{m.n_cores} cores on {m.n_chips} chip(s); cores per layer (input first): "
        f"{m.cores_per_layer}.",
        "",
        "```",
        m.report,
        "```",
        "",
    ]


def render_fig5(hw: Hardware) -> list[str]:
    """The report's Fig 5 section: runtime per image against T."""
    steps = sorted(int(T) for T in hw.engine)
    lines = [
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
        chip_ms = 1e3 * hw.chip[str(T)].latency_s
        rows.append(
            [
                str(T),
                md.sig(1e3 * hw.engine[str(T)].batch1.per_item_s),
                md.sig(chip_ms),
                "—" if paper is None else md.paper(1e3 * paper.latency_s),
                md.ratio(chip_ms, None if paper is None else 1e3 * paper.latency_s),
            ]
        )
    return lines + md.table(
        ["T", "engine batch 1 (ms)", "chip model (ms)", "paper Loihi (ms)", "chip model / paper"],
        rows,
    )
