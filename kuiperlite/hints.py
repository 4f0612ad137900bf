"""Type hints as the schema: conversion of config values and SQL arguments.

A hint is turned once, at collection time, into a converter: a function that
takes a decoded JSON value and returns the value the user code expects, or
raises :class:`Mismatch` with a phrase saying what was expected. Conversions
are lossless only: ``"12"`` becomes ``12`` for an ``int``, ``3.0`` becomes
``3``, but ``3.5`` never becomes ``3``.
"""

from __future__ import annotations

import enum
import math
import sys
import typing
from typing import Any, Callable, Optional, Union

Converter = Callable[[Any], Any]

if sys.version_info >= (3, 10):
    from types import UnionType

    _UNION_TYPES: tuple[Any, ...] = (Union, UnionType)
else:  # pragma: no cover - Python 3.9
    _UNION_TYPES = (Union,)


class Mismatch(ValueError):
    """A value does not fit a hint; ``str(err)`` reads "must be X, got Y"."""

    def __init__(self, expected: str, value: Any, where: str = "") -> None:
        self.expected = expected
        self.value = value
        self.where = where
        inside = f" ({where})" if where else ""
        super().__init__(f"must be {expected}, got {describe_value(value)}{inside}")


class UnsupportedHint(TypeError):
    """A hint has no JSON counterpart, so kuiperlite cannot convert to it."""


def describe_value(value: Any) -> str:
    """Name a decoded JSON value the way an error message should show it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    return f"a {type(value).__name__}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_str(value: Any) -> str:
    if type(value) is str:
        return value
    if _is_number(value):
        return str(value)
    raise Mismatch("a string", value)


def _to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise Mismatch("an integer", value)


def _to_float(value: Any) -> float:
    if type(value) is float:
        return value
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(result):
                return result
    raise Mismatch("a number", value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Mismatch("true or false", value)


def _to_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    raise Mismatch("an object", value)


def _to_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    raise Mismatch("a list", value)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise Mismatch("bytes", value)


_SIMPLE: dict[Any, tuple[Converter, str]] = {
    str: (_to_str, "a string"),
    int: (_to_int, "an integer"),
    float: (_to_float, "a number"),
    bool: (_to_bool, "true or false"),
    dict: (_to_dict, "an object"),
    list: (_to_list, "a list"),
    bytes: (_to_bytes, "bytes"),
}

_PLURALS = {
    "a string": "strings",
    "an integer": "integers",
    "a number": "numbers",
    "true or false": "booleans",
    "an object": "objects",
    "a list": "lists",
}


def unwrap_optional(hint: Any) -> Any:
    """``Optional[X]`` -> ``X``; other hints unchanged."""
    if typing.get_origin(hint) in _UNION_TYPES:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
        return Union[tuple(rest)]
    return hint


def describe(hint: Any) -> str:
    """A phrase for what a hint accepts, e.g. "a list of integers"."""
    return _build(hint)[1]


def converter(hint: Any) -> Optional[Converter]:
    """The converter for a hint, or None when values pass through unchanged.

    Raises:
        UnsupportedHint: the hint has no JSON counterpart.
    """
    return _build(hint)[0]


def convert(hint: Any, value: Any) -> Any:
    """Convert one value by a hint (a convenience over :func:`converter`)."""
    conv = converter(hint)
    return value if conv is None else conv(value)


def _build(hint: Any) -> tuple[Optional[Converter], str]:
    if hint is Any or hint is typing.Any or hint is object:
        return None, "any value"
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in _UNION_TYPES:
        return _build_union(hint, args)
    if origin is typing.Literal:
        return _build_literal(args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _build_enum(hint)
    if origin in (list, tuple) and (len(args) == 1 or origin is tuple):
        return _build_list(args[0] if args else Any)
    if origin is dict:
        key, val = args if args else (str, Any)
        if key is not str:
            raise UnsupportedHint(f"{hint!r}: JSON objects only have string keys")
        return _build_dict(val)
    raise UnsupportedHint(f"{_hint_name(hint)} has no JSON counterpart")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)


def _build_union(hint: Any, args: tuple[Any, ...]) -> tuple[Optional[Converter], str]:
    rest = [a for a in args if a is not type(None)]
    if len(rest) != 1:
        raise UnsupportedHint(f"{hint!r}: only Optional[X] unions are supported")
    inner, phrase = _build(rest[0])
    if inner is None:
        return None, phrase
    inner_conv = inner

    def optional(value: Any) -> Any:
        return None if value is None else inner_conv(value)

    return optional, f"{phrase} or null"


def _build_literal(choices: tuple[Any, ...]) -> tuple[Converter, str]:
    shown = ", ".join(repr(c) for c in choices)
    phrase = f"one of {shown}"
    convs = [(c, _SIMPLE.get(type(c), (None,))[0]) for c in choices]

    def literal(value: Any) -> Any:
        for choice, conv in convs:
            candidate = value
            if conv is not None and type(value) is not type(choice):
                try:
                    candidate = conv(value)
                except Mismatch:
                    continue
            if type(candidate) is type(choice) and candidate == choice:
                return choice
        raise Mismatch(phrase, value)

    return literal, phrase


def _build_enum(cls: type[enum.Enum]) -> tuple[Converter, str]:
    members = list(cls)
    shown = ", ".join(repr(m.value) for m in members)
    phrase = f"one of {shown}"

    def to_enum(value: Any) -> enum.Enum:
        if isinstance(value, cls):
            return value
        for member in members:
            if type(member.value) is type(value) and member.value == value:
                return member
        if isinstance(value, str) and value in cls.__members__:
            return cls.__members__[value]
        raise Mismatch(phrase, value)

    return to_enum, phrase


def _build_list(item_hint: Any) -> tuple[Converter, str]:
    item, item_phrase = _build(item_hint)
    phrase = "a list" if item is None else f"a list of {_PLURALS.get(item_phrase, item_phrase)}"
    if item is None:
        return _to_list, phrase
    item_conv = item

    def to_list(value: Any) -> list:
        if not isinstance(value, (list, tuple)):
            raise Mismatch(phrase, value)
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item_conv(element))
            except Mismatch as err:
                raise Mismatch(phrase, value, where=f"item {i} {err}") from None
        return out

    return to_list, phrase


def _build_dict(value_hint: Any) -> tuple[Converter, str]:
    val, val_phrase = _build(value_hint)
    if val is None:
        return _to_dict, "an object"
    phrase = f"an object of {_PLURALS.get(val_phrase, val_phrase)}"
    val_conv = val

    def to_dict(value: Any) -> dict:
        if not isinstance(value, dict):
            raise Mismatch(phrase, value)
        out = {}
        for key, element in value.items():
            try:
                out[key] = val_conv(element)
            except Mismatch as err:
                raise Mismatch(phrase, value, where=f"key {key!r} {err}") from None
        return out

    return to_dict, phrase
