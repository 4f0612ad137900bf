"""Reading the ast nodes eKuiper's SQL parser builds: walking them, finding calls,
the checks of windows and LIKE patterns, and a node's text in eKuiper's errors."""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from . import gojson_fmt, gowire
from .gowire_ast import Node
from .sql_tokens import (
    CONDITIONS,
    COUNT,
    HOPPING,
    SESSION,
    SLIDING,
    STATE,
    SUBSET,
    TEXT,
    TUMBLING,
    WINDOW_NAMES,
    SqlError,
)


def is_kind(node: Any, kind: str) -> bool:
    return getattr(node, "kind", None) == kind


def copy_literal(literal: Node) -> Node:
    return gowire.literal(literal["Val"])


def field_name(expr: Node) -> str:
    """The name a field takes from its expression (a column's, a call's, ``*``)."""
    if is_kind(expr, "FieldRef") or is_kind(expr, "Call"):
        return str(expr["Name"])
    return "*" if is_kind(expr, "Wildcard") else ""


def is_condition(expr: Any) -> bool:
    """Whether an expression is true or false: a boolean literal, a comparison, AND,
    OR, IN, BETWEEN or LIKE (``ast.IsBooleanArg``)."""
    return (is_kind(expr, "BooleanLiteral")
            or is_kind(expr, "BinaryExpr") and expr["OP"] in CONDITIONS)


def like_node(rhs: Node) -> Node:
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


def check_window(name: str, window: int, args: list[Any]) -> None:
    """eKuiper's checks of a window function's arguments."""
    if window == STATE:
        if len(args) not in (1, 2):
            raise SqlError(f"The arguments for {name} should be 1 or 2.\n")
        return
    if window == COUNT:
        ints = [is_kind(arg, "IntegerLiteral") for arg in args]
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
    if not is_kind(args[0], "TimeLiteral"):
        raise SqlError(f"The 1st argument for {name} is expecting timer literal expression. "
                       "One value of [dd|hh|mi|ss|ms].\n")
    for i, arg in enumerate(args[1:], 1):
        if not is_kind(arg, "IntegerLiteral"):
            raise SqlError(f"The {i} argument for {name} is expecting interger literal "
                           "expression. \n")


def check_dedup_trigger(args: list[Any]) -> None:
    if len(args) != 4:
        raise SqlError("dedup_trigger function should have 4 arguments")
    for i, arg in enumerate(args[:3], 1):
        if not is_kind(arg, "FieldRef"):
            raise SqlError(f"dedup_trigger function should have fieldRef as the {i} argument")
    if not is_kind(args[3], "IntegerLiteral"):
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


def walk(tree: Any, visit: Callable[[Node], bool]) -> None:
    """Visit each node of ``tree`` (a node, a list of them, or None) depth first; a
    node whose visit returns False keeps its children unvisited."""
    if isinstance(tree, list):
        for item in tree:
            walk(item, visit)
    elif isinstance(tree, Node) and visit(tree):
        for key in _CHILDREN.get(tree.kind, ()):
            walk(tree[key], visit)


def calls(tree: Any, kind: Optional[int] = None) -> list[Any]:
    """The calls in ``tree``, of one FuncType if given."""
    found = []

    def visit(node: Node) -> bool:
        if is_kind(node, "Call") and (kind is None or node["FuncType"] == kind):
            found.append(node)
        return True

    walk(tree, visit)
    return found


def windows_first(dimensions: list[Any]) -> list[Any]:
    """GROUP BY's expressions in the order eKuiper walks them: its window first."""
    windows = [d for d in dimensions if is_kind(d, "Window")]
    return windows[:1] + [d for d in dimensions if not is_kind(d, "Window")]


def text(node: Any) -> str:
    """An expression as eKuiper writes it in messages (its ``String()``)."""
    kind = getattr(node, "kind", None)
    if kind == "BooleanLiteral":
        return "true" if node["Val"] else "false"
    if kind == "TimeLiteral":
        return TEXT.get(node["Val"], "")
    if kind == "NumberLiteral":
        return gojson_fmt.format_g(float(node["Val"]))
    if kind in ("IntegerLiteral", "StringLiteral"):
        return str(node["Val"])
    if kind == "Wildcard":
        return "*"
    if kind == "FieldRef":
        stream: str = node["StreamName"]
        name: str = node["Name"]
        return stream + ("." if stream and name else "") + name
    if kind == "MetaRef":
        parts = [f"streamName:{node['StreamName']}"] if node["StreamName"] else []
        parts += [f"fieldName:{node['Name']}"] if node["Name"] else []
        return "metaRef:{ " + ", ".join(parts) + " }"
    if kind == "JsonFieldRef":
        field: str = node["Name"]
        return "jsonFieldName:" + field
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
        return f"binaryExpr:{{ {text(node['LHS'])} {TEXT.get(node['OP'], '')} " \
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
        return f"window:{{ windowType:{WINDOW_NAMES.get(node['WindowType'], '')}{unit}" \
               f"{filtered} }}"
    return ""
