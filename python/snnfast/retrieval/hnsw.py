"""The in-memory vector store: an hnswlib HNSW graph in cosine space, in one checksummed file.

:class:`RetrievalIndex` keeps the graph with the metadata columns of every item (``id``,
``label``, ``path``) and the :class:`~snnfast.embed.IndexMeta` of what produced the vectors.
Items are added (the graph grows) and deleted (hnswlib marks them; they are never returned)
without a rebuild. Internally hnswlib labels are row numbers of the metadata columns, so
every row keeps its place after deletions.

On disk an index is **one** :mod:`snnfast._container` file (kind ``index``, version 3): the
graph as hnswlib writes it, stored as uint8 arrays of at most 256 MiB with SHA-256 checksums,
beside the metadata columns, the parameters and the meta. Loading verifies every checksum,
then checks the graph's own header and links against the metadata (sizes, degrees, every
neighbour row in range, every row labelled once), and only then hands the verified bytes to
hnswlib. The two-file indexes of earlier versions (a graph plus ``.meta.npz``) are refused
with a message to rebuild them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from .. import _checks, _container
from ..embed import IndexMeta
from ..errors import ConfigError, ModelFormatError
from .base import (
    SearchResult,
    VectorStore,
    check_columns,
    check_delete_ids,
    check_k,
    check_threads,
    check_vectors,
    exact_search,
    lookup_rows,
    missing_ids_message,
)

__all__ = ["IndexMeta", "SearchResult", "RetrievalIndex", "exact_search", "FORMAT_VERSION"]

FORMAT = "index"
FORMAT_VERSION = 3
_CHUNK = 256 << 20
_HEADER_BYTES = 96
REBUILD_HINT = "rebuild it with `snnfast index EMBEDDINGS --out INDEX`"


def _check_params(M: Any, ef_construction: Any, ef: Any, seed: Any) -> None:
    """The graph's parameters, as :meth:`RetrievalIndex.build` takes them and a file holds them."""
    for name, value, lo in (("M", M, 2), ("ef_construction", ef_construction, 1), ("ef", ef, 1)):
        _checks.integer(value, name, lo, 1 << 16)
    _checks.integer(seed, "seed", 0, (1 << 63) - 1)


def _whole(value: Any) -> int:
    """A header's integer field (a float, bool or string there is damage, not a number)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r:.40}")
    return value


class RetrievalIndex(VectorStore):
    """A cosine HNSW index over embeddings with their ids, labels, paths and meta.

    Build with :meth:`build` or read with :meth:`load` / :meth:`open`, not the constructor.

    Attributes:
        meta: what produced the vectors.
        params: ``M``, ``ef_construction``, ``ef``, ``seed``.
    """

    backend = "hnswlib"

    def __init__(
        self,
        index: hnswlib.Index,
        meta: IndexMeta,
        params: dict[str, int],
        ids: np.ndarray,
        labels: np.ndarray,
        paths: np.ndarray | None,
        alive: np.ndarray,
    ) -> None:
        self._index = index
        self.meta = meta
        self.params = dict(params)
        self._ids, self._labels, self._paths, self._alive = ids, labels, paths, alive
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self._alive.sum())

    def __repr__(self) -> str:
        m = self.meta
        return f"RetrievalIndex({len(self):,} items, hnswlib, {m.readout}, dim {m.dim})"

    @property
    def ids(self) -> np.ndarray:
        """int64 ids of the stored items, in the order they were added."""
        return self._ids[self._alive]

    @property
    def labels(self) -> np.ndarray:
        """int64 labels of the stored items, in the order of :attr:`ids`."""
        return self._labels[self._alive]

    @property
    def paths(self) -> np.ndarray | None:
        """Paths of the stored items in the order of :attr:`ids`, or ``None``."""
        return None if self._paths is None else self._paths[self._alive]

    @classmethod
    def build(
        cls,
        vectors: Any,
        labels: Any,
        meta: IndexMeta,
        M: int = 12,
        ef_construction: int = 64,
        ef: int = 128,
        seed: int = 100,
        threads: int | None = None,
        *,
        ids: Any = None,
        paths: Any = None,
    ) -> RetrievalIndex:
        """Index ``vectors`` ``[N, D]`` with int ``labels`` ``[N]`` (or ``None``: unknown).

        Args:
            meta: what produced the vectors; ``meta.dim`` must equal ``D``.
            M: graph degree; ef_construction: build-time beam width; ef: query-time beam width
                (raised to ``k`` for a search with larger ``k``); seed: hnswlib's level seed.
            threads: insertion threads (default all cores). With more than one thread the
                insertion order, and so the graph, may differ from run to run.
            ids: int64 ids ``[N]`` (distinct, >= 0; default the rows ``0 .. N - 1``).
            paths: ``[N]`` strings, the file of each item, or ``None``.

        The defaults were chosen on the shipped model's 60,000 x 1,024 SNN(16) membrane
        embeddings (2 cores): about 20 s to build, recall@10 0.98 against exact search;
        ``M=16, ef_construction=100, ef=64`` took 34 s for recall 0.977.
        """
        vec = check_vectors(vectors, "vectors", meta.dim)
        id_arr, lab, path_arr = check_columns(vec.shape[0], ids, labels, paths)
        _check_params(M, ef_construction, ef, seed)
        index = hnswlib.Index(space="cosine", dim=meta.dim)
        index.init_index(
            max_elements=vec.shape[0],
            M=int(M),
            ef_construction=int(ef_construction),
            random_seed=int(seed),
        )
        index.add_items(vec, np.arange(vec.shape[0]), num_threads=check_threads(threads))
        index.set_ef(int(ef))
        params = {"M": int(M), "ef_construction": int(ef_construction), "ef": int(ef)}
        params["seed"] = int(seed)
        alive = np.ones(vec.shape[0], dtype=bool)
        return cls(index, meta, params, id_arr, lab, path_arr, alive)

    def _rows_of(self, wanted: np.ndarray) -> np.ndarray:
        if self._lookup is None:
            rows = np.flatnonzero(self._alive)
            order = np.argsort(self._ids[rows], kind="stable")
            self._lookup = (self._ids[rows][order], rows[order])
        sorted_ids, rows_sorted = self._lookup
        return lookup_rows(sorted_ids, rows_sorted, wanted)

    def add(
        self,
        vectors: Any,
        meta: IndexMeta,
        *,
        ids: Any = None,
        labels: Any = None,
        paths: Any = None,
        threads: int | None = None,
    ) -> np.ndarray:
        """Add items to the graph without a rebuild; returns their ids.

        Ids default to the ones after the largest id stored. Raises as
        :meth:`snnfast.retrieval.VectorStore.add` says.
        """
        self.meta.check_against(meta)
        vec = check_vectors(vectors, "vectors", self.meta.dim)
        first = int(self._ids.max()) + 1 if self._ids.size else 0
        id_arr, lab, path_arr = check_columns(vec.shape[0], ids, labels, paths, first)
        clash = id_arr[self._rows_of(id_arr) >= 0]
        if clash.size:
            raise ConfigError(f"ids already in the index: {clash[:5].tolist()}")
        n_old = self._ids.shape[0]
        rows = np.arange(n_old, n_old + vec.shape[0])
        self._index.resize_index(n_old + vec.shape[0])
        self._index.add_items(vec, rows, num_threads=check_threads(threads))
        if path_arr is not None or self._paths is not None:
            old = self._paths if self._paths is not None else np.full(n_old, "")
            new = path_arr if path_arr is not None else np.full(vec.shape[0], "")
            self._paths = np.concatenate([old, new])
        self._ids = np.concatenate([self._ids, id_arr])
        self._labels = np.concatenate([self._labels, lab])
        self._alive = np.concatenate([self._alive, np.ones(vec.shape[0], dtype=bool)])
        self._lookup = None
        return id_arr

    def delete(self, ids: Any) -> int:
        """Mark the items with these ids deleted (never returned again); returns how many."""
        wanted = check_delete_ids(ids)
        rows = self._rows_of(wanted)
        if (rows < 0).any():
            raise ConfigError(missing_ids_message(wanted[rows < 0]))
        if len(self) - rows.size < 1:
            raise ConfigError("cannot delete every item of an index")
        for row in rows:
            self._index.mark_deleted(int(row))
        self._alive[rows] = False
        self._lookup = None
        return int(rows.size)

    def search(
        self, queries: Any, k: int, meta: IndexMeta, threads: int | None = None
    ) -> SearchResult:
        """The ``k`` nearest items of each query vector ``[Q, D]``, nearest first.

        Raises:
            IndexMismatchError: ``meta`` differs from the index's (names the field).
            ConfigError: ``k`` is not in ``[1, len(index)]``.
            ShapeError: empty batch, wrong dimension, or non-finite values.
        """
        self.meta.check_against(meta)
        k = check_k(k, len(self))
        q = check_vectors(queries, "queries", self.meta.dim)
        ef = max(self.params["ef"], k)
        while True:
            self._index.set_ef(ef)
            try:
                rows, dist = self._index.knn_query(q, k=k, num_threads=check_threads(threads))
                break
            except RuntimeError:  # fewer than k found past deleted items: widen the beam
                if ef >= len(self._ids):
                    raise
                ef = min(2 * ef, len(self._ids))
        self._index.set_ef(self.params["ef"])
        rows = rows.astype(np.int64)
        return SearchResult(
            self._ids[rows],
            self._labels[rows],
            np.maximum(dist, 0.0).astype(np.float32),  # rounding can give -1e-7
            None if self._paths is None else self._paths[rows],
        )

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to one checksummed file at ``path``, atomically."""
        target = Path(path)
        arrays: dict[str, np.ndarray] = {
            "ids": self._ids,
            "labels": self._labels,
            "alive": self._alive,
        }
        if self._paths is not None:
            arrays["paths"] = self._paths
        with tempfile.TemporaryDirectory(prefix="snnfast-index-") as tmp:
            graph = Path(tmp) / "graph.bin"
            self._index.save_index(str(graph))
            size = graph.stat().st_size
            _checks.check_memory(size, f"saving an index of {size:,} bytes")
            with open(graph, "rb") as fh:
                for i, start in enumerate(range(0, size, _CHUNK)):
                    arrays[f"graph_{i:05d}"] = np.frombuffer(
                        fh.read(min(_CHUNK, size - start)), dtype=np.uint8
                    )
        body = {
            "backend": self.backend,
            "meta": self.meta.to_json(),
            "params": self.params,
            "rows": int(self._ids.shape[0]),
            "graph_bytes": int(size),
        }
        _container.write(target, FORMAT, FORMAT_VERSION, body, arrays, compress=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RetrievalIndex:
        """Read an index written by :meth:`save` (checksums and graph verified first).

        Raises:
            ModelFormatError: the file is missing, damaged, of another kind, or an index of
                the earlier two-file format (rebuild it).
        """
        p = Path(path)
        _refuse_old_format(p)
        try:
            contents = _container.read(p, FORMAT, [FORMAT_VERSION], what="index")
        except ModelFormatError as exc:
            if "format version 1" in str(exc):
                raise ModelFormatError(
                    f"{p} is the sidecar of an index of the earlier two-file format; {REBUILD_HINT}"
                ) from exc
            raise
        body, arrays = contents.body, dict(contents.arrays)
        if body.get("backend") != cls.backend:
            raise ModelFormatError(
                f"{p} is an index of backend {body.get('backend')!r}, not hnswlib"
            )
        try:
            meta = IndexMeta.from_json(body["meta"])
            params = {k: _whole(body["params"][k]) for k in ("M", "ef_construction", "ef", "seed")}
            _check_params(**params)
            rows, size = _whole(body["rows"]), _whole(body["graph_bytes"])
            ids, labels, alive = arrays.pop("ids"), arrays.pop("labels"), arrays.pop("alive")
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ModelFormatError(f"{p}: index header is damaged ({exc})") from exc
        if not 0 <= size <= _CHUNK * sum(k.startswith("graph_") for k in arrays):
            raise ModelFormatError(f"{p}: the header's graph size {size} does not fit its arrays")
        paths = arrays.pop("paths", None)
        chunks = [arrays.pop(f"graph_{i:05d}", None) for i in range(-(-size // _CHUNK))]
        if arrays or any(c is None for c in chunks):
            raise ModelFormatError(f"{p}: the index's arrays are not the expected ones")
        _check_columns(p, rows, ids, labels, alive, paths)
        graph = [c for c in chunks if c is not None]
        if sum(c.size for c in graph) != size or any(c.dtype != np.uint8 for c in graph):
            raise ModelFormatError(f"{p}: the graph is not {size} bytes")
        with tempfile.TemporaryDirectory(prefix="snnfast-index-") as tmp:
            graph_path = Path(tmp) / "graph.bin"
            with open(graph_path, "wb") as fh:
                for c in graph:
                    fh.write(c.data)
            del graph, chunks, contents
            _check_graph(
                p, np.memmap(graph_path, dtype=np.uint8, mode="r"), rows, meta.dim, params["M"]
            )
            try:  # after the graph check: the header's dim made it to hnswlib's record size
                index = hnswlib.Index(space="cosine", dim=meta.dim)
                index.load_index(str(graph_path), max_elements=rows)
            except (RuntimeError, TypeError, ValueError) as exc:
                raise ModelFormatError(f"{p}: hnswlib cannot read the graph: {exc}") from exc
        for row in np.flatnonzero(~alive):
            with contextlib.suppress(RuntimeError):  # already marked in the graph
                index.mark_deleted(int(row))
        index.set_ef(params["ef"])
        return cls(index, meta, params, ids, labels, paths, alive.copy())

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RetrievalIndex:
        """The same as :meth:`load`."""
        return cls.load(path)


def _refuse_old_format(p: Path) -> None:
    sidecar = p.with_name(p.name + ".meta.npz")
    if p.is_file() and not zipfile.is_zipfile(p) and sidecar.is_file():
        raise ModelFormatError(
            f"{p} is an index of the earlier two-file format (graph + {sidecar.name}), which "
            f"this snnfast does not read because its graph carries no checksum; {REBUILD_HINT}"
        )


def _check_columns(
    p: Path,
    rows: int,
    ids: np.ndarray,
    labels: np.ndarray,
    alive: np.ndarray,
    paths: np.ndarray | None,
) -> None:
    ok = (
        ids.dtype == np.int64
        and labels.dtype == np.int64
        and alive.dtype == np.bool_
        and ids.shape == labels.shape == alive.shape == (rows,)
        and (paths is None or (paths.dtype.kind == "U" and paths.shape == (rows,)))
        and rows >= 1
        and bool(alive.any())
    )
    if not ok:
        raise ModelFormatError(f"{p}: the metadata columns do not match {rows} items")
    live = ids[alive]
    if live.min() < 0 or np.unique(live).size != live.size:
        raise ModelFormatError(f"{p}: the item ids are not distinct non-negative integers")


def _check_graph(p: Path, data: np.ndarray, rows: int, dim: int, m: int) -> None:
    """Check hnswlib's saved graph (bytes) structurally, so its loader never reads out of
    bounds: header fields against the meta and row count, every degree, neighbour and label."""
    bad = f"{p}: the graph does not match its header"
    if data.size < _HEADER_BYTES:
        raise ModelFormatError(bad)
    head = data[:_HEADER_BYTES]
    u64 = head[:48].view("<u8")
    offset0, max_elements, count, per_element, label_offset, offset_data = (int(x) for x in u64)
    max_level = int(head[48:52].view("<i4")[0])
    entry = int(head[52:56].view("<u4")[0])
    max_m, max_m0, m_saved = (int(x) for x in head[56:80].view("<u8"))
    links0 = max_m0 * 4 + 4
    expected = (0, rows, m, m, 2 * m, links0, links0 + dim * 4, links0 + dim * 4 + 8)
    got = (offset0, count, max_m, m_saved, max_m0, offset_data, label_offset, per_element)
    if got != expected or max_elements < count or not 0 <= max_level < 64 or entry >= rows:
        raise ModelFormatError(bad)
    level0_end = _HEADER_BYTES + count * per_element
    if data.size < level0_end:
        raise ModelFormatError(bad)
    level0 = data[_HEADER_BYTES:level0_end].reshape(count, per_element)
    n_links = level0[:, 0:2].copy().view("<u2")[:, 0].astype(np.int64)
    neighbours = level0[:, 4:links0].copy().view("<u4")
    labels = level0[:, label_offset : label_offset + 8].copy().view("<u8")[:, 0]
    if (n_links > max_m0).any() or (labels >= count).any():
        raise ModelFormatError(bad)
    if (np.bincount(labels.astype(np.int64), minlength=count) != 1).any():  # each row once
        raise ModelFormatError(bad)
    used = np.arange(max_m0)[None, :] < n_links[:, None]
    if (neighbours[used] >= rows).any():
        raise ModelFormatError(bad)
    per_level = max_m * 4 + 4
    pos = level0_end
    total = data.size
    for _ in range(count):
        if pos + 4 > total:
            raise ModelFormatError(bad)
        size = int(data[pos : pos + 4].view("<u4")[0])
        pos += 4
        if size:
            if size % per_level or size // per_level > max_level or pos + size > total:
                raise ModelFormatError(bad)
            block = data[pos : pos + size].reshape(-1, per_level)
            n = block[:, 0:2].copy().view("<u2")[:, 0].astype(np.int64)
            ids = block[:, 4:].copy().view("<u4")
            if (n > max_m).any() or (ids[np.arange(max_m)[None, :] < n[:, None]] >= rows).any():
                raise ModelFormatError(bad)
            pos += size
    if pos != total:
        raise ModelFormatError(bad)
