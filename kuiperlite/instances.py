"""Running instances: a source's or sink's sockets and user code, run by the
scheduler (:mod:`kuiperlite.scheduler`), and a function's channel, each
started by a command and stopped by one (a function never is).

An instance's connections (:mod:`kuiperlite.connections`) are acquired when
it starts, and released once its user code has ended.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import zlib
from collections import deque
from typing import Any, Callable, NamedTuple, Optional, Protocol

from . import nng, wire
from .adapters import FunctionAdapter, SinkAdapter, SourceAdapter
from .channels import (
    QUEUE,
    SLOW_READER,
    Direct,
    Pending,
    Requester,
    Unanswered,
    Waiting,
    close,
    out_of_descriptors,
    puller,
    pusher,
    remove_socket_file,
    send_blocking,
    socket_file_id,
    spare_descriptors,
)
from .connections import Lease
from .errors import Stopped
from .kinds import SINK, SOURCE, Kind
from .scheduler import AGAIN, DONE, WAIT, Outcome, Scheduler
from .state import Scope, State, Stores
from .supervisor import InFlight
from .symbols import GENERATOR, AnySpec, FunctionSpec, SinkSpec, SourceSpec
from .wire import Control, Meta

log = logging.getLogger("kuiperlite")


class Shared(NamedTuple):
    """What every instance of a runtime shares."""

    scheduler: Scheduler
    inflight: InFlight
    stores: Stores
    own_threads: OwnThreads


def instance_what(spec: AnySpec, meta: Meta) -> str:
    """How messages name a running instance: ``sink 'insert' of rule r1/op1/0``."""
    return f"{spec.what} of rule {meta.rule_id}/{meta.op_id}/{meta.instance_id}"


# Messages a task handles in one step before the other ready tasks have theirs.
BATCH = 64
# How long a sink whose socket is empty waits in its step for the next message,
# when no other task is ready, before it waits without a thread: a message in
# a stream comes within this, and taking it here spares the hand-over from
# nng's thread to a worker, which costs more than the message itself.
LINGER = 0.002


# How many sinks may run before they stop having a thread each.
SINK_THREADS = 128


class OwnThreads:
    """Which sinks wait on a thread of their own: every one, while there are few.

    A sink waiting in nng on a thread of its own takes each message as
    cheaply as a message can be taken. As a scheduler task, each message
    that finds its socket empty (with requireAck, every one) costs a
    hand-over from nng's thread to a worker, which costs more than the
    message. But each thread costs memory and the OS's attention, so once
    more than ``most`` sinks run, every sink is a task.
    """

    def __init__(self, most: int = SINK_THREADS) -> None:
        self.most = most
        self._lock = threading.Lock()
        self._running = 0
        self._threaded: set[SinkInstance] = set()

    def start(self, sink: SinkInstance) -> bool:
        """Count a sink that starts: True if it is to have a thread of its own."""
        with self._lock:
            self._running += 1
            if self._running <= self.most:
                self._threaded.add(sink)
                return True
            threaded, self._threaded = self._threaded, set()
        for other in threaded:
            other.become_task()
        return False

    def end(self, sink: SinkInstance) -> None:
        """A sink has finished."""
        with self._lock:
            self._running -= 1
            self._threaded.discard(sink)


class SourceInstance:
    """One running source: its data socket and its user code.

    A generator source is a scheduler task: each step pulls a batch of its
    records and sends each as far as the socket takes it at once; the rest
    waits, and so does the generator, until nng has sent the first of them.
    Any other source runs on a thread of its own, where ``ctx.emit`` waits
    for eKuiper to read. User code may emit from threads of its own too, so
    a send from any thread but the task's holds ``lock``, and the socket is
    closed under it: never while in use.

    A source that raised starts again after its backoff: a thread of its own
    waits on the stop event, a task on a scheduler timer, holding no worker.
    """

    def __init__(self, spec: SourceSpec, control: Control, kwargs: dict[str, Any],
                 shared: Shared, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.what = instance_what(spec, meta)
        self.lease = lease
        self.scheduler = shared.scheduler
        # No queue until the first record: a source that read its state
        # before it (an offset to resume from) keeps none, so that a record
        # whose offset it saved has left the process, not sat in a queue a
        # crash would lose. Any other source gets the queue then.
        self.sock = pusher(wire.data_address(meta), queue=0)
        self.lock = threading.Lock()
        self.closed = False
        self.first = True
        self.direct = Direct(self.sock)
        self.state = State(shared.stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id,
                                                          meta.op_id, meta.instance_id),
                           on_first_use=self._state_used)
        self.adapter = SourceAdapter(
            spec, kwargs, self._deliver, self._report, rule_id=meta.rule_id,
            op_id=meta.op_id, instance_id=meta.instance_id, datasource=control.datasource,
            config=control.config, state=self.state)
        self.stopping = self.adapter.stopping
        self.finished = threading.Event()
        self.ended = False
        # A generator's steps: the pending send of the first record the socket
        # did not take, those pulled after it, and the thread of the step.
        self.pending = Pending(self.sock, self._sent) if spec.style == GENERATOR else None
        self.backlog: deque[bytes] = deque()
        self.stepper = 0
        self.pulling = True  # until the generator has ended
        self.scheduled = self.pending is not None  # until the last step is done
        self.resting = False  # a generator that failed waits to start again
        self.waiting: Optional[Waiting] = None  # since the pending send began, until it went

    def start(self) -> None:
        if self.pending is not None:
            self.scheduler.ready(self)
        else:
            threading.Thread(target=self._run, name=self.what, daemon=True).start()

    # ------------------------------------------------ generator: scheduler task

    def step(self) -> Outcome:
        """Send what waits, then pull a batch of records (see :class:`Scheduler`)."""
        pending = self.pending
        assert pending is not None
        all_sent = not self.backlog
        if pending.busy:
            try:
                pending.sent()
            except nng.NNGError:  # cancelled by the stop, or closed
                all_sent = False
            self._read_again()
        if self.stopping.is_set():
            return self._finish(resume=all_sent)
        backlog, try_send = self.backlog, self.direct.try_send
        while backlog:
            if not try_send(backlog[0]):
                self._wait_to_send(backlog.popleft())
                return WAIT
            backlog.popleft()
        if not self.pulling:
            return self._idle() if self.adapter.again is None else self._rest()
        # A record at a time: the generator is not resumed while one it yielded
        # waits to be sent (what follows its yield may note the record as gone).
        self.stepper = threading.get_ident()
        pull = self.adapter.pull
        try:
            for _ in range(BATCH):
                if not pull(1):
                    self.pulling = False
                    break
                if backlog:
                    break
        finally:
            self.stepper = 0
        return AGAIN

    def _sent(self) -> None:
        """nng took the pending send (or gave up on it): the task goes on."""
        self.scheduler.ready(self)

    def _wait_to_send(self, payload: bytes) -> None:
        assert self.pending is not None
        self.pending.send(payload)
        if self.waiting is None:
            self.waiting = Waiting(f"eKuiper ({self.what})")
            self.scheduler.later(SLOW_READER, self._check_reader)
        if self.stopping.is_set():
            self.pending.cancel()  # a stop that came meanwhile found nothing to cancel

    def _check_reader(self) -> None:
        """On the monitor: say so once eKuiper has not read for SLOW_READER seconds."""
        waiting = self.waiting
        if waiting is None or self.finished.is_set():
            return
        left = waiting.check()
        if left:
            self.scheduler.later(left, self._check_reader)

    def _read_again(self) -> None:
        """The pending send went: eKuiper reads again, maybe after a wait we told of."""
        if self.waiting is not None:
            self.waiting.over()
            self.waiting = None

    def _rest(self) -> Outcome:
        """The generator failed and everything is sent: it starts again after its
        backoff, which a timer counts, so no worker waits."""
        again = self.adapter.again
        assert again is not None
        with self.lock:
            stopping = self.stopping.is_set()
            self.resting = not stopping  # stop() wakes it from here on
        if stopping:
            return self._finish()
        self.scheduler.later(again, self._rested)
        return WAIT

    def _rested(self) -> None:
        """On the monitor: the backoff is over, the next step calls the generator again."""
        with self.lock:
            if not self.resting:  # stopped meanwhile
                return
            self.resting = False
            self.pulling = True
        self.scheduler.ready(self)

    def _idle(self) -> Outcome:
        """The generator has ended and everything is sent: wait for the stop, threadless."""
        with self.lock:
            if not self.stopping.is_set():
                log.info("%s finished; it stays open until its rule stops", self.what)
                self.scheduled = False  # stop() closes it
                return DONE
        return self._finish()

    def _finish(self, resume: bool = True) -> Outcome:
        """End the generator, then close.

        As on a thread of its own, a stopped generator is resumed once more
        (it may note, after its last ``yield``, that the record went) unless
        a record it yielded was not sent; one never started starts, to see
        the stop (and run its ``finally`` blocks).
        """
        if resume and self.pulling:
            self.adapter.pull(1)
        self.adapter.end()
        self._ended()
        return DONE

    # -------------------------------------------------- any other: own thread

    def _run(self) -> None:
        try:
            self.adapter.run()
            if not self.stopping.is_set():
                log.info("%s finished; it stays open until its rule stops", self.what)
            # Closing at once could drop records still queued in the socket.
            self.stopping.wait()
        finally:
            self._ended()

    # ----------------------------------------------------------------- both

    def _ended(self) -> None:
        """The user code has ended: close, and give back the connections."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
        self.close()
        self.lease.release()
        self.finished.set()

    def close(self) -> None:
        """Close the socket once no thread sends on it (senders see the stop within a tick)."""
        if self.pending is not None:
            self.pending.close()
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

    def _in_step(self, payload: bytes) -> bool:
        """In the task's own step, send ``payload`` behind what waits, never
        waiting itself; False in any other thread."""
        if self.stepper != threading.get_ident():
            return False
        if self.backlog or not self.direct.try_send(payload):
            self.backlog.append(payload)
        return True

    def _deliver(self, data: Any, meta: Any) -> None:
        payload = wire.encode_record(data, meta)
        if self.first:
            self.first = False
            if not self.state.used:
                self.sock.set("send_buffer", QUEUE)  # growing a queue drops nothing
        if self._in_step(payload):
            return
        with self.lock:
            if self.closed or self.stopping.is_set():  # a sender that waited for the lock
                raise Stopped()
            try:
                self.direct.send(payload)
            except nng.Timeout:
                if not send_blocking(self.sock, payload, self.stopping,
                                     f"eKuiper ({self.what})"):
                    raise Stopped() from None
            except nng.Closed:
                raise Stopped() from None

    def _report(self, message: str) -> None:
        payload = wire.encode_source_error(message)
        if self._in_step(payload):  # after the records the generator yielded before it
            return
        with self.lock:
            if not self.closed:
                with contextlib.suppress(nng.NNGError):
                    self.direct.send(payload)

    def stop(self) -> None:
        self.adapter.stop()
        if self.pending is None:
            return  # its thread sees the stop
        with self.lock:
            scheduled, resting, self.resting = self.scheduled, self.resting, False
        if resting:  # waiting to start again: its next step finishes, now
            self.scheduler.ready(self)
        elif scheduled:
            self.pending.cancel()  # a waiting step goes on at once, and finishes
        else:  # a generator that had ended: no step runs to close it
            self._ended()

    def join(self, timeout: float) -> bool:
        return self.finished.wait(timeout)

    def remove_files(self) -> None:
        """A source listens on nothing: no file to remove."""


class SinkInstance:
    """One running sink, a scheduler task: data and ack sockets and its user code.

    Each step collects the messages waiting in the socket, a batch at most;
    then the sink waits for nng to receive the next. While few sinks run,
    a sink has a thread of its own instead, which waits in nng for each
    message (see :class:`OwnThreads`), until many more start and it becomes
    a task. Only the steps (or the thread) use and close the sockets; they
    close them before the user's teardown runs, so that a slow teardown
    never holds the address a restart of the same rule listens on.
    """

    def __init__(self, spec: SinkSpec, control: Control, kwargs: dict[str, Any],
                 shared: Shared, lease: Lease, slot: int = -1) -> None:
        meta = control.meta
        assert meta is not None
        self.what = instance_what(spec, meta)
        self.lease = lease
        self.scheduler = shared.scheduler
        self.own_threads = shared.own_threads
        self.waiter: Optional[Pending] = None  # the receive its own thread waits for
        self.task = False  # made a task, once too many sinks run for a thread each
        self.batched = False  # the last step ended after a whole batch
        self.require_ack = control.config.get("requireAck") in (True, "true")
        self.inflight = shared.inflight
        self.slot = self.inflight.take_slot(slot)
        self.address = wire.data_address(meta)
        self.data = puller(self.address, recv_timeout=LINGER)
        self.pending = Pending(self.data, self._received)
        self.file_id = socket_file_id(self.address)
        try:
            self.ack = pusher(wire.ack_address(meta), send_timeout=1.0)
        except BaseException:
            self.pending.close()
            close(self.data)
            self.inflight.release_slot(self.slot)
            raise
        # eKuiper connects after the ok, and each connection takes a file
        # descriptor: answer ok only if that one (and the stop's) can be had.
        if not spare_descriptors(2):
            self.close()
            raise ConnectionError(out_of_descriptors())
        direct = Direct(self.data)
        self.try_recv, self.recv = direct.try_recv, direct.recv
        self.send_ack = Direct(self.ack).send
        state = State(shared.stores, Scope.of_instance(spec.kind, spec.name, meta.rule_id,
                                                     meta.op_id, meta.instance_id))
        self.adapter = SinkAdapter(spec, kwargs, rule_id=meta.rule_id, op_id=meta.op_id,
                                   instance_id=meta.instance_id, config=control.config,
                                   state=state)
        self.stopping = self.adapter.stopping
        self.finished = threading.Event()
        self.opened = False
        # With requireAck, eKuiper waits for each ack: while the user code has
        # a message, its slot in the shared page says so, for a successor
        # worker to ack it with an error if this process dies meanwhile.
        self.page, self.flag = (self.inflight.page, self.slot) if self.slot >= 0 \
            else (bytearray(1), 0)

    def start(self) -> None:
        if self.own_threads.start(self):
            try:
                threading.Thread(target=self._run, name=self.what, daemon=True).start()
                return
            except RuntimeError:  # no thread to be had: a task needs none
                self.task = True
        self.scheduler.ready(self)

    def become_task(self) -> None:
        """From another thread: leave the thread of its own for the scheduler."""
        self.task = True
        waiter = self.waiter
        if waiter is not None:
            waiter.cancel()

    def _open(self) -> None:
        self.opened = True
        if self.require_ack and self.page[self.flag]:
            self.page[self.flag] = 0
            self._ack_lost_message()
        self.adapter.open()

    # ---------------------------------------------------------- own thread

    def _run(self) -> None:
        self.waiter = Pending(self.data)
        try:
            if self._serve(self.waiter):
                return
        except nng.Closed:
            pass
        except BaseException:  # a bug of kuiperlite's: the sink ends, as a task's would
            log.exception("%s ended on an unexpected error", self.what)
        self._finish()

    def _serve(self, waiter: Pending) -> bool:
        """Collect every message until the stop; True once it became a task instead."""
        if not self.opened:
            self._open()
        collect, stopping = self._collect, self.stopping
        while not stopping.is_set():  # data after the stop is not collected
            if self.task:
                self.waiter = None
                waiter.close()
                self.scheduler.ready(self)
                return True
            # No try_recv first: when the socket is empty, as it mostly is
            # for a sink that keeps up, that would cost a second receive.
            waiter.recv()
            if stopping.is_set() or self.task:
                waiter.cancel()  # one that came meanwhile found nothing to cancel
            waiter.wait()
            try:
                payload = waiter.received()
            except nng.Closed:
                raise
            except nng.NNGError:  # cancelled: by the stop, or to become a task
                continue
            if stopping.is_set():
                break
            collect(payload)
        return False

    # ---------------------------------------------------------------- task

    def step(self) -> Outcome:
        """Collect the messages that wait, then wait for the next (see :class:`Scheduler`)."""
        try:
            if not self.opened:
                self._open()
            pending, stopping = self.pending, self.stopping
            # Only a sink that has just taken a message lingers for the next:
            # one just started, or woken by a cancel, has no stream to wait for.
            streaming, self.batched = self.batched, False
            if pending.busy:
                try:
                    payload: Optional[bytes] = pending.received()
                except nng.NNGError:  # cancelled by the stop, or closed
                    payload = None
                if payload is not None and not stopping.is_set():
                    self._collect(payload)
                    streaming = True
            try_recv, collect, quiet = self.try_recv, self._collect, self.scheduler.quiet
            for _ in range(BATCH):
                if stopping.is_set():
                    return self._finish()  # data after the stop is not collected
                payload = self._linger() if streaming and quiet() else try_recv()
                if payload is None:
                    pending.recv()
                    if stopping.is_set():
                        pending.cancel()  # a stop that came meanwhile found nothing to cancel
                    return WAIT
                collect(payload)
                streaming = True
            self.batched = True  # a whole batch: the stream goes on in the next step
            return AGAIN
        except nng.Closed:
            return self._finish()

    def _linger(self) -> Optional[bytes]:
        """The next message if it comes within LINGER seconds, else None."""
        try:
            return self.recv()
        except nng.Timeout:
            return None

    def _received(self) -> None:
        """nng received a message (or gave up): the task goes on."""
        self.scheduler.ready(self)

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
            self.send_ack(wire.ACK_OK if error is None else wire.encode_ack(error))
        except nng.Timeout:
            log.warning("%s: eKuiper did not take an ack within 1 s", self.what)

    def _finish(self) -> Outcome:
        try:
            self.close()
            self.inflight.release_slot(self.slot)
            self.adapter.close()
        finally:
            self.own_threads.end(self)
            self.lease.release()
            self.finished.set()
        return DONE

    def _ack_lost_message(self) -> None:
        error = (f"The plugin process died while the {self.adapter.spec.what} collected "
                 "this message; kuiperlite restarted it, and the message is not collected again.")
        log.error("%s: %s", self.what, error)
        with contextlib.suppress(nng.NNGError):
            self.send_ack(wire.encode_ack(error))

    def close(self) -> None:
        """Close both sockets; only a step (or the own thread) calls this, or a failed start."""
        if self.waiter is not None:
            self.waiter.close()
        self.pending.close()
        close(self.data)
        close(self.ack)

    def stop(self) -> None:
        self.adapter.stop()
        self.pending.cancel()
        waiter = self.waiter
        if waiter is not None:
            waiter.cancel()

    def join(self, timeout: float) -> bool:
        return self.finished.wait(timeout)

    def remove_files(self) -> None:
        """Remove the data socket's file, for a sink whose step is stuck in user code."""
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
        if self.leaving.is_set():  # after the mark, which the leaving worker waits on
            self.inflight.function_end(self.index)
            raise Unanswered
        self.calls += 1
        try:
            return self.adapter.handle(raw)
        finally:
            self.inflight.function_end(self.index)
