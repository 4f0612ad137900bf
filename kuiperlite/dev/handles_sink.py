"""A started sink's handle: rule outputs through eKuiper's sink pipeline, its data
channel fed and its acks read as eKuiper does."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any, Optional

import attrs
import pynng

from ..errors import HostError
from ..protocol import wire
from ..protocol.channels import TICK
from ..protocol.transport import Timeout, dial, ms, puller
from ..protocol.wire import START, STOP, Control
from . import gojson_fmt, gowire
from .ends import Channel, listening, nudge
from .handles import HostSide, checked_meta, described, holder
from .sinkrule import Message, SinkRule


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
        self.described = described(control)
        # eKuiper 1.x reads acks only for an integer requiredACKs, which a rule's
        # JSON never gives: it reads none.
        self.require_ack = control.config.get("requireAck") is True and host.ekuiper != 1
        self._rule: Optional[SinkRule] = None
        self._emitting = threading.Lock()  # one emit at a time: the pipeline keeps state
        self._in_flight = threading.Lock()  # held while a message is sent and its ack awaited
        self._stopping = False
        meta = checked_meta(control, host.ipc_dir)
        self.address = wire.data_address(meta, host.ipc_dir)
        ack = wire.ack_address(meta, host.ipc_dir)
        self.ack = Channel(listening(ack, holder(control),
                                     lambda: puller(ack, recv_timeout=TICK)), ack)
        data: Optional[pynng.Socket] = None
        try:
            host.command(START, control)
            data = pynng.Push0(send_timeout=ms(TICK))
            try:
                dial(data, self.address)
            except ConnectionError:
                raise HostError(f"The {self.described} started, but nothing listens on its "
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
                raise HostError(f"The {self.described} is stopped.")
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
            raise ValueError(f"The payload for {self.described} cannot be sent: Go's encoder "
                             f"refuses it ({err}), and eKuiper drops such a message.") from None
        with self._in_flight:
            if self._stopping:
                raise HostError(f"The {self.described} is stopped.")
            return self._deliver(encoded, timeout)

    def _deliver(self, encoded: bytes, timeout: Optional[float]) -> Optional[str]:
        """Push bytes on the data channel, then wait for their ack, as eKuiper's
        ``Collect`` does."""
        send_timeout = self.host.send_timeout
        deadline = time.monotonic() + send_timeout
        with self.data.lock:
            while True:
                if self.data.sock is None or self.data.closing:
                    raise HostError(f"The {self.described} is stopped.")
                try:
                    self.data.send(encoded)
                    break
                except Timeout:
                    if time.monotonic() > deadline:
                        raise HostError(f"The {self.described} did not take a payload within "
                                        f"{send_timeout:g} s (eKuiper's sendTimeout).") from None
                    self.host.check_alive()
        if not self.require_ack:
            return None
        wait = self.host.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            with self.ack.lock:
                if self.ack.sock is None:
                    raise HostError(f"The {self.described} was stopped while waiting for its ack.")
                try:
                    return gowire.decode_ack(self.ack.recv()).error
                except Timeout:
                    pass
            nudge()
            if time.monotonic() > deadline:
                raise HostError(f"No ack from {self.described} within {wait:g} s; eKuiper would "
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

