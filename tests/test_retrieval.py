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


def test_save_load_round_trip_is_one_file(tmp_path) -> None:
    x, y = clustered(300, 6, 0)
    q, _ = clustered(20, 6, 1)
    index = RetrievalIndex.build(x, y, META, M=8, ef=32, seed=3)
    before = index.search(q, 5, META)
    path = tmp_path / "sub" / "corpus.hnsw"
    index.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["corpus.hnsw"]
    loaded = RetrievalIndex.load(path)
    assert loaded.meta == META and len(loaded) == 300 and loaded.params == index.params
    after = loaded.search(q, 5, META)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_allclose(after.distances, before.distances)


def write_old_two_file_index(path, x, y) -> None:
    """An index as the previous version wrote it: a raw hnswlib graph plus a sidecar."""
    import json

    import hnswlib

    g = hnswlib.Index(space="cosine", dim=x.shape[1])
    g.init_index(max_elements=len(x), M=8)
    g.add_items(x, np.arange(len(x)))
    g.save_index(str(path))
    header = {"format": "snnfast.index", "version": 1, "meta": META.to_json(), "count": len(x)}
    header["graph_bytes"] = path.stat().st_size
    header["params"] = {"M": 8, "ef_construction": 64, "ef": 128, "seed": 100}
    np.savez(
        path.with_name(path.name + ".meta.npz"),
        labels=y,
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
    )


def test_old_two_file_index_is_refused_with_a_rebuild_hint(tmp_path) -> None:
    x, y = clustered(100, 6, 0)
    old = tmp_path / "old.bin"
    write_old_two_file_index(old, x, y)
    with pytest.raises(ModelFormatError, match="two-file format.*snnfast index"):
        RetrievalIndex.load(old)
    with pytest.raises(ModelFormatError, match="two-file format.*snnfast index"):
        RetrievalIndex.load(tmp_path / "old.bin.meta.npz")


def test_load_refuses_missing_junk_and_other_kinds(tmp_path) -> None:
    x, y = clustered(100, 6, 0)
    with pytest.raises(ModelFormatError, match="no index file"):
        RetrievalIndex.load(tmp_path / "absent.idx")
    (tmp_path / "c.hnsw").write_bytes(b"junk")
    with pytest.raises(ModelFormatError, match="not an snnfast index"):
        RetrievalIndex.load(tmp_path / "c.hnsw")
    emb = tmp_path / "emb.npz"
    from snnfast.embed import Embeddings

    Embeddings(x, y.astype(np.int64), META).save(emb)
    with pytest.raises(ModelFormatError, match="embeddings file, not an snnfast index"):
        RetrievalIndex.load(emb)


def test_add_delete_and_ids(tmp_path) -> None:
    x, y = clustered(200, 6, 0)
    paths = np.array([f"img/{i}.png" for i in range(200)])
    index = RetrievalIndex.build(
        x[:150], y[:150], META, ids=np.arange(1000, 1150), paths=paths[:150]
    )
    new = index.add(x[150:], META, labels=y[150:], paths=paths[150:])
    np.testing.assert_array_equal(new, np.arange(1150, 1200))
    assert len(index) == 200
    found = index.search(x[150:], 1, META)
    np.testing.assert_array_equal(found.ids[:, 0], new)  # each new item is its own neighbour
    np.testing.assert_array_equal(found.paths[:, 0], paths[150:])
    assert index.delete(new[:10]) == 10 and len(index) == 190
    again = index.search(x[150:160], 5, META)
    assert not np.isin(again.ids, new[:10]).any()
    with pytest.raises(ConfigError, match="not in the index"):
        index.delete([new[0]])
    with pytest.raises(ConfigError, match="already in the index"):
        index.add(x[:1], META, ids=[1000])
    with pytest.raises(IndexMismatchError, match="readout"):
        index.add(x[:1], dataclasses.replace(META, readout="spike_count"))
    index.save(tmp_path / "i.idx")
    loaded = RetrievalIndex.load(tmp_path / "i.idx")
    assert len(loaded) == 190
    np.testing.assert_array_equal(loaded.ids, index.ids)
    after = loaded.search(x[150:160], 5, META)
    assert not np.isin(after.ids, new[:10]).any()
    np.testing.assert_array_equal(after.paths, index.search(x[150:160], 5, META).paths)


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
    x0, _ = clustered(10, 6, 0)
    with pytest.raises(ConfigError, match="distinct"):
        RetrievalIndex.build(x0, None, META, ids=[1] * 10)
    x, y = clustered(50, 6, 0)
    with pytest.raises(ShapeError, match="labels"):
        RetrievalIndex.build(x, y[:40], META)
    with pytest.raises(ShapeError, match="dimension"):
        RetrievalIndex.build(x, y, dataclasses.replace(META, dim=8))
    with pytest.raises(ConfigError, match="M must"):
        RetrievalIndex.build(x, y, META, M=1)
