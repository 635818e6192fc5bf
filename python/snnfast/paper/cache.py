"""The study's cache: JSON entries, each named by the hash of its key and checked by a digest.

An entry is one JSON file ``<root>/<kind>/<hash>.json`` holding ``kind``, ``key``, ``value``,
the time it was written and the SHA-256 of the canonical JSON of the first three. It is used
only when it parses, its digest matches and its stored key equals the one asked for; anything
else (a torn write by another program, an edited file, a hash collision) reads as absent and is
computed again. Files are written atomically (:func:`snnfast._io.atomic_write`), so an
interrupted run, Ctrl-C included, leaves a complete entry or none.

Files an entry stands for (the Fig 6 PNG of Table 2) store their own SHA-256 in the entry's
value (:func:`file_digest`) and are checked against it before reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .._io import atomic_write

__all__ = ["CACHE_VERSION", "Cache", "canonical", "digest", "dump_json", "file_digest"]

CACHE_VERSION = 2
"""Version of the entry format (1: entries without a digest, no longer read)."""


def canonical(obj: Any) -> Any:
    """``obj`` as JSON gives it back (tuples become lists)."""
    return json.loads(json.dumps(obj, sort_keys=True))


def digest(obj: Any) -> str:
    """16 hexadecimal digits of the SHA-256 of ``obj``'s canonical JSON (names files)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _checksum(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hexadecimal)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dump_json(obj: Any, fh: IO[str]) -> None:
    """Serialise ``obj`` into an open file (the one place the study writes JSON, so tests can
    interrupt a write)."""
    json.dump(obj, fh, indent=1, allow_nan=True)


class Cache:
    """Digest-checked JSON entries under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, key: dict[str, Any], suffix: str = ".json") -> Path:
        """Where the entry (or a file it stands for, by ``suffix``) of ``key`` lives."""
        name = digest({"v": CACHE_VERSION, "kind": kind, **key})
        return self.root / kind / f"{name}{suffix}"

    def get(self, kind: str, key: dict[str, Any]) -> Any | None:
        """The stored value, or ``None`` if absent, damaged or stored under another key."""
        path = self.path(kind, key)
        try:
            with open(path) as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or set(entry) != {
            "kind",
            "key",
            "value",
            "written",
            "sha256",
        }:
            return None
        body = {"kind": entry["kind"], "key": entry["key"], "value": entry["value"]}
        if entry["sha256"] != _checksum(body) or entry["key"] != canonical(key):
            return None
        if entry["kind"] != kind:
            return None
        return entry["value"]

    def put(self, kind: str, key: dict[str, Any], value: Any) -> None:
        """Store ``value`` (JSON data) under ``key``, atomically."""
        body = {"kind": kind, "key": canonical(key), "value": canonical(value)}
        entry = {
            **body,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sha256": _checksum(body),
        }
        with atomic_write(self.path(kind, key), "w") as fh:
            dump_json(entry, fh)
