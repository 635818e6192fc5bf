"""Classification and retrieval metrics.

Definitions (the paper's, made precise where it is silent):

- **classification accuracy**: fraction of queries whose predicted class equals their label.
- **top-k accuracy** (the paper's "top-1" / "top-3"): a query is a hit when *any* of its ``k``
  nearest corpus items has the query's label; the accuracy is the fraction of hits.
- **mAP@k**: mean over queries of ``AP@k``. With ``rel_i = 1`` when the ``i``-th nearest item has
  the query's label and ``P@i`` the fraction of relevant items among the first ``i``::

      AP@k = (1 / R_k) * sum_{i=1..k} P@i * rel_i,     R_k = sum_{i=1..k} rel_i

  i.e. normalised by the number of relevant items *retrieved in the top k* (not by the number of
  relevant items in the corpus), and ``AP@k = 0`` for a query with no relevant item in its top k.
- **recall@k** of an approximate search against exact search: mean over queries of
  ``|approx_k ∩ exact_k| / k``, comparing the corpus ids of the two top-k lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, ShapeError

__all__ = [
    "classification_accuracy",
    "topk_accuracy",
    "mean_average_precision",
    "recall_at_k",
    "RetrievalMetrics",
    "evaluate_retrieval",
]


def _labels_1d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(
            f"{name} must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty")
    return arr


def _ranked(query_labels: Any, retrieved_labels: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Check ``query_labels [Q]`` and ``retrieved_labels [Q, >=k]``; return the relevance matrix
    ``[Q, k]`` (bool) and the query labels."""
    q = _labels_1d(query_labels, "query_labels")
    r = np.asarray(retrieved_labels)
    if r.ndim != 2 or not np.issubdtype(r.dtype, np.integer):
        raise ShapeError(
            f"retrieved_labels must be a 2-D integer array [Q, k], got shape "
            f"{r.shape} dtype {r.dtype}"
        )
    if r.shape[0] != q.shape[0]:
        raise ShapeError(
            f"retrieved_labels has {r.shape[0]} rows but there are {q.shape[0]} query labels"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if k > r.shape[1]:
        raise ConfigError(f"k = {k} but only {r.shape[1]} neighbours were retrieved per query")
    return r[:, :k] == q[:, None], q


def classification_accuracy(predictions: Any, labels: Any) -> float:
    """Fraction of ``predictions`` equal to ``labels`` (both 1-D integer arrays, same length)."""
    p = _labels_1d(predictions, "predictions")
    y = _labels_1d(labels, "labels")
    if p.shape != y.shape:
        raise ShapeError(f"predictions has {p.shape[0]} entries but labels has {y.shape[0]}")
    return float(np.mean(p == y))


def topk_accuracy(query_labels: Any, retrieved_labels: Any, k: int) -> float:
    """Fraction of queries with at least one of the first ``k`` retrieved labels equal to theirs.

    Args:
        query_labels: int ``[Q]``.
        retrieved_labels: int ``[Q, K]``, nearest first, ``K >= k``.
    """
    rel, _ = _ranked(query_labels, retrieved_labels, k)
    return float(np.mean(rel.any(axis=1)))


def mean_average_precision(query_labels: Any, retrieved_labels: Any, k: int = 10) -> float:
    """mAP@k as defined in the module docstring (AP normalised by relevant items in the top k,
    0 for a query with none)."""
    rel, _ = _ranked(query_labels, retrieved_labels, k)
    relf = rel.astype(np.float64)
    hits = np.cumsum(relf, axis=1)
    precision = hits / np.arange(1, k + 1)
    n_rel = hits[:, -1]
    ap = np.divide((precision * relf).sum(axis=1), n_rel, out=np.zeros_like(n_rel), where=n_rel > 0)
    return float(np.mean(ap))


def recall_at_k(approx_ids: Any, exact_ids: Any, k: int = 10) -> float:
    """Mean over queries of ``|approx[:k] ∩ exact[:k]| / k`` (corpus ids, ``[Q, >=k]`` each)."""
    a = np.asarray(approx_ids)
    e = np.asarray(exact_ids)
    if a.ndim != 2 or e.ndim != 2 or a.shape[0] != e.shape[0]:
        raise ShapeError(
            f"approx_ids and exact_ids must be [Q, k] with the same Q, got {a.shape} and {e.shape}"
        )
    if a.shape[0] == 0:
        raise ShapeError("approx_ids is empty")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if k > min(a.shape[1], e.shape[1]):
        raise ConfigError(f"k = {k} but the id lists have {a.shape[1]} and {e.shape[1]} columns")
    a, e = a[:, :k], e[:, :k]
    found = (a[:, :, None] == e[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(found / k))


@dataclass(frozen=True)
class RetrievalMetrics:
    """Figures for one embedding of the test set (fractions in [0, 1]; ``None``: not computed).

    Attributes:
        classification: classification accuracy of the model's predictions.
        top1, top3: top-1 / top-3 label accuracy of the retrieval.
        map_at_10: mAP@10 (see the module docstring).
        recall_at_10: recall@10 of the approximate index against exact cosine search.
        n_queries: number of queries the retrieval figures are computed on.
    """

    classification: float | None
    top1: float
    top3: float
    map_at_10: float
    recall_at_10: float | None
    n_queries: int

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (JSON-serialisable)."""
        return asdict(self)


def evaluate_retrieval(
    query_labels: Any,
    retrieved_labels: Any,
    predictions: Any | None = None,
    approx_ids: Any | None = None,
    exact_ids: Any | None = None,
) -> RetrievalMetrics:
    """Compute every retrieval figure for one embedding of the queries.

    Args:
        query_labels: int ``[Q]``, the queries' true classes.
        retrieved_labels: int ``[Q, >=10]``, labels of the nearest corpus items, nearest first.
        predictions: optional int ``[Q]`` class predictions, for the classification accuracy.
        approx_ids, exact_ids: optional ``[Q', >=10]`` corpus ids from the index and from
            :func:`snnfast.retrieval.exact_search` (``Q'`` may be a sample of the queries), for
            recall@10. Give both or neither.
    """
    if (approx_ids is None) != (exact_ids is None):
        raise ConfigError("recall@10 needs both approx_ids and exact_ids, or neither")
    q = _labels_1d(query_labels, "query_labels")
    return RetrievalMetrics(
        classification=None if predictions is None else classification_accuracy(predictions, q),
        top1=topk_accuracy(q, retrieved_labels, 1),
        top3=topk_accuracy(q, retrieved_labels, 3),
        map_at_10=mean_average_precision(q, retrieved_labels, 10),
        recall_at_10=None if approx_ids is None else recall_at_k(approx_ids, exact_ids, 10),
        n_queries=int(q.shape[0]),
    )
