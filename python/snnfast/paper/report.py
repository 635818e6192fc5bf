"""The Markdown report of ``snnfast reproduce`` (``report.md``), from its results."""

from __future__ import annotations

from .config import FIGURES
from .hardware_report import render_fig3, render_fig5, render_hardware
from .lowlatency_report import render_lowlatency
from .published import CITATION
from .records import ReproduceResults
from .sweep import render_fig4
from .table1 import render_table1
from .table2 import render_table2

__all__ = ["render_report"]


def render_report(results: ReproduceResults) -> str:
    """The Markdown report of a :func:`~snnfast.paper.reproduce.reproduce` run
    (``ReproduceResults.from_json`` reads ``results.json``)."""
    cfg = results.config
    mach = results.hardware.machine
    lines = [
        "# snnfast reproduce: Liu et al. 2022 beside our numbers",
        "",
        f"Configuration **{cfg.name}**; snnfast {results.version}; written "
        f"{results.finished}; wall time {results.wall_s:.0f} s "
        f"({results.cache['trained']} network(s) trained, {results.cache['computed']} "
        f"result(s) computed, {results.cache['reused']} reused from the cache).",
        "",
        f"Paper: {CITATION}. Their numbers are copied verbatim; ours come from this run.",
        "",
        "## This machine",
        "",
        f"- CPU: {mach.cpu_model}; {mach.logical_cpus} logical CPU(s), "
        f"{mach.usable_cpus} usable, {mach.physical_cores or '?'} physical core(s); "
        f"{mach.memory_gib or '?'} GiB memory",
        f"- {mach.platform}; Python {mach.python}, NumPy {mach.numpy}, "
        f"PyTorch {mach.torch or 'not installed'}; OMP_WAIT_POLICY={mach.omp_wait_policy}",
        f"- RAPL energy counters: {'readable' if mach.rapl_readable else 'not readable here'}"
        f"; load average when measured: {mach.load_average}",
        "",
    ]
    if results.cuts:
        lines += [f"## What the {cfg.name} run leaves out (against the full run)", ""]
        lines += [f"- {c}" for c in results.cuts] + [""]
    lines += render_table1(results.table1, cfg)
    lines += render_table2(results.table2)
    lines += render_hardware(results.hardware, cfg)
    lines += render_fig3(results.hardware)
    lines += render_fig4(results.sweep, results.lowlatency is not None)
    lines += render_fig5(results.hardware)
    snn_name = results.table2.results[1].name
    lines += [
        "",
        "## Fig 6: retrieval examples",
        "",
        f"![Fig 6]({FIGURES['fig6']})",
        "",
        "One query per class (the first test image of the class), three random corpus images "
        f"of the same class, the ANN's top 3 and {snn_name}'s top 3 (Table 2's model).",
        "",
    ]
    if results.lowlatency is not None:
        lines += ["## Low-latency variants (beyond the paper)", ""]
        body = render_lowlatency(results.lowlatency).splitlines()[1:]  # without its title
        lines += [("#" + line) if line.startswith("## ") else line for line in body]
    return "\n".join(lines) + "\n"
