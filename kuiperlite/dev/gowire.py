"""eKuiper's half of the wire: the bytes eKuiper's Go runtime sends and how it reads replies.

The embedded host encodes commands, sink payloads and function calls here
exactly as eKuiper does, and decodes source messages, acks and function
replies by eKuiper's rules, so that plugins are tested against the bytes
eKuiper really sends. The shapes both halves share (:class:`~kuiperlite.wire.Control`,
:class:`~kuiperlite.wire.Meta`, :class:`~kuiperlite.wire.FuncMeta`) live in
:mod:`kuiperlite.wire`, with the plugin's half.

eKuiper's Go encoder sorts map keys, keeps struct fields in declaration
order, writes integral floats as integers and escapes <, >, & and the two
JavaScript line separators; :func:`go_json` reproduces all of it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, NoReturn, Optional

import orjson

from ..errors import ProtocolError
from ..hints import describe_value
from ..wire import _LENIENT, Control, FuncMeta, Meta, _loads

_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(value: Any) -> bytes:
    """Encode a value as Go's ``encoding/json`` would.

    Args:
        value: a JSON-shaped value (dicts, lists, strings, numbers, bools, None).

    Returns:
        The JSON bytes: map keys sorted, integral floats as integers, and
        ``<``, ``>``, ``&``, U+2028 and U+2029 escaped.
    """
    out = orjson.dumps(_go_values(value), option=orjson.OPT_SORT_KEYS | _LENIENT)
    for raw, escaped in _GO_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out


def _go_values(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {str(k): _go_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_go_values(v) for v in value]
    return value


def _struct(*fields: tuple[str, Any]) -> bytes:
    """A Go struct: fields in the given order, each value Go-encoded."""
    return b"{" + b",".join(go_json(k) + b":" + go_json(v) for k, v in fields) + b"}"


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
    """
    return _struct(("func", func), ("arg", args if args else None))


def encode_payload(data: Any) -> bytes:
    """A sink payload as eKuiper's default JSON encoder produces it.

    Args:
        data: bytes, sent as they are, or a value to encode as Go does.
    """
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return go_json(data)


class SourceMessage(NamedTuple):
    """A source message as eKuiper decodes it."""

    message: Optional[dict]  # None: eKuiper ingests an empty row
    meta: Optional[dict]
    stray_error: Optional[str] = None  # the SDKs' {"error": ...}, which eKuiper ignores


class SourceError(ProtocolError):
    """A source message eKuiper fails to decode, so it is an error.

    ``str(err)`` is the line eKuiper logs; ``text`` is what the plugin meant
    to say (the string itself when the message is a JSON string).
    """

    def __init__(self, raw: bytes, why: str, text: Optional[str] = None) -> None:
        shown = raw.decode("utf-8", "replace")
        super().__init__(f"Invalid data format, cannot decode {shown} to json format "
                         f"with error {why}")
        self.text = shown if text is None else text


def decode_source_message(raw: bytes) -> SourceMessage:
    """Decode one source message by the rules of Go's ``encoding/json``.

    eKuiper unmarshals the bytes into a struct with the object fields
    ``message`` and ``meta``: keys match case-insensitively (the last match
    wins), other keys are ignored, and ``null`` or an object without
    ``message`` decodes to an empty row.

    Args:
        raw: the message's bytes.

    Raises:
        SourceError: the bytes are not JSON, not an object, or ``message`` or
            ``meta`` is not an object; eKuiper logs it and counts an exception.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        try:  # Go replaces invalid UTF-8 instead of failing
            body = orjson.loads(raw.decode("utf-8", "replace"))
        except orjson.JSONDecodeError:
            raise SourceError(raw, f"invalid JSON ({err})") from None
    if body is None:
        return SourceMessage(None, None)
    if not isinstance(body, dict):
        _undecodable(raw, body, "the message", body if isinstance(body, str) else None)
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key.lower() in ("message", "meta"):
            fields[key.lower()] = value
    for name in ("message", "meta"):
        value = fields.get(name)
        if value is not None and not isinstance(value, dict):
            _undecodable(raw, value, f"its field {name!r}")
    message, meta = fields.get("message"), fields.get("meta")
    stray = body.get("error") if message is None else None
    return SourceMessage(message, meta, None if stray is None else str(stray))


def _undecodable(raw: bytes, value: Any, what: str, text: Optional[str] = None) -> NoReturn:
    raise SourceError(raw, f"cannot unmarshal {describe_value(value)} into {what}, "
                           "which must be an object", text)


def decode_ack(raw: bytes) -> Optional[str]:
    """Read a sink's ack as eKuiper does.

    Args:
        raw: the ack's bytes.

    Returns:
        None for a success ack, the error text otherwise.

    Raises:
        ProtocolError: the ack is not a JSON object.
    """
    body = _loads(raw, "The ack")
    if not isinstance(body, dict):
        raise ProtocolError(f"The ack must be an object, got {describe_value(body)}.")
    error = body.get("error")
    return str(error) if error else None


def decode_reply(raw: bytes) -> tuple[bool, Any]:
    """Read a function's reply as eKuiper does.

    Args:
        raw: the reply's bytes.

    Returns:
        ``(state, result)``: whether the call succeeded, and its result or error text.

    Raises:
        ProtocolError: the reply is not an object with a boolean ``state``.
    """
    body = _loads(raw, "The function reply")
    if not isinstance(body, dict) or not isinstance(body.get("state"), bool):
        raise ProtocolError("The function reply must be an object with a boolean 'state'.")
    return body["state"], body.get("result")
