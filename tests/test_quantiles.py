"""Exact streaming percentiles against numpy.percentile, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from snnfast import _quantiles


def _blocks(x: np.ndarray, size: int):
    return lambda: (x[i : i + size] for i in range(0, x.size, size))


@given(
    n=st.integers(1, 300),
    q=st.one_of(
        st.sampled_from([0.0, 0.1, 1.0, 50.0, 99.0, 99.9, 99.999, 100.0]), st.floats(0, 100)
    ),
    block=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["normal", "relu", "integers", "ties"]),
)
def test_equals_numpy_percentile(n, q, block, seed, kind) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4)
    if kind == "relu":
        x = np.maximum(x, 0.0)
    elif kind == "integers":
        x = np.round(x)
    elif kind == "ties":
        x = rng.integers(0, 3, n).astype(np.float64)
    want = np.percentile(x, q)
    assert _quantiles.percentile(_blocks(x, block), n, q) == want
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_quantiles, "KEEP_LIMIT", 0)  # force the radix selection
        assert _quantiles.percentile(_blocks(x, block), n, q) == want


def test_high_percentile_of_many_values_keeps_few(monkeypatch) -> None:
    x = np.random.default_rng(0).random(2_000_000)
    kept = []
    real = _quantiles._trim

    def spy(values, keep, top):
        kept.append(values.size)
        return real(values, keep, top)

    monkeypatch.setattr(_quantiles, "_trim", spy)
    got = _quantiles.percentile(_blocks(x, 100_000), x.size, 99.999)
    assert got == np.percentile(x, 99.999)
    assert max(kept) < 150_000  # never more than a block plus the top values


def test_wrong_count_is_an_error() -> None:
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="expected 11"):
        _quantiles.percentile(_blocks(x, 3), 11, 99.0)
    assert _quantiles.percentile(lambda: iter(()), 0, 50.0) == 0.0
