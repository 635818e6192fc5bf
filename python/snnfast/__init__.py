"""snnfast: fast, exact, event-driven integer spiking networks for neuromorphic image retrieval.

The engine contract (``Network``, ``Conv2d``, ``AvgPool2d``, ``Dense``, ``RunResult``) needs only
NumPy; training needs the ``train`` extra (PyTorch).
"""

from __future__ import annotations

from ._core import __version__
from .errors import (
    ConfigError,
    DataError,
    IndexMismatchError,
    ModelFormatError,
    ResourceError,
    ShapeError,
    SnnfastError,
)
from .network import AvgPool2d, Conv2d, Dense, Layer, Network, RunResult

__all__ = [
    "__version__",
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "Layer",
    "Network",
    "RunResult",
    "SnnfastError",
    "ShapeError",
    "ConfigError",
    "ResourceError",
    "DataError",
    "ModelFormatError",
    "IndexMismatchError",
]
