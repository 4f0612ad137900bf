"""eKuiper's SQL lexer, and the token buffer its parser steps back in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional, TypeVar

from . import gowire
from .sql_tokens import (
    ARROW,
    BADSTRING,
    COMMA,
    COMMENT,
    DIV,
    DOT,
    EQ,
    GT,
    GTE,
    IDENT,
    ILLEGAL,
    INTEGER,
    KEYWORDS,
    LT,
    LTE,
    NEQ,
    NUMBER,
    SINGLE,
    SINGLEQUOTE,
    SPACES,
    STRING,
    SUB,
    TEXT,
    WS,
    go_unquote,
)

# Sends one request to a portable function, ``(func, args)``; returns the reply's bytes.
Requester = Callable[[str, Optional[list[Any]]], bytes]


class _Scanner:
    """eKuiper's lexer: a character at a time with one of push-back, as Go's
    bufio reader (a second unread in a row does nothing)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.back = 0  # what the last read took, which unread gives back

    def read(self) -> str:
        """The next character; "" at the end, and for NUL, which Go's lexer takes for it."""
        if self.pos >= len(self.text):
            self.back = 0
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        self.back = 1
        return "" if ch == "\0" else ch

    def unread(self) -> None:
        self.pos -= self.back
        self.back = 0

    def scan(self) -> tuple[int, str]:
        ch = self.read()
        if ch in SPACES:
            return self.spaces()
        if _letter(ch):
            self.unread()
            return self._ident()
        if ch in ("'", '"'):
            self.unread()
            return self._string(ch == "'")
        if _digit(ch):
            self.unread()
            return self.number(False, False)
        if ch == "`":
            return self._backquoted()
        if ch in SINGLE:
            return SINGLE[ch], TEXT[SINGLE[ch]]
        if ch in ("!", "<", ">"):
            self.spaces()
            if self.read() == "=":
                token = {"!": NEQ, "<": LTE, ">": GTE}[ch]
            else:
                self.unread()
                token = {"!": EQ, "<": LT, ">": GT}[ch]  # a lone ! is =
            return token, TEXT[token]
        if ch == "-":
            return self._minus()
        if ch == "/":
            self.spaces()
            if self.read() == "*":
                return (COMMENT, "") if self._skip_comment() else (ILLEGAL, "")
            self.unread()
            return DIV, "/"
        if ch == ".":
            if _digit(self.read()):
                self.unread()
                return self.number(True, False)
            self.unread()
            return DOT, "."
        return ILLEGAL, ""

    def _minus(self) -> tuple[int, str]:
        self.spaces()
        after = self.read()
        if after == "-":
            while self.read() not in ("\n", ""):
                pass
            return COMMENT, ""
        if after == ">":
            return ARROW, "->"
        if after == ".":
            self.spaces()
            if _digit(self.read()):
                self.unread()
                return self.number(True, True)
            self.unread()
            self.unread()  # a second unread: the dot stays read, as in Go
        else:
            self.unread()
        return SUB, "-"

    def _skip_comment(self) -> bool:
        while True:
            ch = self.read()
            if ch == "":
                return False
            while ch == "*":
                ch = self.read()
                if ch == "/":
                    return True
                if ch == "":
                    return False

    def spaces(self) -> tuple[int, str]:
        while True:
            ch = self.read()
            if ch == "":
                break
            if ch not in SPACES:
                self.unread()
                break
        return WS, ""

    def _ident(self) -> tuple[int, str]:
        word = self.read()
        while True:
            ch = self.read()
            if ch == "":
                break
            if not (_letter(ch) or _digit(ch) or ch == "_"):
                self.unread()
                break
            word += ch
        upper = word.upper()
        return (KEYWORDS[upper], upper) if upper in KEYWORDS else (IDENT, word)

    def _string(self, single: bool) -> tuple[int, str]:
        # The text is turned into a double-quoted Go literal, then unquoted as Go does.
        opening = self.read()
        out = ['"' if single else opening]
        escape = False
        while True:
            ch = self.read()
            if ch == '"' and not escape:
                if not single:
                    out.append(ch)
                    break
                escape = False
                out.append('\\"')
            elif ch == "'" and not escape and single:
                out.append('"')
                break
            elif ch == "":
                return BADSTRING, "".join(out)
            elif ch == "\\" and not escape:
                escape = True
                following = self.read()
                if following == "'" and single:
                    out.append(following)
                else:
                    out.append(ch)
                    self.unread()
            else:
                escape = False
                out.append(ch)
        word = "".join(out)
        try:
            value = go_unquote(word)
        except ValueError:
            return ILLEGAL, "invalid string: " + word
        return (SINGLEQUOTE if single else STRING), value

    def number(self, after_dot: bool, negative: bool) -> tuple[int, str]:
        text = ("-" if negative else "") + ("." if after_dot else "") + self.read()
        dotted = after_dot
        while True:
            ch = self.read()
            if _digit(ch) or ch == ".":
                dotted = dotted or ch == "."
                text += ch
            else:
                self.unread()
                return (NUMBER if dotted else INTEGER), text

    def _backquoted(self) -> tuple[int, str]:
        name = ""
        while True:
            ch = self.read()
            if ch in ("`", ""):
                return IDENT, name
            name += ch


def _letter(ch: str) -> bool:
    return ch != "" and ("a" <= ch <= "z" or "A" <= ch <= "Z")


def _digit(ch: str) -> bool:
    return ch != "" and "0" <= ch <= "9"


class _Portable:
    """A portable function as eKuiper's ``PortableFunc`` treats it."""

    def __init__(self, name: str, send: Requester) -> None:
        self.name = name
        self.send = send
        self.aggregate: Optional[bool] = None  # kept once an answer is a boolean

    def is_aggregate(self) -> bool:
        if self.aggregate is not None:
            return self.aggregate
        answer = gowire.decode_reply(self.send("IsAggregate", None)).is_aggregate
        if answer.logged is None:  # a boolean answer, which eKuiper keeps
            self.aggregate = answer.result
        return answer.result

    def validate(self, args: list[Any]) -> Optional[str]:
        return gowire.decode_reply(self.send("Validate", args or None)).validate


T = TypeVar("T")


class TokenParser:
    """eKuiper's SQL parser's tokens: a three-token buffer to step back in, over the lexer."""

    def __init__(self, sql: str, functions: Mapping[str, Requester], ekuiper: int) -> None:
        self.sql = sql
        self.s = _Scanner(sql)
        self.buf = [(ILLEGAL, "")] * 3
        self.i = 0
        self.n = 0
        self.portable = {name: _Portable(name, send) for name, send in functions.items()}
        self.ekuiper = ekuiper
        self.in_func = ""
        self.unnamed = 0  # fields named kuiper_field_N
        self.func_id = 0
        self.clause = ""
        self.sources: Optional[list[str]] = None

    # ------------------------------------------------------------ tokens

    def scan(self) -> tuple[int, str]:
        if self.n > 0:
            self.n -= 1
            return self.buf[(self.i - self.n) % 3]
        tok, lit = self.s.scan()
        if tok not in (WS, COMMENT):
            self.i = (self.i + 1) % 3
            self.buf[self.i] = (tok, lit)
        return tok, lit

    def unscan(self) -> None:
        self.n += 1

    def next(self) -> tuple[int, str]:
        """The next token that is not a space or a comment."""
        while True:
            tok, lit = self.scan()
            if tok not in (WS, COMMENT):
                return tok, lit

    def take(self, token: int) -> bool:
        """Whether the next token is ``token``, taking it if so."""
        if self.next()[0] == token:
            return True
        self.unscan()
        return False

    def listed(self, item: Callable[[], T]) -> list[T]:
        """One ``item``, then one more after each comma."""
        items = [item()]
        while self.next()[0] == COMMA:
            items.append(item())
        self.unscan()
        return items

    def next_signed(self) -> tuple[int, str]:
        """:meth:`next`, where a minus before a digit makes a negative number.

        As in eKuiper, the number is read past the buffer, which keeps the
        minus; and a character after a minus that is not a digit is lost.
        """
        tok, lit = self.next()
        if tok == SUB:
            self.s.spaces()
            if _digit(self.s.read()):
                self.s.unread()
                tok, lit = self.s.number(False, True)
        return tok, lit
