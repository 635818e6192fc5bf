"""Content-based image retrieval: vector stores of image embeddings, and exact search.

Two backends behind one interface (:class:`VectorStore`: ``build``, ``add``, ``delete``,
``search``, ``save`` / ``open``), each keeping the metadata columns (id, label, path) beside the
vectors and refusing queries embedded another way (:class:`~snnfast.embed.IndexMeta`):

- :class:`RetrievalIndex`: hnswlib, in memory, one checksummed file (the default);
- :class:`LanceIndex`: LanceDB, embedded, on disk, IVF-PQ, one folder with a checksummed
  manifest (needs the ``scale`` extra: ``pip install 'snnfast[scale]'``).

:func:`open_index` reads either; :func:`exact_search` is the brute-force reference used to
measure recall.
"""

from __future__ import annotations

from ..embed import IndexMeta
from .base import NO_LABEL, SearchResult, VectorStore, exact_search
from .hnsw import RetrievalIndex
from .lance import LanceIndex
from .stores import BACKENDS, build_index, open_index

__all__ = [
    "BACKENDS",
    "NO_LABEL",
    "IndexMeta",
    "LanceIndex",
    "RetrievalIndex",
    "SearchResult",
    "VectorStore",
    "build_index",
    "exact_search",
    "open_index",
]
