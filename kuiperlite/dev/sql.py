"""eKuiper's SQL as far as it reaches a function: what its parser asks a portable function.

When a rule is created, eKuiper parses its SQL. At each call of a portable
function it asks the plugin ``IsAggregate`` (until an answer is a boolean,
which it keeps), parses the arguments, and sends them to ``Validate`` as its
parser built them: ``pkg/ast`` nodes, marshalled by Go, built here with
:mod:`kuiperlite.dev.gowire`'s builders. A Validate that refuses, or a reply
eKuiper cannot read, fails the parse with eKuiper's text.

:func:`parse` is that parser: literals (strings in either quote, integers,
numbers, booleans, time units), columns, ``*``, ``meta()``, calls,
operators with eKuiper's precedence, ``CASE``, ``a[0]``, ``a[1:2]``,
``a->b``, ``IN``, ``BETWEEN``, ``LIKE``, windows, and the clauses of a
SELECT around them, with eKuiper's error texts. :func:`requests` lists the
requests a statement makes of functions that answer as told, and
:meth:`FunctionHandle.validate_sql <kuiperlite.dev.handles.FunctionHandle.validate_sql>`
sends them to a running plugin.

Where it differs from eKuiper: built-in functions are known by name and
type only (their own argument checks do not run); the statement returned is
the parser's, without the rewrite eKuiper then makes of a SELECT's columns
whose stream is not in FROM (after every request); and a LIKE pattern is
checked as a Python regular expression, with Go's texts for the common
errors (the two syntaxes differ at the edges).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Callable, NamedTuple, Optional

from . import gojson, gowire
from .gowire import Node, Struct

# ast.Token, in eKuiper's order (its pkg/ast/token.go at the corpus's commit).
(ILLEGAL, EOF, WS, COMMENT, AS, IDENT, INTEGER, NUMBER, STRING, SINGLEQUOTE, BADSTRING,
 _OPERATORS_BEGIN, ADD, SUB, MUL, DIV, MOD, BITWISE_AND, BITWISE_OR, BITWISE_XOR, AND, OR,
 EQ, NEQ, LT, LTE, GT, GTE, SUBSET, ARROW, IN, NOT, NOTIN, BETWEEN, NOTBETWEEN, LIKE, NOTLIKE,
 REPLACE, EXCEPT, _OPERATORS_END, ASTERISK, COMMA, LPAREN, RPAREN, LBRACKET, RBRACKET, HASH,
 DOT, COLON, SEMICOLON, COLSEP, SELECT, FROM, JOIN, INNER, LEFT, RIGHT, FULL, CROSS, ON, WHERE,
 LIMIT, GROUP, ORDER, HAVING, BY, ASC, DESC, FILTER, CASE, WHEN, THEN, ELSE, END, OVER,
 PARTITION, INVISIBLE, DEFAULT, TRUE, FALSE, DD, HH, MI, SS, MS) = range(85)

# How eKuiper writes each token in messages (ast.Tokens); the others are "".
_TEXT = {ILLEGAL: "ILLEGAL", EOF: "EOF", AS: "AS", WS: "WS", IDENT: "IDENT",
         INTEGER: "INTEGER", NUMBER: "NUMBER", STRING: "STRING", SINGLEQUOTE: "SINGLEQUOTE",
         ADD: "+", SUB: "-", MUL: "*", DIV: "/", MOD: "%", BITWISE_AND: "&", BITWISE_OR: "|",
         BITWISE_XOR: "^", EQ: "=", NEQ: "!=", LT: "<", LTE: "<=", GT: ">", GTE: ">=",
         SUBSET: "[]", ARROW: "->", IN: "IN", ASTERISK: "*", COMMA: ",", LPAREN: "(",
         RPAREN: ")", LBRACKET: "[", RBRACKET: "]", HASH: "#", DOT: ".", SEMICOLON: ";",
         COLON: ":", COLSEP: "\007", NOTIN: "NOT IN", NOTBETWEEN: "NOT BETWEEN",
         NOTLIKE: "NOT LIKE"}
_TEXT.update({token: word for word, token in (
    ("SELECT", SELECT), ("FROM", FROM), ("JOIN", JOIN), ("LEFT", LEFT), ("INNER", INNER),
    ("ON", ON), ("WHERE", WHERE), ("LIMIT", LIMIT), ("GROUP", GROUP), ("ORDER", ORDER),
    ("HAVING", HAVING), ("BY", BY), ("ASC", ASC), ("DESC", DESC), ("FILTER", FILTER),
    ("CASE", CASE), ("WHEN", WHEN), ("THEN", THEN), ("ELSE", ELSE), ("END", END),
    ("OVER", OVER), ("PARTITION", PARTITION), ("INVISIBLE", INVISIBLE), ("DEFAULT", DEFAULT),
    ("AND", AND), ("OR", OR), ("TRUE", TRUE), ("FALSE", FALSE), ("BETWEEN", BETWEEN),
    ("LIKE", LIKE), ("REPLACE", REPLACE), ("EXCEPT", EXCEPT), ("DD", DD), ("HH", HH),
    ("MI", MI), ("SS", SS), ("MS", MS))})

# The words the lexer takes for keywords, whatever their case.
_KEYWORDS = {"SELECT": SELECT, "AS": AS, "FROM": FROM, "WHERE": WHERE, "AND": AND, "OR": OR,
             "GROUP": GROUP, "HAVING": HAVING, "ORDER": ORDER, "BY": BY, "DESC": DESC,
             "ASC": ASC, "FILTER": FILTER, "INNER": INNER, "LEFT": LEFT, "RIGHT": RIGHT,
             "FULL": FULL, "CROSS": CROSS, "JOIN": JOIN, "ON": ON, "CASE": CASE, "WHEN": WHEN,
             "THEN": THEN, "DEFAULT": DEFAULT, "ELSE": ELSE, "END": END, "IN": IN, "NOT": NOT,
             "BETWEEN": BETWEEN, "LIKE": LIKE, "OVER": OVER, "PARTITION": PARTITION,
             "REPLACE": REPLACE, "EXCEPT": EXCEPT, "INVISIBLE": INVISIBLE, "TRUE": TRUE,
             "FALSE": FALSE, "DD": DD, "HH": HH, "MI": MI, "SS": SS, "MS": MS, "LIMIT": LIMIT}

_PRECEDENCE = {OR: 1, AND: 2, **dict.fromkeys(
    (EQ, NEQ, LT, LTE, GT, GTE, IN, NOTIN, BETWEEN, NOTBETWEEN, LIKE, NOTLIKE), 3),
    **dict.fromkeys((ADD, SUB, BITWISE_OR, BITWISE_XOR), 4),
    **dict.fromkeys((MUL, DIV, MOD, BITWISE_AND, SUBSET, ARROW, DOT), 5)}

# Operations that are true or false (ast.IsBooleanArg).
CONDITIONS = frozenset({AND, OR, EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, NOTBETWEEN, IN, NOTIN,
                        LIKE, NOTLIKE})

# ast.FuncType
UNKNOWN_FUNC, SCALAR, AGGREGATE, COLS, SET_RETURNING, WINDOW_FUNC, TRIGGER = range(-1, 6)

# eKuiper's built-in functions by ast.FuncType (its internal/binder/function at the
# corpus's commit). Their names are not case-sensitive; a portable function's is.
BUILTINS: dict[str, int] = {name: kind for kind, names in (
    (SCALAR, """abs acc_avg acc_count acc_max acc_min acc_sum acos array_cardinality
     array_concat array_contains array_contains_any array_create array_distinct array_except
     array_flatten array_intersect array_join array_last_position array_map array_max
     array_min array_position array_remove array_shuffle array_sort array_union asin atan
     atan2 bitand bitnot bitor bitxor bypass cardinality cast ceil ceiling changed_col chr
     coalesce compress concat conv convert_tz cos cosh cot crc32 cur_date cur_time
     current_date current_time current_timestamp date_calc date_diff day day_name
     day_of_month day_of_week day_of_year dec2hex decode decompress degrees delay
     element_at encode endswith erase event_time exp floor format format_time from_days
     from_unix_time get_keyed_state had_changed hex2dec hour inc_avg inc_collect inc_count
     inc_last_value inc_max inc_merge_agg inc_min inc_sum indexof isnull items
     json_path_exists json_path_query json_path_query_first keys kvpair_array_to_obj lag
     last_day last_hit_count last_hit_time latest length ln local_time local_timestamp log
     lower lpad ltrim md5 meta microsecond minute mod month month_name mqtt newuuid now
     numbytes obj_to_kvpair_array object object_concat object_construct object_pick
     object_size parse_json pi pow power props radians rand regexp_matches regexp_replace
     regexp_substr repeat reverse round rpad rtrim rule_id rule_start second sequence sha1
     sha256 sha384 sha512 sign sin sinh split_value sqrt startswith substring tan tanh
     to_json to_seconds trim trunc tstamp upper values window_end window_start
     window_trigger zip"""),
    (AGGREGATE, """avg collect count deduplicate last_agg_hit_count last_agg_hit_time
     last_value max median merge_agg min percentile_cont percentile_disc stddev stddevs sum
     var vars"""),
    (COLS, "changed_cols"),
    (SET_RETURNING, "extract unnest"),
    (WINDOW_FUNC, "row_number"),
) for name in names.split()}

_ANALYTIC = frozenset(("lag", "changed_col", "had_changed", "latest", "acc_sum", "acc_min",
                       "acc_max", "acc_avg", "acc_count"))
# ast.WindowType of each window function; dedup_trigger is named like them, but is a call.
NOT_WINDOW, TUMBLING, HOPPING, SLIDING, SESSION, COUNT, STATE = range(7)
_WINDOWS = {"tumblingwindow": TUMBLING, "hoppingwindow": HOPPING, "slidingwindow": SLIDING,
            "sessionwindow": SESSION, "countwindow": COUNT, "statewindow": STATE,
            "dedup_trigger": NOT_WINDOW}
_WINDOW_NAMES = {TUMBLING: "TUMBLING_WINDOW", HOPPING: "HOPPING_WINDOW",
                 SLIDING: "SLIDING_WINDOW", SESSION: "SESSION_WINDOW", COUNT: "COUNT_WINDOW",
                 NOT_WINDOW: "NOT_WINDOW"}
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_SPACES = frozenset(" \t\r\n")
_SOURCE_TOKENS = (IDENT, DIV, HASH, ADD)  # what a FROM's name may be made of (MQTT topics)
# The characters that are a token by themselves ("": the end of the input).
_SINGLE = {"": EOF, "=": EQ, "+": ADD, "%": MOD, "&": BITWISE_AND, "|": BITWISE_OR,
           "^": BITWISE_XOR, "*": ASTERISK, ",": COMMA, "(": LPAREN, ")": RPAREN, "[": LBRACKET,
           "]": RBRACKET, ":": COLON, "#": HASH, ";": SEMICOLON}

ACCEPT = b'{"state":true,"result":""}'

# Sends one request to a portable function, ``(func, args)``; returns the reply's bytes.
Requester = Callable[[str, Optional[list]], bytes]


class SqlError(ValueError):
    """eKuiper's parser refused a statement; ``str(err)`` is its error text."""


class Request(NamedTuple):
    """One request eKuiper sends a portable function while it parses a statement.

    Attributes:
        function: the function's name.
        func: ``"IsAggregate"`` or ``"Validate"``.
        args: Validate's argument expressions (None for IsAggregate).
        raw: the request's bytes.
    """

    function: str
    func: str
    args: Optional[list]
    raw: bytes


class Statement(NamedTuple):
    """A parsed SELECT, as far as the parser builds it (before eKuiper binds it).

    ``fields`` holds ``ast.Field`` nodes (:func:`~kuiperlite.dev.gowire.select_field`);
    the calls in them carry their ``FuncId`` and ``FuncType``.
    """

    fields: list
    sources: list
    joins: list
    condition: Optional[Node]
    dimensions: list
    having: Optional[Node]
    sort_fields: list
    limit: Optional[Node]


class Outcome(NamedTuple):
    """What parsing a statement did: the requests sent, the statement, or the error."""

    requests: list[Request]
    statement: Optional[Statement]
    error: Optional[str]


def parse(sql: str, functions: Optional[Mapping[str, Requester]] = None, *,
          ekuiper: int = 2) -> Statement:
    """Parse a SELECT as eKuiper does when a rule is created.

    Args:
        sql: the rule's SQL.
        functions: the portable functions by name, each a callable that sends
            a request and returns the reply's bytes; a call of any other
            function that is not eKuiper's is an error.
        ekuiper: the generation whose node shapes Validate receives, 2 or 1.

    Returns:
        The statement.

    Raises:
        SqlError: eKuiper's parser refuses it (a portable function's Validate
            among the reasons); its text is eKuiper's.
    """
    return _Parser(sql, functions or {}, ekuiper).statement()


def requests(sql: str, functions: Iterable[str] = (), *, aggregate: Iterable[str] = (),
             validate_reply: bytes = ACCEPT, ekuiper: int = 2) -> Outcome:
    """The requests eKuiper sends while it parses ``sql``, in order.

    Each portable function answers IsAggregate with whether it is in
    ``aggregate``, and every Validate with ``validate_reply``. eKuiper keeps a
    function's IsAggregate answer for as long as it runs: these are the
    requests of the first statement that calls it.

    Args:
        sql: the statement.
        functions: the names of the portable functions (case-sensitive).
        aggregate: those of them that are aggregate functions.
        validate_reply: the bytes a function answers Validate with.
        ekuiper: the generation, 2 or 1.
    """
    sent: list[Request] = []
    aggregates = set(aggregate)

    def requester(name: str) -> Requester:
        def send(func: str, args: Optional[list]) -> bytes:
            sent.append(Request(name, func, args, gowire.encode_function_call(func, args)))
            if func == "IsAggregate":
                return b'{"state":true,"result":%s}' % (b"true" if name in aggregates
                                                        else b"false")
            return validate_reply
        return send

    try:
        statement = parse(sql, {name: requester(name) for name in functions}, ekuiper=ekuiper)
    except SqlError as err:
        return Outcome(sent, None, str(err))
    return Outcome(sent, statement, None)


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
        if ch in _SPACES:
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
        if ch in _SINGLE:
            return _SINGLE[ch], _TEXT[_SINGLE[ch]]
        if ch in ("!", "<", ">"):
            self.spaces()
            if self.read() == "=":
                token = {"!": NEQ, "<": LTE, ">": GTE}[ch]
            else:
                self.unread()
                token = {"!": EQ, "<": LT, ">": GT}[ch]  # a lone ! is =
            return token, _TEXT[token]
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
            if ch not in _SPACES:
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
        return (_KEYWORDS[upper], upper) if upper in _KEYWORDS else (IDENT, word)

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
            value = _go_unquote(word)
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

    def validate(self, args: list) -> Optional[str]:
        return gowire.decode_reply(self.send("Validate", args or None)).validate


class _Parser:
    """eKuiper's SQL parser: a three-token buffer to step back in, over the lexer."""

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

    # ------------------------------------------------------- statement

    def statement(self) -> Statement:
        tok, lit = self.next()
        if tok == EOF:
            raise SqlError(f"SQL {self.sql} is not a select statement.")
        if tok != SELECT:
            raise SqlError(f"Found {_q(lit)}, Expected SELECT.\n")
        self.clause = "select"
        fields = [self.field()]
        while self.next()[0] == COMMA:
            fields.append(self.field())
        self.unscan()
        self.clause = "from"
        tok, lit = self.next()
        if tok != FROM:
            raise SqlError(f"found {_q(lit)}, expected FROM.")
        sources = [self.source_name()]
        self.clause = "join"
        joins = self.joins()
        self.sources = [name for source in sources + [join[:2] for join in joins]
                        for name in source[:1] + tuple(alias for alias in source[1:] if alias)]
        self.clause = "where"
        condition = self.expr() if self.take(WHERE) else None
        self.clause = "groupby"
        dimensions = self.dimensions()
        self.clause = "having"
        having = self.expr() if self.take(HAVING) else None
        self.clause = "orderby"
        sort_fields = self.sorts()
        self.clause = "limit"
        limit = self.expr() if self.take(LIMIT) else None
        if limit is not None and not _is(limit, "IntegerLiteral"):
            raise SqlError("limit should be integer")
        self.clause = ""
        statement = Statement(fields, sources, joins, condition, dimensions, having,
                              sort_fields, limit)
        tok, lit = self.next()
        if tok == SEMICOLON:
            return statement  # eKuiper checks a statement that ends with ; no further
        if tok != EOF:
            raise SqlError(f"found {_q(lit)}, expected EOF.")
        self.check(statement)
        return statement

    def field(self) -> Node:
        expr = self.expr()
        name = _name(expr)
        alias = ""
        if self.take(AS):
            tok, alias = self.next()
            if tok != IDENT:
                raise SqlError(f"found {_q(alias)}, expected as alias.")
            if alias and name == "*":
                raise SqlError("alias is not supported for *")
        if not name and not alias:
            name = f"kuiper_field_{self.unnamed}"
            self.unnamed += 1
        invisible = self.take(INVISIBLE)
        return gowire.select_field(expr, name, alias, invisible)

    def source_name(self) -> tuple[str, str]:
        parts, alias = [], ""
        while True:
            tok, lit = self.next()
            if tok not in _SOURCE_TOKENS:
                self.unscan()
                break
            parts.append(lit)
            tok1, lit1 = self.next()
            if tok1 == AS:
                tok2, lit2 = self.next()
                if tok2 != IDENT:
                    raise SqlError(f"found {_q(lit)}, expected JOIN key word.")
                alias = lit2
            elif tok1 in _SOURCE_TOKENS:
                parts.append(lit1)
            else:
                self.unscan()
                break
        return "".join(parts), alias

    def joins(self) -> list:
        joins: list = []
        while True:
            tok, lit = self.next()
            if tok not in (INNER, LEFT, RIGHT, FULL, CROSS):
                self.unscan()
                return joins
            if self.next()[0] != JOIN:
                raise SqlError(f"found {_q(lit)}, expected JOIN key word.")
            name, alias = self.source_name()
            on = None
            if self.take(ON):
                if tok == CROSS:
                    raise SqlError("On expression is not required for cross join type.\n")
                on = self.expr()
            joins.append((name, alias, tok, on))

    def dimensions(self) -> list:
        if not self.take(GROUP):
            return []
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {_q(lit)}, expected BY statement.")
        dimensions = [self.expr()]
        while self.next()[0] == COMMA:
            dimensions.append(self.expr())
        self.unscan()
        return dimensions

    def sorts(self) -> list:
        if not self.take(ORDER):
            return []
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {_q(lit)}, expected BY keyword.")
        sorts: list = []
        while True:
            tok, _ = self.next()
            if tok == COMMA:
                continue
            if tok != IDENT:
                self.unscan()
                return sorts
            self.unscan()
            names = self.name_sections(False)
            if len(names) == 2:  # back over the dot and the name, then the stream
                self.unscan()
                self.unscan()
            self.unscan()
            expr = self.expr()
            tok, _ = self.next()
            ascending = tok != DESC
            if tok not in (ASC, DESC):
                self.unscan()
            stream, name = (names[0], names[1]) if len(names) == 2 else ("", names[0])
            sorts.append(gowire.sort_field(expr, name, stream, ascending))

    # ---------------------------------------------------------- expressions

    def expr(self) -> Node:
        """An expression, its operators nested by eKuiper's precedence."""
        root = Struct(RHS=self.unary(False))  # the Go code's placeholder BinaryExpr
        while True:
            op, _ = self.next()
            if not (_OPERATORS_BEGIN < op < _OPERATORS_END or op in (ASTERISK, LBRACKET, DOT)):
                self.unscan()
                return root["RHS"]
            if op == ASTERISK:
                op = MUL
            elif op == LBRACKET:
                op = SUBSET
                self.unscan()
            elif op == IN:
                self.unscan()
            elif op == NOT:
                after, lit = self.next()
                if after == IN:
                    op = NOTIN
                    self.unscan()
                elif after == BETWEEN:
                    self.between(root, NOTBETWEEN)
                    continue
                elif after == LIKE:
                    op = NOTLIKE
                else:
                    raise SqlError(f"found {_q(lit)}, expected expression")
            elif op == BETWEEN:
                self.between(root, BETWEEN)
                continue
            rhs = self.unary(op in (ARROW, DOT))
            if op == DOT:
                op = ARROW
            if op in (LIKE, NOTLIKE):
                rhs = _like(rhs)
            node = root
            while True:
                right = node["RHS"]
                if not _is(right, "BinaryExpr") or _PRECEDENCE.get(right["OP"], 0) >= \
                        _PRECEDENCE.get(op, 0):
                    node["RHS"] = gowire.operation(right, op, rhs)
                    break
                node = right

    def between(self, root: Struct, op: int) -> None:
        node = root
        while _is(node["RHS"], "BinaryExpr") and \
                _PRECEDENCE.get(node["RHS"]["OP"], 0) < _PRECEDENCE[op]:
            node = node["RHS"]
        lhs = node["RHS"]
        lower = self.unary(False)
        tok, _ = self.next()
        if tok != AND:
            raise SqlError(f"expect AND expression after between but found {_TEXT.get(tok, '')}")
        node["RHS"] = gowire.operation(lhs, op, gowire.between(lower, self.unary(False)))

    def unary(self, sub_field: bool) -> Node:
        tok, _ = self.next()
        if tok == LPAREN:
            expr = self.expr()
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"found {_q(lit)}, expected right paren.")
            return gowire.paren(expr)
        if tok == LBRACKET:
            return self.bracket()
        if tok == IN:
            return self.value_set()
        self.unscan()
        tok, lit = self.next_signed()
        if tok == CASE:
            return self.case()
        if tok == IDENT:
            if self.next()[0] == LPAREN:
                return self.call(lit)
            self.unscan()
            self.unscan()
            return self.column(self.name_sections(sub_field), sub_field)
        if tok in (STRING, SINGLEQUOTE):
            return gowire.literal(lit)
        if tok == INTEGER:
            return gowire.literal(_atoi(lit)[0])
        if tok == NUMBER:
            try:
                number = float(lit)
            except ValueError:
                number = math.inf
            if math.isinf(number):
                raise SqlError(f"found {_q(lit)}, invalid number value.")
            return gowire.literal(number)
        if tok in (TRUE, FALSE):
            return gowire.literal(tok == TRUE)
        if DD <= tok <= MS:
            return gowire.time_literal(tok - (2 if self.ekuiper == 1 else 0))
        if tok == ASTERISK:
            return self.asterisk()
        raise SqlError(f"found {_q(lit)}, expected expression.")

    def column(self, names: list[str], sub_field: bool) -> Node:
        in_meta = self.in_func in ("meta", "mqtt")

        def ref(name: str, stream: str = gowire.DEFAULT_STREAM) -> Node:
            return gowire.meta(name, stream) if in_meta else \
                gowire.field(name, stream, ekuiper=self.ekuiper)

        if len(names) == 2:
            if self.sources and names[0] not in self.sources:
                return gowire.operation(ref(names[0]), ARROW, gowire.json_field(names[1]))
            return ref(names[1], names[0])
        return gowire.json_field(names[0]) if sub_field else ref(names[0])

    def name_sections(self, sub_field: bool) -> list[str]:
        names: list[str] = []
        while True:
            tok, lit = self.next()
            if tok not in (IDENT, ASTERISK):
                self.unscan()
                break
            names.append(lit)
            if len(names) > 1:
                break
            after, _ = self.next()
            if sub_field or after != DOT:
                self.unscan()
                break
        if not names:
            raise SqlError("Cannot find any field name.\n")
        return names

    def value_set(self) -> Node:
        if not self.take(LPAREN):
            try:
                return self.unary(False)
            except SqlError as err:
                raise SqlError(f"expect expression after IN, but got error {err}") from None
        items = []
        while True:
            try:
                items.append(self.expr())
            except SqlError as err:
                raise SqlError(f"expect elements for IN expression, but {err}") from None
            if self.next()[0] != COMMA:
                self.unscan()
                break
        tok, lit = self.next()
        if tok != RPAREN:
            raise SqlError(f"expect ) for IN expression, but got {_q(lit)}")
        return gowire.value_set(items)

    def bracket(self) -> Node:
        tok, lit = self.next_signed()
        if tok == RBRACKET:
            return gowire.colon(gowire.literal(0), gowire.literal(gowire.MIN_INT32))
        if tok == INTEGER:
            start, ok = _atoi(lit)
            if not ok:
                raise SqlError(f"The start index {lit} is not an int value in bracket "
                               "expression.")
            after, _ = self.next()
            if after == RBRACKET:
                return gowire.index(gowire.literal(start))
            if after == COLON:
                return self.slice_end(gowire.literal(start))
        elif tok == COLON:
            return self.slice_end(gowire.literal(0))
        else:
            self.unscan()
            try:
                first = self.expr()
            except SqlError:
                raise SqlError(f"The start index {lit} is invalid in bracket expression.") \
                    from None
            after, _ = self.next()
            if after == RBRACKET:
                return gowire.index(first)
            if after == COLON:
                return self.slice_end(first)
        raise SqlError(f"Unexpected token {_q(lit)}. when parsing bracket expressions.")

    def slice_end(self, start: Node) -> Node:
        tok, lit = self.next_signed()
        if tok == RBRACKET:
            return gowire.colon(start, gowire.literal(gowire.MIN_INT32))
        if tok == INTEGER:
            end_value, ok = _atoi(lit)
            if not ok:
                raise SqlError(f"The end index {lit} is not an int value in bracket "
                               "expression.")
            end = gowire.literal(end_value)
        else:
            self.unscan()
            try:
                end = self.expr()
            except SqlError:
                raise SqlError(f"The end index {lit} is invalid in bracket expression.") \
                    from None
        tok, after = self.next()
        if tok != RBRACKET:
            raise SqlError(f"Found {_q(after)}, expected right bracket.")
        return gowire.colon(start, end)

    def case(self) -> Node:
        value = None
        tok, _ = self.next()
        self.unscan()
        if tok != WHEN:
            value = self.expr()
        whens: Optional[list] = None
        otherwise = None
        while True:
            tok, _ = self.next()
            if tok == WHEN:
                condition = self.expr()
                whens = whens if whens is not None else []
                if value is None and not is_condition(condition):
                    raise SqlError("invalid CASE expression, WHEN expression must be a bool "
                                   "condition")
                if self.next()[0] != THEN:
                    raise SqlError("invalid CASE expression, THEN expected after WHEN")
                whens.append(gowire.when(condition, self.expr()))
            elif tok == ELSE:
                if whens is None:
                    raise SqlError("invalid CASE expression, WHEN expected before ELSE")
                otherwise = self.expr()
            elif tok == END:
                if whens is None:
                    raise SqlError("invalid CASE expression, WHEN expected before END")
                return gowire.case(value, whens, otherwise)
            else:
                raise SqlError("invalid CASE expression, END expected")

    def asterisk(self) -> Node:
        if self.in_func in ("meta", "mqtt"):
            tok, _ = self.next()
            if tok in (EXCEPT, REPLACE):
                raise SqlError(f"{_q(_TEXT[tok])} is not supported in meta function")
            self.unscan()
            return gowire.meta("*")
        replace = except_ = None
        while True:
            tok, _ = self.next()
            if tok == EXCEPT:
                tok, lit = self.next()
                if tok != LPAREN:
                    raise SqlError(f"Found {_q(lit)} after EXCEPT, expect left parentheses.")
                except_ = []
                while True:
                    tok, lit = self.next()
                    if tok == RPAREN:
                        break
                    if tok == IDENT:
                        except_.append(lit)
                    elif tok != COMMA:
                        raise SqlError(f"Found {_q(lit)} in EXCEPT")
            elif tok == REPLACE:
                tok, lit = self.next()
                if tok != LPAREN:
                    raise SqlError(f"Found {_q(lit)} after REPLACE, expect left parentheses.")
                replace = []
                while True:
                    replace.append(self.field())
                    tok, lit = self.next()
                    if tok == RPAREN:
                        break
                    if tok != COMMA:
                        raise SqlError(f"Found {_q(lit)} in REPLACE")
            else:
                self.unscan()
                return gowire.wildcard(replace, except_)

    # ---------------------------------------------------------------- calls

    def call(self, given: str) -> Node:
        lower = given.lower()
        if lower in _WINDOWS or lower in BUILTINS:
            name = lower
        elif given in self.portable:
            name = given
        else:
            raise SqlError(f"function {given} not found")
        self.in_func = name
        try:
            return self._call(given, name)
        finally:
            self.in_func = ""  # not the enclosing call's: eKuiper forgets it too

    def _call(self, given: str, name: str) -> Node:
        kind = self.func_type(name)
        if kind == COLS and self.clause != "select":
            raise SqlError(f"function {given} can only be used inside the select clause")
        args: list = []
        while True:
            if self.next()[0] == RPAREN:
                break
            self.unscan()
            expr = self.expr()
            args.append(gowire.col_func_field(_name(expr), expr) if kind == COLS else expr)
            tok, lit = self.next()
            if tok == RPAREN:
                break
            if tok != COMMA:
                raise SqlError(f"found function call {_q(name)}, expected ), but with {_q(lit)}.")
        window = _WINDOWS.get(name, NOT_WINDOW)
        if window != NOT_WINDOW:
            return self.window(name, window, args)
        if name == "dedup_trigger":
            kind = TRIGGER
            _check_dedup_trigger(args)
        elif name in self.portable and name not in BUILTINS:
            error = self.portable[name].validate(args)
            if error is not None:
                raise SqlError(f"validate function {name} error: {error}")
        if name == "deduplicate":
            args.insert(0, gowire.wildcard())
        node = gowire.call(name, *args, func_id=self.func_id, func_type=kind,
                           ekuiper=self.ekuiper)
        self.func_id += 1
        self.over(node)
        return node

    def func_type(self, name: str) -> int:
        if name in BUILTINS:
            return BUILTINS[name]
        if name in self.portable:
            return AGGREGATE if self.portable[name].is_aggregate() else SCALAR
        return UNKNOWN_FUNC

    def is_aggregate(self, name: str) -> bool:
        """eKuiper's IsAggFunc, which asks a portable function that has not answered yet."""
        return self.func_type(name) == AGGREGATE

    def over(self, node: Node) -> None:
        if not self.take(OVER):
            return
        name = node["Name"]
        if name not in _ANALYTIC and BUILTINS.get(name) != WINDOW_FUNC:
            raise SqlError(f"Found OVER after non analytic function {name}")
        tok, _ = self.next()
        if tok != LPAREN:
            raise SqlError(f"Found {_q(_TEXT.get(tok, ''))} after OVER, expect parentheses.")
        partition = self.partition_by()
        if partition is not None:
            node["Partition"] = gowire.Node("PartitionExpr", Exprs=partition)
        if BUILTINS.get(name) == WINDOW_FUNC:
            node["SortFields"] = self.sorts() or None
        if name in _ANALYTIC:
            node["WhenExpr"] = self.when()
        if node["Partition"] is None and not node["SortFields"] and node["WhenExpr"] is None:
            tok, _ = self.next()
            raise SqlError(f"Found {_q(_TEXT.get(tok, ''))} after OVER (, expect partition "
                           "by or when.")
        tok, _ = self.next()
        if tok != RPAREN:
            raise SqlError(f"Found {_q(_TEXT.get(tok, ''))}, expect right parentheses after "
                           "OVER ")

    def partition_by(self) -> Optional[list]:
        if not self.take(PARTITION):
            return None
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {_q(lit)}, expected by after partition.")
        exprs = [self.expr()]
        while self.next()[0] == COMMA:
            exprs.append(self.expr())
        self.unscan()
        return exprs

    def when(self) -> Optional[Node]:
        return self.expr() if self.take(WHEN) else None

    def window(self, name: str, window: int, args: list) -> Node:
        _check_window(name, window, args)
        if window == STATE:
            fields = {"SingleCondition": args[0]} if len(args) == 1 else \
                {"BeginCondition": args[0], "EmitCondition": args[1]}
        elif window == COUNT:
            fields = {"Length": _copy(args[0])}
            if len(args) == 2:
                fields["Interval"] = _copy(args[1])
        else:
            fields = {"TimeUnit": args[0], "Length": _copy(args[1]),
                      "Delay": gowire.literal(0), "Interval": gowire.literal(0)}
            if len(args) > 2:
                fields["Delay" if window == SLIDING else "Interval"] = _copy(args[2])
        node = gowire.window(window, **fields)
        if self.take(FILTER):
            tok, lit = self.next()
            if tok != LPAREN:
                raise SqlError(f"Found {_q(lit)} after FILTER, expect parentheses.")
            tok, lit = self.next()
            if tok != WHERE:
                raise SqlError(f"Found {_q(lit)} after FILTER(, expect WHERE.")
            node["Filter"] = self.expr()
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"Found {_q(lit)} after FILTER, expect right parentheses.")
        if self.take(OVER):
            tok, lit = self.next()
            if tok != LPAREN:
                raise SqlError(f"Found {_q(lit)} after OVER, expect parentheses.")
            node["TriggerCondition"] = self.when()
            partition = self.partition_by()
            if partition is not None:
                node["PartitionExpr"] = gowire.Node("PartitionExpr", Exprs=partition)
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"Found {_q(lit)} after OVER, expect right parentheses.")
        return node

    # ------------------------------------------------- the statement's checks

    def check(self, statement: Statement) -> None:
        """eKuiper's checks of a whole SELECT, after it is parsed."""
        for dimension in statement.dimensions:
            if self._has_aggregate(dimension):
                raise SqlError("Not allowed to call aggregate functions in GROUP BY clause: "
                               f"{text(dimension)}.")
        fields = statement.fields
        if any(_calls(arg, SET_RETURNING) for call in _calls(fields) for arg in call["Args"]
               or ()):
            raise SqlError("select clause shouldn't has nested set-returning-functions")
        if len(_calls(fields, SET_RETURNING)) > 1:
            raise SqlError("select clause shouldn't has multi set-returning-functions")
        rest = [statement.sources, [join[3] for join in statement.joins], statement.condition,
                _windows_first(statement.dimensions), statement.having,
                [sort["FieldExpr"] for sort in statement.sort_fields], statement.limit]
        if _calls(rest, WINDOW_FUNC):
            raise SqlError("window functions can only be in select fields")
        if _calls(rest, SET_RETURNING):
            raise SqlError("select statement shouldn't has srf except fields")

    def _has_aggregate(self, expr: Any) -> bool:
        found = False

        def visit(node: Node) -> bool:
            nonlocal found
            if _is(node, "Call") and self.is_aggregate(node["Name"]):
                found = True
                return False
            return True

        _walk(expr, visit)
        return found


def _is(node: Any, kind: str) -> bool:
    return getattr(node, "kind", None) == kind


def _copy(literal: Node) -> Node:
    return gowire.literal(literal["Val"])


def _name(expr: Node) -> str:
    """The name a field takes from its expression (a column's, a call's, ``*``)."""
    if _is(expr, "FieldRef") or _is(expr, "Call"):
        return str(expr["Name"])
    return "*" if _is(expr, "Wildcard") else ""


def is_condition(expr: Any) -> bool:
    """Whether an expression is true or false: a boolean literal, a comparison, AND,
    OR, IN, BETWEEN or LIKE (``ast.IsBooleanArg``)."""
    return _is(expr, "BooleanLiteral") or _is(expr, "BinaryExpr") and expr["OP"] in CONDITIONS


def _like(rhs: Node) -> Node:
    pattern = gowire.like_pattern(rhs)
    regexp = pattern["Pattern"]
    if regexp is not None:
        try:
            re.compile(regexp)
        except re.error as err:
            if err.msg.startswith("nothing to repeat") and err.pos == 1:
                return pattern  # Go repeats the ^ before it
            raise SqlError(f"invalid LIKE pattern: error parsing regexp: "
                           f"{_regexp_error(err, regexp)}") from None
    return pattern


def _regexp_error(err: re.error, regexp: str) -> str:
    """Go's regexp error for what Python's refuses (Go's wording for the common ones)."""
    at = err.pos or 0
    if err.msg.startswith("missing ), unterminated subpattern"):
        return f"missing closing ): `{regexp}`"
    if err.msg.startswith("unbalanced parenthesis"):
        return f"unexpected ): `{regexp}`"
    if err.msg.startswith("unterminated character set"):
        return f"missing closing ]: `{regexp[at:]}`"
    if err.msg.startswith("nothing to repeat"):
        return f"missing argument to repetition operator: `{regexp[at]}`"
    if err.msg.startswith("multiple repeat"):
        return f"invalid nested repetition operator: `{regexp[at - 1:at + 1]}`"
    if err.msg.startswith("bad character range"):
        return f"invalid character class range: `{err.msg.split()[-1]}`"
    return f"{err.msg}: `{regexp}`"


def _check_window(name: str, window: int, args: list) -> None:
    """eKuiper's checks of a window function's arguments."""
    if window == STATE:
        if len(args) not in (1, 2):
            raise SqlError(f"The arguments for {name} should be 1 or 2.\n")
        return
    if window == COUNT:
        ints = [_is(arg, "IntegerLiteral") for arg in args]
        if len(args) == 1:
            if not (ints[0] and args[0]["Val"] > 0):
                raise SqlError(f"Invalid parameter value {text(args[0])}.")
        elif len(args) == 2:
            if not all(ints):
                raise SqlError(f"Invalid parameter value {text(args[0])}, {text(args[1])}.")
            if args[0]["Val"] < args[1]["Val"]:
                raise SqlError(f"The second parameter value {args[1]['Val']} should be less "
                               f"than the first parameter {args[0]['Val']}.")
        else:
            raise SqlError("Invalid parameter count.")
        return
    if window == SLIDING and len(args) not in (2, 3):
        raise SqlError(f"The arguments for {name} should be 2 or 3.\n")
    expected = {TUMBLING: 2, HOPPING: 3, SESSION: 3}.get(window, len(args))
    if len(args) != expected:
        raise SqlError(f"The arguments for {name} should be {expected}.\n")
    if not _is(args[0], "TimeLiteral"):
        raise SqlError(f"The 1st argument for {name} is expecting timer literal expression. "
                       "One value of [dd|hh|mi|ss|ms].\n")
    for i, arg in enumerate(args[1:], 1):
        if not _is(arg, "IntegerLiteral"):
            raise SqlError(f"The {i} argument for {name} is expecting interger literal "
                           "expression. \n")


def _check_dedup_trigger(args: list) -> None:
    if len(args) != 4:
        raise SqlError("dedup_trigger function should have 4 arguments")
    for i, arg in enumerate(args[:3], 1):
        if not _is(arg, "FieldRef"):
            raise SqlError(f"dedup_trigger function should have fieldRef as the {i} argument")
    if not _is(args[3], "IntegerLiteral"):
        raise SqlError("dedup_trigger function should have integer as the fourth argument")


# What eKuiper's ast.Walk visits below each node, in order.
_CHILDREN = {
    "Field": ("Expr",), "Wildcard": ("Replace",), "BinaryExpr": ("LHS", "RHS"),
    "Call": ("Args", "Partition", "SortFields", "WhenExpr"), "PartitionExpr": ("Exprs",),
    "SortField": ("FieldExpr",), "ParenExpr": ("Expr",), "IndexExpr": ("Index",),
    "ColonExpr": ("Start", "End"), "CaseExpr": ("Value", "WhenClauses", "ElseClause"),
    "WhenClause": ("Expr", "Result"), "ColFuncField": ("Expr",),
    "ValueSetExpr": ("LiteralExprs", "ArrayExpr"), "BetweenExpr": ("Lower", "Higher"),
    "LikePattern": ("Expr",),
    "Window": ("Length", "Interval", "Filter", "TriggerCondition", "BeginCondition",
               "EmitCondition"),
}


def _walk(tree: Any, visit: Callable[[Node], bool]) -> None:
    """Visit each node of ``tree`` (a node, a list of them, or None) depth first; a
    node whose visit returns False keeps its children unvisited."""
    if isinstance(tree, list):
        for item in tree:
            _walk(item, visit)
    elif isinstance(tree, Node) and visit(tree):
        for key in _CHILDREN.get(tree.kind, ()):
            _walk(tree[key], visit)


def _calls(tree: Any, kind: Optional[int] = None) -> list:
    """The calls in ``tree``, of one FuncType if given."""
    found = []

    def visit(node: Node) -> bool:
        if _is(node, "Call") and (kind is None or node["FuncType"] == kind):
            found.append(node)
        return True

    _walk(tree, visit)
    return found


def _windows_first(dimensions: list) -> list:
    """GROUP BY's expressions in the order eKuiper walks them: its window first."""
    windows = [d for d in dimensions if _is(d, "Window")]
    return windows[:1] + [d for d in dimensions if not _is(d, "Window")]


def text(node: Any) -> str:
    """An expression as eKuiper writes it in messages (its ``String()``)."""
    kind = getattr(node, "kind", None)
    if kind == "BooleanLiteral":
        return "true" if node["Val"] else "false"
    if kind == "TimeLiteral":
        return _TEXT.get(node["Val"], "")
    if kind == "NumberLiteral":
        return gojson.format_g(float(node["Val"]))
    if kind in ("IntegerLiteral", "StringLiteral"):
        return str(node["Val"])
    if kind == "Wildcard":
        return "*"
    if kind == "FieldRef":
        stream, name = node["StreamName"], node["Name"]
        return stream + ("." if stream and name else "") + name
    if kind == "MetaRef":
        parts = [f"streamName:{node['StreamName']}"] if node["StreamName"] else []
        parts += [f"fieldName:{node['Name']}"] if node["Name"] else []
        return "metaRef:{ " + ", ".join(parts) + " }"
    if kind == "JsonFieldRef":
        return "jsonFieldName:" + node["Name"]
    if kind == "Call":
        args = "" if node["Args"] is None else \
            ", args:[" + ", ".join(text(arg) for arg in node["Args"]) + "]"
        when = "" if node["WhenExpr"] is None else f", when:{{ {text(node['WhenExpr'])} }}"
        return f"Call:{{ name:{node['Name']}{args}{when} }}"
    if kind == "BinaryExpr":
        if node["LHS"] is None or node["RHS"] is None:
            return ""
        if node["OP"] == SUBSET:
            return f"binaryExpr:{{ {text(node['LHS'])}[{text(node['RHS'])}] }}"
        return f"binaryExpr:{{ {text(node['LHS'])} {_TEXT.get(node['OP'], '')} " \
               f"{text(node['RHS'])} }}"
    if kind == "ParenExpr":
        return f"parenExpr:{{ {text(node['Expr'])} }}"
    if kind == "IndexExpr":
        return text(node["Index"])
    if kind == "ColonExpr":
        parts = [f"{key.lower()}:{{ {text(node[key])} }}" for key in ("Start", "End")
                 if node[key] is not None]
        return "ColonExpr:{ " + ", ".join(parts) + " }"
    if kind == "CaseExpr":
        value = "" if node["Value"] is None else f"value:{{ {text(node['Value'])} }}"
        whens = ""
        if node["WhenClauses"]:
            whens = (", " if value else "") + "whenClauses:[" + ", ".join(
                f"{{ whenClause:{{ {text(w['Expr'])} }} }}" for w in node["WhenClauses"]
                if w["Expr"] is not None) + "]"
        return f"caseExprValue:{{ {value}{whens} }}"
    if kind == "ValueSetExpr":
        items = "" if not node["LiteralExprs"] else \
            "literalExprs:[" + ", ".join(text(item) for item in node["LiteralExprs"]) + "]"
        array = "" if node["ArrayExpr"] is None else \
            (", " if items else "") + f"arrayExpr:{{ {text(node['ArrayExpr'])} }}"
        return f"valueSetExpr:{{ {items}{array} }}"
    if kind == "BetweenExpr":
        return "betweenExpr:{ " + ", ".join(
            text(node[key]) for key in ("Lower", "Higher") if node[key] is not None) + " }"
    if kind == "LikePattern":
        return f"likePattern:{node['Pattern']}"
    if kind == "ColFuncField":
        parts = [f"name: {node['Name']}"] if node["Name"] else []
        parts += [f"expr:{{ {text(node['Expr'])} }}"] if node["Expr"] is not None else []
        return "colFuncField:{ " + ", ".join(parts) + " }"
    if kind == "Window":
        unit = "" if node["TimeUnit"] is None else f", timeUnit: {text(node['TimeUnit'])} "
        filtered = "" if node["Filter"] is None else ", " + text(node["Filter"])
        return f"window:{{ windowType:{_WINDOW_NAMES.get(node['WindowType'], '')}{unit}" \
               f"{filtered} }}"
    return ""


# ------------------------------------------------------------ Go's texts

def _atoi(text: str) -> tuple[int, bool]:
    """Go's strconv.Atoi: the value, clamped to int64, and whether it fit."""
    value = int(text)
    low, high = _INT64
    return min(max(value, low), high), low <= value <= high


_GO_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
               "v": b"\v", "\\": b"\\", '"': b'"'}


def _go_unquote(quoted: str) -> str:
    """Go's strconv.Unquote of a double-quoted literal.

    Raises:
        ValueError: Go refuses it (an unknown escape, a raw newline, a quote inside).
    """
    body = quoted[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        i += 1
        if ch in ('"', "\n"):
            raise ValueError(quoted)
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            continue
        escape = body[i:i + 1]
        i += 1
        if escape in _GO_ESCAPES:
            out += _GO_ESCAPES[escape]
        elif escape in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i:i + width]
            i += width
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(quoted)
            code = int(digits, 16)
            if escape == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError(quoted)
            else:
                out += chr(code).encode()
        elif escape and escape in "01234567":
            digits = escape + body[i:i + 2]
            i += 2
            if len(digits) != 3 or not all(c in "01234567" for c in digits) \
                    or int(digits, 8) > 255:
                raise ValueError(quoted)
            out.append(int(digits, 8))
        else:
            raise ValueError(quoted)
    return go_string(bytes(out))


def go_string(raw: bytes) -> str:
    """Bytes as Go shows them as text: each byte that is not part of valid UTF-8 is U+FFFD."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    out = []
    i = 0
    while i < len(raw):
        lead = raw[i]
        size = 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 \
            else 4 if 0xF0 <= lead < 0xF5 else 0
        try:
            out.append(raw[i:i + size].decode() if size else "\ufffd")
            i += size or 1
        except UnicodeDecodeError:
            out.append("\ufffd")
            i += 1
    return "".join(out)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def _q(value: str) -> str:
    """Go's %q of a string (strconv.Quote)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


