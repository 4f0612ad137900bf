"""What a request to ``serve`` asks, read and checked: the errors it may get,
the mock data a start is fed, the instance it names.

The session raises the :class:`ServeError` subclasses here; only the HTTP
layer (:mod:`kuiperlite.dev.server_routes`) turns them into statuses.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import attrs

from ..declare.hints import describe_value
from ..declare.kinds import BY_WIRE, SINK, SOURCE, Kind
from ..errors import ProtocolError
from ..protocol import wire
from ..protocol.wire import Control, Meta

# What eKuiper's plugin test server feeds sinks and functions; serve, when a start asks.
MOCK_SINK_DATA: list[Any] = [{"name": "hello", "count": 5}, {"name": "world", "count": 10}]
MOCK_FUNCTION_ARGS: list[list[Any]] = [["twelve"], ["eleven"]]
INT64 = 1 << 63  # eKuiper's instanceId is a Go int

class ServeError(Exception):
    """A request serve cannot honour; the message is one sentence for the caller.

    The session raises the subclasses below, which say what went wrong;
    only the HTTP layer (:mod:`kuiperlite.dev.server_routes`) turns them into status
    codes.
    """


class BadRequest(ServeError):
    """The request is not what serve takes: a field of the wrong type, a name
    that cannot be part of a socket file name, arguments the function refuses."""


class NotFound(ServeError):
    """No such symbol, or no such instance running."""


class Conflict(ServeError):
    """The instance runs already, or another one uses its data channel."""


class PluginFailed(ServeError):
    """The plugin said no, failed or died, or a socket it needs is taken."""


class LoadFailed(PluginFailed):
    """The plugin file does not load, or not in time."""


@attrs.define
class Mock:
    """Mock data for running sinks and functions, per symbol or for all; none by default."""

    sink: Any = attrs.field(factory=list)
    function: Any = attrs.field(factory=list)
    interval: float = 1.0

    def for_symbol(self, kind: Kind, symbol: str) -> list[Any]:
        data = self.sink if kind is SINK else self.function
        return list(data.get(symbol, []) if isinstance(data, dict) else data)

    def for_start(self, kind: Kind, symbol: str, asked: Any) -> list[Any]:
        """What an instance a start request starts is fed: the start's ``mock`` when it
        is a list, eKuiper's test server's data when it is true and serve was given
        none for the symbol, nothing when it is false, else what serve was given.

        Raises:
            BadRequest: ``mock`` is none of these, or the start is a source's.
        """
        if asked is None:
            return [] if kind is SOURCE else self.for_symbol(kind, symbol)
        if kind is SOURCE:
            raise BadRequest("mock feeds sinks and functions; a source makes its own records.")
        described = "payloads" if kind is SINK else "argument lists"
        if asked is True:
            return self.for_symbol(kind, symbol) or list(
                MOCK_SINK_DATA if kind is SINK else MOCK_FUNCTION_ARGS)
        if asked is False:
            return []
        if isinstance(asked, list) and (kind is SINK or all(isinstance(a, list) for a in asked)):
            return asked
        if isinstance(asked, list):
            wrong = next(a for a in asked if not isinstance(a, list))
            raise BadRequest(f"mock must be true, false or a list of {described}, got a list "
                             f"holding {describe_value(wrong)}.")
        raise BadRequest(f"mock must be true, false or a list of {described}, "
                         f"got {describe_value(asked)}.")


@attrs.define(eq=False)
class Running:
    """A symbol instance serve started, with the thread that reads or feeds it.

    A function's control carries the meta of the rule serve calls it for.
    """

    control: Control
    handle: Any = None
    stopping: threading.Event = attrs.field(factory=threading.Event)
    thread: Optional[threading.Thread] = None
    # A send and its ack, or a call and its result, are one exchange.
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def kind(self) -> Kind:
        return self.control.kind

    @property
    def symbol(self) -> str:
        return self.control.symbol_name

    @property
    def ids(self) -> Meta:
        assert self.control.meta is not None
        return self.control.meta

    @property
    def meta(self) -> dict[str, Any]:
        """The meta as the REST API shows it."""
        ids = self.ids
        return {"ruleId": ids.rule_id, "opId": ids.op_id, "instanceId": ids.instance_id}

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind.wire, self.symbol, *self.ids)

    @property
    def tag(self) -> str:
        """The prefix of its lines on the terminal: ``[source counter rule1]``."""
        return f"[{self.kind.word} {self.symbol} {self.ids.rule_id}]"

    @property
    def rule(self) -> str:
        """``rule1/op1/1``: the instance, as messages name it."""
        return "/".join(str(part) for part in self.ids)


def parse_meta(raw: Any, kind: Kind = SOURCE) -> Meta:
    """The body's meta, with serve's defaults for what it leaves out.

    Its fields' types are serve's own checks (serve's messages name the body's
    fields); whether the names can be part of a socket file name is wire's.
    """
    # A source and a sink of one meta would share a data address, so a sink
    # started without meta takes another op than a source started without.
    meta: dict[str, Any] = {"ruleId": "rule1", "opId": "op2" if kind is SINK else "op1",
                            "instanceId": 1}
    if raw is None:
        return Meta(meta["ruleId"], meta["opId"], meta["instanceId"])
    if not isinstance(raw, dict):
        raise BadRequest("meta must be an object with ruleId, opId and instanceId, "
                         f"got {describe_value(raw)}.")
    meta.update({k: raw[k] for k in meta if k in raw})
    for key in ("ruleId", "opId"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise BadRequest(f"meta.{key} must be a non-empty string, "
                             f"got {describe_value(meta[key])}.")
        try:
            wire.check_ipc_name(meta[key], key)
        except ProtocolError as err:
            raise BadRequest(str(err)) from None
    instance = meta["instanceId"]
    if not isinstance(instance, int) or isinstance(instance, bool) \
            or not -INT64 <= instance < INT64:
        raise BadRequest("meta.instanceId must be a 64-bit integer, "
                         f"got {describe_value(instance)}.")
    return Meta(meta["ruleId"], meta["opId"], instance)


def parse_control(body: dict[str, Any]) -> Control:
    """The symbol, its kind and its meta, as a start or stop body names them."""
    kind, symbol = body.get("pluginType"), body.get("symbolName")
    if not isinstance(symbol, str) or not symbol:
        raise BadRequest(f"The body needs 'symbolName', a non-empty string, "
                         f"got {describe_value(symbol)}.")
    known = BY_WIRE.get(kind) if isinstance(kind, str) else None
    if known is None:
        raise BadRequest(f"pluginType must be source, sink or func, got {describe_value(kind)}.")
    return Control(symbol, known.wire, parse_meta(body.get("meta"), known))

