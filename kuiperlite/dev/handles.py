"""What a host holds for each started symbol: source, sink and function handles.

:meth:`Host.start_source <kuiperlite.dev.host.Host.start_source>`,
:meth:`~kuiperlite.dev.host.Host.start_sink` and
:meth:`~kuiperlite.dev.host.Host.function` return these. Each opens its
channels in eKuiper's order, moves bytes encoded and decoded as eKuiper does
(:mod:`kuiperlite.dev.gowire`), and bounds every wait.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, NamedTuple, Optional, Protocol

import attrs
import pynng

from ..declare.hints import describe_value
from ..declare.kinds import FUNCTION
from ..errors import HostError, ProtocolError
from ..protocol import wire
from ..protocol.channels import TICK
from ..protocol.transport import Timeout, dial, ms, puller
from ..protocol.wire import START, STOP, Control, FuncMeta, Meta
from . import gojson_fmt, gowire
from .ends import Channel, Responder, checked_address, listening, nudge
from .sinkrule import Message, SinkRule
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


def _checked(control: Control, directory: str) -> Meta:
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


def what(control: Control) -> str:
    """A started symbol's name in messages: ``source 'pyjson' of rule rule1/op1/0``.

    Args:
        control: the symbol's start control; a function's has no meta.
    """
    name = control.what
    meta = control.meta
    return name if meta is None else \
        f"{name} of rule {meta.rule_id}/{meta.op_id}/{meta.instance_id}"


def _holder(control: Control) -> str:
    assert control.meta is not None
    return f"rule {control.meta.rule_id!r}"


RUNNING, RETRYING, FAILED = "running", "retrying", "failed"


class SourceStatus(NamedTuple):
    """How a source is doing, as the messages received from it say.

    Attributes:
        state: RUNNING; RETRYING, when it raised and starts again; FAILED,
            when it raised and does not (its ``retry`` is off).
        error: what it raised, while it is not running.
        again_at: when (``time.time()``) a retrying source starts again.
    """

    state: str = RUNNING
    error: Optional[str] = None
    again_at: Optional[float] = None

    @classmethod
    def after(cls, failure: wire.SourceFailure) -> SourceStatus:
        """The status a failure report leaves a source in."""
        if failure.again is None:
            return cls(FAILED, failure.error)
        return cls(RETRYING, failure.error, time.time() + failure.again)


class SourceHandle:
    """A started source instance, seen from the host.

    Attributes:
        errors: what the plugin reported as errors: messages eKuiper fails to
            decode, which it logs and (2.x) counts as the rule's exceptions.
        exceptions: how many of them eKuiper counts in the rule's metrics
            (``exceptions_total``): every one under 2.x, none under 1.x, which
            only logs them.
        mistakes: ``{"error": ...}`` messages, which eKuiper takes for empty
            rows, losing the text: the SDKs' way to report an error.
        status: how the source is doing, by the last failure report or record
            :meth:`recv` received.
    """

    def __init__(self, host: HostSide, control: Control) -> None:
        assert control.meta is not None
        self.host = host
        self.control = control
        self.what = what(control)
        self.address = wire.data_address(_checked(control, host.ipc_dir), host.ipc_dir)
        self.channel = Channel(listening(self.address, _holder(control),
                                         lambda: puller(self.address, recv_timeout=TICK)),
                               self.address)
        try:
            host.command(START, control)
        except BaseException:
            self.channel.close()
            raise
        self.errors: list[str] = []
        self.exceptions = 0
        self.mistakes: list[str] = []
        self.status = SourceStatus()
        host.handles.append(self)

    def __enter__(self) -> SourceHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def recv_raw(self, timeout: float = 10.0) -> bytes:
        """The next message's bytes, undecoded."""
        return self._receive(time.monotonic() + timeout, timeout)

    def _receive(self, deadline: float, timeout: float) -> bytes:
        channel = self.channel
        while True:
            with channel.lock:
                if channel.sock is None:
                    raise HostError(f"The {self.what} is stopped.")
                try:
                    return channel.recv()
                except Timeout:
                    pass
            nudge()
            if time.monotonic() > deadline:
                raise HostError(f"No record from {self.what} within {timeout:g} s.")
            self.host.check_alive()

    def recv(self, timeout: float = 10.0) -> tuple[Any, Any]:
        """The next row as eKuiper ingests it: ``(message, meta)``.

        Rows and meta are what eKuiper's source node gets, ``{}`` for a
        missing or null ``message`` or ``meta``; numbers are the float64 it
        holds, one written as an integer (below 2**53) as a Python int.
        Errors go to ``errors`` (logged as eKuiper logs them); a failure
        report, and the row after one, set ``status``. A message eKuiper
        decodes to no message (the SDKs' ``{"error": ...}``) is the empty row
        ``{}`` eKuiper would ingest, logged as a warning.
        """
        deadline = time.monotonic() + timeout
        assert self.control.meta is not None
        while True:
            raw = self._receive(deadline, timeout)
            try:
                decoded = gowire.decode_source_message(raw, python_ints=True)
            except gowire.SourceError as err:
                log.info("%s: %s", self.what,
                         err.node_log(self.control.meta.op_id).decode("utf-8", "replace"))
                self.errors.append(err.text)
                self.exceptions += self.host.ekuiper != 1
                failure = wire.read_source_failure(err.text)
                if failure is not None:
                    self.status = SourceStatus.after(failure)
                continue
            if decoded.stray_error is not None:
                self.mistakes.append(decoded.stray_error)
                log.warning("%s sent {\"error\": %r}: eKuiper takes it for an EMPTY ROW and "
                            "loses the text; report errors so that eKuiper fails to decode "
                            "them", self.what, decoded.stray_error)
            if self.status.state != RUNNING:
                self.status = SourceStatus()
            return decoded.message or {}, decoded.meta or {}

    def records(self, count: int, timeout: float = 10.0) -> list[Any]:
        """The next ``count`` records' messages."""
        deadline = time.monotonic() + timeout
        return [self.recv(max(0.0, deadline - time.monotonic()))[0] for _ in range(count)]

    def stop(self) -> None:
        """Close the data channel, then send stop (eKuiper's order)."""
        if self.close():
            self.host.command(STOP, self.control)

    def close(self) -> bool:
        """Close the data channel without a command; False if already closed."""
        if not self.channel.close():
            return False
        if self in self.host.handles:
            self.host.handles.remove(self)
        return True


class SinkHandle:
    """A started sink instance, seen from the host.

    :meth:`emit` feeds it rule outputs as eKuiper does, through the sink
    pipeline its properties configure (:mod:`kuiperlite.dev.sinkrule`);
    :meth:`send` pushes one payload as it is.
    """

    def __init__(self, host: HostSide, control: Control) -> None:
        assert control.meta is not None
        self.host = host
        self.control = control
        self.what = what(control)
        # eKuiper 1.x reads acks only for an integer requiredACKs, which a rule's
        # JSON never gives: it reads none.
        self.require_ack = control.config.get("requireAck") is True and host.ekuiper != 1
        self._rule: Optional[SinkRule] = None
        self._emitting = threading.Lock()  # one emit at a time: the pipeline keeps state
        self._in_flight = threading.Lock()  # held while a message is sent and its ack awaited
        self._stopping = False
        meta = _checked(control, host.ipc_dir)
        self.address = wire.data_address(meta, host.ipc_dir)
        ack = wire.ack_address(meta, host.ipc_dir)
        self.ack = Channel(listening(ack, _holder(control),
                                     lambda: puller(ack, recv_timeout=TICK)), ack)
        data: Optional[pynng.Socket] = None
        try:
            host.command(START, control)
            data = pynng.Push0(send_timeout=ms(TICK))
            try:
                dial(data, self.address)
            except ConnectionError:
                raise HostError(f"The {self.what} started, but nothing listens on its "
                                f"data channel {wire.ipc_path(self.address)}.") from None
        except BaseException:
            # eKuiper's PortableSink.Connect returns here without closing its ack
            # listener: the host keeps it open the same way (see Host.leaked).
            host.leaked.append(self.ack)
            if data is not None:
                data.close()
                with contextlib.suppress(HostError):  # as eKuiper does when its data channel fails
                    host.command(STOP, control)
            raise
        self.data = Channel(data, self.address)
        host.handles.append(self)

    def __enter__(self) -> SinkHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def rule(self) -> SinkRule:
        """eKuiper's sink pipeline for this sink's properties, made at first use.

        Raises:
            RuleError: eKuiper refuses a rule with these properties.
            Unsupported: the host cannot play them.
        """
        if self._rule is None:
            self._rule = SinkRule(self.control.config, self.control.symbol_name)
        return self._rule

    def emit(self, outputs: Iterable[Any], timeout: Optional[float] = None) -> list[Message]:
        """Feed rule outputs to the sink as eKuiper does, and send what it sends.

        Each output is a Row (a dict) or a Collection (a list of dicts). They
        go through eKuiper's sink pipeline, driven by the sink's properties
        (``sendSingle``, ``batchSize``, ``dataTemplate``, ``fields``,
        ``omitIfEmpty``, templates in other properties...): the plugin
        receives exactly the bytes eKuiper would send, one message at a
        time, each acked before the next with ``requireAck``.

        A :meth:`stop` from another thread lets the message in flight finish
        (eKuiper waits for its ack), and the messages after it are not sent
        (eKuiper may send a few of them: its loop picks at random between
        the stop and the queue; the host sends none).

        Args:
            outputs: the rule's outputs, in order.
            timeout: how long to wait for each ack (default: the host's timeout).

        Returns:
            Every message eKuiper makes of the outputs, in order: those sent,
            with their ``ack`` (None for ok, or without requireAck), those
            eKuiper drops (``error``, its text), and those not sent because
            the sink stopped (``sent`` False). A batch still filling holds
            its rows (``handle.rule.pending``).

        Raises:
            RuleError: eKuiper refuses a rule with this sink's properties
                (``err.text`` is its error).
            Unsupported: the properties need what the host does not play.
            ValueError: an output is not a Row or a Collection of JSON values.
            HostError: the sink is stopped, or a send or an ack timed out.
        """
        with self._emitting:
            if self._stopping or self.data.closed:
                raise HostError(f"The {self.what} is stopped.")
            messages = self.rule.messages(outputs)
            out: list[Message] = []
            for message in messages:
                if message.data is None:
                    out.append(message)
                    continue
                with self._in_flight:
                    if self._stopping:
                        out.append(message)
                        continue
                    ack = self._deliver(message.data, timeout)
                out.append(attrs.evolve(message, sent=True, ack=ack))
            return out

    def send(self, payload: Any, timeout: Optional[float] = None) -> Optional[str]:
        """Push one payload as it is: bytes, or a value encoded as eKuiper's
        json encoder does. The sink's properties are not applied (:meth:`emit`
        applies them).

        Args:
            timeout: how long to wait for the ack (default: the host's timeout).

        Returns:
            With requireAck, None for an ok ack or the ack's error text;
            without it, None at once.

        Raises:
            ValueError: Go's encoder refuses the payload (NaN, an infinity):
                eKuiper drops such a message, and nothing is sent.
            HostError: the sink is stopped, or the plugin did not take the
                payload within eKuiper's send timeout, or did not ack in time
                (eKuiper would wait on).
        """
        try:
            encoded = gowire.encode_payload(payload)
        except gojson_fmt.MarshalError as err:
            raise ValueError(f"The payload for {self.what} cannot be sent: Go's encoder "
                             f"refuses it ({err}), and eKuiper drops such a message.") from None
        with self._in_flight:
            if self._stopping:
                raise HostError(f"The {self.what} is stopped.")
            return self._deliver(encoded, timeout)

    def _deliver(self, encoded: bytes, timeout: Optional[float]) -> Optional[str]:
        """Push bytes on the data channel, then wait for their ack, as eKuiper's
        ``Collect`` does."""
        send_timeout = self.host.send_timeout
        deadline = time.monotonic() + send_timeout
        with self.data.lock:
            while True:
                if self.data.sock is None or self.data.closing:
                    raise HostError(f"The {self.what} is stopped.")
                try:
                    self.data.send(encoded)
                    break
                except Timeout:
                    if time.monotonic() > deadline:
                        raise HostError(f"The {self.what} did not take a payload within "
                                        f"{send_timeout:g} s (eKuiper's sendTimeout).") from None
                    self.host.check_alive()
        if not self.require_ack:
            return None
        wait = self.host.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            with self.ack.lock:
                if self.ack.sock is None:
                    raise HostError(f"The {self.what} was stopped while waiting for its ack.")
                try:
                    return gowire.decode_ack(self.ack.recv()).error
                except Timeout:
                    pass
            nudge()
            if time.monotonic() > deadline:
                raise HostError(f"No ack from {self.what} within {wait:g} s; eKuiper would "
                                "still be waiting, and the rule would hang.")
            self.host.check_alive()

    def extra_ack(self, wait: float = 0.05) -> Optional[bytes]:
        """An ack beyond one per payload, if one came within ``wait`` seconds."""
        time.sleep(wait)
        with self.ack.lock:
            if self.ack.sock is None:
                return None
            return self.ack.try_recv()

    def stop(self) -> None:
        """Stop as eKuiper stops a rule's sink: let the message in flight finish
        (eKuiper waits for its ack; the host waits its send timeout and its
        timeout at most), send no other, close the data and ack channels, then
        send stop."""
        self._stopping = True
        finished = self._in_flight.acquire(timeout=self.host.send_timeout + self.host.timeout)
        try:
            if self.close():
                self.host.command(STOP, self.control)
        finally:
            if finished:
                self._in_flight.release()

    def close(self) -> bool:
        """Close both channels without a command; False if already closed.

        As eKuiper 1.x, the host leaves the ack channel listening (see
        :attr:`Host.leaked`): 1.x never closes it.
        """
        self._stopping = True
        if not self.data.close():
            return False
        if self.host.ekuiper == 1:
            self.host.leaked.append(self.ack)
        else:
            self.ack.close()
        if self in self.host.handles:
            self.host.handles.remove(self)
        return True


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

    def request(self, func: str, args: Optional[list]) -> gowire.Reply:
        """Send one raw request; returns the reply, as eKuiper reads it.

        Raises:
            ValueError: an argument Go cannot encode (NaN, an infinity).
            HostError: no answer within eKuiper's send and receive timeouts.
        """
        return gowire.decode_reply(self.request_raw(func, args), python_ints=True)

    def request_raw(self, func: str, args: Optional[list]) -> bytes:
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
