"""Go's ``encoding/json`` and ``fmt``, as far as eKuiper's side of the wire uses them.

eKuiper is a Go program: what it sends is ``json.Marshal``'s bytes, what it
reads is ``json.Unmarshal`` into one of its structs, and what it says about a
value is ``fmt``'s ``%s`` or ``%+v`` of it. The embedded host reproduces the
three here, so that :mod:`kuiperlite.dev.gowire` can say exactly what eKuiper
sends and concludes:

- :func:`go_json` encodes as ``json.Marshal``: map keys sorted, struct fields
  in order, floats as Go formats them, ``<``, ``>``, ``&``, U+2028 and U+2029
  escaped, bytes in base64, NaN and infinities refused with Go's error.
- :func:`unmarshal` decodes into a :class:`GoStruct` as ``json.Unmarshal``
  does: its syntax errors, its type errors, keys matched to fields
  case-insensitively, repeated keys merging into a map field, every number a
  float64, invalid UTF-8 and lone surrogates replaced by U+FFFD, nesting
  limited to 10000.
- :func:`sprint` writes a decoded value as ``fmt``'s ``%s`` or ``%v``.

Python values stand for Go's: ``float`` for float64 (and :class:`Float32` for
float32), ``int`` for Go's integers, ``str`` for string (a lone surrogate, as
``surrogateescape`` makes of an invalid byte, for a byte that is not UTF-8),
``bytes`` for ``[]byte``, ``dict`` for a string-keyed map, ``list`` for a slice.
"""

from __future__ import annotations

import base64
import codecs
import json
import math
import re
import struct
import threading
import unicodedata
from typing import Any, NamedTuple, Optional, Union

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

# The most nested arrays and objects Go's scanner accepts (maxNestingDepth).
MAX_DEPTH = 10000


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


# --------------------------------------------------------------- decode

MAP = "map[string]interface {}"
STRING = "string"
BOOL = "bool"
ANY = "interface {}"


class GoStruct(NamedTuple):
    """A Go struct ``json.Unmarshal`` decodes into.

    Attributes:
        name: its type as Go names it in errors, ``runtime.ackResponse``.
        fields: each field's JSON name and Go type (:data:`MAP`, :data:`STRING`,
            :data:`BOOL` or :data:`ANY`), in declaration order.
    """

    name: str
    fields: tuple[tuple[str, str], ...]


class UnmarshalError(NamedTuple):
    """Why ``json.Unmarshal`` failed: ``text`` is its ``err.Error()``; ``syntax``
    tells a ``*json.SyntaxError`` from a ``*json.UnmarshalTypeError``."""

    text: str
    syntax: bool


def unmarshal(raw: bytes, into: GoStruct, *, python_ints: bool = False,
              ) -> tuple[dict[str, Any], Optional[UnmarshalError]]:
    """``json.Unmarshal(raw, &value)`` for a struct of type ``into``.

    Args:
        python_ints: give a number written as an integer, that float64 holds
            exactly (below 2**53), as a Python int: the value Go holds, in the
            type Python gives a JSON integer. Otherwise every number is a float.

    Returns:
        The fields' values by JSON name (Go's zero values where the bytes set
        none: None, ``""``, False) and the error Go returns, or None. Like Go,
        a type error leaves the rest decoded, and the first one is returned.
    """
    top, pairs, overflow = _decode_fast(raw, python_ints)
    if top is _SLOW:
        syntax = _check_valid(raw)
        if syntax is not None:
            return _zero(into), UnmarshalError(syntax, True)
        top, pairs, overflow = _decode(raw, python_ints)
    return _fill(into, top, pairs, overflow)


_SLOW = object()
_Decoded = tuple[Any, Optional[list[tuple[str, Any]]], dict[int, str]]


def _go_replace(err: UnicodeError) -> tuple[str, int]:
    # Go replaces each byte that does not start a valid UTF-8 sequence with
    # U+FFFD and goes on at the next byte; Python's "replace" would take a
    # truncated sequence as one.
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("kuiperlite-go", _go_replace)

# A \u escape of a surrogate, which Python's json keeps and Go replaces.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class _Slow(Exception):
    """The fast decoder met what only the faithful one gets right."""


def _decode_fast(raw: bytes, python_ints: bool) -> _Decoded:
    """Python's json where it agrees with Go: with the pairs of the top object
    kept; ``_SLOW`` where it may not (syntax errors, deep nesting, lone
    surrogates, numbers beyond float64)."""
    try:
        text = raw.decode("utf-8", "kuiperlite-go")
        if "\\u" in text and _ESCAPED_SURROGATE.search(text):
            return _SLOW, None, {}
        top = _DECODERS[python_ints].decode(text)
    except (ValueError, RecursionError, _Slow):
        return _SLOW, None, {}
    return top, _last.pairs if isinstance(top, dict) else None, {}


_last = threading.local()  # the pairs of the object the decoder ended last


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    _last.pairs = pairs  # objects end inner first: the top one ends last
    return dict(pairs)


def _fast_number(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Slow
    return number


def _fast_int(text: str) -> Union[int, float]:
    number = _python_int(text)
    return _fast_number(text) if number is None else number


def _python_int(text: Union[str, bytes]) -> Optional[int]:
    """A number written as an integer as a Python int, when float64 holds it
    exactly (below 2**53, and not -0)."""
    if len(text) > 17 or text in ("-0", b"-0"):
        return None
    number = int(text)
    return number if abs(number) < 1 << 53 else None


def _refuse(_: str) -> Any:
    raise _Slow


_DECODERS = {ints: json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_float=_fast_number,
                                    parse_int=_fast_int if ints else _fast_number,
                                    parse_constant=_refuse)
             for ints in (False, True)}


def _zero(into: GoStruct) -> dict[str, Any]:
    return {name: {STRING: "", BOOL: False}.get(kind) for name, kind in into.fields}


def _kind(value: Any) -> str:
    """The JSON kind Go names in a type error."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, _Overflow)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# Go's case folding of a key, as far as it can make one of these field names:
# ASCII upper case, and the two runes that fold to ASCII letters.
_FOLD = {**{c: c - 32 for c in range(ord("a"), ord("z") + 1)}, 0x17F: ord("S"), 0x212A: ord("K")}


def _fill(into: GoStruct, top: Any, pairs: Optional[list[tuple[str, Any]]],
          overflow: dict[int, str]) -> tuple[dict[str, Any], Optional[UnmarshalError]]:
    out = _zero(into)
    if top is None:
        return out, None
    if pairs is None:
        return out, UnmarshalError(f"json: cannot unmarshal {_kind(top)} into Go value of type "
                                   f"{into.name}", False)
    error: Optional[str] = None
    kinds = dict(into.fields)
    folded = {name.translate(_FOLD): name for name in kinds}
    where = into.name.rpartition(".")[2]
    for i, (key, value) in enumerate(pairs):
        name = key if key in kinds else folded.get(key.translate(_FOLD))
        if name is None:
            continue
        kind = kinds[name]
        wrong = _mismatch(kind, value)
        if wrong is None and i in overflow:
            wrong = f"number {overflow[i]}", "float64"
        if wrong is not None:
            if error is None:
                error = f"json: cannot unmarshal {wrong[0]} into Go struct field " \
                        f"{where}.{name} of type {wrong[1]}"
            continue
        if value is None:
            if kind in (MAP, ANY):
                out[name] = None
        elif kind == MAP and out[name] is not None:
            out[name].update(value)
        else:
            out[name] = value
    return out, None if error is None else UnmarshalError(error, False)


def _mismatch(kind: str, value: Any) -> Optional[tuple[str, str]]:
    """What Go says a value of the wrong kind for a field is: ``("bool", "string")``."""
    if value is None or kind == ANY:
        return None
    fits = {MAP: dict, STRING: str, BOOL: bool}[kind]
    if isinstance(value, fits) and not isinstance(value, _Overflow):
        return None
    return _kind(value), kind


class _Overflow(str):
    """A number beyond float64, by its text (Go fails on it)."""


class _Object:
    """An object being decoded: its pairs so far, and the key of the next."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Any]] = []
        self.key: Optional[str] = None


_TOKEN = re.compile(rb'[ \t\r\n]*(?:([][{}:,])|"((?:[^"\\]|\\.)*)"|(true|false|null)|'
                    rb"(-?[0-9][0-9.eE+-]*))", re.S)
_LITERALS = {b"true": True, b"false": False, b"null": None}


def _decode(data: bytes, python_ints: bool) -> _Decoded:
    """Decode JSON that :func:`_check_valid` accepted, without recursion (Go
    takes 10000 levels): its value, the top object's pairs, and the first
    number beyond float64 in the value of each of those pairs, by index."""
    stack: list[Any] = []  # the open arrays (lists) and objects
    overflow: dict[int, str] = {}
    pos = 0
    while True:
        match = _TOKEN.match(data, pos)
        assert match is not None, "only valid JSON is decoded"
        pos = match.end()
        punct, string, literal, number = match.groups()
        value: Any
        if punct in (b":", b","):
            continue
        if punct == b"{":
            stack.append(_Object())
            continue
        if punct == b"[":
            stack.append([])
            continue
        if punct == b"}":
            pairs = stack.pop().pairs
            if not stack:
                return dict(pairs), pairs, overflow
            value = dict(pairs)
        elif punct == b"]":
            value = stack.pop()
        elif string is not None:
            value = _unquote(string)
            if isinstance(stack[-1] if stack else None, _Object) and stack[-1].key is None:
                stack[-1].key = value
                continue
        elif literal is not None:
            value = _LITERALS[literal]
        else:
            integer = _python_int(number) if python_ints and number.lstrip(b"-").isdigit() \
                else None
            value = float(number) if integer is None else integer
            if math.isinf(value):
                value = _Overflow(number.decode())
                if stack and isinstance(stack[0], _Object):
                    overflow.setdefault(len(stack[0].pairs), value)
        if not stack:
            return value, None, overflow
        frame = stack[-1]
        if isinstance(frame, _Object):
            frame.pairs.append((frame.key, value))  # type: ignore[arg-type]
            frame.key = None
        else:
            frame.append(value)


_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|(.))", re.S)
_SIMPLE = {b'"': '"', b"\\": "\\", b"/": "/", b"b": "\b", b"f": "\f", b"n": "\n", b"r": "\r",
           b"t": "\t"}


def _unquote(raw: bytes) -> str:
    """A JSON string's text between its quotes, as Go reads it: a byte that is
    not UTF-8 and a surrogate escape that is not half of a pair each become U+FFFD."""
    if b"\\" not in raw:
        return raw.decode("utf-8", "kuiperlite-go")
    parts: list[Any] = []  # text, and the code units of \u escapes
    pos = 0
    for match in _ESCAPE.finditer(raw):
        if match.start() > pos:
            parts.append(raw[pos:match.start()].decode("utf-8", "kuiperlite-go"))
        unit, char = match.groups()
        parts.append(int(unit, 16) if unit is not None else _SIMPLE[char])
        pos = match.end()
    parts.append(raw[pos:].decode("utf-8", "kuiperlite-go"))
    out: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if isinstance(part, str):
            out.append(part)
        elif not 0xD800 <= part < 0xE000:
            out.append(chr(part))
        elif part < 0xDC00 and i < len(parts) and isinstance(parts[i], int) \
                and 0xDC00 <= parts[i] < 0xE000:
            out.append(chr(0x10000 + ((part - 0xD800) << 10) + parts[i] - 0xDC00))
            i += 1
        else:
            out.append("\ufffd")
    return "".join(out)


# ---------------------------------------------------------- Go's scanner

class _SyntaxError(Exception):
    pass


_KEY, _VALUE, _ARRAY = range(3)  # what an open object or array waits for
_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')


def _quote_char(c: int) -> str:
    """A byte as Go quotes it in a syntax error: ``'x'``, ``'\\''``, ``'\\x01'``, ``'ÿ'``."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    if c == 0x5C:
        return "'\\\\'"
    char = chr(c)  # Go quotes the byte as the rune of the same number
    if c == 0x20 or unicodedata.category(char)[0] in "LMNPS":
        return f"'{char}'"
    named = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r"}
    if c in named:
        return f"'\\{named[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    return f"'\\u{c:04x}'"


class _Scanner:
    """Go's JSON scanner, a state per method: each takes the next byte."""

    def __init__(self) -> None:
        self.step = self.begin_value
        self.stack: list[int] = []
        self.done = False
        self.word = b""  # the literal true, false or null being read
        self.at = 0  # how much of it was read
        self.hex = 0  # hex digits still expected in a \\u escape

    def error(self, c: int, context: str) -> None:
        raise _SyntaxError(f"invalid character {_quote_char(c)} {context}")

    def push(self, c: int, state: int) -> None:
        self.stack.append(state)
        if len(self.stack) > MAX_DEPTH:
            self.error(c, "exceeded max depth")

    def pop(self) -> None:
        self.stack.pop()
        self.step = self.end_value if self.stack else self.end_top
        self.done = not self.stack

    def begin_value_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x5D:  # ]
            self.end_value(c)
        else:
            self.begin_value(c)

    def begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x7B:  # {
            self.step = self.begin_key_or_empty
            self.push(c, _KEY)
        elif c == 0x5B:  # [
            self.step = self.begin_value_or_empty
            self.push(c, _ARRAY)
        elif c == 0x22:
            self.step = self.in_string
        elif c == 0x2D:  # -
            self.step = self.neg
        elif c == 0x30:
            self.step = self.zero
        elif c in b"tfn":
            self.word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
            self.at = 1
            self.step = self.literal
        elif c in _DIGITS:
            self.step = self.one
        else:
            self.error(c, "looking for beginning of value")

    def begin_key_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == 0x7D:  # }
            self.stack[-1] = _VALUE
            self.end_value(c)
        else:
            self.begin_key(c)

    def begin_key(self, c: int) -> None:
        if c in _SPACE:
            return
        if c != 0x22:
            self.error(c, "looking for beginning of object key string")
        self.step = self.in_string

    def end_value(self, c: int) -> None:
        if not self.stack:
            self.step = self.end_top
            self.done = True
            self.end_top(c)
            return
        if c in _SPACE:
            self.step = self.end_value
            return
        state = self.stack[-1]
        if state == _KEY:
            if c != 0x3A:  # :
                self.error(c, "after object key")
            self.stack[-1] = _VALUE
            self.step = self.begin_value
        elif state == _VALUE:
            if c == 0x2C:  # ,
                self.stack[-1] = _KEY
                self.step = self.begin_key
            elif c == 0x7D:
                self.pop()
            else:
                self.error(c, "after object key:value pair")
        elif c == 0x2C:
            self.step = self.begin_value
        elif c == 0x5D:
            self.pop()
        else:
            self.error(c, "after array element")

    def end_top(self, c: int) -> None:
        if c not in _SPACE:
            self.error(c, "after top-level value")

    def in_string(self, c: int) -> None:
        if c == 0x22:
            self.step = self.end_value
        elif c == 0x5C:  # backslash
            self.step = self.in_escape
        elif c < 0x20:
            self.error(c, "in string literal")

    def in_escape(self, c: int) -> None:
        if c in b'bfnrt\\/"':
            self.step = self.in_string
        elif c == 0x75:  # u
            self.hex = 4
            self.step = self.in_hex
        else:
            self.error(c, "in string escape code")

    def in_hex(self, c: int) -> None:
        if c not in _HEX:
            self.error(c, "in \\u hexadecimal character escape")
        self.hex -= 1
        if not self.hex:
            self.step = self.in_string

    def neg(self, c: int) -> None:
        if c == 0x30:
            self.step = self.zero
        elif c in _DIGITS:
            self.step = self.one
        else:
            self.error(c, "in numeric literal")

    def one(self, c: int) -> None:
        if c not in _DIGITS:
            self.zero(c)

    def zero(self, c: int) -> None:
        if c == 0x2E:  # .
            self.step = self.dot
        elif c in b"eE":
            self.step = self.exponent
        else:
            self.end_value(c)

    def dot(self, c: int) -> None:
        if c not in _DIGITS:
            self.error(c, "after decimal point in numeric literal")
        self.step = self.fraction

    def fraction(self, c: int) -> None:
        if c in b"eE":
            self.step = self.exponent
        elif c not in _DIGITS:
            self.end_value(c)

    def exponent(self, c: int) -> None:
        if c in b"+-":
            self.step = self.exponent_sign
        else:
            self.exponent_sign(c)

    def exponent_sign(self, c: int) -> None:
        if c not in _DIGITS:
            self.error(c, "in exponent of numeric literal")
        self.step = self.exponent_digits

    def exponent_digits(self, c: int) -> None:
        if c not in _DIGITS:
            self.end_value(c)

    def literal(self, c: int) -> None:
        expected = self.word[self.at]
        if c != expected:
            self.error(c, f"in literal {self.word.decode()} (expecting {chr(expected)!r})")
        self.at += 1
        if self.at == len(self.word):
            self.step = self.end_value


def _check_valid(data: bytes) -> Optional[str]:
    """Go's ``checkValid``: None for valid JSON, else its syntax error's text."""
    scan = _Scanner()
    try:
        i, end = 0, len(data)
        while i < end:
            if scan.step == scan.in_string:
                i = _PLAIN.match(data, i).end()  # type: ignore[union-attr]
                if i == end:
                    break
            scan.step(data[i])
            i += 1
        if not scan.done:
            scan.step(0x20)  # Go's eof: a space ends a number or a literal
    except _SyntaxError as err:
        return str(err)
    return None if scan.done else "unexpected end of JSON input"


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
