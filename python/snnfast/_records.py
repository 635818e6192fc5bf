"""JSON for typed records: frozen dataclasses of settings and results, JSON only at the edge.

A record class is a dataclass that inherits :class:`Record`. Its fields hold JSON-like values:
``None``, ``bool``, ``int``, ``float``, ``str``, tuples and lists of them, ``dict[str, ...]``
and nested records. :meth:`Record.to_json` turns it into plain JSON data; :meth:`Record.from_json`
rebuilds it from the field types, so a record read back equals the one written.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import ModelFormatError

__all__ = ["Record"]

R = TypeVar("R", bound="Record")


class Record:
    """Mixin of the typed settings and result records (dataclasses)."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON data (dicts, lists, numbers, strings, ``None``)."""
        return {f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def replace(self: R, **changes: Any) -> R:
        """A copy with the given fields changed (and checked again by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        """Rebuild a record from :meth:`to_json`'s output.

        Raises:
            ModelFormatError: ``data`` does not have the record's fields or types.
        """
        return _load(cls, data, cls.__name__)


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _dump(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        return _dump(value.item())
    return value


def _load(tp: Any, data: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _load(arg, data, where)
            except ModelFormatError as exc:
                errors.append(str(exc))
        raise ModelFormatError(errors[0] if errors else f"{where}: unexpected {data!r}")
    if isinstance(tp, type) and issubclass(tp, Record) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ModelFormatError(f"{where}: expected an object, got {type(data).__name__}")
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ModelFormatError(f"{where}: unknown field(s) {unknown}")
        kwargs = {}
        for name, f in fields.items():
            if name in data:
                kwargs[name] = _load(hints[name], data[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ModelFormatError(f"{where}: missing field {name!r}")
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: {exc}") from exc
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence):
        if not isinstance(data, list):
            raise ModelFormatError(f"{where}: expected a list, got {type(data).__name__}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(data):
                raise ModelFormatError(f"{where}: expected {len(args)} items, got {len(data)}")
            return tuple(_load(a, d, f"{where}[{i}]") for i, (a, d) in enumerate(zip(args, data)))
        item = args[0] if args else Any
        out = [_load(item, d, f"{where}[{i}]") for i, d in enumerate(data)]
        return out if origin is list else tuple(out)
    if origin in (dict, typing.Mapping, collections.abc.Mapping):
        if not isinstance(data, dict):
            raise ModelFormatError(f"{where}: expected an object, got {type(data).__name__}")
        args = get_args(tp)
        item = args[1] if args else Any
        return {str(k): _load(item, v, f"{where}[{k!r}]") for k, v in data.items()}
    if tp is float:
        if data in ("inf", "-inf"):
            return float(data)
        if data is None:
            return math.nan
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise ModelFormatError(f"{where}: expected a number, got {data!r}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise ModelFormatError(f"{where}: expected an integer, got {data!r}")
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise ModelFormatError(f"{where}: expected true or false, got {data!r}")
    if tp is str:
        if isinstance(data, str):
            return data
        raise ModelFormatError(f"{where}: expected a string, got {data!r}")
    if get_origin(tp) is typing.Literal:
        if data in get_args(tp):
            return data
        raise ModelFormatError(f"{where}: expected one of {get_args(tp)}, got {data!r}")
    raise ModelFormatError(f"{where}: cannot read a value of type {tp!r}")  # pragma: no cover
