"""Exchanging networks with the neuromorphic ecosystem: NIR in and out.

:func:`to_nir` writes a converted model as a ``nir.NIRGraph`` (:mod:`snnfast.interop.nir_export`)
and :func:`from_nir` reads one as an integer network (:mod:`snnfast.interop.nir_import`);
:func:`write_nir` / :func:`read_nir` save and load ``.nir`` files, and :func:`input_spikes` makes
the input spike trains to feed an exported graph in another simulator. ``docs/nir.md`` tells the
mapping, its exact cases and its limits.

The ``nir`` package (the ``interop`` extra: ``pip install 'snnfast[interop]'``) is imported only
when these functions run.
"""

from __future__ import annotations

from typing import Any

from .nir_export import NIRExportWarning, input_spikes, to_nir
from .nir_import import from_nir, read_nir

__all__ = ["NIRExportWarning", "from_nir", "input_spikes", "read_nir", "to_nir", "write_nir"]


def write_nir(graph: Any, path: Any) -> None:
    """Write a ``nir.NIRGraph`` (e.g. from :func:`to_nir`) to a ``.nir`` file, atomically."""
    from ._nir import write_graph

    write_graph(graph, path)
