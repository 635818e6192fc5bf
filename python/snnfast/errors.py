"""The one exception hierarchy of snnfast.

Every error that snnfast raises on purpose is a :class:`SnnfastError`. The subclasses say what
kind of problem it is; those about bad arguments are also :class:`ValueError`, so code that
already catches ``ValueError`` keeps working. Errors carry their facts as attributes (the layer
or node, the resource, what was needed and the limit), not only as text.
"""

from __future__ import annotations

__all__ = [
    "SnnfastError",
    "ShapeError",
    "ConfigError",
    "ResourceError",
    "MemoryLimitError",
    "DataError",
    "ModelFormatError",
    "IndexMismatchError",
    "ConversionError",
]


class SnnfastError(Exception):
    """Base class of every error raised by snnfast."""


class ShapeError(SnnfastError, ValueError):
    """An array has the wrong rank, shape or dtype, or layer shapes do not chain."""


class ConfigError(SnnfastError, ValueError):
    """A parameter is outside its allowed range (threshold, leak, timesteps, bit widths, ...)."""


class ResourceError(SnnfastError):
    """A network does not fit the neuromorphic chip: names the layer, resource, need and limit.

    Attributes:
        layer: the layer (``"layer 3 (dense)"``) or ``None``.
        resource: the resource that does not fit (``"input_axons"``, ...) or ``None``.
        need, limit: what one core (or the chip) would need and what it has, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        layer: str | None = None,
        resource: str | None = None,
        need: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message)
        self.layer = layer
        self.resource = resource
        self.need = need
        self.limit = limit


class MemoryLimitError(SnnfastError, MemoryError):
    """Something would need more memory than snnfast allows itself (checked before allocating).

    Attributes:
        need_bytes: the bytes the network, run or file would need.
        limit_bytes: the limit it was checked against.
    """

    def __init__(self, message: str, *, need_bytes: int = 0, limit_bytes: int = 0) -> None:
        super().__init__(message)
        self.need_bytes = need_bytes
        self.limit_bytes = limit_bytes


class DataError(SnnfastError):
    """A data set is missing, truncated or corrupt."""


class ModelFormatError(SnnfastError, ValueError):
    """A saved model, checkpoint or index is unreadable, damaged or belongs to something else."""


class IndexMismatchError(SnnfastError, ValueError):
    """A query does not match the retrieval index (model, readout, timesteps or dimension)."""


class ConversionError(SnnfastError, ValueError):
    """A model or graph that cannot be converted to an integer spiking network.

    Attributes:
        node: the node's qualified name (``"layer2.0.conv1"``, or the NIR node key).
        op: what the node is (``"MaxPool2d"``, ``"call_function gelu"``, ``"nir.LI"``).
        reason: why it cannot be converted.
        fix: the usual fix, or ``""``.
    """

    def __init__(self, node: str, op: str, reason: str, fix: str = "") -> None:
        text = f"{node} ({op}): {reason}"
        if fix:
            text += f"; {fix}"
        super().__init__(text)
        self.node = node
        self.op = op
        self.reason = reason
        self.fix = fix

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        return (type(self), (self.node, self.op, self.reason, self.fix))
