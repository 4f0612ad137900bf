"""Go's values on eKuiper's sink side: rule outputs as ``encoding/json`` decodes them.

:func:`as_go` turns a JSON value into what Go's ``json.Unmarshal`` into
``interface {}`` makes of it; :func:`go_unmarshal` decodes bytes as Go does,
with Go's syntax errors (:class:`GoJSONError`).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ..declare.hints import describe_value
from .gotemplate_lex import go_quote


def as_go(value: Any, where: str = "the output") -> Any:
    """A JSON value as Go's ``encoding/json`` decodes it into ``interface {}``:
    numbers become floats (a huge integer rounds), a lone surrogate becomes
    U+FFFD.

    Raises:
        ValueError: the value is not JSON (a set, bytes, NaN, a non-string key...).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{where} holds the number {value}, beyond a float64.") from None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where} holds {value!r}, which JSON cannot carry.")
        return value
    if isinstance(value, str):
        return _fix_surrogates(value)
    if isinstance(value, (list, tuple)):
        return [as_go(item, where) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has the key {key!r}; JSON keys are strings.")
            out[_fix_surrogates(key)] = as_go(item, where)
        return out
    raise ValueError(f"{where} holds {describe_value(value)}, which JSON cannot carry.")


def _fix_surrogates(text: str) -> str:
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class GoJSONError(ValueError):
    """Bytes Go's ``json.Unmarshal`` refuses; ``str(err)`` is its text."""


def go_unmarshal(data: bytes) -> Any:
    """Decode JSON as Go's ``json.Unmarshal`` into ``interface {}`` does.

    Raises:
        GoJSONError: Go's error text (``invalid character 'a' looking for
            beginning of value``, ``unexpected end of JSON input``).
    """
    _GoScanner(data).check()
    text = data.decode("utf-8", "replace")
    try:
        value = json.loads(text, parse_float=_go_number, parse_int=_go_number,
                           parse_constant=_no_constant)
    except _Overflow as err:
        raise GoJSONError(f"json: cannot unmarshal number {err} into Go value of type "
                          "float64") from None
    return as_go(value)


class _Overflow(Exception):
    pass


def _go_number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Overflow(text)
    return value


def _no_constant(text: str) -> Any:  # pragma: no cover - the scanner refuses them first
    raise _Overflow(text)


class _GoScanner:
    """Go's JSON syntax check, with its error texts, over the bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def check(self) -> None:
        self.value()
        self.space()
        if self.pos < len(self.data):
            self.fail("after top-level value")

    def peek(self) -> Optional[int]:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self) -> int:
        c = self.peek()
        if c is None:
            raise GoJSONError("unexpected end of JSON input")
        self.pos += 1
        return c

    def fail(self, context: str) -> None:
        c = self.data[self.pos]
        raise GoJSONError(f"invalid character {_quote_char(c)} {context}")

    def space(self) -> None:
        while self.peek() in (0x20, 0x09, 0x0A, 0x0D):
            self.pos += 1

    def value(self) -> None:
        self.space()
        c = self.peek()
        if c is None:
            raise GoJSONError("unexpected end of JSON input")
        if c == 0x7B:
            self.pos += 1
            self.object()
        elif c == 0x5B:
            self.pos += 1
            self.array()
        elif c == 0x22:
            self.pos += 1
            self.string()
        elif c == 0x2D or 0x30 <= c <= 0x39:
            self.number()
        elif c in b"tfn":
            word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
            self.pos += 1
            for expected in word[1:]:
                if self.peek() is None:
                    raise GoJSONError("unexpected end of JSON input")
                if self.peek() != expected:
                    self.fail(f"in literal {word.decode()} (expecting "
                              f"{_quote_char(expected)})")
                self.pos += 1
        else:
            self.fail("looking for beginning of value")

    def object(self) -> None:
        self.space()
        if self.peek() == 0x7D:
            self.pos += 1
            return
        while True:
            self.space()
            if self.peek() is None:
                raise GoJSONError("unexpected end of JSON input")
            if self.peek() != 0x22:
                self.fail("looking for beginning of object key string")
            self.pos += 1
            self.string()
            self.space()
            if self.take() != 0x3A:
                self.pos -= 1
                self.fail("after object key")
            self.value()
            self.space()
            c = self.take()
            if c == 0x7D:
                return
            if c != 0x2C:
                self.pos -= 1
                self.fail("after object key:value pair")

    def array(self) -> None:
        self.space()
        if self.peek() == 0x5D:
            self.pos += 1
            return
        while True:
            self.value()
            self.space()
            c = self.take()
            if c == 0x5D:
                return
            if c != 0x2C:
                self.pos -= 1
                self.fail("after array element")

    def string(self) -> None:
        while True:
            c = self.take()
            if c == 0x22:
                return
            if c == 0x5C:
                e = self.take()
                if e == 0x75:
                    for _ in range(4):
                        h = self.take()
                        if h not in b"0123456789abcdefABCDEF":
                            self.pos -= 1
                            self.fail("in \\u hexadecimal character escape")
                elif e not in b'"\\/bfnrt':
                    self.pos -= 1
                    self.fail("in string escape code")
            elif c < 0x20:
                self.pos -= 1
                self.fail("in string literal")

    def number(self) -> None:
        if self.peek() == 0x2D:
            self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("in numeric literal")
        if self.take() != 0x30:
            self.digits()
        if self.peek() == 0x2E:
            self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("after decimal point in numeric literal")
            self.digits()
        if self.peek() in (0x65, 0x45):
            self.pos += 1
            if self.peek() in (0x2B, 0x2D):
                self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("in exponent of numeric literal")
            self.digits()

    def digits(self) -> None:
        while (c := self.peek()) is not None and 0x30 <= c <= 0x39:
            self.pos += 1


def _quote_char(c: int) -> str:
    """Go's ``quoteChar`` for a byte of JSON input: ``'a'``, ``'\\''``, ``'\\n'``."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"

