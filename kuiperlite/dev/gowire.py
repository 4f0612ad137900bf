"""eKuiper's half of the wire: the bytes eKuiper sends and what it concludes from answers.

The embedded host encodes commands, sink payloads and function calls here
exactly as eKuiper does, and reads source messages, acks and function
replies as eKuiper's ``internal/plugin/portable/runtime`` does:
``json.Unmarshal`` into its structs (``messageWrapper``, ``ackResponse``,
``FuncReply``; reproduced by :mod:`kuiperlite.dev.gojson`), then what its
code makes of them: the row and meta a source node ingests, or the line it
logs; whether an ack fails, and whether the sink node retries it; what
``Exec``, ``Validate`` and ``IsAggregate`` each return or log. The shapes
both halves share (:class:`~kuiperlite.protocol.wire.Control`,
:class:`~kuiperlite.protocol.wire.Meta`, :class:`~kuiperlite.protocol.wire.FuncMeta`) live
in :mod:`kuiperlite.protocol.wire`, with the plugin's half.

Validate receives each SQL argument as the expression eKuiper parsed
(its ``pkg/ast`` nodes, marshalled as they are): :func:`literal`,
:func:`field`, :func:`call` and :func:`binary` build them, and
:func:`arguments` the expressions of a rule that passes given values.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple, Optional

from ..declare.hints import describe_value
from ..errors import ProtocolError
from ..protocol.wire import Control, FuncMeta, Meta
from . import gojson, gojson_fmt
from .gojson import Struct, go_json
from .gojson import struct_json as _struct


def encode_control(control: Control) -> bytes:
    """The control JSON eKuiper puts in a command's ``arg``.

    Args:
        control: the start or stop command's argument; a function's has no meta,
            and eKuiper still sends an empty one.

    Returns:
        The JSON bytes, fields in eKuiper's order; ``dataSource`` and ``config``
        are left out when empty.
    """
    meta = control.meta or Meta("", "", 0)
    meta_json = _struct(("ruleId", meta.rule_id), ("opId", meta.op_id),
                        ("instanceId", meta.instance_id))
    parts = [
        go_json("symbolName") + b":" + go_json(control.symbol_name),
        b'"meta":' + meta_json,
        go_json("pluginType") + b":" + go_json(control.plugin_type),
    ]
    if control.datasource:
        parts.append(b'"dataSource":' + go_json(control.datasource))
    if control.config:
        parts.append(b'"config":' + go_json(control.config))
    return b"{" + b",".join(parts) + b"}"


def encode_command(name: str, control: Control) -> bytes:
    """A start or stop command exactly as eKuiper sends it.

    Args:
        name: ``"start"`` or ``"stop"``.
        control: the command's argument, sent as a JSON string in ``arg``.

    Raises:
        gojson_fmt.MarshalError: the config holds a value Go's encoder refuses (NaN,
            an infinity); eKuiper's start or stop then fails before sending.
    """
    return _struct(("cmd", name), ("arg", encode_control(control).decode()))


def encode_func_meta(meta: FuncMeta) -> str:
    """The FuncMeta JSON string eKuiper appends to Exec arguments.

    Args:
        meta: the calling function instance.
    """
    return _struct(
        ("ruleId", meta.rule_id), ("opId", meta.op_id),
        ("instanceId", meta.instance_id), ("funcId", meta.func_id),
    ).decode()


def encode_function_call(func: str, args: Optional[list]) -> bytes:
    """A Validate, Exec or IsAggregate request as eKuiper sends it.

    Args:
        func: ``"Validate"``, ``"Exec"`` or ``"IsAggregate"``.
        args: the arguments; none (or an empty list) is sent as ``null``.

    Raises:
        gojson_fmt.MarshalError: an argument Go's encoder refuses (NaN, an
            infinity); eKuiper's call then fails before sending.
    """
    return _struct(("func", func), ("arg", args if args else None))


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


def wildcard(replace: Optional[list] = None, except_: Optional[list] = None) -> Node:
    """``*`` (``ast.Wildcard``), with the fields of ``REPLACE (...)`` and the names of
    ``EXCEPT (...)``."""
    return Node("Wildcard", Token=ASTERISK, Replace=replace, Except=except_)


def select_field(expr: Struct, name: str = "", alias: str = "", invisible: bool = False) -> Node:
    """A field of a SELECT or of ``* REPLACE (...)`` (``ast.Field``)."""
    return Node("Field", Name=name, AName=alias, Expr=expr, Invisible=invisible, Node=None)


def call(name: str, *args: Struct, func_id: int = 0, aggregate: bool = False,
         func_type: Optional[int] = None, partition: Optional[list] = None,
         when: Optional[Struct] = None, sort_fields: Optional[list] = None,
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


def value_set(items: Optional[list], array: Optional[Struct] = None) -> Node:
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


def case(value: Optional[Struct], whens: Optional[list], otherwise: Optional[Struct]) -> Node:
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


def arguments(values: list, *, aggregate: bool = False) -> list[Struct]:
    """What Validate receives for a rule that passes these values to a function.

    Each string, number or boolean is its literal; anything else is a column
    (``arg1``, ``arg2`` ...), and so is every value of an aggregate function,
    whose values are a window's.
    """
    return [literal(value) if _has_literal(value) and not aggregate else field(f"arg{i}")
            for i, value in enumerate(values, 1)]


def _has_literal(value: Any) -> bool:
    return isinstance(value, (str, int)) or isinstance(value, float) and math.isfinite(value)


def encode_payload(data: Any) -> bytes:
    """A sink payload as eKuiper's default JSON encoder produces it.

    Args:
        data: bytes, sent as they are, or a value to encode as Go does.

    Raises:
        gojson_fmt.MarshalError: a value Go's encoder refuses (NaN, an infinity).
    """
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return go_json(data)


# eKuiper's structs the bytes from a plugin are unmarshalled into.
MESSAGE_WRAPPER = gojson.GoStruct("runtime.messageWrapper",
                                  (("message", gojson.MAP), ("meta", gojson.MAP)))
ACK_RESPONSE = gojson.GoStruct("runtime.ackResponse", (("error", gojson.STRING),))
FUNC_REPLY = gojson.GoStruct("runtime.FuncReply", (("state", gojson.BOOL),
                                                   ("result", gojson.ANY)))


class SourceMessage(NamedTuple):
    """A source message as eKuiper decodes it.

    Attributes:
        message: the row; None for Go's nil map (no ``message``, or null),
            which eKuiper still ingests, as an empty row.
        meta: the meta; None when the plugin sent none, and eKuiper's source
            node then gets ``{}``.
        stray_error: the text of the SDKs' ``{"error": ...}``, which eKuiper
            takes for an empty row (the text is lost there).
    """

    message: Optional[dict]
    meta: Optional[dict]
    stray_error: Optional[str] = None


class SourceError(ProtocolError):
    """A source message eKuiper fails to decode, so it is an error.

    ``str(err)`` is eKuiper's error text, shown (bytes that are not UTF-8
    replaced).

    Attributes:
        error: eKuiper's error text byte for byte (it holds the message's bytes).
        text: what the plugin meant to say: the string itself when the
            message is a JSON string, else the message.
    """

    def __init__(self, raw: bytes, why: str, text: Optional[str] = None) -> None:
        self.error = b"Invalid data format, cannot decode " + raw + \
            b" to json format with error " + why.encode()
        super().__init__(self.error.decode("utf-8", "replace"))
        self.text = raw.decode("utf-8", "replace") if text is None else text

    def node_log(self, op: str) -> bytes:
        """The line eKuiper's source node logs (and counts as an exception).

        Args:
            op: the source's op id (the stream's name).
        """
        return f"Operation {op} error ".encode() + self.error


def decode_source_message(raw: bytes, *, python_ints: bool = False) -> SourceMessage:
    """Decode one source message as eKuiper does: ``json.Unmarshal`` into its
    ``messageWrapper`` (object fields ``message`` and ``meta``).

    Keys match the fields case-insensitively; a repeated key merges into the
    map the one before it made; other keys are ignored; numbers are float64.

    Args:
        raw: the message's bytes.
        python_ints: give a number written as an integer below 2**53 as a
            Python int (the value eKuiper holds, as a float64).

    Raises:
        SourceError: the bytes are not JSON, not an object, or ``message`` or
            ``meta`` is not an object; eKuiper logs it and counts an exception.
    """
    fields, error = gojson.unmarshal(raw, MESSAGE_WRAPPER, python_ints=python_ints)
    if error is not None:
        raise SourceError(raw, error.text, _json_string(raw))
    message = fields["message"]
    return SourceMessage(message, fields["meta"], None if message is not None else
                         _stray_error(raw))


def _json_string(raw: bytes) -> Optional[str]:
    """The string a message that is one JSON string holds (a failure report)."""
    if not raw.lstrip(b" \t\r\n").startswith(b'"'):
        return None
    try:
        value = json.loads(raw.decode("utf-8", "kuiperlite-go"))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _stray_error(raw: bytes) -> Optional[str]:
    if b'"error"' not in raw:
        return None
    try:
        body = json.loads(raw.decode("utf-8", "kuiperlite-go"))
    except (ValueError, RecursionError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if error is None:
        return None
    return error if isinstance(error, str) else json.dumps(error)


class Ack(NamedTuple):
    """What eKuiper's sink (``Collect`` with ``requireAck``) concludes from an ack.

    Attributes:
        error: None for an ok ack, else the error ``Collect`` returns: the
            ack's ``error``, or Go's when the ack is not an ``ackResponse``.
        io: whether that error is an IO error (the ack's own error), the only
            kind eKuiper's sink node retries.
    """

    error: Optional[str] = None
    io: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def decode_ack(raw: bytes) -> Ack:
    """Read a sink's ack as eKuiper does: ``json.Unmarshal`` into its
    ``ackResponse`` (one string field, ``error``); a non-empty ``error`` is
    an IO error.

    Args:
        raw: the ack's bytes.
    """
    fields, error = gojson.unmarshal(raw, ACK_RESPONSE)
    if error is not None:
        return Ack(error.text)
    return Ack(fields["error"], io=True) if fields["error"] else Ack()


class Exec(NamedTuple):
    """What eKuiper's ``PortableFunc.Exec`` returns for a reply.

    Attributes:
        ok: whether the call succeeded.
        result: its result (Go's values: every number a float).
        error: the error it returns when it failed: the reply's result as
            ``%s`` writes it, or a reply it cannot read; None when it failed
            with no result (the rule then gets ``call func <name> error: <nil>``).
    """

    ok: bool
    result: Any = None
    error: Optional[str] = None


class IsAggregate(NamedTuple):
    """What eKuiper's ``PortableFunc.IsAggregate`` returns, and the line it logs
    (byte for byte: it may hold the reply's bytes), if any."""

    result: bool
    logged: Optional[bytes] = None


class Reply(NamedTuple):
    """A function's reply as eKuiper's ``PortableFunc`` reads it: ``json.Unmarshal``
    into its ``FuncReply`` (fields ``state``, a bool, and ``result``).

    Attributes:
        state: the reply's ``state`` (False when it has none, or when it is
            not a ``FuncReply``).
        result: its ``result``.
        error: why Go could not read it, or None.
        raw: its bytes.
    """

    state: bool
    result: Any
    error: Optional[str]
    raw: bytes

    @property
    def exec(self) -> Exec:
        """What ``Exec`` concludes."""
        if self.error is not None:
            return Exec(False, error="Failed to unmarshal function result " +
                        self.raw.decode("utf-8", "replace"))
        if self.state:
            return Exec(True, self.result)
        return Exec(False, error=None if self.result is None else
                    gojson_fmt.sprint(self.result, "s"))

    @property
    def validate(self) -> Optional[str]:
        """What ``Validate`` concludes: None, or its error."""
        if self.error is not None:
            return self.error
        return None if self.state else f"validate return state is false, got {self._shown()}"

    @property
    def is_aggregate(self) -> IsAggregate:
        """What ``IsAggregate`` concludes, and logs."""
        if self.error is not None:
            return IsAggregate(False, self.error.encode())
        if not self.state:
            return IsAggregate(False, f"IsAggregate return state is false, got "
                                      f"{self._shown()}".encode())
        if not isinstance(self.result, bool):
            return IsAggregate(False, b"IsAggregate result is not bool, got " + self.raw)
        return IsAggregate(self.result)

    def _shown(self) -> str:
        """The ``FuncReply`` as ``%+v`` writes it."""
        return f"&{{State:{gojson_fmt.sprint(self.state)} " \
               f"Result:{gojson_fmt.sprint(self.result, nested=True)}}}"


def decode_reply(raw: bytes, *, python_ints: bool = False) -> Reply:
    """Read a function's reply as eKuiper does.

    Args:
        raw: the reply's bytes (one that starts with ``h`` eKuiper takes for a
            late handshake and sends its request again: the host's channel
            does that before a reply comes here).
        python_ints: give a number written as an integer below 2**53 as a
            Python int (the value eKuiper holds, as a float64).
    """
    fields, error = gojson.unmarshal(raw, FUNC_REPLY, python_ints=python_ints)
    if error is not None:
        return Reply(False, None, error.text, raw)
    return Reply(fields["state"], fields["result"], None, raw)
