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

Its parts: :mod:`~kuiperlite.dev.gowire_ast` (the SQL nodes),
:mod:`~kuiperlite.dev.gowire_replies` (the replies, acks and source messages
decoded); this module encodes what eKuiper sends, and every name of the
three is importable from here.
"""

from __future__ import annotations

from typing import Any, Optional

from ..protocol.wire import Control, FuncMeta, Meta
from .gojson import Struct, go_json
from .gojson import struct_json as _struct
from .gowire_ast import (
    ASTERISK,
    DEFAULT_STREAM,
    MIN_INT32,
    OPERATORS,
    Node,
    arguments,
    between,
    binary,
    call,
    case,
    col_func_field,
    colon,
    field,
    index,
    json_field,
    like_pattern,
    like_regexp,
    literal,
    meta,
    operation,
    paren,
    select_field,
    sort_field,
    time_literal,
    value_set,
    when,
    wildcard,
    window,
)
from .gowire_replies import (
    ACK_RESPONSE,
    FUNC_REPLY,
    MESSAGE_WRAPPER,
    Ack,
    Exec,
    IsAggregate,
    Reply,
    SourceError,
    SourceMessage,
    decode_ack,
    decode_reply,
    decode_source_message,
)

# The face of this module: its own encoders, and its parts' names.
__all__ = [
    "ACK_RESPONSE", "ASTERISK", "Ack", "DEFAULT_STREAM", "Exec", "FUNC_REPLY", "IsAggregate",
    "MESSAGE_WRAPPER", "MIN_INT32", "Node", "OPERATORS", "Reply", "SourceError",
    "SourceMessage", "Struct", "arguments", "between", "binary", "call", "case",
    "col_func_field", "colon", "decode_ack", "decode_reply", "decode_source_message",
    "encode_command", "encode_control", "encode_func_meta", "encode_function_call",
    "encode_payload", "field", "go_json", "index", "json_field", "like_pattern", "like_regexp",
    "literal", "meta", "operation", "paren", "select_field", "sort_field", "time_literal",
    "value_set", "when", "wildcard", "window",
]


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


def encode_function_call(func: str, args: Optional[list[Any]]) -> bytes:
    """A Validate, Exec or IsAggregate request as eKuiper sends it.

    Args:
        func: ``"Validate"``, ``"Exec"`` or ``"IsAggregate"``.
        args: the arguments; none (or an empty list) is sent as ``null``.

    Raises:
        gojson_fmt.MarshalError: an argument Go's encoder refuses (NaN, an
            infinity); eKuiper's call then fails before sending.
    """
    return _struct(("func", func), ("arg", args if args else None))


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

