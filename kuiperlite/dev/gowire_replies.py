"""What eKuiper concludes from the bytes a plugin sends back: source messages,
acks and function replies.

Each is ``json.Unmarshal`` into eKuiper's struct (``messageWrapper``,
``ackResponse``, ``FuncReply``; reproduced by :mod:`kuiperlite.dev.gojson`),
then what eKuiper's ``internal/plugin/portable/runtime`` code makes of it.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Optional

from ..errors import ProtocolError
from . import gojson, gojson_fmt

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

    message: Optional[dict[str, Any]]
    meta: Optional[dict[str, Any]]
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
