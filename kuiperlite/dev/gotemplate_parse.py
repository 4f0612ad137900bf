"""Go's text/template parse tree and parser, as far as eKuiper's sinks reach,
with Go's parse errors."""

from __future__ import annotations

import re
from typing import Optional

from .gotemplate_lex import (
    BOOL,
    DOT,
    EOF,
    ERROR,
    FIELD,
    IDENT,
    KEYWORD,
    LEFT,
    LPAREN,
    NUMBER,
    PIPE,
    RAW_STRING,
    RIGHT,
    RPAREN,
    SPACE,
    STRING,
    TEXT,
    VARIABLE,
    Token,
    go_quote,
    lex,
)
from .gotemplate_values import FUNCTIONS, ParseError, Unsupported, V

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


class TemplateParser:
    """Go's template grammar, for the subset the host executes."""

    def __init__(self, text: str, name: str, functions: frozenset[str]) -> None:
        self.text = text
        self.name = name
        self.functions = functions
        self.tokens = lex(text)
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
