"""Retrieval index: search against exact search, persistence, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers_convert import fashion, random_state

from snnfast.ann import Architecture
from snnfast.convert import convert
from snnfast.embed import embed
from snnfast.errors import ConfigError, IndexMismatchError, ModelFormatError, ShapeError
from snnfast.metrics import recall_at_k
from snnfast.retrieval import IndexMeta, RetrievalIndex, exact_search

META = IndexMeta("00000000000abc12", "membrane", 16, 6)


def clustered(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((5, dim))
    labels = rng.integers(0, 5, n)
    return (centers[labels] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32), labels


@pytest.fixture(scope="module")
def snn_embeddings():
    arch = Architecture.parse("4-8-10")
    xtr, ytr = fashion("train", 400)
    xte, yte = fashion("test", 100)
    m = convert(random_state(arch, seed=5), arch, calibration_images=xtr)
    return (
        embed(m, xtr, timesteps=16, progress=False),
        ytr,
        embed(m, xte, timesteps=16, progress=False),
        yte,
    )


def test_search_matches_exact_on_snn_embeddings(snn_embeddings) -> None:
    corpus, ytr, queries, _ = snn_embeddings
    index = RetrievalIndex.build(corpus.vectors, ytr, corpus.meta)
    found = index.search(queries.vectors, 10, queries.meta)
    exact_ids, exact_d = exact_search(corpus.vectors, queries.vectors, 10)
    assert recall_at_k(found.ids, exact_ids, 10) >= 0.97
    assert found.ids.shape == found.labels.shape == found.distances.shape == (100, 10)
    np.testing.assert_array_equal(found.labels, ytr[found.ids])
    assert np.all(np.diff(found.distances, axis=1) >= -1e-6)  # nearest first
    # where the ids agree, the distances agree
    same = found.ids == exact_ids
    np.testing.assert_allclose(found.distances[same], exact_d[same], atol=1e-5)


def test_exact_search_by_hand() -> None:
    corpus = np.array([[1, 0], [0, 1], [2, 0], [1, 1], [0, 0]], dtype=np.float32)
    ids, d = exact_search(corpus, np.array([[3.0, 0.0]]), 5)
    # [1,0] and [2,0] tie at distance 0 (lower id first); [1,1] at 1 - 1/sqrt 2;
    # [0,1] and the zero vector tie at 1
    assert ids.tolist() == [[0, 2, 3, 1, 4]]
    np.testing.assert_allclose(d[0], [0, 0, 1 - 2**-0.5, 1, 1], atol=1e-6)


def test_save_load_round_trip(tmp_path) -> None:
    x, y = clustered(300, 6, 0)
    q, _ = clustered(20, 6, 1)
    index = RetrievalIndex.build(x, y, META, M=8, ef=32, seed=3)
    before = index.search(q, 5, META)
    path = tmp_path / "sub" / "corpus.hnsw"
    index.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["corpus.hnsw", "corpus.hnsw.meta.npz"]
    loaded = RetrievalIndex.load(path)
    assert loaded.meta == META and len(loaded) == 300 and loaded.params == index.params
    after = loaded.search(q, 5, META)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_allclose(after.distances, before.distances)


def test_load_refuses_mismatched_or_missing_files(tmp_path) -> None:
    x, y = clustered(100, 6, 0)
    a, b = tmp_path / "a.hnsw", tmp_path / "b.hnsw"
    RetrievalIndex.build(x, y, META).save(a)
    RetrievalIndex.build(x[:50], y[:50], META).save(b)
    (tmp_path / "a.hnsw.meta.npz").replace(tmp_path / "b.hnsw.meta.npz")
    with pytest.raises(ModelFormatError, match="belong together"):
        RetrievalIndex.load(b)
    with pytest.raises(ModelFormatError, match="no index file"):
        RetrievalIndex.load(a)
    (tmp_path / "c.hnsw").write_bytes(b"junk")
    (tmp_path / "c.hnsw.meta.npz").write_bytes(b"junk")
    with pytest.raises(ModelFormatError):
        RetrievalIndex.load(tmp_path / "c.hnsw")


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_id", "ffffffffffffffff"),
        ("readout", "spike_count"),
        ("timesteps", 128),
        ("dim", 7),
    ],
)
def test_meta_mismatch_names_the_field(field, value) -> None:
    x, y = clustered(50, 6, 0)
    index = RetrievalIndex.build(x, y, META)
    with pytest.raises(IndexMismatchError, match=field):
        index.search(x[:2], 3, dataclasses.replace(META, **{field: value}))


def test_search_refusals() -> None:
    x, y = clustered(50, 6, 0)
    index = RetrievalIndex.build(x, y, META)
    with pytest.raises(ConfigError, match="larger than the corpus"):
        index.search(x[:2], 51, META)
    with pytest.raises(ConfigError, match="k must"):
        index.search(x[:2], 0, META)
    with pytest.raises(ShapeError, match="empty"):
        index.search(x[:0], 3, META)
    with pytest.raises(ShapeError, match="dimension"):
        index.search(np.ones((2, 5), np.float32), 3, META)
    bad = x[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        index.search(bad, 3, META)
    assert index.search(x[:2], 50, META).ids.shape == (2, 50)  # k = corpus size is fine


def test_build_refusals() -> None:
    x, y = clustered(50, 6, 0)
    with pytest.raises(ShapeError, match="labels"):
        RetrievalIndex.build(x, y[:40], META)
    with pytest.raises(ShapeError, match="dimension"):
        RetrievalIndex.build(x, y, dataclasses.replace(META, dim=8))
    with pytest.raises(ConfigError, match="M must"):
        RetrievalIndex.build(x, y, META, M=1)
