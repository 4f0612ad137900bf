"""Go's text/template lexer: a template's text cut into tokens, with Go's errors."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

# ---------------------------------------------------------------------- lexer

# Token kinds; keywords come after KEYWORD, as in Go's lexer (their String is <word>).
(ERROR, BOOL, CHAR, CHAR_CONSTANT, COMPLEX, ASSIGN, DECLARE, EOF, FIELD, IDENT, LEFT, LPAREN,
 NUMBER, PIPE, RAW_STRING, RIGHT, RPAREN, SPACE, STRING, TEXT, VARIABLE, KEYWORD, DOT) = range(23)
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "nil", "range",
             "template", "with"}
_SPACES = " \t\r\n"


class Token(NamedTuple):
    kind: int
    pos: int  # in characters of the template text
    val: str
    line: int

    def __str__(self) -> str:  # Go's item.String, for "unexpected X in Y"
        if self.kind == EOF:
            return "EOF"
        if self.kind == ERROR:
            return self.val
        if self.kind >= KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, Go's escapes for what is not printable."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _go_rune(ch: str) -> str:
    """Go's ``%#U``: ``U+0021 '!'``."""
    code = ord(ch)
    shown = f" '{ch}'" if ch.isprintable() else ""
    return f"U+{code:04X}{shown}"


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


def lex(text: str) -> list[Token]:
    """The tokens of a template, as Go's lexer scans them, ending at EOF or ERROR."""
    tokens: list[Token] = []
    pos = 0
    n = len(text)

    def line_at(p: int) -> int:
        return 1 + text.count("\n", 0, p)

    def add(kind: int, start: int, end: int) -> None:
        tokens.append(Token(kind, start, text[start:end], line_at(start)))

    def error(start: int, message: str) -> list[Token]:
        tokens.append(Token(ERROR, start, message, line_at(start)))
        return tokens

    while True:
        # text, up to the next action
        left = text.find("{{", pos)
        if left < 0:
            if pos < n:
                add(TEXT, pos, n)
            tokens.append(Token(EOF, n, "EOF", line_at(n)))
            return tokens
        trim_left = text.startswith("-", left + 2) and left + 3 < n and text[left + 3] in _SPACES
        end_text = left
        if trim_left:
            end_text = len(text[pos:left].rstrip(_SPACES)) + pos
        if end_text > pos:
            add(TEXT, pos, end_text)
        pos = left + 2 + (2 if trim_left else 0)
        if text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close < 0:
                return error(left, "unclosed comment")
            pos = close + 2
            delim, trim = _at_right(text, pos)
            if not delim:
                return error(left, "comment ends before closing delimiter")
            pos += 4 if trim else 2
            if trim:
                pos = n - len(text[pos:].lstrip(_SPACES))
            continue
        add(LEFT, left, left + 2)
        # inside the action
        depth = 0
        while True:
            delim, trim = _at_right(text, pos)
            if delim:
                if depth:
                    return error(pos, "unclosed left paren")
                start = pos + (2 if trim else 0)
                add(RIGHT, start, start + 2)
                pos = start + 2
                if trim:
                    pos = n - len(text[pos:].lstrip(_SPACES))
                break
            if pos >= n:
                return error(pos, "unclosed action")
            ch = text[pos]
            start = pos
            if ch in _SPACES:
                while pos < n and text[pos] in _SPACES and not _at_right(text, pos)[1]:
                    pos += 1
                if pos == start:  # " -}}": the space belongs to the trim marker
                    continue
                add(SPACE, start, pos)
            elif ch == "=":
                pos += 1
                add(ASSIGN, start, pos)
            elif ch == ":":
                if not text.startswith(":=", pos):
                    return error(pos, "expected :=")
                pos += 2
                add(DECLARE, start, pos)
            elif ch == "|":
                pos += 1
                add(PIPE, start, pos)
            elif ch == '"':
                pos += 1
                while True:
                    if pos >= n or text[pos] == "\n":
                        return error(start, "unterminated quoted string")
                    if text[pos] == "\\":
                        if pos + 1 >= n or text[pos + 1] == "\n":
                            return error(start, "unterminated quoted string")
                        pos += 2
                        continue
                    pos += 1
                    if text[pos - 1] == '"':
                        break
                add(STRING, start, pos)
            elif ch == "`":
                close = text.find("`", pos + 1)
                if close < 0:
                    return error(start, "unterminated raw quoted string")
                pos = close + 1
                add(RAW_STRING, start, pos)
            elif ch == "$":
                pos += 1
                while pos < n and _alnum(text[pos]):
                    pos += 1
                add(VARIABLE, start, pos)
            elif ch == "'":
                return error(start, "character constants")  # refused by the parser
            elif ch == "." and not (pos + 1 < n and "0" <= text[pos + 1] <= "9"):
                pos += 1
                while pos < n and _alnum(text[pos]):
                    pos += 1
                if not _at_terminator(text, pos):
                    return error(start, f"bad character {_go_rune(text[pos])}")
                add(DOT if pos == start + 1 else FIELD, start, pos)
            elif ch in "+-." or ch.isdigit():
                found = _NUMBER.match(text, pos)
                end = found.end() if found else pos + 1
                if end < n and _alnum(text[end]):
                    return error(start, f"bad number syntax: {go_quote(text[start:end + 1])}")
                pos = end
                add(NUMBER, start, pos)
            elif _alnum(ch):
                while pos < n and _alnum(text[pos]):
                    pos += 1
                if not _at_terminator(text, pos):
                    return error(start, f"bad character {_go_rune(text[pos])}")
                word = text[start:pos]
                add(KEYWORD if word in _KEYWORDS else BOOL if word in ("true", "false")
                    else IDENT, start, pos)
            elif ch == "(":
                pos += 1
                depth += 1
                add(LPAREN, start, pos)
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    return error(start, "unexpected right paren")
                pos += 1
                add(RPAREN, start, pos)
            elif ord(ch) < 0x80 and ch.isprintable():
                pos += 1
                add(CHAR, start, pos)
            else:
                return error(start, f"unrecognized character in action: {_go_rune(ch)}")


_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]*|[0-9_]*)(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?i?")


def _at_right(text: str, pos: int) -> tuple[bool, bool]:
    """Whether ``pos`` is at ``}}``, and whether a trim marker ``" -"`` precedes it."""
    if text.startswith("-}}", pos + 1) and pos < len(text) and text[pos] in _SPACES:
        return True, True
    return text.startswith("}}", pos), False


def _at_terminator(text: str, pos: int) -> bool:
    if pos >= len(text):
        return True
    return text[pos] in _SPACES or text[pos] in ".,|:)(" or text.startswith("}", pos)
