"""Running instances: a source's or sink's sockets, thread and user code, and a
function's channel, each started by a command and stopped by one (a function
never is).

An instance's connections (:mod:`kuiperlite.connections`) are acquired when
it starts, and released by its thread once its user code has ended.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from typing import Any, Callable, Protocol

import pynng

from . import wire
from .adapters import FunctionAdapter, SinkAdapter, SourceAdapter
from .channels import (
    QUEUE,
    Direct,
    Requester,
    close,
    out_of_descriptors,
    puller,
    pusher,
    remove_socket_file,
    send_blocking,
    socket_file_id,
    spare_descriptors,
    wake,
)
from .connections import Lease
from .errors import Stopped
from .kinds import SINK, SOURCE, Kind
from .state import Scope, State, Stores
from .supervisor import InFlight
from .symbols import AnySpec, FunctionSpec, SinkSpec, SourceSpec
from .wire import Control, Meta

log = logging.getLogger("kuiperlite")


def instance_what(spec: AnySpec, meta: Meta) -> str:
    """How messages name a running instance: ``sink 'insert' of rule r1/op1/0``."""
    return f"{spec.what} of rule {meta.rule_id}/{meta.op_id}/{meta.instance_id}"


class SourceInstance:
    """One running source: its data socket, its thread and its user code.

    User code may emit from threads of its own, so every send holds
    ``lock``, and the socket is closed under it: never while in use.
    """

    def __init__(self, spec: SourceSpec, control: Control, kwargs: dict[str, Any],
                 inflight: InFlight, stores: Stores, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.what = instance_what(spec, meta)
        self.lease = lease
        # No queue until the first record: a source that read its state
        # before it (an offset to resume from) keeps none, so that a record
        # whose offset it saved has left the process, not sat in a queue a
        # crash would lose. Any other source gets the queue then.
        self.sock = pusher(wire.data_address(meta), queue=0)
        self.lock = threading.Lock()
        self.closed = False
        self.first = True
        self.send = Direct(self.sock).send
        self.state = State(stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id,
                                                     meta.op_id, meta.instance_id),
                           on_first_use=self._state_used)
        self.adapter = SourceAdapter(
            spec, kwargs, self._deliver, self._report, rule_id=meta.rule_id,
            op_id=meta.op_id, instance_id=meta.instance_id, datasource=control.datasource,
            config=control.config, state=self.state)
        self.stopping = self.adapter.stopping
        self.thread = threading.Thread(target=self._run, name=self.what, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.adapter.run()
            if not self.stopping.is_set():
                log.info("%s finished; it stays open until its rule stops", self.what)
            # Closing at once could drop records still queued in the socket.
            self.stopping.wait()
        finally:
            self.close()
            self.lease.release()

    def close(self) -> None:
        """Close the socket once no thread sends on it (senders see the stop within a tick)."""
        with self.lock:
            if not self.closed:
                self.closed = True
                close(self.sock)

    def _state_used(self) -> None:
        if not self.first:
            log.warning("%s used ctx.state first after its first record, so its records "
                        "are queued: a crash may lose up to %d records sent before a state "
                        "write. Read the state before the first record to keep none queued.",
                        self.what, QUEUE)

    def _deliver(self, data: Any, meta: Any) -> None:
        payload = wire.encode_record(data, meta)
        with self.lock:
            if self.closed or self.stopping.is_set():  # a sender that waited for the lock
                raise Stopped()
            if self.first:
                self.first = False
                if not self.state.used:
                    self.sock.send_buffer_size = QUEUE  # growing a queue drops nothing
            try:
                self.send(payload)
            except pynng.Timeout:
                if not send_blocking(self.sock, payload, self.stopping,
                                     f"eKuiper ({self.what})"):
                    raise Stopped() from None
            except pynng.Closed:
                raise Stopped() from None

    def _report(self, message: str) -> None:
        with self.lock:
            if not self.closed:
                with contextlib.suppress(pynng.NNGException):
                    self.send(wire.encode_source_error(message))

    def stop(self) -> None:
        self.adapter.stop()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def remove_files(self) -> None:
        """A source listens on nothing: no file to remove."""


class SinkInstance:
    """One running sink: data and ack sockets, its thread and its user code.

    Only the sink's thread uses and closes its sockets; it closes them before
    the user's teardown runs, so that a slow teardown never holds the
    address a restart of the same rule listens on.
    """

    def __init__(self, spec: SinkSpec, control: Control, kwargs: dict[str, Any],
                 inflight: InFlight, stores: Stores, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.what = instance_what(spec, meta)
        self.lease = lease
        self.require_ack = control.config.get("requireAck") in (True, "true")
        self.inflight = inflight
        self.slot = inflight.take_slot(slot)
        self.address = wire.data_address(meta)
        self.data = puller(self.address)
        self.file_id = socket_file_id(self.address)
        try:
            self.ack = pusher(wire.ack_address(meta), send_timeout=1.0)
        except BaseException:
            close(self.data)
            inflight.release_slot(self.slot)
            raise
        # eKuiper connects after the ok, and each connection takes a file
        # descriptor: answer ok only if that one (and the stop's) can be had.
        if not spare_descriptors(2):
            self.close()
            raise ConnectionError(out_of_descriptors())
        self.send_ack = Direct(self.ack).send
        state = State(stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id, meta.op_id,
                                                meta.instance_id))
        self.adapter = SinkAdapter(spec, kwargs, rule_id=meta.rule_id, op_id=meta.op_id,
                                   instance_id=meta.instance_id, config=control.config,
                                   state=state)
        self.stopping = self.adapter.stopping
        self.thread = threading.Thread(target=self._run, name=self.what, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        adapter, stopping, recv = self.adapter, self.stopping, Direct(self.data).recv
        # With requireAck, eKuiper waits for each ack: while the user code has
        # a message, its slot in the shared page says so, for a successor
        # worker to ack it with an error if this process dies meanwhile.
        page, slot = (self.inflight.page, self.slot) if self.slot >= 0 else (bytearray(1), 0)
        try:
            if self.require_ack and page[slot]:
                page[slot] = 0
                self._ack_lost_message()
            adapter.open()
            collect, require_ack, send_ack = adapter.collect, self.require_ack, self.send_ack
            while True:
                try:
                    payload = recv()
                except pynng.Timeout:
                    if stopping.is_set():
                        break
                    continue
                if stopping.is_set():
                    break  # the wake-up from stop(), or data after the stop
                if not require_ack:
                    collect(payload)
                    continue
                page[slot] = 1
                error = collect(payload)
                page[slot] = 0
                # eKuiper reads acks only with requireAck; unread acks would
                # fill the socket until the sink stalls.
                try:
                    send_ack(wire.ACK_OK if error is None else wire.encode_ack(error))
                except pynng.Timeout:
                    log.warning("%s: eKuiper did not take an ack within 1 s", self.what)
        except pynng.Closed:
            pass
        finally:
            self.close()
            self.inflight.release_slot(self.slot)
            try:
                adapter.close()
            finally:
                self.lease.release()

    def _ack_lost_message(self) -> None:
        error = (f"The plugin process died while the {self.adapter.spec.what} collected "
                 "this message; kuiperlite restarted it, and the message is not collected again.")
        log.error("%s: %s", self.what, error)
        with contextlib.suppress(pynng.NNGException):
            self.send_ack(wire.encode_ack(error))

    def close(self) -> None:
        """Close both sockets; only the sink's thread calls this, or a start that failed."""
        close(self.data)
        close(self.ack)

    def stop(self) -> None:
        self.adapter.stop()
        wake(self.address)

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def remove_files(self) -> None:
        """Remove the data socket's file, for a sink whose thread is stuck in user code."""
        remove_socket_file(self.address, self.file_id)


class Instance(Protocol):
    """What the runtime does with a running source or sink."""

    what: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float) -> bool: ...
    def close(self) -> None: ...
    def remove_files(self) -> None: ...


INSTANCES: dict[Kind, Callable[..., Instance]] = {SOURCE: SourceInstance, SINK: SinkInstance}


class FunctionServer:
    """The channel of one function symbol, shared by every rule that calls it.

    While a request is in hand its CRC is marked in the shared page; a
    successor worker answers the same request, which eKuiper sends again
    once it reconnects, with an error instead of running it again.
    """

    def __init__(self, spec: FunctionSpec, stopping: threading.Event, inflight: InFlight,
                 index: int, stores: Stores) -> None:
        self.adapter = FunctionAdapter(spec, stores)
        self.inflight = inflight
        self.index = index
        self.lost = inflight.function_pending(index)
        inflight.function_end(index)
        self.channel = Requester(wire.function_address(spec.name), block=False)
        self.thread = threading.Thread(target=self.channel.serve, name=spec.what,
                                       args=(self.handle, stopping), daemon=True)
        self.thread.start()

    def handle(self, raw: bytes) -> bytes:
        if self.lost is not None:
            lost, self.lost = self.lost, None
            if zlib.crc32(raw) == lost:
                text = (f"The plugin process died while running {self.adapter.spec.name}() "
                        "with these arguments; kuiperlite restarted it, and the call is not "
                        "run again.")
                log.error("%s", text)
                return wire.encode_reply(False, text)
        self.inflight.function_begin(self.index, raw)
        try:
            return self.adapter.handle(raw)
        finally:
            self.inflight.function_end(self.index)
