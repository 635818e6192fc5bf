"""The study of Liu et al. 2022 (*Neuromorphic computing for content-based image retrieval*,
PLoS ONE 17(4): e0264364), built on the library's public API.

The library never imports this package; only it and :mod:`snnfast.cli` do.

- :mod:`~snnfast.paper.published`: every number of the paper the study compares against.
- :mod:`~snnfast.paper.config`: what a run does (:class:`ReproduceConfig`: full, quick, tiny).
- :mod:`~snnfast.paper.records`: the results as typed records (``results.json``,
  ``lowlatency.json``).
- :mod:`~snnfast.paper.cache`, :mod:`~snnfast.paper.study`: the resumable cache, one run's
  state and its trained networks.
- The sections: :mod:`~snnfast.paper.table1`, :mod:`~snnfast.paper.table2` (the Table 2 run,
  :func:`run_pipeline`), :mod:`~snnfast.paper.sweep` (Fig 4), :mod:`~snnfast.paper.hardware`
  (Tables 3-5, Figs 3 and 5), :mod:`~snnfast.paper.lowlatency` (beyond the paper).
- The report: :mod:`~snnfast.paper.report`, :mod:`~snnfast.paper.hardware_report`,
  :mod:`~snnfast.paper.lowlatency_report`.
- :mod:`~snnfast.paper.reproduce`: :func:`reproduce`, the whole study; :mod:`~snnfast.paper.cli`:
  the ``snnfast reproduce`` and ``snnfast lowlatency`` commands.
"""

from __future__ import annotations

from .config import ReproduceConfig, full_config, quick_config, tiny_config
from .lowlatency import lowlatency_report, standard_variants
from .reproduce import reproduce
from .table2 import run_pipeline

__all__ = [
    "ReproduceConfig",
    "full_config",
    "lowlatency_report",
    "quick_config",
    "reproduce",
    "run_pipeline",
    "standard_variants",
    "tiny_config",
]
