"""The one file container of snnfast: an ``.npz`` archive with a checksummed JSON header.

Every file kind snnfast writes (ANN models, converted models, embeddings, indexes, caches) is
this container, so each is read, checked and written the same way:

* a ZIP archive that ``numpy.load(path, allow_pickle=False)`` can open: one ``header.npy``
  member (uint8, the UTF-8 JSON header) and one ``<name>.npy`` member per array;
* the header is ``{"format": "snnfast.<kind>", "version": N, "writer": "snnfast X.Y",
  "body": {...}, "arrays": {name: {"dtype", "shape", "sha256"}}, "sha256": ...}``: ``body`` is
  the kind's own JSON, ``arrays`` lists every array with the SHA-256 of its bytes, and the
  top-level ``sha256`` covers the canonical JSON of everything else;
* written atomically (:func:`snnfast._io.atomic_write`).

Reading checks, before any array is allocated or any native parser sees the bytes: that the
file is a ZIP archive, that its format is the kind asked for (naming the kind it *is*, when it is
another snnfast file), the version, the header checksum, that the archive holds exactly the
listed arrays, that the total size fits the memory limit (:func:`snnfast._checks.memory_limit`),
and then each array's declared dtype and shape against its ``.npy`` header and its bytes against
their checksum. Nothing is unpickled; object arrays are refused.

Files of the first format version (a ``header`` member without checksums) are still read, with
the same structural checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks
from ._io import atomic_write
from .errors import ModelFormatError

__all__ = ["Contents", "read", "write", "sniff"]

PREFIX = "snnfast."
HEADER = "header"
MAX_HEADER_BYTES = 256 << 20
"""Largest JSON header read (converted models of large networks keep their ANN state here)."""
_KINDS_ALLOWED = {"b", "i", "u", "f", "U"}  # bool, integers, floats, fixed-width unicode


@dataclass(frozen=True)
class Contents:
    """What :func:`read` returns.

    Attributes:
        kind: the file kind (``"converted"``, ``"embeddings"``, ...).
        version: its format version.
        body: the kind's JSON header.
        arrays: every array, by name.
        checked: whether checksums were verified (``False`` only for first-version files).
    """

    kind: str
    version: int
    body: dict[str, Any]
    arrays: dict[str, np.ndarray]
    checked: bool


def _digest_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _array_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def write(
    path: str | os.PathLike[str],
    kind: str,
    version: int,
    body: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray] | None = None,
    *,
    compress: bool = True,
) -> None:
    """Write a container file atomically.

    Args:
        path: the target file.
        kind: the file kind; the header's format is ``"snnfast." + kind``.
        version: the kind's format version (2 or more; 1 was the unchecked first format).
        body: JSON-serialisable header of the kind (no NaN or infinity).
        arrays: arrays to store (numeric, bool or fixed-width unicode; no objects).
        compress: deflate the members (smaller, slower to write and read).

    Raises:
        ModelFormatError: ``body`` is not JSON-serialisable or an array has an object dtype.
    """
    from ._core import __version__

    arrays = dict(arrays or {})
    manifest = {}
    prepared: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or "/" in name or name == HEADER:
            raise ModelFormatError(f"array name {name!r} is not allowed in an snnfast file")
        a = np.ascontiguousarray(value)
        if a.dtype.kind not in _KINDS_ALLOWED or a.dtype.hasobject:
            raise ModelFormatError(
                f"array {name!r} has dtype {a.dtype}, which snnfast does not store"
            )
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        prepared[name] = a
        manifest[name] = {
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "sha256": hashlib.sha256(_array_bytes(a)).hexdigest(),
        }
    header: dict[str, Any] = {
        "format": PREFIX + kind,
        "version": int(version),
        "writer": f"snnfast {__version__}",
        "body": dict(body),
        "arrays": manifest,
    }
    try:
        header["sha256"] = _digest_json(header)
        text = json.dumps(header, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{kind} header is not JSON-serialisable: {exc}") from exc
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", compression=method) as zf:
        _write_member(zf, HEADER, np.frombuffer(text, dtype=np.uint8))
        for name, a in prepared.items():
            _write_member(zf, name, a)


def _write_member(zf: zipfile.ZipFile, name: str, a: np.ndarray) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, a, allow_pickle=False)


def sniff(path: str | os.PathLike[str]) -> tuple[str, int] | None:
    """``(kind, version)`` of an snnfast container file, or ``None`` if it is not one."""
    try:
        with zipfile.ZipFile(path) as zf:
            header = _read_header(zf, Path(path))
    except (
        OSError,
        zipfile.BadZipFile,
        ModelFormatError,
        ValueError,
        EOFError,
        NotImplementedError,
    ):
        return None
    fmt = header.get("format")
    version = header.get("version")
    if not isinstance(fmt, str) or not fmt.startswith(PREFIX) or not isinstance(version, int):
        return None
    return fmt[len(PREFIX) :], version


def read(
    path: str | os.PathLike[str],
    kind: str | Iterable[str],
    versions: Iterable[int],
    *,
    what: str | None = None,
) -> Contents:
    """Read and check a container file (see the module docstring for what is checked).

    Args:
        path: the file.
        kind: the kind (or kinds) expected.
        versions: the format versions this snnfast reads; version 1 files are read without
            checksums.
        what: how to call the kind in messages (default: ``kind``).

    Raises:
        ModelFormatError: the file is missing, not a ZIP archive, another kind or version,
            damaged (checksum, shape, dtype or truncation), or holds unlisted members.
        MemoryLimitError: its arrays would need more memory than the limit.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    label = what or " or ".join(kinds)
    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(f"no {label} file at {p}")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ModelFormatError(
            f"{p} is not an snnfast {label} file (not a readable .npz archive: {exc})"
        ) from exc
    try:
        with zf:
            return _read(zf, p, kinds, set(versions), label)
    except ModelFormatError:
        raise
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
        zlib.error,
    ) as exc:
        raise ModelFormatError(f"{p} is damaged ({type(exc).__name__}: {exc})") from exc


def _npy_header(fh: Any, where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    try:
        major, _ = np.lib.format.read_magic(fh)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown .npy version {major}")
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        # numpy parses the header with ast.literal_eval: damage there can end the tokenizer
        raise ModelFormatError(f"{where}: bad array header ({exc})") from exc
    if dtype.hasobject or dtype.kind not in _KINDS_ALLOWED:
        raise ModelFormatError(f"{where}: array dtype {dtype} is not one snnfast stores")
    return tuple(int(s) for s in shape), dtype, bool(fortran)


def _read_array(
    zf: zipfile.ZipFile, member: str, where: str, expect: tuple[tuple[int, ...], np.dtype] | None
) -> np.ndarray:
    info = zf.getinfo(member)
    with zf.open(info) as fh:
        shape, dtype, fortran = _npy_header(fh, where)
        if expect is not None and (shape, dtype) != expect:
            raise ModelFormatError(
                f"{where}: array is {dtype.str} {shape}, the header lists "
                f"{expect[1].str} {expect[0]}"
            )
        count = 1
        for s in shape:
            if s < 0:
                raise ModelFormatError(f"{where}: negative dimension in shape {shape}")
            count *= s
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise ModelFormatError(
                f"{where}: the array needs {nbytes} bytes but the member holds {info.file_size}"
            )
        _checks.check_memory(nbytes, f"reading {where}")
        buf = bytearray(nbytes)
        got = 0
        while got < nbytes:
            chunk = fh.read(min(nbytes - got, 1 << 24))
            if not chunk:
                raise ModelFormatError(f"{where}: truncated ({got} of {nbytes} bytes)")
            buf[got : got + len(chunk)] = chunk
            got += len(chunk)
        if fh.read(1):
            raise ModelFormatError(f"{where}: trailing bytes after the array")
    out = np.frombuffer(buf, dtype=dtype, count=count)
    return out.reshape(shape, order="F" if fortran else "C")


def _read_header(zf: zipfile.ZipFile, p: Path) -> dict[str, Any]:
    names = set(zf.namelist())
    member = HEADER + ".npy"
    if member not in names:
        raise ModelFormatError(f"{p} is not an snnfast file: a .npz archive with no header")
    info = zf.getinfo(member)
    if info.file_size > MAX_HEADER_BYTES:
        raise ModelFormatError(f"{p}: header of {info.file_size} bytes is larger than allowed")
    raw = _read_array(zf, member, f"{p} header", None)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFormatError(f"{p}: header is not a byte string")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{p}: header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelFormatError(f"{p}: header is not a JSON object")
    return header


def _read(
    zf: zipfile.ZipFile, p: Path, kinds: tuple[str, ...], versions: set[int], label: str
) -> Contents:
    header = _read_header(zf, p)
    fmt = header.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(PREFIX):
        raise ModelFormatError(f"{p} is not an snnfast {label} file (format {fmt!r})")
    kind = fmt[len(PREFIX) :]
    if kind not in kinds:
        raise ModelFormatError(f"{p} is an snnfast {kind} file, not an snnfast {label}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in versions:
        raise ModelFormatError(
            f"{p} is a {label} file of format version {version!r}; this snnfast reads "
            f"version(s) {sorted(versions)}"
        )
    members = {n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")} - {HEADER}
    others = [n for n in zf.namelist() if not n.endswith(".npy")]
    if others:
        raise ModelFormatError(f"{p}: unexpected members {others[:5]}")
    if version == 1:
        return _read_legacy(zf, p, kind, header, members)
    digest = header.pop("sha256", None)
    if not isinstance(digest, str) or _digest_json(header) != digest:
        raise ModelFormatError(f"{p} is damaged: its header checksum does not match")
    manifest = header.get("arrays")
    body = header.get("body")
    if not isinstance(manifest, dict) or not isinstance(body, dict):
        raise ModelFormatError(f"{p}: header lacks its body or array list")
    if set(manifest) != members:
        raise ModelFormatError(
            f"{p} is damaged: it holds arrays {sorted(members)}, its header lists "
            f"{sorted(manifest)}"
        )
    expected: dict[str, tuple[tuple[int, ...], np.dtype, str]] = {}
    total = 0
    for name, spec in manifest.items():
        try:
            dtype = np.dtype(str(spec["dtype"]))
            shape = tuple(int(s) for s in spec["shape"])
            sha = str(spec["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{p}: bad entry for array {name!r} ({exc})") from exc
        if dtype.hasobject or dtype.kind not in _KINDS_ALLOWED or any(s < 0 for s in shape):
            raise ModelFormatError(f"{p}: array {name!r} has dtype {dtype} shape {shape}")
        total += int(np.prod(shape, dtype=object)) * dtype.itemsize
        expected[name] = (shape, dtype, sha)
    _checks.check_memory(total, f"reading {p}")
    arrays = {}
    for name, (shape, dtype, sha) in expected.items():
        a = _read_array(zf, name + ".npy", f"{p} array {name!r}", (shape, dtype))
        if hashlib.sha256(_array_bytes(a)).hexdigest() != sha:
            raise ModelFormatError(f"{p} is damaged: array {name!r} does not match its checksum")
        arrays[name] = a
    return Contents(kind, version, body, arrays, True)


def _read_legacy(
    zf: zipfile.ZipFile, p: Path, kind: str, header: dict[str, Any], members: set[str]
) -> Contents:
    """A first-version file: the header is the body; arrays are read with structural checks."""
    total = 0
    for name in members:
        total += zf.getinfo(name + ".npy").file_size
    _checks.check_memory(total, f"reading {p}")
    arrays = {name: _read_array(zf, name + ".npy", f"{p} array {name!r}", None) for name in members}
    body = {k: v for k, v in header.items() if k not in ("format", "version")}
    return Contents(kind, 1, body, arrays, False)
