"""The wire format: every byte a plugin puts on a socket or takes off one.

Here live the shapes both sides share (the constants, :class:`Meta`,
:class:`FuncMeta`, :class:`Control`, the socket addresses and the checks on
the names that become socket files) and the plugin's half: decode commands
and function calls, encode records, acks and function replies. eKuiper's
half, which the embedded host uses, is :mod:`kuiperlite.dev.gowire`. No
other module builds or parses protocol bytes.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple, Optional

import orjson

from .. import settings
from ..declare.hints import describe_value, is_record, record_fields
from ..declare.kinds import BY_WIRE, KINDS, SINK, SOURCE, Kind
from ..errors import EncodeError, ProtocolError
from .layout import name_fault

HANDSHAKE = b"handshake"
OK = b"ok"
ACK_OK = b"{}"

START = "start"
STOP = "stop"

# eKuiper's folder for every socket file. KUIPERLITE_IPC_DIR moves a plugin
# and kuiperlite's host elsewhere together, so that tests and debug sessions
# never meet a running eKuiper's sockets.
IPC_DIR = settings.IPC_DIR.read()

# Extra orjson options tried only after the fast default encoding failed.
_LENIENT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_RECORD_HEAD = b'{"message":'
_RECORD_TAIL_NO_META = b',"meta":null}'


class Meta(NamedTuple):
    """Identifies one running instance of a source or sink."""

    rule_id: str
    op_id: str
    instance_id: int

    def key(self, symbol: str) -> str:
        """The instance key both official SDKs use: ``rule_op_instance_symbol``."""
        return f"{self.rule_id}_{self.op_id}_{self.instance_id}_{symbol}"


class FuncMeta(NamedTuple):
    """Identifies the function instance behind one Exec call."""

    rule_id: str
    op_id: str
    instance_id: int
    func_id: int


class Control(NamedTuple):
    """The argument of a start or stop command (its config is read, never changed)."""

    symbol_name: str
    plugin_type: str
    meta: Optional[Meta] = None
    datasource: str = ""
    config: dict[str, Any] = {}
    generation: int = 0  # the eKuiper generation the command shows: 1, 2, or 0 (it does not)

    @property
    def kind(self) -> Kind:
        """The kind its ``plugin_type`` names (a decoded Control's is always known)."""
        return BY_WIRE[self.plugin_type]

    @property
    def described(self) -> str:
        """``source 'pyjson'``: how messages name the symbol."""
        return self.kind.described(self.symbol_name)


# --------------------------------------------------------------- addresses


def control_address(plugin: str, directory: Optional[str] = None) -> str:
    """The control channel eKuiper listens on for a plugin."""
    return f"ipc://{directory or IPC_DIR}/plugin_{plugin}.ipc"


def function_address(symbol: str, directory: Optional[str] = None) -> str:
    """The channel eKuiper listens on for one function symbol."""
    return f"ipc://{directory or IPC_DIR}/func_{symbol}.ipc"


def data_address(meta: Meta, directory: Optional[str] = None) -> str:
    """A source's or sink's data channel."""
    return f"ipc://{directory or IPC_DIR}/{meta.rule_id}_{meta.op_id}_{meta.instance_id}.ipc"


def ack_address(meta: Meta, directory: Optional[str] = None) -> str:
    """A sink's ack channel."""
    return (f"ipc://{directory or IPC_DIR}/"
            f"{meta.rule_id}_{meta.op_id}_{meta.instance_id}_ack.ipc")


def ipc_path(address: str) -> str:
    """The file behind an ``ipc://`` address."""
    return address[len("ipc://") :]


# sockaddr_un holds 108 bytes for the path, NUL included.
IPC_PATH_MAX = 107


def check_ipc_name(value: str, label: str) -> None:
    """Refuse a name that cannot be part of a socket file name.

    Rule, op, symbol and plugin names become file names in the socket
    folder; one holding a ``/`` or ``..`` would reach other folders, and NUL
    or control characters no file name should hold.

    Args:
        value: the name, e.g. a ruleId.
        label: what the name is, for the message (``"ruleId"``).

    Raises:
        ProtocolError: with one sentence naming the value and the rule.
    """
    fault = name_fault(value)
    if fault:
        raise ProtocolError(f"The {label} {value!r} cannot be part of a socket file name: it "
                            f"{fault}.")


def check_ipc_path(address: str) -> None:
    """Refuse a socket address whose file path is longer than a socket allows.

    Args:
        address: an ``ipc://`` address, or the bare path.

    Raises:
        ProtocolError: naming the path, its length in bytes and the limit.
    """
    path = ipc_path(address) if address.startswith("ipc://") else address
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > IPC_PATH_MAX:
        raise ProtocolError(
            f"The socket path {path} is {size} bytes long; a socket path holds at most "
            f"{IPC_PATH_MAX} bytes."
        )


def check_meta(meta: Meta, kind: Kind, directory: Optional[str] = None) -> None:
    """Refuse a meta whose names or socket paths cannot be socket files.

    A source's or sink's rule and op become the names of its socket files
    (the data channel, and a sink's ack channel, the longer path of the two).
    The plugin checks every start command with this, and a host checks the
    same before it listens, so both refuse the same metas. A function's meta
    names no file, but its names are checked all the same.

    Args:
        meta: the instance's ruleId, opId and instanceId.
        kind: the instance's kind.
        directory: the socket folder (default: :data:`IPC_DIR`).

    Raises:
        ProtocolError: one sentence naming the field or the path, as
            :func:`check_ipc_name` and :func:`check_ipc_path` say it.
    """
    check_ipc_name(meta.rule_id, "ruleId")
    check_ipc_name(meta.op_id, "opId")
    if kind is SINK:
        check_ipc_path(ack_address(meta, directory))
    elif kind.per_rule:
        check_ipc_path(data_address(meta, directory))


# ------------------------------------------------------------- plugin side


def decode_command(raw: bytes) -> tuple[str, Control]:
    """Parse a command from eKuiper into its name and control.

    Raises:
        ProtocolError: with one sentence saying what is wrong.
    """
    command = _loads(raw, "The command")
    if not isinstance(command, dict):
        raise ProtocolError("The command must be a JSON object with 'cmd' and 'arg', "
                            f"got {describe_value(command)}.")
    name = command.get("cmd")
    if name not in (START, STOP):
        raise ProtocolError(f"Unknown command {name!r}; expected 'start' or 'stop'.")
    arg = command.get("arg")
    if not isinstance(arg, str):
        raise ProtocolError(
            f"The {name} command's 'arg' must be a string holding the control JSON, "
            f"got {describe_value(arg)}."
        )
    ctrl = _loads(arg.encode(), f"The {name} command's 'arg'")
    if not isinstance(ctrl, dict):
        raise ProtocolError(
            f"The {name} command's 'arg' must hold a JSON object, got {describe_value(ctrl)}."
        )
    return name, _control(ctrl)


def _loads(raw: bytes, described: str) -> Any:
    if not raw:
        raise ProtocolError(f"{described} is empty; expected JSON.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ProtocolError(f"{described} is not valid JSON ({err}).") from None


def _control(ctrl: dict[str, Any]) -> Control:
    symbol = ctrl.get("symbolName")
    if not isinstance(symbol, str) or not symbol:
        raise ProtocolError(
            f"The control needs 'symbolName', a non-empty string, got {describe_value(symbol)}."
        )
    ptype = ctrl.get("pluginType")
    kind = BY_WIRE.get(ptype) if isinstance(ptype, str) else None
    if kind is None:
        raise ProtocolError(
            f"Unknown plugin type {ptype!r} for symbol {symbol!r}; "
            f"expected {', '.join(repr(k.wire) for k in KINDS[:-1])} or {KINDS[-1].wire!r}."
        )
    config = ctrl.get("config") or {}
    if not isinstance(config, dict):
        raise ProtocolError(
            f"The config of {symbol!r} must be an object, got {describe_value(config)}."
        )
    # eKuiper 1.x sends the stream's datasource as the top-level dataSource;
    # 2.x never fills that field and puts it in the config, beside the
    # other stream options it adds (format, key, schemaId, ...).
    datasource = ctrl.get("dataSource", ctrl.get("datasource")) or config.get("datasource") or ""
    if not isinstance(datasource, str):
        raise ProtocolError(
            f"The dataSource of {symbol!r} must be a string, got {describe_value(datasource)}."
        )
    check_ipc_name(symbol, "symbolName")
    # Only 1.x fills the top-level dataSource; only 2.x adds "datasource" to a
    # source's config. Sinks and functions look the same under both.
    generation = 1 if ctrl.get("dataSource") else 2 if "datasource" in config else 0
    if not kind.per_rule:
        return Control(symbol, kind.wire, None, datasource, config, generation)
    meta = _meta(ctrl.get("meta"), kind.described(symbol))
    # The rule's names become socket file names: never a path elsewhere.
    check_meta(meta, kind)
    return Control(symbol, kind.wire, meta, datasource, config, generation)


def _meta(raw: Any, described: str) -> Meta:
    if not isinstance(raw, dict):
        raise ProtocolError(
            f"The control for {described} needs 'meta' with ruleId, opId and instanceId, "
            f"got {describe_value(raw)}."
        )
    values = []
    for key in ("ruleId", "opId"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise ProtocolError(
                f"The control for {described} needs meta.{key}, a non-empty string, "
                f"got {describe_value(value)}."
            )
        values.append(value)
    instance = raw.get("instanceId", 0)
    if isinstance(instance, float) and instance.is_integer():
        instance = int(instance)
    if not isinstance(instance, int) or isinstance(instance, bool):
        raise ProtocolError(
            f"The control for {described} needs meta.instanceId, an integer, "
            f"got {describe_value(instance)}."
        )
    return Meta(values[0], values[1], instance)


def answer(text: str) -> bytes:
    """Encode a control answer: ``ok`` or an error sentence.

    eKuiper skips any answer whose first byte is ``h`` as a stale handshake,
    so an error text must never start with one.
    """
    if not text:
        return b"error"
    if text[0] == "h":
        text = "H" + text[1:]
    return text.encode()


def encode_record(data: Any, meta: Any = None) -> bytes:
    """Frame one source record: ``{"message": data, "meta": meta}``.

    Raises:
        EncodeError: the record cannot be carried as JSON.
    """
    message = _dumps(data, "record")
    if meta is None:
        return _RECORD_HEAD + message + _RECORD_TAIL_NO_META
    return _RECORD_HEAD + message + b',"meta":' + _dumps(meta, "meta") + b"}"


def encode_source_error(text: str) -> bytes:
    """A source error as a message eKuiper takes for an error: a JSON string.

    eKuiper decodes every source message into ``{message: object, meta:
    object}``. The SDKs' ``{"error": text}`` decodes without error into an
    empty row, so the text is lost. A JSON string fails that decoding: eKuiper
    logs "Invalid data format, cannot decode "<text>" ..." and (2.x) counts
    it as the rule's exception, with the text in its ``last_exception``.
    """
    return orjson.dumps(text)


class SourceFailure(NamedTuple):
    """What a source's failure report says: its error, and the seconds until
    the source starts again (None: it does not)."""

    error: str
    again: Optional[float]


# How a failure report ends when the source starts again.
_AGAIN = "; it starts again in "
_FAILURE = re.compile(rf"The {SOURCE.word} '[^']*' failed: (.*?)(?:{re.escape(_AGAIN)}"
                      r"(\d+(?:\.\d+)?(?:e[-+]\d+)?) s)?\Z", re.S)


def source_failure(described: str, error: str, again: Optional[float] = None) -> str:
    """The sentence a source that raised is logged and reported with.

    ``The source 'feed' failed: OSError: gateway down; it starts again in 2 s``,
    or without its last part when it does not start again.
    :func:`read_source_failure` reads it back.

    Args:
        described: the source, as messages name it (``source 'feed'``).
        error: what it raised, as one line.
        again: seconds until it starts again, or None.
    """
    text = f"The {described} failed: {error}"
    return text if again is None else f"{text}{_AGAIN}{again:g} s"


def read_source_failure(text: str) -> Optional[SourceFailure]:
    """What a source error's text says of a failure, or None for any other error
    (a dropped record, ``ctx.emit_error``)."""
    found = _FAILURE.match(text)
    if found is None:
        return None
    again = found.group(2)
    return SourceFailure(found.group(1), None if again is None else float(again))


def encode_ack(error: Optional[str] = None) -> bytes:
    """A sink ack: ``{}`` for success, ``{"error": text}`` for failure."""
    return ACK_OK if error is None else orjson.dumps({"error": error})


def decode_function_call(raw: bytes) -> tuple[str, list[Any]]:
    """Parse a function request into its name and argument list.

    Raises:
        ProtocolError: the request is not what eKuiper sends.
    """
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        request = _loads(raw, "The function request")  # raises with the right sentence
    if type(request) is not dict or type(request.get("func")) is not str:
        raise ProtocolError("The function request must be a JSON object with 'func' and 'arg'.")
    args = request.get("arg")
    if args is None:
        args = []
    elif not isinstance(args, list):
        raise ProtocolError(
            f"The function request's 'arg' must be a list, got {describe_value(args)}."
        )
    return request["func"], args


def literal_values(expr: Any) -> tuple[Any, ...]:
    """The values a Validate argument has at Exec, when its SQL fixes them.

    Validate receives each argument as the expression eKuiper parsed (its
    ``pkg/ast`` nodes, as Go marshals them). A string, integer, number or
    boolean literal is an object whose one field is ``Val``, and a literal in
    parentheses is ``{"Expr": literal}``; every other node (a column, a call,
    an operation, a CASE) has other fields, and its value is known only when
    the rule runs. A time literal (``ss``, ``ms``, ...) is ``{"Val": n}`` too,
    with ``n`` its token's number, and Exec receives null for it.

    Returns:
        Each value Exec may receive for the argument: the literal's, and null
        too for a non-negative integer; none when only the running rule knows.
    """
    while type(expr) is dict and len(expr) == 1 and "Expr" in expr:
        expr = expr["Expr"]
    if type(expr) is not dict or len(expr) != 1 or "Val" not in expr:
        return ()
    value = expr["Val"]
    if type(value) is int and value >= 0:
        return value, None
    if type(value) in (str, bool, int, float):
        return (value,)
    return ()


def decode_func_meta(raw: Any) -> FuncMeta:
    """Parse the FuncMeta JSON string that ends an Exec's arguments."""
    if not isinstance(raw, str):
        raise ProtocolError(
            "The last Exec argument must be the function meta as a JSON string, "
            f"got {describe_value(raw)}."
        )
    meta = _loads(raw.encode(), "The function meta")
    if not isinstance(meta, dict):
        raise ProtocolError(f"The function meta must be an object, got {describe_value(meta)}.")
    base = _meta(meta, "a function call")
    func_id = meta.get("funcId", 0)
    if not isinstance(func_id, int) or isinstance(func_id, bool):
        raise ProtocolError(f"The function meta's funcId must be an integer, got {func_id!r}.")
    return FuncMeta(base.rule_id, base.op_id, base.instance_id, func_id)


def encode_reply(state: bool, result: Any) -> bytes:
    """A function reply; a result JSON cannot carry becomes a failed reply."""
    try:
        out = orjson.dumps({"state": state, "result": result})
    except TypeError:
        out = b""
    if not out or (b"null" in out and _non_finite(result, "") is not None):
        try:
            body = _dumps(result, "result")  # lenient encoding, or a clear error
        except EncodeError as err:
            return orjson.dumps({"state": False, "result": str(err)})
        out = orjson.dumps({"state": state, "result": orjson.Fragment(body)})
    return out


def parse_portable_config(argv: list[str]) -> dict[str, Any]:
    """eKuiper's argv[1], ``{"sendTimeout":1000}``; missing or odd is empty."""
    if len(argv) < 2:
        return {}
    try:
        config = orjson.loads(argv[1])
    except orjson.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def _dumps(value: Any, described: str) -> bytes:
    try:
        out = orjson.dumps(value)
    except TypeError:
        try:
            out = orjson.dumps(value, option=_LENIENT, default=_lenient_default)
        except TypeError as err:
            raise EncodeError(f"The {described} cannot be encoded as JSON: {err}.") from None
    # orjson writes NaN and infinities as null; JSON has no such numbers and
    # eKuiper's Go side rejects them, so they are an error, not a silent null.
    if b"null" in out:
        path = _non_finite(value, "")
        if path is not None:
            raise EncodeError(
                f"The {described} holds a float that is not finite at {path or 'the top'}; "
                "JSON has no NaN or infinity."
            )
    return out


def _lenient_default(value: Any) -> Any:
    """What orjson cannot encode by itself: attrs instances (dataclasses it can)."""
    if is_record(type(value)):
        return record_fields(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _non_finite(value: Any, path: str) -> Optional[str]:
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _non_finite(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
