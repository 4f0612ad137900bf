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

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Optional

from . import gowire
from .gowire_ast import Node
from .sql_expr import ExprParser
from .sql_lex import Requester
from .sql_nodes import calls, is_kind, text, walk, windows_first
from .sql_tokens import (
    AS,
    BY,
    CROSS,
    EOF,
    FROM,
    FULL,
    GROUP,
    HAVING,
    IDENT,
    INNER,
    JOIN,
    LEFT,
    LIMIT,
    ON,
    RIGHT,
    SELECT,
    SEMICOLON,
    SET_RETURNING,
    SOURCE_TOKENS,
    WHERE,
    WINDOW_FUNC,
    go_quote,
)
from .sql_tokens import SqlError as SqlError  # parse() raises it: part of this module's face

ACCEPT = b'{"state":true,"result":""}'


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
    args: Optional[list[Any]]
    raw: bytes


class Statement(NamedTuple):
    """A parsed SELECT, as far as the parser builds it (before eKuiper binds it).

    ``fields`` holds ``ast.Field`` nodes (:func:`~kuiperlite.dev.gowire.select_field`);
    the calls in them carry their ``FuncId`` and ``FuncType``.
    """

    fields: list[Any]
    sources: list[Any]
    joins: list[Any]
    condition: Optional[Node]
    dimensions: list[Any]
    having: Optional[Node]
    sort_fields: list[Any]
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
        def send(func: str, args: Optional[list[Any]]) -> bytes:
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


class _Parser(ExprParser):
    """eKuiper's SQL parser: a SELECT's clauses around its expressions."""

    def statement(self) -> Statement:
        tok, lit = self.next()
        if tok == EOF:
            raise SqlError(f"SQL {self.sql} is not a select statement.")
        if tok != SELECT:
            raise SqlError(f"Found {go_quote(lit)}, Expected SELECT.\n")
        self.clause = "select"
        fields = self.listed(self.field)
        self.clause = "from"
        tok, lit = self.next()
        if tok != FROM:
            raise SqlError(f"found {go_quote(lit)}, expected FROM.")
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
        if limit is not None and not is_kind(limit, "IntegerLiteral"):
            raise SqlError("limit should be integer")
        self.clause = ""
        statement = Statement(fields, sources, joins, condition, dimensions, having,
                              sort_fields, limit)
        tok, lit = self.next()
        if tok == SEMICOLON:
            return statement  # eKuiper checks a statement that ends with ; no further
        if tok != EOF:
            raise SqlError(f"found {go_quote(lit)}, expected EOF.")
        self.check(statement)
        return statement

    def source_name(self) -> tuple[str, str]:
        parts, alias = [], ""
        while True:
            tok, lit = self.next()
            if tok not in SOURCE_TOKENS:
                self.unscan()
                break
            parts.append(lit)
            tok1, lit1 = self.next()
            if tok1 == AS:
                tok2, lit2 = self.next()
                if tok2 != IDENT:
                    raise SqlError(f"found {go_quote(lit)}, expected JOIN key word.")
                alias = lit2
            elif tok1 in SOURCE_TOKENS:
                parts.append(lit1)
            else:
                self.unscan()
                break
        return "".join(parts), alias

    def joins(self) -> list[Any]:
        joins: list[Any] = []
        while True:
            tok, lit = self.next()
            if tok not in (INNER, LEFT, RIGHT, FULL, CROSS):
                self.unscan()
                return joins
            if self.next()[0] != JOIN:
                raise SqlError(f"found {go_quote(lit)}, expected JOIN key word.")
            name, alias = self.source_name()
            on = None
            if self.take(ON):
                if tok == CROSS:
                    raise SqlError("On expression is not required for cross join type.\n")
                on = self.expr()
            joins.append((name, alias, tok, on))

    def dimensions(self) -> list[Any]:
        if not self.take(GROUP):
            return []
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {go_quote(lit)}, expected BY statement.")
        return self.listed(self.expr)

    # ------------------------------------------------- the statement's checks

    def check(self, statement: Statement) -> None:
        """eKuiper's checks of a whole SELECT, after it is parsed."""
        for dimension in statement.dimensions:
            if self._has_aggregate(dimension):
                raise SqlError("Not allowed to call aggregate functions in GROUP BY clause: "
                               f"{text(dimension)}.")
        fields = statement.fields
        if any(calls(arg, SET_RETURNING) for call in calls(fields) for arg in call["Args"]
               or ()):
            raise SqlError("select clause shouldn't has nested set-returning-functions")
        if len(calls(fields, SET_RETURNING)) > 1:
            raise SqlError("select clause shouldn't has multi set-returning-functions")
        rest = [statement.sources, [join[3] for join in statement.joins], statement.condition,
                windows_first(statement.dimensions), statement.having,
                [sort["FieldExpr"] for sort in statement.sort_fields], statement.limit]
        if calls(rest, WINDOW_FUNC):
            raise SqlError("window functions can only be in select fields")
        if calls(rest, SET_RETURNING):
            raise SqlError("select statement shouldn't has srf except fields")

    def _has_aggregate(self, expr: Any) -> bool:
        found = False

        def visit(node: Node) -> bool:
            nonlocal found
            if is_kind(node, "Call") and self.is_aggregate(node["Name"]):
                found = True
                return False
            return True

        walk(expr, visit)
        return found


