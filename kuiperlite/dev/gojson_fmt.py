"""Go's float formatting (``strconv``'s shortest digits, as ``encoding/json`` and
``%g`` write them) and ``fmt``'s ``%s`` and ``%v``."""

from __future__ import annotations

import math
import struct
from typing import Any


class MarshalError(ValueError):
    """A value the host cannot encode as ``json.Marshal`` does; where Go
    refuses it too (NaN, an infinity), ``str(err)`` is Go's error text."""


# --------------------------------------------------------------- floats

def _digits(value: float, bits: int = 64) -> tuple[str, int]:
    """The shortest decimal digits that give back ``abs(value)`` (a finite
    non-zero float of ``bits`` bits), and where the point goes:
    ``abs(value) == 0.DIGITS * 10**point``."""
    value = abs(value)
    if bits == 32:
        for precision in range(1, 10):
            text = f"{value:.{precision - 1}e}"
            if Float32(float(text)) == value:
                break
    else:
        text = repr(value)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    return stripped.rstrip("0"), point - (len(digits) - len(stripped))


def _fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _exponent(digits: str, point: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def format_float(value: float, bits: int = 64) -> str:
    """A float as ``json.Marshal`` writes it: the shortest digits that give it
    back, in exponent form below 1e-6 and from 1e21 on (``1e-7``, ``1e+21``).

    Raises:
        MarshalError: NaN or an infinity (``json: unsupported value: NaN``).
    """
    if not math.isfinite(value):
        raise MarshalError(f"json: unsupported value: {format_g(value)}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _digits(value, bits)
    low, high = (1e-6, 1e21) if bits == 64 else (Float32(1e-6), Float32(1e21))
    if low <= abs(value) < high:
        return sign + _fixed(digits, point)
    text = _exponent(digits, point)
    if text[-4:-1] == "e-0":  # Go writes 1e-7, not 1e-07
        text = text[:-2] + text[-1]
    return sign + text


def format_g(value: float) -> str:
    """A float64 as ``fmt``'s ``%v`` (``strconv``'s shortest ``'g'``) writes it:
    ``5``, ``0.1``, ``1e+06``, ``1e-05``, ``-0``, ``NaN``, ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, point = _digits(value)
    if point - 1 < -4 or point - 1 >= 6:
        return sign + _exponent(digits, point)
    return sign + _fixed(digits, point)


# ---------------------------------------------------------------- fmt

def sprint(value: Any, verb: str = "v", nested: bool = False) -> str:
    """A value ``json.Unmarshal`` made, as ``fmt`` writes it with ``%v`` or ``%s``.

    Args:
        value: nil, a bool, a float64, a string, a slice or a map of them.
        verb: ``"v"`` or ``"s"``; ``%s`` of a number or a bool is Go's
            complaint, ``%!s(float64=5)``.
        nested: the value is inside a slice, map or struct (where nil is
            ``<nil>`` for every verb).
    """
    if value is None:
        return "<nil>" if verb == "v" or nested else "%!s(<nil>)"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        text = "true" if value else "false"
        return text if verb == "v" else f"%!s(bool={text})"
    if isinstance(value, (int, float)):  # a float64 (or a Python int that stands for one)
        text = format_g(float(value))
        return text if verb == "v" else f"%!s(float64={text})"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{sprint(value[k], verb, True)}"
                                 for k in sorted(value)) + "]"
    return "[" + " ".join(sprint(v, verb, True) for v in value) + "]"


class Float32(float):
    """A Go float32: :func:`go_json` writes it with float32 precision, as Go does.

    The value is rounded to the nearest float32 when made.
    """

    def __new__(cls, value: float) -> Float32:
        return super().__new__(cls, struct.unpack("f", struct.pack("f", value))[0])
