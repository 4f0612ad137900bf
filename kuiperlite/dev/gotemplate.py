"""Go's text/template as eKuiper's sinks use it: the part the embedded host plays.

eKuiper renders a sink's ``dataTemplate``, and every other property holding
``{{ }}``, with Go's ``text/template`` and the function map eKuiper registers
(sprig's functions, ``json``, ``base64`` and ``prop``). :func:`parse` reads a
template and :meth:`Template.execute` runs it against a rule's output as Go
does, with Go's error texts:

- field paths (``.a.b``): a missing key prints ``<no value>``, and so does
  a path below one; a path below null or below a value that is not an object
  is an error;
- pipelines (``.s | upper``), function calls, parenthesized pipelines and
  fields of their results (``(index . 0).a``), ``if``/``else if``/``else``,
  comments and trim markers (``{{- ... -}}``);
- the functions ``index``, ``len``, ``printf`` (verbs ``%v``, ``%s``, ``%d``),
  ``json`` and ``toJson``, ``base64``, ``prop``, ``toString``, ``upper``,
  ``lower`` and ``default``;
- values printed as Go's fmt prints them (``1e+06``, ``map[a:1]``,
  ``[1 a <nil>]``).

Anything else Go's templates offer (``range``, ``with``, variables,
``define``/``template``/``block``, other functions) is refused when the
template is parsed, with :class:`Unsupported`: the host says it cannot play
it rather than play it wrongly. A name that is no function at all gets Go's
own parse error, as eKuiper reports it.

Values are JSON-shaped Python values as Go's ``encoding/json`` decodes them:
dicts, lists, strings, floats (every number of a stream without a schema is
a float64), booleans and None.
"""

from __future__ import annotations

import base64
import math
import re
import unicodedata
from typing import Any, Callable, NamedTuple, Optional

from ..declare.dynamic import NO_VALUE, go_float
from .gowire import go_json

# Go type names, as Go's error messages spell them.
IFACE = "interface {}"
MAP = "map[string]interface {}"
ROWS = "[]map[string]interface {}"  # a rule's output when sendSingle is off
LIST = "[]interface {}"

# What eKuiper's template function map holds besides the host's own subset: Go's
# builtins and sprig 3's functions. A name in neither is Go's "not defined" error.
# (Word lists read best as text.)
_GO_BUILTINS = frozenset("""
    and call html index slice js len not or print printf println urlquery eq ge gt le lt ne
    """.split())  # noqa: SIM905
_SPRIG = frozenset("""
    hello ago date date_in_zone date_modify dateInZone dateModify duration durationRound
    htmlDate htmlDateInZone must_date_modify mustDateModify mustToDate now toDate unixEpoch
    abbrev abbrevboth trunc trim upper lower title untitle substr repeat trimall trimAll
    trimSuffix trimPrefix nospace initials randAlphaNum randAlpha randAscii randNumeric
    randSeededNumeric swapcase shuffle snakecase camelcase kebabcase wrap wrapWith contains
    hasPrefix hasSuffix quote squote cat indent nindent replace plural sha1sum sha256sum
    adler32sum toString atoi int64 int float64 seq toDecimal split splitList splitn toStrings
    until untilStep add1 add sub div mod mul randInt add1f addf subf divf mulf biggest max min
    maxf minf ceil floor round join sortAlpha default empty coalesce all any compact
    mustCompact fromJson toJson toPrettyJson toRawJson mustFromJson mustToJson
    mustToPrettyJson mustToRawJson ternary deepCopy mustDeepCopy typeOf typeIs typeIsLike
    kindOf kindIs deepEqual env expandenv getHostByName base dir clean ext isAbs osBase
    osClean osDir osExt osIsAbs b64enc b64dec b32enc b32dec tuple list dict get set unset
    hasKey pluck keys pick omit merge mergeOverwrite mustMerge mustMergeOverwrite values
    append push mustAppend mustPush prepend mustPrepend first mustFirst rest mustRest last
    mustLast initial mustInitial reverse mustReverse uniq mustUniq without mustWithout has
    mustHas slice mustSlice concat dig chunk mustChunk bcrypt htpasswd genPrivateKey
    derivePassword buildCustomCert genCA genCAWithKey genSelfSignedCert
    genSelfSignedCertWithKey genSignedCert genSignedCertWithKey encryptAES decryptAES
    randBytes uuidv4 semver semverCompare fail regexMatch mustRegexMatch regexFindAll
    mustRegexFindAll regexFind mustRegexFind regexReplaceAll mustRegexReplaceAll
    regexReplaceAllLiteral mustRegexReplaceAllLiteral regexSplit mustRegexSplit
    regexQuoteMeta urlParse urlJoin""".split())  # noqa: SIM905
_EKUIPER_FUNCS = frozenset({"json", "base64", "prop"})
KNOWN_FUNCTIONS = _GO_BUILTINS | _SPRIG | _EKUIPER_FUNCS


class TemplateError(Exception):
    """A template eKuiper's Go code fails on; ``str(err)`` is Go's error text."""


class ParseError(TemplateError):
    """The template does not parse: eKuiper refuses the rule with this text."""


class ExecError(TemplateError):
    """The template fails for one record.

    Attributes:
        partial: what it wrote before failing (Go leaves it in the writer).
    """

    def __init__(self, text: str, partial: str) -> None:
        super().__init__(text)
        self.partial = partial


class Unsupported(ValueError):
    """Go's templates have this, and the host's subset does not: one sentence saying so."""


# --------------------------------------------------------------------- values

class V(NamedTuple):
    """A value as Go's reflection sees it: the Python value and its Go type.

    ``typ`` is ``""`` for Go's invalid value (a missing key), and
    :data:`IFACE` for a value held in an ``interface {}`` (a map's element),
    whose ``value`` is None when the interface is nil.
    """

    value: Any
    typ: str


INVALID = V(None, "")
_MISSING_FINAL = V(None, "final")  # no value piped in from a previous command


def go_type(value: Any) -> str:
    """The Go type ``encoding/json`` decodes a value to (``""`` for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return LIST
    raise TypeError(f"not a JSON value: {value!r}")


def _concrete(v: V) -> V:
    """The value inside an interface (Go's ``indirectInterface``); nil is invalid."""
    if v.typ != IFACE:
        return v
    return INVALID if v.value is None else V(v.value, go_type(v.value))


def sprint(value: Any) -> str:
    """A value as Go's ``fmt`` prints it with ``%v``: ``1e+06``, ``map[a:1 b:x]``,
    ``[1 a <nil>]``, ``<nil>``."""
    return _format(value, "v", top=False)


def go_float_fixed(value: float) -> str:
    """A float64 as Go's ``strconv.FormatFloat(f, 'f', -1, 64)``: shortest
    digits, never an exponent (``1000000``, ``0.0000001``)."""
    if not math.isfinite(value):
        return go_float(value)
    text = repr(value)
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction.rstrip("0")
    point = len(whole) + int(exp or 0)  # where the point goes among the digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped
    if not digits:
        return sign + "0"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _leaf(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def _format(value: Any, verb: str, top: bool, typ: str = "") -> str:
    """One operand of fmt's verb ``v``, ``s`` or ``d``; a wrong verb prints
    Go's ``%!d(float64=3)``. ``top`` is an argument itself rather than an
    element, where nil prints ``<nil>`` whatever the verb."""
    if value is None:
        return f"%!{verb}(<nil>)" if top and verb != "v" else "<nil>"
    if isinstance(value, dict):
        inner = " ".join(f"{_format(k, verb, False)}:{_format(value[k], verb, False)}"
                         for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(_format(item, verb, False) for item in value) + "]"
    if verb == "v" or verb == "s" and isinstance(value, str) \
            or verb == "d" and isinstance(value, int) and not isinstance(value, bool):
        return _leaf(value)
    return f"%!{verb}({typ or go_type(value)}={_leaf(value)})"


_VERB = re.compile(r"%(.)", re.S)


def sprintf(fmt: str, args: list[V]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs ``%v``, ``%s``, ``%d`` and ``%%``.

    Raises:
        Unsupported: another verb, or a flag, width or precision.
    """
    out: list[str] = []
    used = 0
    pos = 0
    for found in _VERB.finditer(fmt):
        out.append(fmt[pos:found.start()])
        pos = found.end()
        verb = found.group(1)
        if verb == "%":
            out.append("%")
            continue
        if verb not in "vsd":
            raise Unsupported(f"printf {fmt!r}: the host's templates support the verbs %v, %s "
                              f"and %d, without flags, width or precision, not %{verb}.")
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        out.append(_format(arg.value, verb, True, arg.typ))
    rest = fmt[pos:]
    if rest.endswith("%"):
        raise Unsupported(f"printf {fmt!r}: a lone % at the end.")
    out.append(rest)
    if used < len(args):
        extra = ", ".join(f"{a.typ}={_format(a.value, 'v', True)}" if a.typ else "<nil>"
                          for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


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


def _lex(text: str) -> list[Token]:
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


# ---------------------------------------------------------------------- nodes

class Node:
    """A node of the parse tree; ``pos`` is where it starts in the text."""

    pos = 0

    def __str__(self) -> str:  # Go's Node.String, shown in errors as <...>
        raise NotImplementedError


class Text(Node):
    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text

    def __str__(self) -> str:
        return self.text


class Field(Node):
    def __init__(self, pos: int, idents: list[str]) -> None:
        self.pos, self.idents = pos, idents

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


class Identifier(Node):
    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def __str__(self) -> str:
        return self.name


class Dot(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "."


class Nil(Node):
    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __str__(self) -> str:
        return "nil"


class Literal(Node):
    """A bool, number or string constant: its source text and Go value."""

    def __init__(self, pos: int, source: str, value: V) -> None:
        self.pos, self.source, self.value = pos, source, value

    def __str__(self) -> str:
        return self.source


class Pipe(Node):
    def __init__(self, pos: int, cmds: list[Command]) -> None:
        self.pos, self.cmds = pos, cmds

    def __str__(self) -> str:
        return " | ".join(str(c) for c in self.cmds)


class Command(Node):
    def __init__(self, pos: int, args: list[Node]) -> None:
        self.pos, self.args = pos, args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


class Chain(Node):
    def __init__(self, pos: int, node: Node, fields: list[str]) -> None:
        self.pos, self.node, self.fields = pos, node, fields

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return head + "".join("." + f for f in self.fields)


class Action(Node):
    def __init__(self, pos: int, pipe: Pipe) -> None:
        self.pos, self.pipe = pos, pipe

    def __str__(self) -> str:
        return f"{{{{{self.pipe}}}}}"


class If(Node):
    def __init__(self, pos: int, pipe: Pipe, body: list[Node],
                 orelse: Optional[list[Node]]) -> None:
        self.pos, self.pipe, self.body, self.orelse = pos, pipe, body, orelse

    def __str__(self) -> str:
        text = f"{{{{if {self.pipe}}}}}" + "".join(str(n) for n in self.body)
        if self.orelse is not None:
            text += "{{else}}" + "".join(str(n) for n in self.orelse)
        return text + "{{end}}"


class _End(Node):
    def __init__(self, pos: int, word: str) -> None:
        self.pos, self.word = pos, word

    def __str__(self) -> str:
        return f"{{{{{self.word}}}}}"


# --------------------------------------------------------------------- parser

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}
_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|"
                     r"([0-7]{3})|(.))", re.S)


def _unquote(source: str) -> str:
    """Go's ``strconv.Unquote`` of a string token; ``ValueError`` with Go's text."""
    if source[0] == "`":
        return source[1:-1].replace("\r", "")
    body = source[1:-1]

    def escape(found: re.Match[str]) -> str:
        hex2, hex4, hex8, octal, simple = found.groups()
        if simple is not None:
            if simple not in _GO_ESCAPES or simple == "'":
                raise ValueError("invalid syntax")
            return _GO_ESCAPES[simple]
        if hex2 or octal:
            code = int(hex2, 16) if hex2 else int(octal, 8)
            if code >= 0x80:
                raise Unsupported(f"the string {source} holds a byte escape above \\x7f, "
                                  "which the host's templates do not support.")
            return chr(code)
        code = int(hex4 or hex8, 16)
        if 0xD800 <= code < 0xE000 or code > 0x10FFFF:
            raise ValueError("invalid syntax")
        return chr(code)

    return _ESCAPE.sub(escape, body)


class _Parser:
    """Go's template grammar, for the subset the host executes."""

    def __init__(self, text: str, name: str, functions: frozenset[str]) -> None:
        self.text = text
        self.name = name
        self.functions = functions
        self.tokens = _lex(text)
        self.at = 0
        self.current = self.tokens[0]  # the last token taken, for an error's line
        self.action_line = 0

    # tokens; the last one (EOF or ERROR) repeats for ever
    def next(self) -> Token:
        token = self.peek()
        self.at += 1
        self.current = token
        return token

    def backup(self) -> None:
        self.at -= 1

    def peek(self) -> Token:
        return self.tokens[min(self.at, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind == SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup()
        return token

    # errors
    def error(self, message: str) -> ParseError:
        return ParseError(f"template: {self.name}:{self.current.line}: {message}")

    def unexpected(self, token: Token, context: str) -> ParseError:
        if token.kind == ERROR:
            if token.val in ("character constants",):
                raise Unsupported("The host's templates do not support character constants "
                                  "('a'); use a string.")
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            return self.error(f"{token}{extra}")
        return self.error(f"unexpected {token} in {context}")

    # grammar
    def parse(self) -> list[Node]:
        root: list[Node] = []
        while self.peek().kind not in (EOF,):
            node = self.text_or_action()
            if isinstance(node, _End):
                raise self.error(f"unexpected {node}")
            root.append(node)
        return root

    def item_list(self) -> tuple[list[Node], _End]:
        items: list[Node] = []
        while self.peek_non_space().kind != EOF:
            node = self.text_or_action()
            if isinstance(node, _End):
                return items, node
            items.append(node)
        self.next_non_space()
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.kind == TEXT:
            return Text(token.pos, token.val)
        if token.kind == LEFT:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.kind == KEYWORD and token.val != "nil":
            word = token.val
            if word == "if":
                return self.if_control(token)
            if word == "else":
                if self.peek_non_space().val in ("if", "with") and \
                        self.peek_non_space().kind == KEYWORD:
                    return _End(token.pos, "else")
                self.expect_right("else")
                return _End(token.pos, "else")
            if word == "end":
                self.expect_right("end")
                return _End(token.pos, "end")
            raise Unsupported(f"The host's templates do not support {{{{{word}}}}} (in "
                              f"{self.text!r}); they support field paths, pipelines, "
                              "function calls and if/else.")
        self.backup()
        start = self.peek()
        return Action(start.pos, self.pipeline("command", RIGHT))

    def expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind != RIGHT:
            raise self.unexpected(token, context)

    def if_control(self, keyword: Token) -> If:
        pipe = self.pipeline("if", RIGHT)
        body, end = self.item_list()
        orelse: Optional[list[Node]] = None
        if end.word == "else":
            if self.peek().kind == KEYWORD and self.peek().val == "if":
                token = self.next()
                orelse = [self.if_control(token)]
            elif self.peek().kind == KEYWORD and self.peek().val == "with":
                raise Unsupported("The host's templates do not support {{else with}}.")
            else:
                orelse, end = self.item_list()
                if end.word != "end":
                    raise self.error(f"expected end; found {end}")
        return If(pipe.pos, pipe, body, orelse)

    def pipeline(self, context: str, end: int) -> Pipe:
        start = self.peek_non_space()
        if start.kind == VARIABLE:
            raise Unsupported(f"The host's templates do not support variables "
                              f"({start.val}, in {self.text!r}).")
        cmds: list[Command] = []
        pipe = Pipe(start.pos, cmds)
        while True:
            token = self.next_non_space()
            if token.kind == end:
                if not cmds:
                    raise self.error(f"missing value for {context}")
                for i, cmd in enumerate(cmds[1:]):
                    if isinstance(cmd.args[0], (Literal, Dot, Nil)):
                        raise self.error(f"non executable command in pipeline stage {i + 2}")
                return pipe
            if token.kind in (BOOL, DOT, FIELD, IDENT, NUMBER, RAW_STRING, STRING, LPAREN,
                              VARIABLE) or token.kind == KEYWORD and token.val == "nil":
                self.backup()
                cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == SPACE:
                continue
            if token.kind in (RIGHT, RPAREN):
                self.backup()
            elif token.kind != PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Optional[Node]:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == FIELD:
            pos = self.peek().pos
            fields: list[str] = []
            while self.peek().kind == FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, Field):
                return Field(pos, node.idents + fields)
            if isinstance(node, (Literal, Nil, Dot)):
                raise self.error(f"unexpected . after term {go_quote(str(node))}")
            return Chain(pos, node, fields)
        return node

    def term(self) -> Optional[Node]:
        token = self.next_non_space()
        kind = token.kind
        if kind == IDENT:
            if token.val not in self.functions:
                raise self.error(f"function {go_quote(token.val)} not defined")
            if token.val not in FUNCTIONS:
                raise Unsupported(f"The host's templates do not support the function "
                                  f"{token.val!r} (in {self.text!r}); they have "
                                  f"{', '.join(sorted(FUNCTIONS))}.")
            return Identifier(token.pos, token.val)
        if kind == DOT:
            return Dot(token.pos)
        if kind == KEYWORD and token.val == "nil":
            return Nil(token.pos)
        if kind == VARIABLE:
            raise Unsupported(f"The host's templates do not support variables "
                              f"({token.val}, in {self.text!r}).")
        if kind == FIELD:
            return Field(token.pos, [token.val[1:]])
        if kind == BOOL:
            return Literal(token.pos, token.val, V(token.val == "true", "bool"))
        if kind == NUMBER:
            return Literal(token.pos, token.val, self.number(token))
        if kind == LPAREN:
            return self.pipeline("parenthesized pipeline", RPAREN)
        if kind in (STRING, RAW_STRING):
            try:
                text = _unquote(token.val)
            except ValueError as err:
                if isinstance(err, Unsupported):
                    raise
                raise self.error("invalid syntax") from None
            return Literal(token.pos, token.val, V(text, "string"))
        self.backup()
        return None

    def number(self, token: Token) -> V:
        text = token.val
        if re.fullmatch(r"[+-]?[0-9]+", text):
            digits = text.lstrip("+-")
            if len(digits) > 1 and digits[0] == "0":
                raise Unsupported(f"The host's templates do not support the octal number "
                                  f"{text}.")
            value = int(text)
            if not -(1 << 63) <= value < 1 << 63:
                raise Unsupported(f"The number {text} is beyond a Go int.")
            return V(value, "int")
        if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
            value_f = float(text)
            if value_f.is_integer() and "." not in text and "e" not in text.lower():
                return V(int(value_f), "int")
            return V(value_f, "float64")
        raise Unsupported(f"The host's templates support decimal numbers only, not {text}.")


def parse(text: str, name: str = "sink", functions: frozenset[str] = KNOWN_FUNCTIONS
          ) -> Template:
    """Parse a template as eKuiper's ``transform.GenTp`` does.

    Args:
        text: the template.
        name: its name, shown in errors (eKuiper names every template ``sink``).
        functions: the names Go knows; another is Go's "not defined" error.

    Raises:
        ParseError: Go refuses the template; ``str(err)`` is its text
            (``template: sink:1: unexpected EOF``).
        Unsupported: Go accepts it, and the host cannot execute it.
    """
    parser = _Parser(text, name, functions)
    return Template(text, name, parser.parse())


# ------------------------------------------------------------------ functions

class _FuncError(Exception):
    """A function's own error: Go reports ``error calling NAME: <this>``."""


class Func(NamedTuple):
    """A template function: its Go parameter kinds, variadic kind and result type.

    Kinds: ``string`` (a Go string), ``any`` (``interface {}``), ``value``
    (``reflect.Value``, which Go's builtins take as they are).
    """

    params: tuple[str, ...]
    variadic: Optional[str]
    result: str  # the Go result type; "" when the function returns a V itself
    call: Callable[..., Any]


def _upper(s: V) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s.value)


def _lower(s: V) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s.value)


def _to_string(v: V) -> str:
    return v.value if isinstance(v.value, str) else sprint(v.value)


def _json(v: V) -> str:
    return go_json(v.value).decode()


def _empty(v: V) -> bool:
    value = v.value
    if value is None:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    return not value


def _default(fallback: V, *given: V) -> V:
    if not given or _empty(given[0]):
        return V(fallback.value, IFACE)
    return V(given[0].value, IFACE)


def _base64(v: V) -> str:
    value = v.value
    if value is None:
        raise _FuncError("based64 error for nil")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = go_float_fixed(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        return base64.b64encode(go_json(value)).decode()
    else:
        raise _FuncError("Unsupported data type slice for base64 function.")
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def _prop(key: V) -> str:
    return key.value  # eKuiper's props store is empty in the host: prop gives the key


def _index(item: V, *indexes: V) -> V:
    item = _concrete(item)
    if item is INVALID or not item.typ:
        raise _FuncError("index of untyped nil")
    for index in indexes:
        index = _concrete(index)
        if item.typ == IFACE:
            if item.value is None:
                raise _FuncError("index of nil pointer")
            item = _concrete(item)
        if isinstance(item.value, list):
            if not index.typ:
                raise _FuncError("cannot index slice/array with nil")
            if index.typ != "int":
                raise _FuncError(f"cannot index slice/array with type {index.typ}")
            if not 0 <= index.value <= len(item.value):
                raise _FuncError(f"index out of range: {index.value}")
            if index.value == len(item.value):  # Go's check lets it through to reflect's
                raise _FuncError("reflect: slice index out of range")
            element = item.value[index.value]
            item = V(element, MAP) if item.typ == ROWS else V(element, IFACE)
        elif isinstance(item.value, dict):
            if not index.typ:
                raise _FuncError("value is nil; should be of type string")
            if index.typ != "string":
                raise _FuncError(f"value has type {index.typ}; should be string")
            item = V(item.value.get(index.value), IFACE)
        elif item.typ == "string":
            raise Unsupported("The host's templates do not index strings.")
        else:
            raise _FuncError(f"can't index item of type {item.typ}")
    return item


def _len(item: V) -> int:
    if item.typ == IFACE and item.value is None:
        raise _FuncError("len of nil pointer")
    item = _concrete(item)
    if not item.typ:
        raise _FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item.value, (list, dict)):
        return len(item.value)
    if isinstance(item.value, str):
        return len(item.value.encode("utf-8", "surrogatepass"))
    raise _FuncError(f"len of type {item.typ}")


def _printf(fmt: V, *args: V) -> str:
    return sprintf(fmt.value, list(args))


FUNCTIONS: dict[str, Func] = {
    "index": Func(("value",), "value", "", _index),
    "len": Func(("value",), None, "int", _len),
    "printf": Func(("string",), "any", "string", _printf),
    "json": Func(("any",), None, "string", _json),
    "toJson": Func(("any",), None, "string", _json),
    "base64": Func(("any",), None, "string", _base64),
    "prop": Func(("string",), None, "string", _prop),
    "toString": Func(("any",), None, "string", _to_string),
    "upper": Func(("string",), None, "string", _upper),
    "lower": Func(("string",), None, "string", _lower),
    "default": Func(("any",), "any", "", _default),
}


# ------------------------------------------------------------------ execution

class Template:
    """A parsed template.

    Attributes:
        text: the template as written.
        name: its name in errors.
        root: its nodes.
    """

    def __init__(self, text: str, name: str, root: list[Node]) -> None:
        self.text = text
        self.name = name
        self.root = root

    def __repr__(self) -> str:
        return f"<Template {self.text!r}>"

    def execute(self, data: Any, data_type: str = MAP) -> str:
        """Run the template against ``data``, as Go's ``Execute`` does.

        Args:
            data: a rule's output: a row (a dict), or the list of rows.
            data_type: its Go type: :data:`MAP` for a row, :data:`ROWS` for a list.

        Raises:
            ExecError: Go's execution error, with what was written before it.
            Unsupported: a printf verb the host does not play.
        """
        run = _Run(self)
        try:
            for node in self.root:
                run.walk(V(data, data_type), node)
        except _Failed as failed:
            raise ExecError(failed.text, "".join(run.out)) from None
        return "".join(run.out)


class _Failed(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


class _Run:
    """One execution: what it wrote and the node it is at (for errors)."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.out: list[str] = []
        self.node: Node = Text(0, "")

    def at(self, node: Node) -> None:
        self.node = node

    def fail(self, message: str) -> _Failed:
        text = self.template.text
        pos = self.node.pos
        before = text[:pos]
        line_start = before.rfind("\n") + 1
        column = len(before[line_start:].encode("utf-8", "surrogatepass"))
        line = 1 + before.count("\n")
        name = self.template.name
        return _Failed(f"template: {name}:{line}:{column}: executing {go_quote(name)} "
                       f"at <{self.node}>: {message}")

    # walk
    def walk(self, dot: V, node: Node) -> None:
        self.at(node)
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.pipeline(dot, node.pipe)
            self.at(node)
            self.out.append(NO_VALUE if not value.typ else _print(value))
        elif isinstance(node, If):
            value = _concrete(self.pipeline(dot, node.pipe))
            for child in node.body if _truth(value) else node.orelse or []:
                self.walk(dot, child)

    def pipeline(self, dot: V, pipe: Pipe) -> V:
        self.at(pipe)
        value = _MISSING_FINAL
        for cmd in pipe.cmds:
            value = _concrete(self.command(dot, cmd, value))
        return value

    def command(self, dot: V, cmd: Command, final: V) -> V:
        first = cmd.args[0]
        if isinstance(first, Field):
            self.at(first)
            return self.field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.function(dot, first, cmd, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.pipeline(dot, first)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Literal):
            return first.value
        if isinstance(first, Dot):
            return dot
        raise self.fail("nil is not a command")

    def not_a_function(self, args: list[Node], final: V) -> None:
        if len(args) > 1 or final is not _MISSING_FINAL:
            raise self.fail(f"can't give argument to non-function {args[0]}")

    def chain(self, dot: V, chain: Chain, args: Optional[list[Node]], final: V) -> V:
        self.at(chain)
        if isinstance(chain.node, Nil):
            raise self.fail(f"indirection through explicit nil in {chain}")
        receiver = self.arg(dot, "value", chain.node)
        return self.field_chain(dot, receiver, chain, chain.fields, args, final)

    def field_chain(self, dot: V, receiver: V, node: Node, idents: list[str],
                    args: Optional[list[Node]], final: V) -> V:
        for name in idents[:-1]:
            receiver = self.field(name, None, _MISSING_FINAL, receiver)
        return self.field(idents[-1], args, final, receiver)

    def field(self, name: str, args: Optional[list[Node]], final: V, receiver: V) -> V:
        if not receiver.typ:
            return INVALID
        if receiver.typ == IFACE and receiver.value is None:
            raise self.fail(f"nil pointer evaluating {IFACE}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not _MISSING_FINAL
        if isinstance(receiver.value, dict):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments")
            if name in receiver.value:
                return V(receiver.value[name], IFACE)
            return INVALID
        raise self.fail(f"can't evaluate field {name} in type {receiver.typ}")

    def function(self, dot: V, ident: Identifier, node: Node, args: Optional[list[Node]],
                 final: V) -> V:
        self.at(ident)
        func = FUNCTIONS[ident.name]
        given = list(args[1:]) if args is not None else []
        count = len(given) + (final is not _MISSING_FINAL)
        fixed = len(func.params)
        if func.variadic is not None:
            if count < fixed:
                raise self.fail(f"wrong number of args for {ident.name}: want at least "
                                f"{fixed} got {len(given)}")
        elif count != fixed:
            raise self.fail(f"wrong number of args for {ident.name}: want {fixed} got {count}")
        argv = [self.arg(dot, func.params[i] if i < fixed else str(func.variadic), arg)
                for i, arg in enumerate(given)]
        if final is not _MISSING_FINAL:
            kind = func.params[count - 1] if count - 1 < fixed else str(func.variadic)
            argv.append(self.validate(final, kind))
        try:
            result = func.call(*argv)
        except _FuncError as err:
            self.at(node)
            raise self.fail(f"error calling {ident.name}: {err}") from None
        return result if not func.result else V(result, func.result)

    def arg(self, dot: V, kind: str, node: Node) -> V:
        self.at(node)
        if isinstance(node, Dot):
            return self.validate(dot, kind)
        if isinstance(node, Nil):
            if kind == "string":
                raise self.fail("cannot assign nil to string")
            return V(None, IFACE) if kind == "any" else INVALID
        if isinstance(node, Field):
            self.at(node)
            return self.validate(self.field_chain(dot, dot, node, node.idents, [node],
                                                  _MISSING_FINAL), kind)
        if isinstance(node, Pipe):
            return self.validate(self.pipeline(dot, node), kind)
        if isinstance(node, Identifier):
            return self.validate(self.function(dot, node, node, None, _MISSING_FINAL), kind)
        if isinstance(node, Chain):
            return self.validate(self.chain(dot, node, None, _MISSING_FINAL), kind)
        assert isinstance(node, Literal)
        if kind == "string" and node.value.typ != "string":
            raise self.fail(f"expected string; found {node}")
        return node.value

    def validate(self, value: V, kind: str) -> V:
        """The argument a function of parameter ``kind`` receives (Go's ``validateType``)."""
        if kind == "value":
            return value
        if kind == "any":
            return _concrete(value)
        if not value.typ:
            raise self.fail("invalid value; expected string")
        concrete = _concrete(value) if value.value is not None else value
        if concrete.typ != "string":
            raise self.fail(f"wrong type for value; expected string; got {concrete.typ}")
        return concrete


def _truth(value: V) -> bool:
    """Go's ``isTrue`` for the values a rule's output holds."""
    if not value.typ:
        return False
    return bool(value.value)


def _print(value: V) -> str:
    return value.value if isinstance(value.value, str) else sprint(value.value)
