"""Running instances: a source's or sink's sockets and the thread that runs its
user code, and a function's channel.

Every source and every sink instance runs its user code on a thread of its
own, one or thousands alike, as the official SDKs do: user code that
blocks (a sleep, a read, a slow database) holds only its own thread. A
stop, from the control thread, sets the instance's stop flag and closes
its data socket: a thread blocked in a send or a receive returns at once,
sees the stop, runs the user's teardown, and gives back the instance's
connections (:mod:`kuiperlite.declare.connections`). The control thread never runs
user code.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from typing import Any, Callable, NamedTuple, Optional, Protocol

from ..declare.connections import Lease
from ..declare.kinds import SINK, SOURCE, Kind
from ..declare.state import Scope, State
from ..declare.symbols import AnySpec, FunctionSpec, SinkSpec, SourceSpec
from ..errors import Stopped
from ..protocol import transport, wire
from ..protocol.channels import TICK, Requester, send_waiting
from ..protocol.transport import Closed, NNGException, Timeout
from ..protocol.wire import Control, Meta
from .adapters import FunctionAdapter, SinkAdapter, SourceAdapter
from .stores import Stores
from .supervisor import InFlight

log = logging.getLogger("kuiperlite")


class PageAndStores(NamedTuple):
    """What a runtime hands every instance it starts: the in-flight page a
    sink marks while it owes an ack, and the plugin's state stores."""

    inflight: InFlight
    stores: Stores


def instance_described(spec: AnySpec, meta: Meta) -> str:
    """How messages name a running instance: ``sink 'insert' of rule r1/op1/0``."""
    return f"{spec.described} of rule {meta.rule_id}/{meta.op_id}/{meta.instance_id}"


class SourceInstance:
    """One running source: its data socket, and the thread that runs its user code.

    The thread sends each record as it comes, waiting while eKuiper does not
    read (back-pressure). User code may emit from threads of its own too.
    A source whose user code has ended stays open until its rule stops:
    closing at once could drop records still queued in the socket.
    """

    def __init__(self, spec: SourceSpec, control: Control, kwargs: dict[str, Any],
                 held: PageAndStores, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.described = instance_described(spec, meta)
        self.lease = lease
        # No queue until the first record: a source that read its state
        # before it (an offset to resume from) keeps none, so that a record
        # whose offset it saved has left the process, not sat in a queue a
        # crash would lose. Any other source gets the queue then.
        self.sock = transport.SendGate(
            transport.pusher(wire.data_address(meta), send_timeout=TICK, queue=0))
        self.first = True
        self.state = State(held.stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id,
                                                          meta.op_id, meta.instance_id),
                           on_first_use=self._state_used)
        self.adapter = SourceAdapter(
            spec, kwargs, self._deliver, self._report, rule_id=meta.rule_id,
            op_id=meta.op_id, instance_id=meta.instance_id, datasource=control.datasource,
            config=control.config, state=self.state)
        self.stopping = self.adapter.stopping
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.described, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.adapter.run()
            if not self.stopping.is_set():
                log.info("%s finished; it stays open until its rule stops", self.described)
        finally:
            self.lease.release()
            self.finished.set()

    def _state_used(self) -> None:
        if not self.first:
            log.warning("%s used ctx.state first after its first record, so its records "
                        "are queued: a crash may lose up to %d records sent before a state "
                        "write. Read the state before the first record to keep none queued.",
                        self.described, transport.QUEUE)

    def _deliver(self, data: Any, meta: Any) -> None:
        payload = wire.encode_record(data, meta)
        try:
            if self.first:
                self.first = False
                if not self.state.used:
                    with self.sock.using() as sock:  # growing a queue drops nothing
                        sock.send_buffer_size = transport.QUEUE
            self.sock.send(payload)
        except Timeout:
            if not send_waiting(self.sock, payload, self.stopping, f"eKuiper ({self.described})"):
                raise Stopped() from None
        except Closed:
            raise Stopped() from None

    def _report(self, message: str) -> None:
        """Send a source error, after the records before it; dropped once stopping."""
        with contextlib.suppress(NNGException):
            send_waiting(self.sock, wire.encode_source_error(message), self.stopping,
                         f"eKuiper ({self.described})")

    def stop(self) -> None:
        """Ask the user code to end, and close the socket once no send is under way."""
        self.adapter.stop()
        self.close()

    def close(self) -> None:
        self.sock.close()

    def join(self, timeout: float) -> bool:
        return self.finished.wait(timeout)


class SinkInstance:
    """One running sink: its data and ack sockets, and the thread that runs its user code.

    The thread receives each message, hands it to the user code and, with
    requireAck, acks it. The stop closes the data socket, which ends the
    receive; the thread closes the ack socket before the user's teardown
    runs, so that a slow teardown never holds the addresses a restart of
    the same rule listens on.
    """

    def __init__(self, spec: SinkSpec, control: Control, kwargs: dict[str, Any],
                 held: PageAndStores, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.described = instance_described(spec, meta)
        self.lease = lease
        self.require_ack = control.config.get("requireAck") in (True, "true")
        self.inflight = held.inflight
        self.slot = self.inflight.take_slot(slot)
        self.address = wire.data_address(meta)
        try:
            self.data = transport.puller(self.address)
        except BaseException:
            self.inflight.release_slot(self.slot)
            raise
        try:
            self.ack = transport.pusher(wire.ack_address(meta), send_timeout=1.0)
        except BaseException:
            transport.close(self.data)
            self.inflight.release_slot(self.slot)
            raise
        # eKuiper connects after the ok, and each connection takes a file
        # descriptor: answer ok only if that one (and the stop's) can be had.
        if not transport.spare_descriptors(2):
            transport.close(self.data)
            self.ack.close()
            self.inflight.release_slot(self.slot)
            raise ConnectionError(transport.out_of_descriptors())
        state = State(held.stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id,
                                                     meta.op_id, meta.instance_id))
        self.adapter = SinkAdapter(spec, kwargs, rule_id=meta.rule_id, op_id=meta.op_id,
                                   instance_id=meta.instance_id, config=control.config,
                                   state=state)
        self._closing = threading.Lock()
        self._data_open = True
        self.stopping = self.adapter.stopping
        self.finished = threading.Event()
        # With requireAck, eKuiper waits for each ack: while the user code has
        # a message, its slot in the shared page says so, for a successor
        # worker to ack it with an error if this process dies meanwhile.
        self.page, self.flag = (self.inflight.page, self.slot) if self.slot >= 0 \
            else (bytearray(1), 0)
        self.thread = threading.Thread(target=self._run, name=self.described, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            if self.require_ack and self.page[self.flag]:
                self.page[self.flag] = 0
                self._ack_lost_message()
            self.adapter.open()
            self._serve()
        except BaseException:  # a bug of kuiperlite's: the sink ends all the same
            log.exception("%s ended on an unexpected error", self.described)
        finally:
            try:
                self.close()
                self.inflight.release_slot(self.slot)
                self.adapter.close()
            finally:
                self.lease.release()
                self.finished.set()

    def _serve(self) -> None:
        """Collect every message until the stop closes the data socket."""
        sock, receive, collect = self.data, transport.receive, self._collect
        while True:
            try:
                payload = receive(sock)
            except Closed:
                return
            # Even once stopping: eKuiper closes its end before it sends the
            # stop, so what arrives was sent before it.
            collect(payload)

    def _collect(self, payload: bytes) -> None:
        if not self.require_ack:
            self.adapter.collect(payload)
            return
        self.page[self.flag] = 1
        error = self.adapter.collect(payload)
        self.page[self.flag] = 0
        # eKuiper reads acks only with requireAck; unread acks would
        # fill the socket until the sink stalls.
        try:
            self.ack.send(wire.ACK_OK if error is None else wire.encode_ack(error))
        except Timeout:
            log.warning("%s: eKuiper did not take an ack within 1 s", self.described)
        except Closed:
            pass

    def _ack_lost_message(self) -> None:
        error = (f"The plugin process died while the {self.adapter.spec.described} collected "
                 "this message; kuiperlite restarted it, and the message is not collected again.")
        log.error("%s: %s", self.described, error)
        with contextlib.suppress(NNGException):
            self.ack.send(wire.encode_ack(error))

    def close(self) -> None:
        """Close both sockets."""
        self._close_data()
        self.ack.close()

    def _close_data(self) -> None:
        """Close the data socket, once (once eKuiper's end of it has gone, with nng 1.6)."""
        with self._closing:
            was_open, self._data_open = self._data_open, False
        if was_open:
            transport.close(self.data, settle=0.1)

    def stop(self) -> None:
        """Ask the user code to end, and close the data socket: the receive returns."""
        self.adapter.stop()
        self._close_data()

    def join(self, timeout: float) -> bool:
        return self.finished.wait(timeout)


class Instance(Protocol):
    """What the runtime does with a running source or sink."""

    described: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


INSTANCES: dict[Kind, Callable[..., Instance]] = {SOURCE: SourceInstance, SINK: SinkInstance}


class FunctionServer:
    """The channel of one function symbol, shared by every rule that calls it,
    served by a thread of its own that runs the function.

    While a request is in hand its CRC is marked in the shared page; a
    successor worker answers the same request, which eKuiper sends again
    once it reconnects, with an error instead of running it again. Once the
    worker is ``leaving`` (it gives way to a fresh one), requests are left
    for the successor to run.
    """

    def __init__(self, spec: FunctionSpec, stopping: threading.Event, leaving: threading.Event,
                 inflight: InFlight, index: int, stores: Stores) -> None:
        self.adapter = FunctionAdapter(spec, stores)
        self.leaving = leaving
        self.inflight = inflight
        self.index = index
        self.calls = 0
        self.lost = inflight.function_pending(index)
        inflight.function_end(index)
        self.channel = Requester(wire.function_address(spec.name), block=False)
        self.thread = threading.Thread(target=self.channel.serve, name=spec.described,
                                       args=(self.handle, stopping), daemon=True)
        self.thread.start()

    def handle(self, raw: bytes) -> Optional[bytes]:
        """The answer to one call; None, left for the successor, once ``leaving``."""
        if self.lost is not None:
            lost, self.lost = self.lost, None
            if zlib.crc32(raw) == lost:
                text = (f"The plugin process died while running {self.adapter.spec.name}() "
                        "with these arguments; kuiperlite restarted it, and the call is not "
                        "run again.")
                log.error("%s", text)
                return wire.encode_reply(False, text)
        self.inflight.function_begin(self.index, raw)
        if self.leaving.is_set():  # after the mark, which the leaving worker waits on
            self.inflight.function_end(self.index)
            return None
        self.calls += 1
        try:
            return self.adapter.handle(raw)
        finally:
            self.inflight.function_end(self.index)
