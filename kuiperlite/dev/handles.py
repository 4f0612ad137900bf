"""What a host holds for each started symbol: source, sink and function handles.

:meth:`Host.start_source <kuiperlite.dev.host.Host.start_source>`,
:meth:`~kuiperlite.dev.host.Host.start_sink` and
:meth:`~kuiperlite.dev.host.Host.function` return these. Each opens its
channels in eKuiper's order, moves bytes encoded and decoded as eKuiper does
(:mod:`kuiperlite.dev.gowire`), and bounds every wait.

Its parts: :mod:`~kuiperlite.dev.handles_source` (a source's handle and
status), :mod:`~kuiperlite.dev.handles_sink` (a sink's); this module holds
what every handle uses of its host, and a function's handle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Optional, Protocol

from ..declare.hints import describe_value
from ..declare.kinds import FUNCTION
from ..errors import HostError, ProtocolError
from ..protocol import wire
from ..protocol.wire import START, Control, FuncMeta, Meta
from . import gojson_fmt, gowire
from .ends import Channel, Responder, checked_address
from .sql import SqlError
from .sql import parse as parse_sql

log = logging.getLogger("kuiperlite.dev.host")


class HostSide(Protocol):
    """What a handle uses of the host that started it (:class:`kuiperlite.dev.host.Host`)."""

    name: str
    ekuiper: int
    timeout: float
    send_timeout: float
    recv_timeout: float
    ipc_dir: str
    handles: list[Any]
    leaked: list[Channel]
    functions_lock: threading.Lock

    def command(self, name: str, control: Control) -> None: ...
    def function(self, symbol: str) -> FunctionHandle: ...

    def check_alive(self) -> None:
        """Raise HostError when the plugin process has exited."""


def checked_meta(control: Control, directory: str) -> Meta:
    """The control's meta, once its sockets can be files in ``directory`` (by the
    rule the plugin applies, :func:`kuiperlite.protocol.wire.check_meta`).

    Raises:
        ValueError: a name holds ``/``, ``..``, NUL or control characters, or a
            socket path is too long; the message says which.
    """
    meta = control.meta
    assert meta is not None
    try:
        wire.check_meta(meta, control.kind, directory)
    except ProtocolError as err:
        raise ValueError(str(err)) from None
    return meta


def described(control: Control) -> str:
    """A started symbol's name in messages: ``source 'pyjson' of rule rule1/op1/0``.

    Args:
        control: the symbol's start control; a function's has no meta.
    """
    name = control.described
    meta = control.meta
    return name if meta is None else \
        f"{name} of rule {meta.rule_id}/{meta.op_id}/{meta.instance_id}"


def holder(control: Control) -> str:
    assert control.meta is not None
    return f"rule {control.meta.rule_id!r}"


RUNNING, RETRYING, FAILED = "running", "retrying", "failed"


class FunctionChannel(Responder):
    """A function symbol's channel, shared by its handles, one call at a time."""

    def __init__(self, host: HostSide, symbol: str) -> None:
        address = checked_address(wire.function_address(symbol, host.ipc_dir),
                                  ("function name", symbol))
        super().__init__(address, host.check_alive, f"function {symbol!r}")
        self.symbol = symbol
        self.users = 0
        try:
            host.command(START, Control(symbol, FUNCTION.wire))
        except BaseException:
            self.close()
            raise


class FunctionHandle:
    """A use of a function symbol's channel, seen from the host."""

    def __init__(self, host: HostSide, channel: FunctionChannel) -> None:
        self.host = host
        self.channel = channel
        self.symbol = channel.symbol
        channel.users += 1
        host.handles.append(self)

    def __enter__(self) -> FunctionHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, func: str, args: Optional[list[Any]]) -> gowire.Reply:
        """Send one raw request; returns the reply, as eKuiper reads it.

        Raises:
            ValueError: an argument Go cannot encode (NaN, an infinity).
            HostError: no answer within eKuiper's send and receive timeouts.
        """
        return gowire.decode_reply(self.request_raw(func, args), python_ints=True)

    def request_raw(self, func: str, args: Optional[list[Any]]) -> bytes:
        """Send one request as eKuiper encodes it; returns the reply's bytes.

        Raises:
            ValueError: an argument Go cannot encode (NaN, an infinity).
            HostError: no answer within eKuiper's send and receive timeouts.
        """
        host = self.host
        try:
            payload = gowire.encode_function_call(func, args)
        except gojson_fmt.MarshalError as err:
            raise ValueError(f"The {func} call of function {self.symbol!r} cannot be sent: "
                             f"Go's encoder refuses its arguments ({err}), and eKuiper fails "
                             "the call the same way.") from None
        try:
            return self.channel.request(payload, host.send_timeout + host.recv_timeout)
        except HostError as err:
            if "in time" not in str(err):
                raise
            raise HostError(f"No answer from function {self.symbol!r} within "
                            f"{host.recv_timeout:g} s (eKuiper's recvTimeout); eKuiper fails "
                            f"the call: time out, plugin {host.name} status running.") from None

    def validate(self, *args: Any) -> Optional[str]:
        """None when the plugin accepts these arguments, else its error text.

        Args:
            args: the SQL argument expressions, as eKuiper parsed them: build
                them with :func:`~kuiperlite.dev.gowire.literal`, ``field``,
                ``call`` and ``binary``.

        Raises:
            ValueError: an argument is not an expression (eKuiper sends objects).
        """
        for arg in args:
            if not isinstance(arg, dict):
                raise ValueError(f"Validate's arguments are SQL expressions, got "
                                 f"{describe_value(arg)}; build one with gowire.literal() "
                                 "or gowire.field().")
        reply = self.request("Validate", list(args))
        if reply.error is not None:
            return reply.validate
        return None if reply.state else str(reply.result)

    def validate_sql(self, statement: str, *, functions: Iterable[str] = ()) -> Optional[str]:
        """None when eKuiper's parser accepts this rule SQL, else its error text.

        The plugin receives what eKuiper sends while it parses the statement
        (:func:`kuiperlite.dev.sql.parse`): IsAggregate, then Validate with the
        arguments of each call, as eKuiper's parser built them. Built-in
        functions are eKuiper's; any other must be this function or one of
        ``functions``.

        Args:
            statement: the rule's SQL, ``SELECT f(1, x) FROM demo``.
            functions: the plugin's other functions the statement calls; each
                is started as eKuiper starts it.

        Raises:
            HostError: the plugin does not answer in time, or refuses to start
                one of ``functions``.
        """
        others = [self.host.function(name) for name in dict.fromkeys(functions)
                  if name != self.symbol]
        try:
            senders = {handle.symbol: handle.request_raw for handle in [self, *others]}
            parse_sql(statement, senders, ekuiper=self.host.ekuiper)
        except SqlError as err:
            return str(err)
        finally:
            for handle in others:
                handle.close()
        return None

    def is_aggregate(self) -> bool:
        """Whether eKuiper takes the function for an aggregate; what eKuiper
        logs about the reply is logged as a warning."""
        answer = self.request("IsAggregate", None).is_aggregate
        if answer.logged is not None:
            log.warning("function %r: %s", self.symbol, answer.logged.decode("utf-8", "replace"))
        return answer.result

    def call(self, *args: Any, meta: Optional[FuncMeta] = None) -> Any:
        """Exec the function; its result as eKuiper gets it (numbers written as
        integers below 2**53 as Python ints).

        Args:
            args: the SQL argument values.
            meta: the calling function instance (default rule1/op1/0, func 0).

        Raises:
            HostError: the call failed; the message is the error eKuiper gets.
        """
        meta = meta or FuncMeta("rule1", "op1", 0, 0)
        outcome = self.request("Exec", [*args, gowire.encode_func_meta(meta)]).exec
        if outcome.ok:
            return outcome.result
        if outcome.error is None:
            raise HostError(f"The function {self.symbol!r} failed and said nothing (state "
                            "false and no result); eKuiper's rule gets the error "
                            f"'call func {self.symbol} error: <nil>'.")
        raise HostError(outcome.error)

    def close(self) -> bool:
        """Let go of the channel; the last handle closes it (no stop command:
        functions are never stopped)."""
        with self.host.functions_lock:
            if self not in self.host.handles:
                return False
            self.host.handles.remove(self)
            self.channel.users -= 1
            if self.channel.users <= 0:
                self.channel.close()
        return True
