"""Go's JSON scanner: whether bytes are valid JSON, with Go's syntax error texts."""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

# The most nested arrays and objects Go's scanner accepts (maxNestingDepth).
MAX_DEPTH = 10000


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


def check_valid(data: bytes) -> Optional[str]:
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
