"""Go's ``encoding/json``, as far as eKuiper's side of the wire uses it.

eKuiper is a Go program: what it sends is ``json.Marshal``'s bytes. The
embedded host reproduces them here, so that :mod:`kuiperlite.dev.gowire`
sends exactly what eKuiper sends: :func:`go_json` encodes as
``json.Marshal`` does, map keys sorted, struct fields in order, floats as Go
formats them, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, bytes in
base64, NaN and infinities refused with Go's error.

Python values stand for Go's: ``float`` for float64 (and :class:`Float32` for
float32), ``int`` for Go's integers, ``str`` for string (a lone surrogate, as
``surrogateescape`` makes of an invalid byte, for a byte that is not UTF-8),
``bytes`` for ``[]byte``, ``dict`` for a string-keyed map, ``list`` for a slice.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from typing import Any

import orjson

_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # int64 to uint64


class MarshalError(ValueError):
    """A value the host cannot encode as ``json.Marshal`` does; where Go
    refuses it too (NaN, an infinity), ``str(err)`` is Go's error text."""


class Float32(float):
    """A Go float32: :func:`go_json` writes it with float32 precision, as Go does.

    The value is rounded to the nearest float32 when made.
    """

    def __new__(cls, value: float) -> Float32:
        return super().__new__(cls, struct.unpack("f", struct.pack("f", value))[0])


class Struct(dict):
    """A Go struct: encoded with its fields in the order given, where a map's keys are sorted."""


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


# --------------------------------------------------------------- encode

def go_json(value: Any) -> bytes:
    """Encode a value as Go's ``json.Marshal`` would.

    Args:
        value: a JSON-shaped value (dicts, lists, strings, numbers, bools,
            None), :class:`Struct` and bytes (base64, as Go's ``[]byte``).

    Returns:
        The JSON bytes: map keys sorted, floats in Go's form, and ``<``,
        ``>``, ``&``, U+2028 and U+2029 escaped.

    Raises:
        MarshalError: a value Go cannot encode (NaN, an infinity, an integer
            beyond int64 and uint64; its text is then Go's), one JSON has no
            form for, or one nested 255 levels deep or more.
    """
    try:
        out = orjson.dumps(_go_values(value), option=_OPTIONS)
    except (RecursionError, TypeError) as err:
        if isinstance(err, RecursionError) or "Recursion" in str(err):
            raise MarshalError("The value nests too deep for the host to encode (Go's "
                               "encoder would).") from None
        raise MarshalError(f"The value cannot be encoded as JSON: {err}.") from None
    for raw, escaped in _GO_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out


def _go_values(value: Any) -> Any:
    """``value`` with each part orjson would write differently from Go made a
    fragment of Go's bytes."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, float):
        return orjson.Fragment(format_float(value, 32 if type(value) is Float32 else 64))
    if isinstance(value, int):
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise MarshalError(f"The integer {value} is beyond Go's int64 and uint64; send "
                               "a float to send a float64.")
        return value
    if isinstance(value, str):
        return orjson.Fragment(_string(value)) if _SURROGATE.search(value) else value
    if isinstance(value, Struct):
        return orjson.Fragment(struct_json(*value.items()))
    if isinstance(value, dict):
        if any(isinstance(k, str) and _SURROGATE.search(k) for k in value):
            return orjson.Fragment(_object(value))
        return {k: _go_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_go_values(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if type(value).__name__ == "float32":  # numpy's
        return _go_values(Float32(value))
    return value


def _string(text: str) -> bytes:
    """A string holding lone surrogates (bytes that were not UTF-8) as Go writes
    one: each invalid byte becomes the escape ``\\ufffd``."""
    return b"\\ufffd".join(orjson.dumps(part)[1:-1] for part in _SURROGATE.split(text)) \
        .join((b'"', b'"'))


def _object(value: dict) -> bytes:
    keys = sorted(value, key=lambda k: str(k).encode("utf-8", "surrogatepass"))
    return b"{" + b",".join(_string(str(k)) + b":" + go_json(value[k]) for k in keys) + b"}"


def struct_json(*fields: tuple[str, Any]) -> bytes:
    """A Go struct: fields in the given order, each value Go-encoded."""
    return b"{" + b",".join(go_json(k) + b":" + go_json(v) for k, v in fields) + b"}"
