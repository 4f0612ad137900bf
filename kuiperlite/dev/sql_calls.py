"""eKuiper's SQL function calls: built-in and portable functions (each portable
function's IsAggregate and Validate requests), OVER clauses and windows."""

from __future__ import annotations

from typing import Any, Optional

from . import gowire
from .gowire_ast import Node
from .sql_lex import TokenParser
from .sql_nodes import (
    check_dedup_trigger,
    check_window,
    copy_literal,
    field_name,
)
from .sql_tokens import (
    AGGREGATE,
    ANALYTIC,
    BUILTINS,
    BY,
    COLS,
    COMMA,
    COUNT,
    FILTER,
    LPAREN,
    NOT_WINDOW,
    OVER,
    PARTITION,
    RPAREN,
    SCALAR,
    SLIDING,
    STATE,
    TEXT,
    TRIGGER,
    UNKNOWN_FUNC,
    WHEN,
    WHERE,
    WINDOW_FUNC,
    WINDOWS,
    SqlError,
    go_quote,
)


class CallParser(TokenParser):
    """eKuiper's SQL parser, as far as function calls reach; the expressions in
    them are :class:`~kuiperlite.dev.sql_expr.ExprParser`'s."""

    def expr(self) -> Node:
        """An expression (parsed by the subclass)."""
        raise NotImplementedError

    def sorts(self) -> list[Any]:
        """An ORDER BY's sort fields (parsed by the subclass)."""
        raise NotImplementedError

    def call(self, given: str) -> Node:
        lower = given.lower()
        if lower in WINDOWS or lower in BUILTINS:
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
        args: list[Any] = []
        while True:
            if self.next()[0] == RPAREN:
                break
            self.unscan()
            expr = self.expr()
            args.append(gowire.col_func_field(field_name(expr), expr) if kind == COLS else expr)
            tok, lit = self.next()
            if tok == RPAREN:
                break
            if tok != COMMA:
                raise SqlError(f"found function call {go_quote(name)}, expected ), "
                               f"but with {go_quote(lit)}.")
        window = WINDOWS.get(name, NOT_WINDOW)
        if window != NOT_WINDOW:
            return self.window(name, window, args)
        if name == "dedup_trigger":
            kind = TRIGGER
            check_dedup_trigger(args)
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
        if name not in ANALYTIC and BUILTINS.get(name) != WINDOW_FUNC:
            raise SqlError(f"Found OVER after non analytic function {name}")
        tok, _ = self.next()
        if tok != LPAREN:
            raise SqlError(f"Found {go_quote(TEXT.get(tok, ''))} after OVER, expect parentheses.")
        partition = self.partition_by()
        if partition is not None:
            node["Partition"] = gowire.Node("PartitionExpr", Exprs=partition)
        if BUILTINS.get(name) == WINDOW_FUNC:
            node["SortFields"] = self.sorts() or None
        if name in ANALYTIC:
            node["WhenExpr"] = self.when()
        if node["Partition"] is None and not node["SortFields"] and node["WhenExpr"] is None:
            tok, _ = self.next()
            raise SqlError(f"Found {go_quote(TEXT.get(tok, ''))} after OVER (, expect partition "
                           "by or when.")
        tok, _ = self.next()
        if tok != RPAREN:
            raise SqlError(f"Found {go_quote(TEXT.get(tok, ''))}, expect right parentheses after "
                           "OVER ")

    def partition_by(self) -> Optional[list[Any]]:
        if not self.take(PARTITION):
            return None
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {go_quote(lit)}, expected by after partition.")
        return self.listed(self.expr)

    def when(self) -> Optional[Node]:
        return self.expr() if self.take(WHEN) else None

    def window(self, name: str, window: int, args: list[Any]) -> Node:
        check_window(name, window, args)
        if window == STATE:
            fields = {"SingleCondition": args[0]} if len(args) == 1 else \
                {"BeginCondition": args[0], "EmitCondition": args[1]}
        elif window == COUNT:
            fields = {"Length": copy_literal(args[0])}
            if len(args) == 2:
                fields["Interval"] = copy_literal(args[1])
        else:
            fields = {"TimeUnit": args[0], "Length": copy_literal(args[1]),
                      "Delay": gowire.literal(0), "Interval": gowire.literal(0)}
            if len(args) > 2:
                fields["Delay" if window == SLIDING else "Interval"] = copy_literal(args[2])
        node = gowire.window(window, **fields)
        if self.take(FILTER):
            tok, lit = self.next()
            if tok != LPAREN:
                raise SqlError(f"Found {go_quote(lit)} after FILTER, expect parentheses.")
            tok, lit = self.next()
            if tok != WHERE:
                raise SqlError(f"Found {go_quote(lit)} after FILTER(, expect WHERE.")
            node["Filter"] = self.expr()
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"Found {go_quote(lit)} after FILTER, expect right parentheses.")
        if self.take(OVER):
            tok, lit = self.next()
            if tok != LPAREN:
                raise SqlError(f"Found {go_quote(lit)} after OVER, expect parentheses.")
            node["TriggerCondition"] = self.when()
            partition = self.partition_by()
            if partition is not None:
                node["PartitionExpr"] = gowire.Node("PartitionExpr", Exprs=partition)
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"Found {go_quote(lit)} after OVER, expect right parentheses.")
        return node
