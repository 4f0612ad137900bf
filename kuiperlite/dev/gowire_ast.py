"""eKuiper's SQL expressions as Validate receives them: its ``pkg/ast`` nodes,
marshalled as Go marshals them.

:func:`literal`, :func:`field`, :func:`call`, :func:`binary` and the others
build the nodes; :func:`arguments` the expressions of a rule that passes
given values.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..declare.hints import describe_value
from .gojson import Struct

# The stream a field belongs to until eKuiper binds it (ast.DefaultStream).
DEFAULT_STREAM = "$$default"

# ast.Token of each binary operator, the same in every eKuiper from 1.10 to 2.4.
OPERATORS = {"+": 12, "-": 13, "*": 14, "/": 15, "%": 16, "AND": 20, "OR": 21, "=": 22,
             "!=": 23, "<": 24, "<=": 25, ">": 26, ">=": 27, "->": 29}
ASTERISK = 40  # ast.ASTERISK, a wildcard's Token
MIN_INT32 = -(2 ** 31)  # the end of an open slice, a[1:]


class Node(Struct):
    """An ``pkg/ast`` node as Go marshals it, which knows its Go type.

    The JSON alone does not always tell: an ``IntegerLiteral``, a
    ``TimeLiteral`` and a ``NumberLiteral`` holding a whole number all
    marshal as ``{"Val": n}``.

    Attributes:
        kind: the node's Go type, ``"IntegerLiteral"``, ``"FieldRef"`` ...
    """

    def __init__(self, kind: str, **fields: Any) -> None:
        super().__init__(**fields)
        self.kind = kind


_LITERAL_KINDS = ((bool, "BooleanLiteral"), (int, "IntegerLiteral"), (float, "NumberLiteral"),
                  (str, "StringLiteral"))


def literal(value: Any) -> Node:
    """A SQL literal as Validate receives it: ``{"Val": value}``.

    eKuiper's string, integer, number and boolean literals (``ast.StringLiteral``,
    ``IntegerLiteral``, ``NumberLiteral``, ``BooleanLiteral``) have the one field
    ``Val``. Its SQL has no other literal but time units: ``null`` is a column
    of that name.

    Raises:
        ValueError: the value is not a string, a finite number or a boolean.
    """
    if _has_literal(value):
        kind = next(kind for type_, kind in _LITERAL_KINDS if isinstance(value, type_))
        return Node(kind, Val=value)
    raise ValueError(f"eKuiper's SQL has no literal for {describe_value(value)}; "
                     "pass it in a column, field(name).")


def time_literal(token: int) -> Node:
    """A time unit (``dd``, ``hh``, ``mi``, ``ss``, ``ms``) as Validate receives it:
    ``{"Val": token}``, its ast.Token number, like an integer's literal.

    The numbers moved as keywords were added: ``ss`` is 81 in 1.x, 82 in 2.2
    to 2.4 and 83 after.
    """
    return Node("TimeLiteral", Val=token)


def field(name: str, stream: str = DEFAULT_STREAM, *, ekuiper: int = 2) -> Node:
    """A column as Validate receives it (``ast.FieldRef``, not yet bound to its stream).

    Args:
        name: the column.
        stream: the stream the SQL names (``demo.x``); by default ``$$default``,
            eKuiper's mark for none.
        ekuiper: the generation: 2 (2.3 on) adds ``HasIndex``, ``SourceIndex``
            and ``Index``, which 1.x lacks.
    """
    ref = Node("FieldRef", StreamName=stream, Name=name)
    if ekuiper != 1:
        ref.update(HasIndex=False, SourceIndex=0, Index=0)
    return ref


def meta(name: str, stream: str = DEFAULT_STREAM) -> Node:
    """A name inside ``meta()`` or ``mqtt()`` (``ast.MetaRef``): ``meta(topic)``'s argument."""
    return Node("MetaRef", StreamName=stream, Name=name)


def json_field(name: str) -> Node:
    """The right side of ``a->b`` (``ast.JsonFieldRef``)."""
    return Node("JsonFieldRef", Name=name)


def wildcard(replace: Optional[list[Any]] = None, except_: Optional[list[Any]] = None) -> Node:
    """``*`` (``ast.Wildcard``), with the fields of ``REPLACE (...)`` and the names of
    ``EXCEPT (...)``."""
    return Node("Wildcard", Token=ASTERISK, Replace=replace, Except=except_)


def select_field(expr: Struct, name: str = "", alias: str = "", invisible: bool = False) -> Node:
    """A field of a SELECT or of ``* REPLACE (...)`` (``ast.Field``)."""
    return Node("Field", Name=name, AName=alias, Expr=expr, Invisible=invisible, Node=None)


def call(name: str, *args: Struct, func_id: int = 0, aggregate: bool = False,
         func_type: Optional[int] = None, partition: Optional[list[Any]] = None,
         when: Optional[Struct] = None, sort_fields: Optional[list[Any]] = None,
         ekuiper: int = 2) -> Node:
    """A function call as Validate receives it (``ast.Call``).

    Args:
        name: the function.
        args: its argument expressions.
        func_id: its index among the rule's calls.
        aggregate: whether it is an aggregate function (its ``FuncType``).
        func_type: its ``ast.FuncType`` instead: -1 unknown, 0 scalar, 1 aggregate,
            2 a cols function, 3 set-returning, 4 a window function, 5 a trigger.
        partition: an analytic function's ``OVER (PARTITION BY ...)`` expressions.
        when: an analytic function's ``OVER (WHEN ...)`` condition.
        sort_fields: a window function's ``OVER (ORDER BY ...)`` (:func:`sort_field`).
        ekuiper: the generation: 2 (2.3 on) adds ``CacheIndex``, which 1.x lacks.
    """
    kind = func_type if func_type is not None else 1 if aggregate else 0
    node = Node("Call", Name=name, FuncId=func_id, FuncType=kind, Args=list(args) or None,
                CachedField="")
    if ekuiper != 1:
        node["CacheIndex"] = 0
    node.update(Cached=False, Partition=None if partition is None else Node(
        "PartitionExpr", Exprs=partition), WhenExpr=when, SortFields=sort_fields)
    return node


def sort_field(expr: Struct, name: str, stream: str = "", ascending: bool = True) -> Node:
    """One expression of ``ORDER BY`` (``ast.SortField``)."""
    unique = f"{stream}\007{name}" if stream else name
    return Node("SortField", Name=name, StreamName=stream, Uname=unique, Ascending=ascending,
                FieldExpr=expr, Expr=None)


def binary(lhs: Struct, op: str, rhs: Struct) -> Node:
    """An operation as Validate receives it (``ast.BinaryExpr``): ``x + 1`` is
    ``binary(field("x"), "+", literal(1))``.

    Raises:
        ValueError: the operator is not one of :data:`OPERATORS`.
    """
    if op not in OPERATORS:
        raise ValueError(f"Unknown operator {op!r}; expected one of {', '.join(OPERATORS)}.")
    return operation(lhs, OPERATORS[op], rhs)


def operation(lhs: Optional[Struct], token: int, rhs: Optional[Struct]) -> Node:
    """``ast.BinaryExpr`` with any operator token, as eKuiper's parser builds them:
    ``a[0]``, ``x IN (...)``, ``x BETWEEN ...`` and ``x LIKE ...`` are operations too,
    whose right side is :func:`index` or :func:`colon`, :func:`value_set`,
    :func:`between` and :func:`like_pattern`."""
    return Node("BinaryExpr", OP=token, LHS=lhs, RHS=rhs)


def paren(expr: Struct) -> Node:
    """``(expr)`` (``ast.ParenExpr``)."""
    return Node("ParenExpr", Expr=expr)


def index(expr: Struct) -> Node:
    """The ``[0]`` of ``a[0]`` (``ast.IndexExpr``)."""
    return Node("IndexExpr", Index=expr)


def colon(start: Struct, end: Struct) -> Node:
    """The ``[1:2]`` of ``a[1:2]`` (``ast.ColonExpr``); an open end is
    ``literal(MIN_INT32)``."""
    return Node("ColonExpr", Start=start, End=end)


def value_set(items: Optional[list[Any]], array: Optional[Struct] = None) -> Node:
    """The ``(1, 2)`` of ``x IN (1, 2)`` (``ast.ValueSetExpr``)."""
    return Node("ValueSetExpr", LiteralExprs=items, ArrayExpr=array)


def between(lower: Struct, higher: Struct) -> Node:
    """The ``1 AND 2`` of ``x BETWEEN 1 AND 2`` (``ast.BetweenExpr``)."""
    return Node("BetweenExpr", Lower=lower, Higher=higher)


def like_pattern(expr: Struct) -> Node:
    """The right side of ``x LIKE 'a%'`` (``ast.LikePattern``): a string literal's
    pattern becomes the regular expression eKuiper matches with (Go marshals it
    as its text: ``'a%'`` is ``^a.*$``); any other expression has none."""
    pattern = None
    if getattr(expr, "kind", None) == "StringLiteral":
        pattern = "^" + like_regexp(expr["Val"]) + "$"
    return Node("LikePattern", Expr=expr, Pattern=pattern)


def like_regexp(text: str) -> str:
    """A LIKE pattern's regular expression, without its anchors, as eKuiper writes
    it: ``%`` is ``.*`` and ``_`` is ``.``, but not after a backslash; then each
    backslash is doubled. Nothing else is escaped."""
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in ("\\%", "\\_"):
            out.append(pair)
            i += 2
            continue
        out.append({"%": ".*", "_": "."}.get(text[i], text[i]))
        i += 1
    return "".join(out).replace("\\", "\\\\")


def case(value: Optional[Struct], whens: Optional[list[Any]], otherwise: Optional[Struct]) -> Node:
    """``CASE [value] WHEN ... THEN ... [ELSE ...] END`` (``ast.CaseExpr``); each
    WHEN is :func:`when`."""
    return Node("CaseExpr", Value=value, WhenClauses=whens, ElseClause=otherwise)


def when(condition: Struct, result: Struct) -> Node:
    """``WHEN condition THEN result`` (``ast.WhenClause``)."""
    return Node("WhenClause", Expr=condition, Result=result)


def col_func_field(name: str, expr: Struct) -> Node:
    """An argument of a cols function such as ``changed_cols`` (``ast.ColFuncField``)."""
    return Node("ColFuncField", Name=name, Expr=expr)


def window(window_type: int, **fields: Any) -> Node:
    """A window such as ``TumblingWindow(ss, 10)`` (``ast.Window``); ``fields``
    names the ones set (``Length=literal(10)`` ...), the others are null."""
    node = Node("Window", PartitionExpr=None, TriggerCondition=None, SingleCondition=None,
                BeginCondition=None, EmitCondition=None, WindowType=window_type, Delay=None,
                Length=None, Interval=None, TimeUnit=None, Filter=None, Expr=None)
    node.update(fields)
    return node


def arguments(values: list[Any], *, aggregate: bool = False) -> list[Struct]:
    """What Validate receives for a rule that passes these values to a function.

    Each string, number or boolean is its literal; anything else is a column
    (``arg1``, ``arg2`` ...), and so is every value of an aggregate function,
    whose values are a window's.
    """
    return [literal(value) if _has_literal(value) and not aggregate else field(f"arg{i}")
            for i, value in enumerate(values, 1)]


def _has_literal(value: Any) -> bool:
    return isinstance(value, (str, int)) or isinstance(value, float) and math.isfinite(value)
