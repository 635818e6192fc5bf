"""Both vector stores behind one interface: build, search, add, delete, save and open."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnfast.errors import ConfigError, IndexMismatchError, ModelFormatError
from snnfast.metrics import recall_at_k
from snnfast.retrieval import (
    NO_LABEL,
    IndexMeta,
    LanceIndex,
    RetrievalIndex,
    build_index,
    exact_search,
    open_index,
)

META = IndexMeta("00000000000abc12", "spike_count", 16, 32)


def clustered(n: int, seed: int, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, dim)) * 3
    labels = rng.integers(0, 8, n)
    return (centers[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def build(backend: str, tmp_path, x, y, **kw):
    path = tmp_path / ("lance" if backend == "lancedb" else "index.idx")
    return build_index(x, y, META, backend=backend, path=path, **kw), path


@pytest.mark.parametrize("backend", ["hnswlib", "lancedb"])
def test_search_add_delete_reopen(backend, tmp_path) -> None:
    x, y = clustered(600, 0)
    paths = np.array([f"shop/{i:04d}.jpg" for i in range(600)])
    store, path = build(backend, tmp_path, x[:500], y[:500], paths=paths[:500])
    assert len(store) == 500 and store.meta == META
    exact, exact_d = exact_search(x[:500], x[500:], 10)
    found = store.search(x[500:], 10, META)
    assert found.ids.shape == found.labels.shape == found.distances.shape == (100, 10)
    assert recall_at_k(found.ids, exact, 10) >= 0.97
    np.testing.assert_array_equal(found.labels, y[found.ids])
    np.testing.assert_array_equal(found.paths, paths[found.ids])
    same = found.ids == exact
    np.testing.assert_allclose(found.distances[same], exact_d[same], atol=1e-5)
    assert np.all(np.diff(found.distances, axis=1) >= -1e-6)

    new = store.add(x[500:], META, labels=y[500:], paths=paths[500:])
    np.testing.assert_array_equal(new, np.arange(500, 600))
    assert len(store) == 600
    own = store.search(x[500:], 1, META)
    np.testing.assert_array_equal(own.ids[:, 0], new)
    np.testing.assert_allclose(own.distances[:, 0], 0, atol=1e-5)
    assert store.delete(new[:20]) == 20 and len(store) == 580
    gone = store.search(x[500:520], 10, META)
    assert not np.isin(gone.ids, new[:20]).any()

    if backend == "hnswlib":
        store.save(path)
    reopened = open_index(path)
    assert type(reopened) is type(store) and len(reopened) == 580 and reopened.meta == META
    again = reopened.search(x[500:520], 10, META)
    assert not np.isin(again.ids, new[:20]).any()
    np.testing.assert_array_equal(reopened.search(x[520:], 1, META).ids[:, 0], new[20:])


@pytest.mark.parametrize("backend", ["hnswlib", "lancedb"])
def test_refusals(backend, tmp_path) -> None:
    x, y = clustered(100, 1)
    store, _ = build(backend, tmp_path, x, y)
    for field, value in (("model_id", "ffffffffffffffff"), ("readout", "membrane"), ("dim", 8)):
        other = dataclasses.replace(META, **{field: value})
        with pytest.raises(IndexMismatchError, match=field):
            store.search(x[:2], 3, other)
        with pytest.raises(IndexMismatchError, match=field):
            store.add(x[:2], other)
    with pytest.raises(ConfigError, match="larger than the corpus"):
        store.search(x[:2], 101, META)
    with pytest.raises(ConfigError, match="already in the index"):
        store.add(x[:2], META, ids=[5, 1000])
    with pytest.raises(ConfigError, match="not in the index"):
        store.delete([5, 12345])
    with pytest.raises(ConfigError, match="every item"):
        store.delete(np.arange(100))
    assert len(store) == 100  # nothing changed by the refusals


@pytest.mark.parametrize("backend", ["hnswlib", "lancedb"])
def test_unlabelled_items_and_zero_vectors(backend, tmp_path) -> None:
    x, _ = clustered(50, 2)
    x[7] = 0
    store, _ = build(backend, tmp_path, x, None)
    found = store.search(np.zeros((1, 32), np.float32), 50, META)
    assert (found.labels == NO_LABEL).all() and found.paths is None
    np.testing.assert_allclose(found.distances, 1.0, atol=1e-6)  # similarity 0 to everything
    assert sorted(found.ids[0].tolist()) == list(range(50))  # the zero item is found too


def test_lance_ivf_pq_recall(tmp_path) -> None:
    x, y = clustered(6000, 3, dim=64)
    q, _ = clustered(200, 4, dim=64)
    meta = dataclasses.replace(META, dim=64)
    store = LanceIndex.build(
        x, y, meta, path=tmp_path / "l", min_index_rows=1000, num_partitions=16, num_sub_vectors=16
    )
    assert store.params["num_partitions"] == 16 and store.params["num_sub_vectors"] == 16
    exact, _ = exact_search(x, q, 10)
    assert recall_at_k(store.search(q, 10, meta).ids, exact, 10) >= 0.9
    low = store.search(q, 10, meta, nprobes=1, refine_factor=1)
    assert recall_at_k(low.ids, exact, 10) < 0.9  # the index is really approximate


def test_lance_interrupted_change_leaves_the_manifest_version(tmp_path, monkeypatch) -> None:
    x, y = clustered(200, 5)
    store = LanceIndex.build(x[:100], y[:100], META, path=tmp_path / "l")

    def killed(self):
        raise KeyboardInterrupt  # as if the process died after Lance committed

    monkeypatch.setattr(LanceIndex, "_write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        store.add(x[100:150], META)
    monkeypatch.undo()
    reopened = LanceIndex.open(tmp_path / "l")
    assert len(reopened) == 100  # the manifest still names the version before the add
    reopened.add(x[100:], META)  # restores that version, then adds
    assert len(LanceIndex.open(tmp_path / "l")) == 200


def test_lance_save_copies_and_build_is_atomic(tmp_path) -> None:
    x, y = clustered(100, 6)
    store = LanceIndex.build(x, y, META, path=tmp_path / "a")
    store.save(tmp_path / "b")
    copy = LanceIndex.open(tmp_path / "b")
    np.testing.assert_array_equal(copy.search(x[:5], 3, META).ids, store.search(x[:5], 3, META).ids)
    with pytest.raises(ConfigError):
        LanceIndex.build(x, y, META, path=tmp_path / "c", nprobes=0)
    assert not (tmp_path / "c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporaries left


def test_open_index_refuses_what_is_not_an_index(tmp_path) -> None:
    with pytest.raises(ModelFormatError, match="no index"):
        open_index(tmp_path / "nothing")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelFormatError, match="without an snnfast index manifest"):
        open_index(tmp_path / "folder")
    x, y = clustered(30, 7)
    RetrievalIndex.build(x, y, META).save(tmp_path / "h.idx")
    (tmp_path / "fake").mkdir()
    (tmp_path / "h.idx").replace(tmp_path / "fake" / "manifest.npz")
    with pytest.raises(ModelFormatError, match="backend 'hnswlib'"):
        open_index(tmp_path / "fake")
