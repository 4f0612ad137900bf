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
import threading
from typing import Any, NamedTuple, Optional, Union

import orjson

from .gojson_fmt import Float32, MarshalError, format_float
from .gojson_scan import check_valid

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





class Struct(dict[str, Any]):
    """A Go struct: encoded with its fields in the order given, where a map's keys are sorted."""


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


def _object(value: dict[Any, Any]) -> bytes:
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
        syntax = check_valid(raw)
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
    """Decode JSON that :func:`check_valid` accepted, without recursion (Go
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


