"""One entry point for either vector store: :func:`build_index` and :func:`open_index`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..embed import IndexMeta
from ..errors import ModelFormatError
from .base import VectorStore
from .hnsw import RetrievalIndex
from .lance import MANIFEST, LanceIndex

__all__ = ["BACKENDS", "build_index", "open_index"]

BACKENDS = ("hnswlib", "lancedb")
"""The vector store backends: ``"hnswlib"`` (default) and ``"lancedb"``."""


def build_index(
    vectors: Any,
    labels: Any,
    meta: IndexMeta,
    *,
    backend: str = "hnswlib",
    path: str | os.PathLike[str] | None = None,
    ids: Any = None,
    paths: Any = None,
    **params: Any,
) -> VectorStore:
    """Build a store of ``backend`` over ``vectors``; a LanceDB store is built in the folder
    ``path`` (required), an hnswlib one is also saved there when ``path`` is given.

    ``params`` go to :meth:`RetrievalIndex.build` or :meth:`LanceIndex.build`.
    """
    from .. import _checks

    _checks.choice(backend, "backend", BACKENDS)
    if backend == "lancedb":
        if path is None:
            from ..errors import ConfigError

            raise ConfigError("a LanceDB index lives in a folder: give path")
        return LanceIndex.build(vectors, labels, meta, path=path, ids=ids, paths=paths, **params)
    index = RetrievalIndex.build(vectors, labels, meta, ids=ids, paths=paths, **params)
    if path is not None:
        index.save(path)
    return index


def open_index(path: str | os.PathLike[str]) -> VectorStore:
    """Open the store at ``path``: a LanceDB folder or an hnswlib index file.

    Raises:
        ModelFormatError: nothing there, or not an snnfast index.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / MANIFEST).is_file():
            raise ModelFormatError(f"{p} is a folder without an snnfast index manifest")
        return LanceIndex.open(p)
    if not p.exists():
        raise ModelFormatError(f"no index at {p}")
    return RetrievalIndex.load(p)  # refuses old two-file indexes and other files by name
