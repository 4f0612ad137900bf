"""eKuiper's SQL expressions: operators by precedence, columns, `*`, brackets,
CASE, and a SELECT's fields and sort fields; the calls are sql_calls's."""

from __future__ import annotations

import math
from typing import Any, Optional

from . import gowire
from .gojson import Struct
from .gowire_ast import Node
from .sql_calls import CallParser
from .sql_nodes import (
    field_name,
    is_condition,
    is_kind,
    like_node,
)
from .sql_tokens import (
    AND,
    ARROW,
    AS,
    ASC,
    ASTERISK,
    BETWEEN,
    BY,
    CASE,
    COLON,
    COMMA,
    DD,
    DESC,
    DOT,
    ELSE,
    END,
    EXCEPT,
    FALSE,
    IDENT,
    IN,
    INTEGER,
    INVISIBLE,
    LBRACKET,
    LIKE,
    LPAREN,
    MS,
    MUL,
    NOT,
    NOTBETWEEN,
    NOTIN,
    NOTLIKE,
    NUMBER,
    OPERATORS_BEGIN,
    OPERATORS_END,
    ORDER,
    PRECEDENCE,
    RBRACKET,
    REPLACE,
    RPAREN,
    SINGLEQUOTE,
    STRING,
    SUBSET,
    TEXT,
    THEN,
    TRUE,
    WHEN,
    SqlError,
    go_atoi,
    go_quote,
)


class ExprParser(CallParser):
    """eKuiper's SQL parser, as far as expressions and fields reach."""

    def field(self) -> Node:
        expr = self.expr()
        name = field_name(expr)
        alias = ""
        if self.take(AS):
            tok, alias = self.next()
            if tok != IDENT:
                raise SqlError(f"found {go_quote(alias)}, expected as alias.")
            if alias and name == "*":
                raise SqlError("alias is not supported for *")
        if not name and not alias:
            name = f"kuiper_field_{self.unnamed}"
            self.unnamed += 1
        invisible = self.take(INVISIBLE)
        return gowire.select_field(expr, name, alias, invisible)

    def sorts(self) -> list[Any]:
        if not self.take(ORDER):
            return []
        tok, lit = self.next()
        if tok != BY:
            raise SqlError(f"found {go_quote(lit)}, expected BY keyword.")
        sorts: list[Any] = []
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
            if not (OPERATORS_BEGIN < op < OPERATORS_END or op in (ASTERISK, LBRACKET, DOT)):
                self.unscan()
                done: Node = root["RHS"]
                return done
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
                    raise SqlError(f"found {go_quote(lit)}, expected expression")
            elif op == BETWEEN:
                self.between(root, BETWEEN)
                continue
            rhs = self.unary(op in (ARROW, DOT))
            if op == DOT:
                op = ARROW
            if op in (LIKE, NOTLIKE):
                rhs = like_node(rhs)
            node = root
            while True:
                right = node["RHS"]
                if not is_kind(right, "BinaryExpr") or PRECEDENCE.get(right["OP"], 0) >= \
                        PRECEDENCE.get(op, 0):
                    node["RHS"] = gowire.operation(right, op, rhs)
                    break
                node = right

    def between(self, root: Struct, op: int) -> None:
        node = root
        while is_kind(node["RHS"], "BinaryExpr") and \
                PRECEDENCE.get(node["RHS"]["OP"], 0) < PRECEDENCE[op]:
            node = node["RHS"]
        lhs = node["RHS"]
        lower = self.unary(False)
        tok, _ = self.next()
        if tok != AND:
            raise SqlError(f"expect AND expression after between but found {TEXT.get(tok, '')}")
        node["RHS"] = gowire.operation(lhs, op, gowire.between(lower, self.unary(False)))

    def unary(self, sub_field: bool) -> Node:
        tok, _ = self.next()
        if tok == LPAREN:
            expr = self.expr()
            tok, lit = self.next()
            if tok != RPAREN:
                raise SqlError(f"found {go_quote(lit)}, expected right paren.")
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
            return gowire.literal(go_atoi(lit)[0])
        if tok == NUMBER:
            try:
                number = float(lit)
            except ValueError:
                number = math.inf
            if math.isinf(number):
                raise SqlError(f"found {go_quote(lit)}, invalid number value.")
            return gowire.literal(number)
        if tok in (TRUE, FALSE):
            return gowire.literal(tok == TRUE)
        if DD <= tok <= MS:
            return gowire.time_literal(tok - (2 if self.ekuiper == 1 else 0))
        if tok == ASTERISK:
            return self.asterisk()
        raise SqlError(f"found {go_quote(lit)}, expected expression.")

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
            raise SqlError(f"expect ) for IN expression, but got {go_quote(lit)}")
        return gowire.value_set(items)

    def bracket(self) -> Node:
        tok, lit = self.next_signed()
        if tok == RBRACKET:
            return gowire.colon(gowire.literal(0), gowire.literal(gowire.MIN_INT32))
        if tok == INTEGER:
            start, ok = go_atoi(lit)
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
        raise SqlError(f"Unexpected token {go_quote(lit)}. when parsing bracket expressions.")

    def slice_end(self, start: Node) -> Node:
        tok, lit = self.next_signed()
        if tok == RBRACKET:
            return gowire.colon(start, gowire.literal(gowire.MIN_INT32))
        if tok == INTEGER:
            end_value, ok = go_atoi(lit)
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
            raise SqlError(f"Found {go_quote(after)}, expected right bracket.")
        return gowire.colon(start, end)

    def case(self) -> Node:
        value = None
        tok, _ = self.next()
        self.unscan()
        if tok != WHEN:
            value = self.expr()
        whens: Optional[list[Any]] = None
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
                raise SqlError(f"{go_quote(TEXT[tok])} is not supported in meta function")
            self.unscan()
            return gowire.meta("*")
        replace = except_ = None
        while True:
            tok, _ = self.next()
            if tok == EXCEPT:
                tok, lit = self.next()
                if tok != LPAREN:
                    raise SqlError(f"Found {go_quote(lit)} after EXCEPT, expect left parentheses.")
                except_ = []
                while True:
                    tok, lit = self.next()
                    if tok == RPAREN:
                        break
                    if tok == IDENT:
                        except_.append(lit)
                    elif tok != COMMA:
                        raise SqlError(f"Found {go_quote(lit)} in EXCEPT")
            elif tok == REPLACE:
                tok, lit = self.next()
                if tok != LPAREN:
                    raise SqlError(f"Found {go_quote(lit)} after REPLACE, expect left parentheses.")
                replace = []
                while True:
                    replace.append(self.field())
                    tok, lit = self.next()
                    if tok == RPAREN:
                        break
                    if tok != COMMA:
                        raise SqlError(f"Found {go_quote(lit)} in REPLACE")
            else:
                self.unscan()
                return gowire.wildcard(replace, except_)

