"""A started source's handle: its data channel read as eKuiper reads it, and its status."""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple, Optional

from ..errors import HostError
from ..protocol import wire
from ..protocol.channels import TICK
from ..protocol.transport import Timeout, puller
from ..protocol.wire import START, STOP, Control
from . import gowire
from .ends import Channel, listening, nudge
from .handles import FAILED, RETRYING, RUNNING, HostSide, checked_meta, described, holder

log = logging.getLogger("kuiperlite.dev.host")


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
        self.described = described(control)
        self.address = wire.data_address(checked_meta(control, host.ipc_dir), host.ipc_dir)
        self.channel = Channel(listening(self.address, holder(control),
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
                    raise HostError(f"The {self.described} is stopped.")
                try:
                    return channel.recv()
                except Timeout:
                    pass
            nudge()
            if time.monotonic() > deadline:
                raise HostError(f"No record from {self.described} within {timeout:g} s.")
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
                log.info("%s: %s", self.described,
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
                            "them", self.described, decoded.stray_error)
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

