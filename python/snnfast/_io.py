"""Atomic file writing: a file is either the old one or the complete new one, never half.

A write goes to a temporary file beside the target, named ``.<name>.<pid>.<random>.tmp``, which
is flushed, synced and renamed over the target in one step; the directory is synced after the
rename. A process killed mid-write leaves only its temporary file, and the next write to the
same target removes temporaries whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_directory", "remove_orphans"]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_orphans(target: Path) -> int:
    """Delete temporary files and folders left beside ``target`` by writers that died.

    Returns how many were removed. Temporaries of live processes are left alone.
    """
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp$")
    removed = 0
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return 0
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                _rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    return removed


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and
    ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); give it the usual permissions under the umask.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _sync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; on success it replaces ``path`` (a folder).

    The old folder, if any, is moved aside and removed only after the new one is in place, so
    ``path`` always names a complete folder (for a moment, after a crash, it may be missing while
    the old one waits under a temporary name: the next write cleans that up).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(target)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    )
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if target.exists():
            old = Path(
                tempfile.mkdtemp(
                    prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
                )
            )
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
        _sync_dir(target.parent)
        if old is not None:
            _rmtree(old)
    except BaseException:
        _rmtree(tmp)
        raise
