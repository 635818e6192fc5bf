"""Metrics on hand-made examples, and the Fig 6 query grid."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_convert import fashion
from matplotlib.image import imread

from snnfast.errors import ConfigError, ShapeError
from snnfast.metrics import (
    classification_accuracy,
    evaluate_retrieval,
    mean_average_precision,
    recall_at_k,
    topk_accuracy,
)
from snnfast.plots import query_grid

QUERY = np.array([0, 1, 2, 3])
RETRIEVED = np.array(
    [
        [0, 5, 0, 0],  # hit at 1
        [5, 1, 5, 1],  # first hit at 2
        [5, 5, 5, 2],  # first hit at 4
        [5, 5, 5, 5],  # no hit
    ]
)


def test_classification_accuracy() -> None:
    assert classification_accuracy(np.array([0, 1, 2]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ShapeError, match="entries"):
        classification_accuracy(np.array([0, 1]), np.array([0, 1, 2]))


def test_topk_accuracy() -> None:
    assert topk_accuracy(QUERY, RETRIEVED, 1) == pytest.approx(1 / 4)
    assert topk_accuracy(QUERY, RETRIEVED, 3) == pytest.approx(2 / 4)
    assert topk_accuracy(QUERY, RETRIEVED, 4) == pytest.approx(3 / 4)


def test_map_by_hand() -> None:
    # query 0: rel 1,0,1,1 -> (1 + 2/3 + 3/4) / 3; query 1: rel 0,1,0,1 -> (1/2 + 2/4) / 2
    # query 2: rel 0,0,0,1 -> (1/4) / 1; query 3: none -> 0
    expected = ((1 + 2 / 3 + 3 / 4) / 3 + (1 / 2 + 2 / 4) / 2 + 1 / 4 + 0) / 4
    assert mean_average_precision(QUERY, RETRIEVED, 4) == pytest.approx(expected)
    # at k = 1 AP is the top-1 hit
    assert mean_average_precision(QUERY, RETRIEVED, 1) == pytest.approx(1 / 4)


def test_recall_at_k() -> None:
    approx = np.array([[1, 2, 3], [4, 5, 6]])
    exact = np.array([[3, 2, 9], [4, 5, 6]])
    assert recall_at_k(approx, exact, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert recall_at_k(approx, exact, 1) == pytest.approx(1 / 2)


@pytest.mark.parametrize("k", [0, 5, True])
def test_bad_k(k) -> None:
    with pytest.raises(ConfigError):
        topk_accuracy(QUERY, RETRIEVED, k)


def test_shape_checks() -> None:
    with pytest.raises(ShapeError, match="rows"):
        topk_accuracy(QUERY[:3], RETRIEVED, 1)
    with pytest.raises(ShapeError, match="2-D"):
        mean_average_precision(QUERY, RETRIEVED[0], 1)
    with pytest.raises(ShapeError, match="empty"):
        topk_accuracy(QUERY[:0], RETRIEVED[:0], 1)


def test_evaluate_retrieval() -> None:
    wide = np.concatenate([RETRIEVED, RETRIEVED, RETRIEVED[:, :2]], axis=1)  # 10 columns
    ids = np.arange(40).reshape(4, 10)
    m = evaluate_retrieval(
        QUERY, wide, predictions=np.array([0, 1, 0, 0]), approx_ids=ids, exact_ids=ids[:, ::-1]
    )
    assert m.classification == pytest.approx(0.5)
    assert m.top1 == pytest.approx(0.25) and m.top3 == pytest.approx(0.5)
    assert m.map_at_10 == pytest.approx(mean_average_precision(QUERY, wide, 10))
    assert m.recall_at_10 == pytest.approx(1.0) and m.n_queries == 4
    assert set(m.as_dict()) == {
        "classification",
        "top1",
        "top3",
        "map_at_10",
        "recall_at_10",
        "n_queries",
    }
    bare = evaluate_retrieval(QUERY, wide)
    assert bare.classification is None and bare.recall_at_10 is None
    with pytest.raises(ConfigError, match="both"):
        evaluate_retrieval(QUERY, wide, approx_ids=ids)


def test_query_grid_writes_png(tmp_path) -> None:
    x, y = fashion("train", 100)
    q = x[:4]
    ids = np.arange(12).reshape(4, 3)
    path = tmp_path / "grid.png"
    query_grid(
        path,
        q,
        x,
        ids,
        ids + 12,
        ids + 24,
        [f"c{i}" for i in range(10)],
        query_labels=y[:4],
        snn_title="SNN (16)",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[0] > 100 and img.shape[1] > img.shape[0]  # 4 rows x 10 columns
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    with pytest.raises(ShapeError, match="ann_ids"):
        query_grid(path, q, x, ids[:, :2], ids, ids, ["a"] * 10)
    with pytest.raises(ShapeError, match="outside the corpus"):
        query_grid(path, q, x, ids, ids + 100, ids, ["a"] * 10)
