"""The one exception hierarchy of snnfast.

Every error that snnfast raises on purpose is a :class:`SnnfastError`. The subclasses say what
kind of problem it is; those about bad arguments are also :class:`ValueError`, so code that
already catches ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "SnnfastError",
    "ShapeError",
    "ConfigError",
    "ResourceError",
    "DataError",
    "ModelFormatError",
    "IndexMismatchError",
]


class SnnfastError(Exception):
    """Base class of every error raised by snnfast."""


class ShapeError(SnnfastError, ValueError):
    """An array has the wrong rank, shape or dtype, or layer shapes do not chain."""


class ConfigError(SnnfastError, ValueError):
    """A parameter is outside its allowed range (threshold, leak, timesteps, bit widths, ...)."""


class ResourceError(SnnfastError):
    """A network does not fit the neuromorphic chip: names the layer, resource, need and limit."""


class DataError(SnnfastError):
    """A data set is missing, truncated or corrupt."""


class ModelFormatError(SnnfastError, ValueError):
    """A saved model, checkpoint or index is unreadable or belongs to something else."""


class IndexMismatchError(SnnfastError, ValueError):
    """A query does not match the retrieval index (model, readout, timesteps or dimension)."""
