"""Argument checks shared by every module, with one wording, and the one "all cores" rule.

Each check returns the value converted to a plain Python type, or raises
:class:`~snnfast.errors.ConfigError` naming the parameter, the allowed range and what was given:
``"run: timesteps must be an integer in [1, 1048576], got 0"``. Booleans are never accepted as
numbers and numbers are never truncated: ``2.5`` is not an integer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, MemoryLimitError

__all__ = [
    "all_cores",
    "check_memory",
    "memory_limit",
    "choice",
    "flag",
    "integer",
    "number",
    "positive_int",
    "threads",
]


def _prefix(where: str | None) -> str:
    return f"{where}: " if where else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def integer(
    value: Any,
    name: str,
    lo: int | None = None,
    hi: int | None = None,
    *,
    where: str | None = None,
) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (either bound may be ``None``)."""
    if lo is not None and hi is not None:
        want = f"an integer in [{lo}, {hi}]"
    elif lo is not None:
        want = f"an integer >= {lo}"
    elif hi is not None:
        want = f"an integer <= {hi}"
    else:
        want = "an integer"
    if not _is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{_prefix(where)}{name} must be {want}, got {value!r}")
    return int(value)


def positive_int(value: Any, name: str, hi: int | None = None, *, where: str | None = None) -> int:
    """``value`` as an ``int >= 1`` (and ``<= hi`` when given)."""
    return integer(value, name, 1, hi, where=where)


def number(
    value: Any,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    where: str | None = None,
) -> float:
    """``value`` as a finite ``float`` in the interval given (open or closed at each end)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    x = float(value) if ok else math.nan
    if ok and math.isfinite(x):
        if lo is not None:
            ok = x > lo if lo_open else x >= lo
        if ok and hi is not None:
            ok = x < hi if hi_open else x <= hi
    else:
        ok = False
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f" in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ConfigError(f"{_prefix(where)}{name} must be a finite number{rng}, got {value!r}")
    return x


def flag(value: Any, name: str, *, where: str | None = None) -> bool:
    """``value`` as a ``bool`` (only ``True`` or ``False`` are accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{_prefix(where)}{name} must be True or False, got {value!r}")
    return bool(value)


def choice(value: Any, name: str, options: Sequence[str], *, where: str | None = None) -> str:
    """``value``, which must be one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ConfigError(
            f"{_prefix(where)}{name} must be one of {', '.join(map(repr, options))}, got {value!r}"
        )
    return value


def all_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask; at least 1).

    The one rule for "all cores" in snnfast: engine threads, index threads and timing code
    all default to it.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


MAX_THREADS = 4096
"""Most worker threads any snnfast call accepts."""


def threads(value: Any, *, where: str | None = None) -> int:
    """A thread count: ``None`` means :func:`all_cores`, else an integer in [1, 4096]."""
    if value is None:
        return all_cores()
    return positive_int(value, "threads", MAX_THREADS, where=where)


MEMORY_ENV = "SNNFAST_MEMORY_LIMIT"
"""Environment variable that sets :func:`memory_limit` in bytes (e.g. ``8e9``)."""


def memory_limit() -> int:
    """Bytes one allocation driven by input (a run's outputs, a file's arrays) may take.

    ``$SNNFAST_MEMORY_LIMIT`` when set, else the memory the system reports as available
    (``MemAvailable`` of ``/proc/meminfo``), else physical memory, else 8 GiB.
    """
    env = os.environ.get(MEMORY_ENV)
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise ConfigError(f"{MEMORY_ENV} must be a number of bytes, got {env!r}") from None
        if value < 1:
            raise ConfigError(f"{MEMORY_ENV} must be positive, got {env!r}")
        return value
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 8 << 30


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_memory(need: int, what: str) -> None:
    """Raise :class:`MemoryLimitError` when ``need`` bytes exceed :func:`memory_limit`."""
    limit = memory_limit()
    if need > limit:
        raise MemoryLimitError(
            f"{what} needs {_gb(need)} of memory, more than the limit of {_gb(limit)} "
            f"(available memory, or ${MEMORY_ENV})",
            need_bytes=int(need),
            limit_bytes=int(limit),
        )
