"""Shared fixtures of the benchmarks: real Fashion-MNIST images and the converted shipped model.

Run with ``make bench`` (``pytest benches --benchmark-only``). Ratios against a baseline are
measured in the same process and recorded in each benchmark's ``extra_info``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the goals' figures of every benchmark module that set ``TERMINAL_SUMMARY``
    (a title and its lines) after pytest's own summary, also with ``-q``."""
    for module in list(sys.modules.values()):
        summary = getattr(module, "TERMINAL_SUMMARY", None)
        if isinstance(summary, tuple) and summary[1]:
            terminalreporter.write_sep("=", summary[0])
            for line in summary[1]:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def test_images() -> np.ndarray:
    from snnfast.data import load_fashion_mnist

    images, _ = load_fashion_mnist("test", limit=1000)
    return images


@pytest.fixture(scope="session")
def converted():
    """The shipped 32-64-10, converted with Algorithm 1 on 1,000 seeded training images."""
    from snnfast.data import load_fashion_mnist
    from snnfast.evaluation import calibrate_and_convert

    train, _ = load_fashion_mnist("train")
    return calibrate_and_convert(None, train)
