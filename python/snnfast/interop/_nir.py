"""What the NIR exporter and importer share: the ``nir`` import, metadata keys, the digest of a
graph, and reading and writing ``.nir`` files with snnfast's errors.

``nir`` (and its ``h5py``) is imported only when one of these functions runs: it is the
optional ``interop`` extra.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from ..errors import ConfigError, ModelFormatError

__all__ = [
    "INSTALL",
    "SEMANTICS",
    "THRESHOLD_OFFSET",
    "digest",
    "graph_record",
    "import_nir",
    "read_graph",
    "write_graph",
]

INSTALL = "pip install 'snnfast[interop]'"
SEMANTICS = "snnfast-integer-1"
"""``metadata["snnfast_semantics"]`` of a graph that :func:`snnfast.to_nir` wrote."""
THRESHOLD_OFFSET = 0.5
"""NIR fires on ``v > v_threshold``; with integer potentials ``theta - 0.5`` is ``v >= theta``."""
KEY_SEMANTICS = "snnfast_semantics"
KEY_RECORD = "snnfast"
KEY_DIGEST = "snnfast_sha256"
KEY_DT = "dt"


def import_nir() -> Any:
    """The ``nir`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ConfigError(f"NIR support needs the nir package: {INSTALL}") from exc
    return nir


def _canonical(value: Any) -> bytes:
    """Bytes of one node field, the same before writing and after reading it back."""
    if isinstance(value, (str, bytes)):
        return value.encode() if isinstance(value, str) else value
    arr = np.asarray(value)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64).tobytes() + str(arr.shape).encode()
    return repr(value).encode()


def digest(graph: Any) -> str:
    """SHA-256 over the graph's edges and every node's type and numeric fields (metadata
    excluded): what ``metadata["snnfast_sha256"]`` records, so damage to a written file is found.
    """
    h = hashlib.sha256()
    for a, b in sorted((str(a), str(b)) for a, b in graph.edges):
        h.update(f"edge {a} -> {b};".encode())
    for key in sorted(graph.nodes):
        node = graph.nodes[key]
        h.update(f"node {key} {type(node).__name__};".encode())
        fields = node.to_dict()
        for name in sorted(fields):
            if name in ("metadata", "type", "input_type", "output_type", "nodes", "edges"):
                continue
            value = fields[name]
            if value is None:
                continue
            h.update(name.encode())
            h.update(_canonical(value))
    return h.hexdigest()


def graph_record(graph: Any) -> dict[str, Any] | None:
    """snnfast's JSON record in a graph's metadata (``None`` for a graph snnfast did not write).

    Raises:
        ModelFormatError: the graph says it holds snnfast's integer semantics but its record
            is unreadable, or its digest does not match its contents.
    """
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict) or meta.get(KEY_SEMANTICS) is None:
        return None
    semantics = _text(meta.get(KEY_SEMANTICS))
    if semantics != SEMANTICS:
        raise ModelFormatError(
            f"the graph declares snnfast semantics {semantics!r}; this snnfast reads {SEMANTICS!r}"
        )
    try:
        record = json.loads(_text(meta[KEY_RECORD]))
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"the graph's snnfast record is damaged ({exc})") from exc
    want = _text(meta.get(KEY_DIGEST, ""))
    if want and want != digest(graph):
        raise ModelFormatError(
            "the graph's contents do not match the checksum snnfast wrote into it "
            "(the file was damaged or edited)"
        )
    return record


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def read_graph(path: str | os.PathLike[str]) -> Any:
    """Read a ``.nir`` file as a ``nir.NIRGraph`` (without NIR's own type check, which refuses
    grouped convolutions; :func:`snnfast.from_nir` checks shapes itself).

    Raises:
        ModelFormatError: the file is missing, not HDF5, truncated, or not a NIR graph.
    """
    nir = import_nir()
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"{p}: no such NIR file")
    with open(p, "rb") as fh:
        magic = fh.read(8)
    if magic != b"\x89HDF\r\n\x1a\n":
        raise ModelFormatError(f"{p} is not a NIR file (not HDF5: it starts with {magic!r})")
    try:
        graph = nir.read(p, type_check=False)
    except Exception as exc:  # h5py and nir raise OSError, KeyError, ValueError, TypeError, ...
        raise ModelFormatError(
            f"{p} is not a readable NIR graph (truncated or damaged: {type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from exc
    if not isinstance(graph, nir.NIRGraph):
        raise ModelFormatError(f"{p} holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


def write_graph(graph: Any, path: str | os.PathLike[str]) -> None:
    """Write a ``nir.NIRGraph`` to ``path`` (HDF5, NIR's format), atomically."""
    nir = import_nir()
    with atomic_write(path, "w+b") as fh:
        nir.write(fh, graph)
