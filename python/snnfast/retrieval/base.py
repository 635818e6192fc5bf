"""What every vector store of snnfast offers, the checks they share, and exact search.

A store keeps embeddings with their metadata columns (``id``, ``label``, ``path``) and the
:class:`~snnfast.embed.IndexMeta` of what produced them; it refuses queries embedded any other
way. Distances are cosine, ``1 - cos(q, c)``; a zero vector has similarity 0 to everything.
Backends: :class:`snnfast.retrieval.RetrievalIndex` (hnswlib, in memory, one file) and
:class:`snnfast.retrieval.LanceIndex` (LanceDB, on disk, IVF-PQ, a folder).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import _checks
from ..embed import IndexMeta
from ..errors import ConfigError, ShapeError

__all__ = ["NO_LABEL", "SearchResult", "VectorStore", "exact_search"]

NO_LABEL = -1
"""The label of an item whose label is unknown (an image of an unlabelled folder)."""

_EXACT_CHUNK = 256  # most queries per block in exact_search (256 x 60,000 float32 = 61 MB)
_EXACT_BLOCK_VALUES = 1 << 26  # distances per block at most (256 MB of float32)


@dataclass(frozen=True)
class SearchResult:
    """Nearest items per query, nearest first.

    Attributes:
        ids: int64 ``[Q, k]`` item ids (row numbers of the corpus unless ids were given).
        labels: int64 ``[Q, k]`` their labels (:data:`NO_LABEL` where unknown).
        distances: float32 ``[Q, k]`` cosine distances ``1 - cos``.
        paths: ``[Q, k]`` unicode strings, the items' files (``""`` where unknown), or ``None``
            when the store keeps no paths.
    """

    ids: np.ndarray
    labels: np.ndarray
    distances: np.ndarray
    paths: np.ndarray | None = None


class VectorStore(abc.ABC):
    """The interface of a vector store (see the module docstring).

    Attributes:
        meta: what produced the stored vectors.
        params: the backend's build and search parameters.
    """

    backend: ClassVar[str]
    meta: IndexMeta
    params: dict[str, Any]

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items stored (deleted ones not counted)."""

    @abc.abstractmethod
    def add(
        self,
        vectors: Any,
        meta: IndexMeta,
        *,
        ids: Any = None,
        labels: Any = None,
        paths: Any = None,
    ) -> np.ndarray:
        """Add items without rebuilding; returns their ids (default: after the largest id).

        Raises:
            IndexMismatchError: ``meta`` differs from the store's.
            ConfigError: an id that is already stored, or repeated.
            ShapeError: bad vectors or metadata columns.
        """

    @abc.abstractmethod
    def delete(self, ids: Any) -> int:
        """Remove the items with these ids without rebuilding; returns how many were removed.

        Raises:
            ConfigError: an id that is not stored.
        """

    @abc.abstractmethod
    def search(self, queries: Any, k: int, meta: IndexMeta) -> SearchResult:
        """The ``k`` nearest items of each query vector ``[Q, D]``, nearest first.

        Raises:
            IndexMismatchError: ``meta`` differs from the store's (names the field).
            ConfigError: ``k`` is not in ``[1, len(store)]``.
            ShapeError: empty batch, wrong dimension, or non-finite values.
        """

    @abc.abstractmethod
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store to ``path`` atomically (checksummed)."""

    @classmethod
    @abc.abstractmethod
    def open(cls, path: str | os.PathLike[str]) -> VectorStore:
        """Read a store written by :meth:`save`, verifying its checksums first.

        Raises:
            ModelFormatError: missing, damaged, of another kind or of an old format.
        """


def check_vectors(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    """A float matrix ``[N, D]`` with finite values, as contiguous float32."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D array [N, D], got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is an empty batch (N = 0)")
    if arr.shape[1] == 0:
        raise ShapeError(f"{name} has dimension 0")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ShapeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise ShapeError(f"{name} has dimension {arr.shape[1]}, expected {dim}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ShapeError(f"{name} contains NaN or infinite values")
    return out


def check_k(k: Any, n: int) -> int:
    """``k`` as an int in ``[1, n]``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise ConfigError(f"k = {k} is larger than the corpus ({n} items)")
    return int(k)


def check_threads(threads: int | None) -> int:
    """A thread count; ``None`` is all cores."""
    return _checks.threads(threads)


def check_columns(
    n: int, ids: Any, labels: Any, paths: Any, first_id: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The metadata columns of ``n`` new items: ids (default ``first_id ..``), labels (default
    :data:`NO_LABEL`) and paths (or ``None``), checked."""
    if ids is None:
        id_arr = np.arange(first_id, first_id + n, dtype=np.int64)
    else:
        id_arr = np.asarray(ids)
        if id_arr.shape != (n,) or not np.issubdtype(id_arr.dtype, np.integer):
            raise ShapeError(f"ids must be {n} integers, got {id_arr.dtype} shape {id_arr.shape}")
        id_arr = id_arr.astype(np.int64)
        if n and id_arr.min() < 0:
            raise ShapeError(f"ids must be >= 0, got {int(id_arr.min())}")
        uniq, counts = np.unique(id_arr, return_counts=True)
        if (counts > 1).any():
            raise ConfigError(f"ids must be distinct; repeated: {uniq[counts > 1][:5].tolist()}")
    if labels is None:
        lab = np.full(n, NO_LABEL, dtype=np.int64)
    else:
        lab = np.asarray(labels)
        if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
            raise ShapeError(
                f"labels must be a 1-D integer array, got shape {lab.shape} dtype {lab.dtype}"
            )
        if lab.shape[0] != n:
            raise ShapeError(f"labels has {lab.shape[0]} entries but there are {n} vectors")
        lab = lab.astype(np.int64)
    path_arr = None
    if paths is not None:
        path_arr = np.asarray(paths)
        if path_arr.shape != (n,) or path_arr.dtype.kind != "U":
            raise ShapeError(f"paths must be {n} strings, got {path_arr.dtype} {path_arr.shape}")
    return id_arr, lab, path_arr


def check_delete_ids(ids: Any) -> np.ndarray:
    """Ids to delete: distinct non-negative integers (a scalar is one id)."""
    arr = np.atleast_1d(np.asarray(ids))
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"ids must be integers, got {arr.dtype} shape {arr.shape}")
    return np.unique(arr.astype(np.int64))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)


def exact_search(corpus: Any, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine search: ``(rows int64 [Q, k], distances float32 [Q, k])``.

    Same distance as the stores (``1 - cos``; zero vectors have similarity 0). Ties are broken
    by the lower corpus row. Works through the queries in blocks to bound memory.
    """
    c = check_vectors(corpus, "corpus")
    q = check_vectors(queries, "queries", c.shape[1])
    k = check_k(k, c.shape[0])
    cn = normalize(c)
    qn = normalize(q)
    ids = np.empty((q.shape[0], k), dtype=np.int64)
    dist = np.empty((q.shape[0], k), dtype=np.float32)
    block = max(1, min(_EXACT_CHUNK, _EXACT_BLOCK_VALUES // c.shape[0]))
    for start in range(0, q.shape[0], block):
        d = 1.0 - qn[start : start + block] @ cn.T
        if k < d.shape[1]:
            # the k-th distance; take every item at or below it so ties resolve by id
            kth = np.partition(d, k - 1, axis=1)[:, k - 1 : k]
        else:
            kth = d.max(axis=1, keepdims=True)
        for r in range(d.shape[0]):
            cand = np.flatnonzero(d[r] <= kth[r])
            order = cand[np.lexsort((cand, d[r, cand]))][:k]
            ids[start + r] = order
            dist[start + r] = d[r, order]
    return ids, dist


def lookup_rows(sorted_ids: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rows of ``wanted`` ids given ``order = argsort(ids)`` and ``sorted_ids = ids[order]``;
    -1 where an id is absent."""
    pos = np.searchsorted(sorted_ids, wanted)
    pos_c = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    found = (pos < len(sorted_ids)) & (sorted_ids[pos_c] == wanted) if len(sorted_ids) else pos < 0
    return np.where(found, order[pos_c] if len(order) else -1, -1)


def missing_ids_message(missing: Sequence[int] | np.ndarray) -> str:
    m = list(np.asarray(missing)[:5].tolist())
    more = "" if len(missing) <= 5 else f" and {len(missing) - 5} more"
    return f"ids not in the index: {m}{more}"
