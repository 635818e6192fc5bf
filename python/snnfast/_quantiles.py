"""Exact percentiles of values that arrive in blocks, in bounded memory.

:func:`percentile` returns exactly what ``numpy.percentile(all_values, q)`` (the default
``"linear"`` method) returns for the concatenation of the blocks, without holding them all. The
count of values is known in advance, so the rank ``h = (n - 1) * q / 100`` is too, and only the
two order statistics around it matter:

* when few values lie on one side of the rank (a high percentile such as 99.999, as conversion
  uses), one pass keeps just those: the ``n - floor(h)`` largest (or the ``floor(h) + 2``
  smallest) values seen so far, trimmed with ``numpy.partition`` after each block;
* otherwise a radix selection over the values' order-preserving 64-bit keys, 16 bits per pass,
  asks for the blocks again (at most five passes) and keeps only a histogram per pass.

The interpolation is NumPy's own formula (checked against ``numpy.percentile`` bit for bit in
the tests, so a NumPy change that altered it would be caught).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["KEEP_LIMIT", "percentile"]

KEEP_LIMIT = 1 << 23
"""Most values the one-pass method keeps (64 MiB of float64)."""


def _lerp(a: float, b: float, t: float) -> float:
    """NumPy's ``_lerp`` (numpy/lib/_function_base_impl.py) for scalars."""
    diff = np.float64(b) - np.float64(a)
    if t >= 0.5:
        return float(np.float64(b) - diff * (1 - np.float64(t)))
    return float(np.float64(a) + diff * np.float64(t))


def _rank(n: int, q: float) -> tuple[int, float, bool]:
    """``(floor(h), gamma, above)`` for ``h = (n - 1) * q / 100`` as NumPy computes it."""
    quantile = np.true_divide(np.float64(q), 100)
    h = (n - 1) * quantile
    lo = math.floor(h)
    return int(lo), float(h - lo), bool(h >= n - 1)


def percentile(blocks: Callable[[], Iterable[np.ndarray]], n: int, q: float) -> float:
    """``numpy.percentile`` of all values the iterable from ``blocks()`` yields, exactly.

    Args:
        blocks: called (once, or a few times for the radix method) to iterate over the values
            as float64 arrays; each call must yield the same values (in any order).
        n: how many values the blocks hold in total (``0`` gives ``0.0``).
        q: the percentile, in ``[0, 100]``.
    """
    if n == 0:
        return 0.0
    lo, gamma, above = _rank(n, q)
    if above:
        return float(max(float(np.max(b)) for b in blocks() if b.size))
    need_top = n - lo  # values with sorted index >= lo
    need_bottom = lo + 2  # values with sorted index <= lo + 1
    if min(need_top, need_bottom) <= KEEP_LIMIT:
        a, b = _one_pass(blocks, n, lo, need_top <= need_bottom)
    else:
        a, b = _radix(blocks, lo), _radix(blocks, lo + 1)
    return _lerp(a, b, gamma)


def _one_pass(
    blocks: Callable[[], Iterable[np.ndarray]], n: int, lo: int, top: bool
) -> tuple[float, float]:
    keep = n - lo if top else lo + 2
    kept = np.empty(0, dtype=np.float64)
    seen = 0
    for block in blocks():
        v = np.asarray(block, dtype=np.float64).reshape(-1)
        seen += v.size
        kept = np.concatenate([kept, v])
        if kept.size > 2 * keep:
            kept = _trim(kept, keep, top)
    if seen != n:
        raise ValueError(f"percentile: expected {n} values, the blocks held {seen}")
    kept = np.sort(_trim(kept, keep, top))
    if top:  # kept[i] has sorted index lo + i
        return float(kept[0]), float(kept[min(1, kept.size - 1)])
    return float(kept[lo]), float(kept[min(lo + 1, kept.size - 1)])


def _trim(values: np.ndarray, keep: int, top: bool) -> np.ndarray:
    """The ``keep`` largest (``top``) or smallest values, unordered."""
    if values.size <= keep:
        return values
    if top:
        return np.partition(values, values.size - keep)[values.size - keep :]
    return np.partition(values, keep - 1)[:keep]


def _keys(v: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of float64 values."""
    bits = v.view(np.uint64)
    neg = (bits >> np.uint64(63)).astype(bool)
    return np.where(neg, ~bits, bits | np.uint64(1 << 63))


def _radix(blocks: Callable[[], Iterable[np.ndarray]], rank: int) -> float:
    """The value of sorted index ``rank`` by radix selection on 16-bit digits."""
    prefix = np.uint64(0)
    shift = 64
    mask = np.uint64(0)
    remaining = rank
    while shift > 0:
        shift -= 16
        counts = np.zeros(1 << 16, dtype=np.int64)
        for block in blocks():
            k = _keys(np.ascontiguousarray(block, dtype=np.float64).reshape(-1))
            k = k[(k & mask) == prefix]
            counts += np.bincount(
                ((k >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64), minlength=1 << 16
            )
        cum = np.cumsum(counts)
        digit = int(np.searchsorted(cum, remaining, side="right"))
        remaining -= int(cum[digit - 1]) if digit else 0
        prefix |= np.uint64(digit) << np.uint64(shift)
        mask |= np.uint64(0xFFFF) << np.uint64(shift)
    key = prefix
    bits = key & ~np.uint64(1 << 63) if key >> np.uint64(63) else ~key
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
