"""The plugin runtime: handshake, command loop, the instances it runs
(:mod:`kuiperlite.serve.instances`), and the orphan watchdog.

:mod:`kuiperlite.serve.start` decides how it runs: in a supervised worker or alone.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple, Optional

from .. import settings
from ..declare.connections import Connections, Lease
from ..declare.kinds import BY_WIRE, SINK
from ..declare.plugin import Plugin, summary
from ..declare.symbols import AnySpec, FunctionSpec
from ..errors import KuiperliteError, error_text
from ..protocol import transport, wire
from ..protocol.channels import Requester
from ..protocol.wire import START, Control
from .instances import INSTANCES, FunctionServer, Instance, PageAndStores, instance_described
from .recycling import Recycler
from .signals import StopSignals
from .stores import Stores, open_store
from .supervisor import InFlight, Journal, Replay, exit_now

log = logging.getLogger("kuiperlite")

# A stop is answered within this long even when user code is slow to return.
STOP_WAIT = 0.8


class Tuning(NamedTuple):
    """The settings a runtime reads (:mod:`kuiperlite.settings`); the defaults unless read.

    ``exit_grace`` bounds closing at exit: a user teardown that never returns,
    or a socket close that nng 1.6 hangs, must not keep the process behind as
    an orphan.
    """

    keepalive: float = settings.KEEPALIVE.default
    orphan_grace: float = settings.ORPHAN_GRACE.default
    exit_grace: float = settings.EXIT_GRACE.default
    open_timeout: float = settings.OPEN_TIMEOUT.default
    ekuiper: int = settings.EKUIPER.default
    recycle_mb: float = settings.RECYCLE_MB.default
    recycle_idle: float = settings.RECYCLE_IDLE.default

    @classmethod
    def read(cls) -> Tuning:
        """The settings now: read once the log is set up, where a bad value is said."""
        return cls(settings.KEEPALIVE.read(), settings.ORPHAN_GRACE.read(),
                   settings.EXIT_GRACE.read(), settings.OPEN_TIMEOUT.read(),
                   settings.EKUIPER.read(), settings.RECYCLE_MB.read(),
                   settings.RECYCLE_IDLE.read())


class Worker(NamedTuple):
    """What a supervised worker has that a plugin served alone has not.

    Args:
        journal: tells the supervisor each start and stop, and the goodbye.
        inflight: the page shared with the supervisor.
        replay: the starts the worker before this one had running.
        serving: called once serving (the worker then dies with its supervisor).
        host: the pid of the process that started the supervisor (eKuiper).
    """

    journal: Journal
    inflight: InFlight
    replay: Sequence[Replay] = ()
    serving: Optional[Callable[[], None]] = None
    host: Optional[int] = None


def _what(control: Control) -> str:
    """How messages name the symbol a command is for: ``source 'pyjson'``."""
    kind = BY_WIRE.get(control.plugin_type)
    return kind.described(control.symbol_name) if kind else repr(control.symbol_name)


class Runtime:
    """Serves one plugin to eKuiper until the host goes away or a signal arrives.

    Args:
        plugin: the plugin.
        tuning: the settings it runs by (default: the defaults).
        worker: what it has as a supervised worker; None when served alone.
    """

    def __init__(self, plugin: Plugin, tuning: Optional[Tuning] = None,
                 worker: Optional[Worker] = None) -> None:
        self.plugin = plugin
        self.tuning = tuning = Tuning() if tuning is None else tuning
        # The eKuiper generation serving us: declared, or learned from a command (0: unknown).
        self.generation = 0
        self.control: Optional[Requester] = None
        self.function_index = {name: i for i, name in enumerate(plugin.functions)}
        self.worker = worker
        self.journal = None if worker is None else worker.journal
        self.inflight = InFlight(len(self.function_index)) if worker is None \
            else worker.inflight
        self.instances: dict[str, Instance] = {}
        self.started = 0  # sources and sinks, ever
        self.functions: dict[str, FunctionServer] = {}
        # Opened by the first instance that uses its state, in this process.
        self.stores = Stores(lambda: open_store(plugin.name))
        # Opened by the first instance that needs each, in this process.
        self.connections = Connections(tuning.open_timeout)
        self.held = PageAndStores(self.inflight, self.stores)
        self.released = 0  # instances started when memory was last given back
        self.shutdown = threading.Event()
        self.signals = StopSignals()
        self.reason = ""
        # Only a supervised worker has a successor to give way to.
        self.recycler = None if worker is None else Recycler(
            tuning.recycle_mb, tuning.recycle_idle, time.monotonic() - worker.journal.since)
        # Set once the worker gives way: commands and calls are left for its successor.
        self.leaving = threading.Event()
        # Commands and the final close both change the instances.
        self._lock = threading.Lock()

    # ------------------------------------------------------------ commands

    def handle(self, raw: bytes) -> Optional[bytes]:
        """Answer one control command: ``ok`` or an error sentence; None once the
        worker is leaving, which leaves the command for its successor."""
        try:
            name, control = wire.decode_command(raw)
        except KuiperliteError as err:
            log.warning("bad command %r: %s", raw[:200], err)
            return wire.answer(str(err))
        try:
            if self.leaving.is_set():
                return None
            if self.shutdown.is_set():
                return wire.answer("The plugin is shutting down.")
            if name != START:
                self.stop(control)
            elif not self.start(control, raw):
                return None
        except KuiperliteError as err:
            log.warning("cannot %s the %s: %s", name, _what(control), err)
            text = str(err)
        except BaseException as err:
            log.exception("cannot %s the %s", name, _what(control))
            text = f"Cannot {name} the {_what(control)}: {error_text(err)}"
        else:
            return wire.OK
        if name == START:
            free_ack_address(control)
        return wire.answer(text)

    def _symbol(self, control: Control) -> AnySpec:
        kind = BY_WIRE[control.plugin_type]
        symbol = self.plugin.get(kind, control.symbol_name)
        if symbol is None:
            names = ", ".join(self.plugin.of_kind(kind)) or "none"
            raise KuiperliteError(f"Plugin {self.plugin.name!r} has no {kind.word} named "
                                  f"{control.symbol_name!r}; its {kind.folder}: {names}.")
        return symbol

    def start(self, control: Control, command: bytes = b"", slot: int = -1) -> bool:
        """Start a symbol instance; raises with a sentence when it cannot.

        Returns:
            True once started; False when the worker is leaving, which
            leaves the start for its successor.

        Args:
            control: the start command's control.
            command: the command's bytes, journaled for a successor worker.
            slot: the in-flight slot a replayed sink had.
        """
        symbol = self._symbol(control)
        if isinstance(symbol, FunctionSpec):
            # eKuiper sends this right after listening on the function's
            # channel, new or re-created: connect to it now.
            with self._lock:
                self._function(symbol).channel.reconnect()
            return True
        if control.generation and not self.generation:
            self._learn_generation(control.generation)
        if self.generation == 1 and control.kind is SINK and control.config.get("requireAck"):
            log.info("%s: eKuiper 1.x reads no acks (it looks for an integer requiredACKs, "
                     "which a rule's JSON never gives), so none are sent", _what(control))
            control = control._replace(config={**control.config, "requireAck": False})
        kwargs = symbol.bind_config(control.config)
        assert control.meta is not None
        key = control.meta.key(symbol.name)
        # Connections open on threads of their own; this waits for them, bounded,
        # holding no lock, so that an open that hangs holds up neither exit nor stop.
        lease = self.connections.acquire(symbol.connections, kwargs,
                                         instance_described(symbol, control.meta))
        try:
            with self._lock:
                if self.leaving.is_set():
                    lease.release()
                    return False
                if self.shutdown.is_set():
                    raise KuiperliteError("The plugin is shutting down.")
                old = self.instances.pop(key, None)
                if old is not None:
                    log.info("%s is started again; stopping the running one first", old.described)
                    self._stop_instance(old)
                instance = self._launch(symbol, control, kwargs, lease, slot)
                self.instances[key] = instance
                self.started += 1
                if self.journal is not None:
                    self.journal.started(key, getattr(instance, "slot", -1), command)
        except BaseException:
            lease.release()
            raise
        log.info("started %s", instance.described)
        return True

    def _learn_generation(self, generation: int) -> None:
        """A command showed which eKuiper serves the plugin: act on what that one does."""
        self.generation = generation
        if generation == 1 and self.control is not None:
            log.info("eKuiper 1.x serves this plugin: the control channel sends no keepalive "
                     "handshake (1.x would take it for the answer to its next command)")
            self.control.stop_keepalive()

    def _launch(self, symbol: AnySpec, control: Control, kwargs: dict[str, Any], lease: Lease,
                slot: int) -> Instance:
        """Make an instance and start its thread; raises with a sentence when it cannot."""
        try:
            instance = INSTANCES[symbol.kind](symbol, control, kwargs, self.held, lease, slot)
        except (ConnectionError, transport.NNGException) as err:
            raise KuiperliteError(f"The {symbol.described} cannot open its data channel: {err}.") \
                from None
        try:
            instance.start()
        except BaseException as err:  # no thread to be had (RuntimeError), for instance
            instance.close()
            raise KuiperliteError(f"The {symbol.described} cannot start: {error_text(err)}.") \
                from None
        return instance

    def stop(self, control: Control) -> None:
        """Stop an instance; functions are never stopped by command."""
        if not BY_WIRE[control.plugin_type].per_rule:
            return
        assert control.meta is not None
        key = control.meta.key(control.symbol_name)
        with self._lock:
            instance = self.instances.pop(key, None)
            if self.journal is not None:
                self.journal.stopped(key)
        if self.generation == 1:
            # eKuiper 1.x never closes a sink's ack listener: its next start of the
            # rule would find the address taken (see free_ack_address).
            free_ack_address(control)
        if instance is None:
            log.info("stop for %s: not running (already stopped, or started before a restart)",
                     _what(control))
            return
        self._stop_instance(instance)

    def _stop_instance(self, instance: Instance) -> None:
        instance.stop()
        if instance.join(STOP_WAIT):
            log.info("stopped %s", instance.described)
        else:
            log.warning("%s is still inside user code; it ends when that code returns",
                        instance.described)

    def _function(self, symbol: FunctionSpec) -> FunctionServer:
        server = self.functions.get(symbol.name)
        if server is None:
            server = self.functions[symbol.name] = FunctionServer(
                symbol, self.shutdown, self.leaving, self.inflight,
                self.function_index[symbol.name], self.stores)
        return server

    # ------------------------------------------------------------- serving

    def serve(self) -> int:
        """Handshake and answer commands until the host is gone; the exit code."""
        plugin = self.plugin
        self.signals.install()  # before any command
        log.info("plugin %s (pid %d) serving %s", plugin.name, os.getpid(), summary(plugin))
        address = wire.control_address(plugin.name)
        before = transport.threads()
        try:
            control = self.control = Requester(address, keepalive=self.tuning.keepalive)
        except ConnectionError as err:
            log.error("cannot reach eKuiper: %s; is a host listening for plugin %r?",
                      err, plugin.name)
            return 1
        # nng's threads start with the first socket and name themselves soon after.
        threading.Thread(target=transport.batch_task_threads, args=(before,), daemon=True,
                         name="kuiperlite-batch-threads").start()
        if self.tuning.ekuiper:
            self._learn_generation(self.tuning.ekuiper)
        self._replay()
        threading.Thread(target=control.serve, args=(self.handle, self.shutdown),
                         name="control", daemon=True).start()
        # eKuiper replays only the last function's start after a plugin
        # restart, so every function channel is opened right away (after the
        # handshake is on its way; the lock keeps a start command from
        # opening one twice meanwhile).
        with self._lock:
            for spec in plugin.functions.values():
                assert isinstance(spec, FunctionSpec)
                self._function(spec)
        if self.worker is not None and self.worker.serving is not None:
            self.worker.serving()
        self._watch(control)
        self.close()
        return 0

    def _replay(self) -> None:
        """Start again what a worker that died had running, as eKuiper had started it."""
        for replay in () if self.worker is None else self.worker.replay:
            try:
                _, control = wire.decode_command(replay.command)
                self.start(control, replay.command, replay.slot)
            except BaseException as err:
                log.error("cannot start %s again: %s", replay.key, error_text(err))

    def _watch(self, control: Requester) -> None:
        parent = os.getppid()
        host = (self.worker and self.worker.host) or parent
        while not self.shutdown.is_set():
            if self.signals.wait(0.25) is not None:
                self.reason = self.reason or f"received {self.signals.name}"
            elif os.getppid() != parent or not process_alive(host):
                gone = host if not process_alive(host) else parent
                self.reason = f"the host process {gone} is gone"
            elif control.disconnected_for() > self.tuning.orphan_grace:
                self.reason = (f"the control channel has had no peer for "
                               f"{self.tuning.orphan_grace:g} s; eKuiper is gone")
            elif self.recycler is not None:
                self._recycle(self.recycler)
            if not self.instances and self.released != self.started:
                # The instances that ended leave cycles only the collector frees.
                self.released = self.started
                release_memory()
            if self.reason:
                self.shutdown.set()
        log.info("plugin %s exits: %s", self.plugin.name, self.reason or "asked to stop")

    def _recycle(self, recycler: Recycler) -> None:
        """Give way to a fresh worker when the recycler says so (see :mod:`recycling`)."""
        calls = sum(server.calls for server in self.functions.values())
        over = recycler.due(len(self.instances), self.started, calls, time.monotonic())
        if over is None:
            return
        with self._lock:
            if self.instances:  # a start came meanwhile
                return
            self.leaving.set()
        # A call that began before it was set ends first: its answer is not lost.
        deadline = time.monotonic() + self.tuning.exit_grace
        while self.inflight.calls_in_hand() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.journal is not None
        self.journal.recycling()
        self.reason = (f"idle, it holds {over:.1f} MB more than when it began; a fresh "
                       "worker takes its place")

    def request_shutdown(self, reason: str) -> None:
        """Make :meth:`serve` return (from any thread but a signal handler's)."""
        self.reason = self.reason or reason
        self.shutdown.set()
        self.signals.wake()

    def close(self) -> None:
        """Stop every instance, giving user teardown a bounded time to run.

        Should closing take longer than ``tuning.exit_grace`` all the same (a
        teardown that never returns, a close nng hangs), the process leaves
        without it.
        """
        self.shutdown.set()
        with self._lock:
            instances = list(self.instances.values())
            self.instances.clear()
        threading.Thread(target=self._leave_late, name="kuiperlite-exit", daemon=True).start()
        # Side by side: with nng 1.6, each sink's close waits a moment for its peer.
        with ThreadPoolExecutor(max_workers=32, thread_name_prefix="kuiperlite-stop") as pool:
            for instance in instances:
                pool.submit(instance.stop)
        deadline = time.monotonic() + 2.0
        for instance in instances:
            if not instance.join(max(0.0, deadline - time.monotonic())):
                log.warning("%s is still inside user code at exit", instance.described)
        for server in self.functions.values():
            server.adapter.close()
        self.connections.close()

    def _leave_late(self) -> None:
        time.sleep(self.tuning.exit_grace)  # a daemon: it goes with the process that left in time
        log.error("closing the plugin took more than %g s (a teardown that never returns, or "
                  "a socket's close that hangs); it exits without waiting", self.tuning.exit_grace)
        if self.journal is not None:
            self.journal.exiting(0)
        exit_now(0)


def free_ack_address(control: Control) -> None:
    """Remove the socket file of a sink's ack channel that eKuiper leaves listening.

    eKuiper listens on a sink's ack channel before it sends the start. When
    the plugin refuses the start, eKuiper 2.x's ``PortableSink.Connect``
    (internal/plugin/portable/runtime/sink.go) returns the error without
    closing that listener, and eKuiper 1.x never closes it, not even at the
    sink's stop. The leaked listener keeps the socket file, so the next
    start of the rule fails with "address in use" until eKuiper restarts.
    Without the file, that start's listener takes the address, and the
    leaked one is never reached again.

    Called after a refused sink start, and under 1.x after a sink's stop:
    then the file is eKuiper's leaked listener's (nothing else listens on a
    rule's ack address, and eKuiper never uses it again), so removing it is
    safe there and only there.
    """
    if control.kind is not SINK or control.meta is None:
        return
    address = wire.ack_address(control.meta)
    transport.remove_socket_file(address, transport.socket_file_id(address))


def release_memory() -> None:
    """Give the system back the memory of instances that ended.

    A stopped instance's objects hold reference cycles (a context and its
    adapter) that only the collector frees, and the C heap keeps what was
    freed unless it is trimmed; neither happens by itself in an idle plugin.
    Called from the watch loop once no instance runs.
    """
    gc.collect()
    try:
        import ctypes  # only here: a plugin whose rules all stopped

        ctypes.CDLL(None).malloc_trim(0)
    except (ImportError, OSError, AttributeError):  # no glibc (musl, macOS): nothing to trim
        pass


def process_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
