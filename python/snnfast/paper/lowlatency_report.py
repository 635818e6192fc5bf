"""The low-latency study's Markdown report and its Fig 4 (from a :class:`LowLatencyReport`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..variants import SNN_READOUTS
from ._markdown import pct
from .published import PAPER_LOIHI, PAPER_SNN16_ACCURACY
from .records import LowLatencyAnn, LowLatencyReport, LowLatencyRow

__all__ = ["plot_variants", "render_lowlatency", "short_row"]


def _figure(row: LowLatencyRow | LowLatencyAnn, metric: str) -> float:
    if metric == "classification":
        return float(row.classification)
    readout = row.readout if isinstance(row, LowLatencyRow) else "ann"
    return float(getattr(row.readouts[readout], metric))


def plot_variants(
    doc: LowLatencyReport, path: str | os.PathLike[str], metric: str = "classification"
) -> None:
    """Fig 4 for the variants: ``metric`` (``"classification"``, or a figure of the main
    readout: ``"top1"``, ``"top3"``, ``"map_at_10"``) against T, one line per variant, with
    its ANN's value dashed in the same colour.

    Raises:
        ConfigError: no variant has a row at every T of the study.
    """
    from ..plots import metrics_vs_timesteps

    steps = list(doc.settings.timesteps)
    ann_by_model = {a.model: a for a in doc.ann}
    series: dict[str, tuple[list[float], list[float]]] = {}
    reference: dict[str, float] = {}
    drawn: set[str] = set()
    for name in dict.fromkeys(row.variant for row in doc.rows):
        rows = {row.timesteps: row for row in doc.rows if row.variant == name}
        if any(T not in rows for T in steps):
            continue
        values = [100 * _figure(rows[T], metric) for T in steps]
        series[name] = (values, [0.0] * len(steps))
        model = rows[steps[0]].model
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


def short_row(row: LowLatencyRow | LowLatencyAnn) -> str:
    """One line of progress for a row."""
    readout = row.readout if isinstance(row, LowLatencyRow) else "ann"
    r = row.readouts.get(readout)
    text = f"acc {100 * row.classification:.2f}"
    if r is not None:
        text += f", top-1 {100 * r.top1:.2f}, top-3 {100 * r.top3:.2f}"
    if isinstance(row, LowLatencyRow):
        text += f", {row.mean_steps:.2f} steps, {row.loihi_energy_j * 1e3:.3f} mJ"
    return text


def render_lowlatency(doc: LowLatencyReport) -> str:
    """The Markdown report of a :func:`~snnfast.paper.lowlatency.lowlatency_report` document."""
    s = doc.settings
    paper = PAPER_LOIHI[16]
    lines = [
        "# Low-latency SNN: accuracy, retrieval and energy at few time steps",
        "",
        f"`32-64-10`-family models; corpus {s.n_train} training images, queries "
        f"{s.n_test} test images; calibration {s.calibration_size} training images "
        f"(seed {s.seed}); early-exit `k` chosen on {s.validation_size} other training "
        f"images (largest accuracy drop {100 * s.early_exit_tolerance:.2f} points). Loihi "
        f"energy and latency per inference are estimates (`snnfast.chip`) over the first "
        f"{s.energy_images} test images; engine latency is the median batch-1, one-thread "
        f"simulation time per image on this machine ({s.latency_repeats} runs).",
        "",
    ]
    if s.command:
        lines += ["Produced by:", "", "```", s.command, "```", ""]
    lines += [
        "## Variants",
        "",
        "| variant | T | readout | early exit k | mean steps | classification % | top-1 % "
        "| top-3 % | mAP@10 % | engine latency ms | Loihi latency ms | Loihi energy mJ |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in doc.rows:
        r = row.readouts[row.readout]
        lines.append(
            f"| {row.variant} | {row.timesteps} | {row.readout} | "
            f"{'-' if row.early_exit is None else row.early_exit} | "
            f"{row.mean_steps:.2f} | {pct(row.classification)} | {pct(r.top1)} | "
            f"{pct(r.top3)} | {pct(r.map_at_10)} | "
            f"{row.engine_latency_s * 1e3:.3f} | {row.loihi_latency_s * 1e3:.3f} | "
            f"{row.loihi_energy_j * 1e3:.3f} |"
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
    for a in doc.ann:
        q = a.qcfs
        label = (
            "-"
            if q is None
            else f"L={q['levels']}"
            + (f", input {q['input_levels']} levels" if q.get("input_levels") else "")
        )
        r = a.readouts["ann"]
        lines.append(
            f"| `{Path(a.model).name}` | {label} | {pct(a.classification)} | "
            f"{pct(r.top1)} | {pct(r.top3)} | {pct(r.map_at_10)} |"
        )
    lines += [
        "",
        "## Readouts side by side (top-1 / top-3 / mAP@10, %)",
        "",
        "| variant | T | " + " | ".join(SNN_READOUTS) + " |",
        "|---|---:|" + "---|" * len(SNN_READOUTS),
    ]
    for row in doc.rows:
        cells = [
            " / ".join(pct(getattr(row.readouts[r], m)) for m in ("top1", "top3", "map_at_10"))
            for r in SNN_READOUTS
        ]
        lines.append(f"| {row.variant} | {row.timesteps} | " + " | ".join(cells) + " |")
    lines += ["", *_render_goals(doc)]
    return "\n".join(lines) + "\n"


def _render_goals(doc: LowLatencyReport) -> list[str]:
    """Each variant against the low-latency goals, where its rows have the T a goal needs."""
    ann_acc = {a.model: a.classification for a in doc.ann}
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
    names = list(dict.fromkeys(row.variant for row in doc.rows))
    for name in names:
        by_t = {row.timesteps: row for row in doc.rows if row.variant == name}
        if 8 not in by_t or 4 not in by_t:
            continue
        r8, r4 = by_t[8], by_t[4]
        ref = ann_acc[r8.model]
        gap8 = 100 * (ref - r8.classification)
        gap4 = 100 * (ref - r4.classification)
        m8 = r8.readouts[r8.readout]
        ok = (
            gap8 <= 1.0
            and gap4 <= 2.0
            and m8.top1 >= 0.875
            and m8.top3 >= 0.945
            and r8.loihi_energy_j < paper.energy_j
            and r8.classification > PAPER_SNN16_ACCURACY
        )
        lines.append(
            f"| {name} | {gap8:.2f} | {pct(m8.top1)} | {pct(m8.top3)} | "
            f"{r8.loihi_energy_j * 1e3:.3f} | {gap4:.2f} | "
            f"{'yes' if ok else 'no'} |"
        )
    return lines
