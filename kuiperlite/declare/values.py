"""Plain JSON values: how messages name one (:func:`describe_value`), the error
for one that does not fit (:class:`Mismatch`), and the lossless conversions to
the plain types (``"12"`` becomes ``12`` for an ``int``, ``3.0`` becomes ``3``,
but ``3.5`` never becomes ``3``)."""

from __future__ import annotations

import math
from typing import Any, Callable

Converter = Callable[[Any], Any]


class Mismatch(ValueError):
    """A value does not fit a hint; ``str(err)`` reads "must be X, got Y"."""

    def __init__(self, expected: str, value: Any, where: str = "") -> None:
        self.expected = expected
        self.value = value
        self.where = where
        inside = f" ({where})" if where else ""
        super().__init__(f"must be {expected}, got {describe_value(value)}{inside}")


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
    return a_or_an(type(value).__name__)


def a_or_an(noun: str) -> str:
    """The noun with its indefinite article: ``a Reading``, ``an Inner``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_str(value: Any) -> str:
    if type(value) is str:
        return value
    if is_number(value):
        return str(value)
    raise Mismatch("a string", value)


def to_int(value: Any) -> int:
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


def to_float(value: Any) -> float:
    if type(value) is float:
        return value
    if is_number(value):
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


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Mismatch("true or false", value)


def to_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise Mismatch("an object", value)


def to_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    raise Mismatch("a list", value)


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise Mismatch("bytes", value)
