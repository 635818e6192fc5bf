"""``snnfast reproduce OUTDIR``: the paper's Tables 1-5 and Figs 3-6, with our numbers beside them.

:func:`reproduce` writes ``OUTDIR/report.md`` (every number of the paper next to ours and the
difference), ``OUTDIR/results.json`` (the same, machine-readable: :class:`ReproduceResults`)
and the PNGs of :data:`~snnfast.paper.config.FIGURES`:

- **Table 1** (:mod:`snnfast.paper.table1`): the twelve architectures trained with
  :func:`snnfast.train.train`, converted with Algorithm 1 and simulated; ANN train / validation
  / test accuracy and SNN test accuracy at ``table1_timesteps`` (128 by default: the paper's
  SNN column for ``32-64-10``, 90.01 %, is its Table 2 SNN(128) figure), and deployability on
  one Loihi 1 chip, with the reason where a network does not fit.
- **Table 2** (:mod:`snnfast.paper.table2`): classification, top-1, top-3 (and our mAP@10,
  recall@10) of the ANN, SNN(16) and SNN(128) on the Table-2 model (the shipped ``32-64-10`` by
  default).
- **Tables 3-5** (:mod:`snnfast.paper.hardware`): latency measured on this machine, CPU power
  and energy from RAPL where readable, and the Loihi 1 chip model's latency, power and energy
  estimates of the network Table 2 scores, beside the paper's rows.
- **Fig 3** core map; **Fig 4** (:mod:`snnfast.paper.sweep`) classification / top-1 / top-3
  against time steps, mean and sample standard deviation over independently trained networks;
  **Fig 5** runtime against time steps; **Fig 6** one query per class with three random
  same-class corpus images, the ANN's and the SNN's top 3.
- **Beyond the paper** (:mod:`snnfast.paper.lowlatency`): the low-latency variants at
  ``lowlatency_timesteps`` on Table 2's images, with the Table-2 model as the ReLU ANN and the
  QCFS models of ``lowlatency_models``: their table, and Fig 4 for the variants.

**Resuming.** Trained models, evaluations and measurements are cached under ``OUTDIR/cache``
(:mod:`snnfast.paper.cache`: entries named by the hash of everything that decides them, checked
by a digest and their stored key, written atomically); a rerun computes only what is missing.

**Speed.** ``jobs=N`` (``--jobs N``) trains the missing networks in ``N`` processes at once
(:func:`snnfast.paper.study.train_parallel`); Fig 4's step counts come from one simulation per
network, read out at each of them.

**Calibration.** Every conversion takes its Algorithm-1 calibration images from the whole
training set (the library's rule, :mod:`snnfast.evaluation`), so a model's SNN is the same
whatever corpus size a section uses, and Tables 3-5 cost the network Table 2 scores.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .. import _checks, latency
from .._core import __version__
from .._io import atomic_write
from ..errors import ConfigError
from . import cache as cache_module
from .cache import Cache, canonical
from .config import FIGURES, ReproduceConfig, full_config, quick_config
from .hardware import hardware_section
from .lowlatency import lowlatency_models, lowlatency_section
from .lowlatency_report import plot_variants
from .published import (
    PAPER_TABLE1,
    PAPER_TABLE1_TIMESTEPS,
    PAPER_TABLE2,
    PAPER_TABLE3,
    PAPER_TABLE4,
    PAPER_TABLE5,
    TABLE1_SPECS,
)
from .records import ModelInfo, ReproduceResults
from .report import render_report
from .study import Study, table2_model, train_parallel
from .sweep import plot_fig4, sweep_section
from .table1 import table1_section
from .table2 import table2_section

__all__ = ["reproduce"]


def reproduce(
    outdir: str | Path,
    quick: bool = False,
    progress: bool = True,
    config: ReproduceConfig | None = None,
    jobs: int = 1,
) -> Path:
    """Reproduce the paper's tables and figures into ``outdir``; return the report's path.

    Args:
        outdir: output folder (created); its ``cache/`` subfolder makes reruns resume.
        quick: use :func:`~snnfast.paper.config.quick_config` (about 10 minutes on 2 cores)
            instead of :func:`~snnfast.paper.config.full_config` (hours); ignored when
            ``config`` is given.
        progress: progress bars and one line per step.
        config: what to run (overrides ``quick``).
        jobs: train the networks missing from the cache in this many processes at once (each
            on one thread, so the weights are those of ``jobs=1``); then evaluate with all
            cores.

    Raises:
        ConfigError: an invalid configuration.
        ModelFormatError: the Table-2 model file is missing or damaged.
        DataError: Fashion-MNIST is missing.
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else (quick_config() if quick else full_config())
    if not isinstance(cfg, ReproduceConfig):
        raise ConfigError(f"config must be a ReproduceConfig, got {type(cfg).__name__}")
    jobs = _checks.positive_int(jobs, "jobs", where="reproduce")
    latency.ensure_passive_omp()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    study = Study(cfg, Cache(out / "cache"), progress)
    total = len(TABLE1_SPECS) + len(cfg.seeds) + 2
    with tqdm(total=total, desc="reproduce", unit="step", disable=not progress) as bar:
        study.bar = bar
        train_parallel(study, jobs)
        ref2 = table2_model(study)
        qcfs_models = lowlatency_models(cfg)
        sweep = sweep_section(study)  # first: Table 1 reuses its SNN classification where it can
        table1 = table1_section(study)
        plot_fig4(sweep, out / FIGURES["fig4"])
        table2 = table2_section(study, ref2, out)
        hardware = hardware_section(study, ref2, out)
        low = lowlatency_section(study, ref2, qcfs_models, out)
        if low is not None:
            plot_variants(low, out / FIGURES["fig4_lowlatency"])
    results = ReproduceResults(
        version=__version__,
        config=cfg,
        cuts=cfg.cuts(),
        table2_model=ModelInfo(ref2.label, str(ref2.path), ref2.key),
        table1=table1,
        sweep=sweep,
        table2=table2,
        hardware=hardware,
        lowlatency=low,
        paper=canonical(
            {
                "table1": PAPER_TABLE1,
                "table1_timesteps": PAPER_TABLE1_TIMESTEPS,
                "table2": PAPER_TABLE2,
                "table3": PAPER_TABLE3,
                "table4": PAPER_TABLE4,
                "table5": PAPER_TABLE5,
            }
        ),
        figures=dict(FIGURES),
        cache=dict(study.stats),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_s=time.perf_counter() - t0,
    )
    data = canonical(results.to_json())
    with atomic_write(out / "results.json", "w") as fh:
        cache_module.dump_json(data, fh)
    report = out / "report.md"
    with atomic_write(report, "w") as fh:
        fh.write(render_report(ReproduceResults.from_json(data)))
    if progress:
        tqdm.write(f"wrote {report} in {results.wall_s:.0f} s")
    return report
