"""The plugin runtime: handshake, command loop, the instances it runs
(:mod:`kuiperlite.serve.instances`), orphan watchdog, and ``run()``."""

from __future__ import annotations

import gc
import logging
import mmap
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NoReturn, Optional

from ..declare.connections import OPEN_TIMEOUT, Connections, Lease
from ..declare.kinds import BY_WIRE, SINK
from ..declare.plugin import Plugin, collect, importing, summary
from ..declare.symbols import AnySpec, FunctionSpec
from ..errors import DefinitionError, KuiperliteError, NoSymbols, PluginError, error_text
from ..protocol import transport, wire
from ..protocol.channels import (
    KEEPALIVE,
    Requester,
    Unanswered,
    env_count,
    env_number,
    env_seconds,
)
from ..protocol.wire import START, Control
from . import logs, supervisor
from .instances import INSTANCES, FunctionServer, Instance, Shared, instance_what
from .recycling import RECYCLE_IDLE, RECYCLE_MB, Recycler
from .signals import StopSignals
from .stores import Stores, open_store
from .supervisor import InFlight, Journal, Replay

log = logging.getLogger("kuiperlite")

# A stop is answered within this long even when user code is slow to return.
STOP_WAIT = 0.8
# How long the control channel may have no peer before the plugin exits.
ORPHAN_GRACE = 3.0
# How long closing everything at exit may take before the plugin leaves anyway:
# a user teardown that never returns, or a socket close that nng 1.6 hangs,
# must not keep the process behind as an orphan.
EXIT_GRACE = 10.0


def _what(control: Control) -> str:
    """How messages name the symbol a command is for: ``source 'pyjson'``."""
    kind = BY_WIRE.get(control.plugin_type)
    return kind.what(control.symbol_name) if kind else repr(control.symbol_name)


class Runtime:
    """Serves one plugin to eKuiper until the host goes away or a signal arrives."""

    def __init__(self, plugin: Plugin, *, keepalive: Optional[float] = None,
                 orphan_grace: Optional[float] = None, journal: Optional[Journal] = None,
                 inflight: Optional[InFlight] = None, replay: Sequence[Replay] = (),
                 serving: Optional[Callable[[], None]] = None,
                 host_pid: Optional[int] = None) -> None:
        self.plugin = plugin
        # Read here, once the log is set up: a bad value is said there.
        self.keepalive = keepalive or env_seconds("KUIPERLITE_KEEPALIVE", KEEPALIVE)
        # The eKuiper generation serving us: declared, or learned from a command (0: unknown).
        self.generation = 0
        self.declared = env_count("KUIPERLITE_EKUIPER", 0)
        self.control: Optional[Requester] = None
        self.orphan_grace = orphan_grace or env_seconds("KUIPERLITE_ORPHAN_GRACE", ORPHAN_GRACE)
        self.exit_grace = env_seconds("KUIPERLITE_EXIT_GRACE", EXIT_GRACE)
        self.function_index = {name: i for i, name in enumerate(plugin.functions)}
        self.journal = journal
        self.inflight = inflight or InFlight(len(self.function_index))
        self.replay = list(replay)
        self.serving = serving
        self.host_pid = host_pid
        self.instances: dict[str, Instance] = {}
        self.started = 0  # sources and sinks, ever
        self.functions: dict[str, FunctionServer] = {}
        # Opened by the first instance that uses its state, in this process.
        self.stores = Stores(lambda: open_store(plugin.name))
        # Opened by the first instance that needs each, in this process.
        self.connections = Connections(env_seconds("KUIPERLITE_OPEN_TIMEOUT", OPEN_TIMEOUT))
        self.shared = Shared(self.inflight, self.stores)
        self.released = 0  # instances started when memory was last given back
        self.shutdown = threading.Event()
        self.signals = StopSignals()
        self.reason = ""
        # Only a supervised worker has a successor to give way to.
        self.recycler = None if journal is None else Recycler(
            env_number("KUIPERLITE_RECYCLE_MB", RECYCLE_MB),
            env_seconds("KUIPERLITE_RECYCLE_IDLE", RECYCLE_IDLE),
            time.monotonic() - journal.since)
        # Set once the worker gives way: commands and calls are left for its successor.
        self.leaving = threading.Event()
        # Commands and the final close both change the instances.
        self._lock = threading.Lock()

    # ------------------------------------------------------------ commands

    def handle(self, raw: bytes) -> bytes:
        """Answer one control command: ``ok`` or an error sentence."""
        try:
            name, control = wire.decode_command(raw)
        except KuiperliteError as err:
            log.warning("bad command %r: %s", raw[:200], err)
            return wire.answer(str(err))
        try:
            if self.leaving.is_set():
                raise Unanswered
            if self.shutdown.is_set():
                return wire.answer("The plugin is shutting down.")
            if name == START:
                self.start(control, raw)
            else:
                self.stop(control)
        except Unanswered:
            raise
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

    def start(self, control: Control, command: bytes = b"", slot: int = -1) -> None:
        """Start a symbol instance; raises with a sentence when it cannot.

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
            return
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
                                         instance_what(symbol, control.meta))
        try:
            with self._lock:
                if self.leaving.is_set():
                    raise Unanswered
                if self.shutdown.is_set():
                    raise KuiperliteError("The plugin is shutting down.")
                old = self.instances.pop(key, None)
                if old is not None:
                    log.info("%s is started again; stopping the running one first", old.what)
                    self._stop_instance(old)
                instance = self._launch(symbol, control, kwargs, lease, slot)
                self.instances[key] = instance
                self.started += 1
                if self.journal is not None:
                    self.journal.started(key, getattr(instance, "slot", -1), command)
        except BaseException:
            lease.release()
            raise
        log.info("started %s", instance.what)

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
            instance = INSTANCES[symbol.kind](symbol, control, kwargs, self.shared, lease, slot)
        except (ConnectionError, transport.NNGException) as err:
            raise KuiperliteError(f"The {symbol.what} cannot open its data channel: {err}.") \
                from None
        try:
            instance.start()
        except BaseException as err:  # no thread to be had (RuntimeError), for instance
            instance.close()
            raise KuiperliteError(f"The {symbol.what} cannot start: {error_text(err)}.") \
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
            log.info("stopped %s", instance.what)
        else:
            log.warning("%s is still inside user code; it ends when that code returns",
                        instance.what)

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
            control = self.control = Requester(address, keepalive=self.keepalive)
        except ConnectionError as err:
            log.error("cannot reach eKuiper: %s; is a host listening for plugin %r?",
                      err, plugin.name)
            return 1
        # nng's threads start with the first socket and name themselves soon after.
        threading.Thread(target=transport.batch_task_threads, args=(before,), daemon=True,
                         name="kuiperlite-batch-threads").start()
        if self.declared in (1, 2):
            self._learn_generation(self.declared)
        elif self.declared:
            log.warning("KUIPERLITE_EKUIPER=%d is not an eKuiper generation (1 or 2); it is "
                        "learned from the commands", self.declared)
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
        if self.serving is not None:
            self.serving()
        self._watch(control)
        self.close()
        return 0

    def _replay(self) -> None:
        """Start again what a worker that died had running, as eKuiper had started it."""
        for replay in self.replay:
            try:
                _, control = wire.decode_command(replay.command)
                self.start(control, replay.command, replay.slot)
            except BaseException as err:
                log.error("cannot start %s again: %s", replay.key, error_text(err))

    def _watch(self, control: Requester) -> None:
        parent = os.getppid()
        host = self.host_pid or parent
        while not self.shutdown.is_set():
            if self.signals.wait(0.25) is not None:
                self.reason = self.reason or f"received {self.signals.name}"
            elif os.getppid() != parent or not process_alive(host):
                gone = host if not process_alive(host) else parent
                self.reason = f"the host process {gone} is gone"
            elif control.disconnected_for() > self.orphan_grace:
                self.reason = (f"the control channel has had no peer for "
                               f"{self.orphan_grace:g} s; eKuiper is gone")
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
        deadline = time.monotonic() + self.exit_grace
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

        Should closing take longer than ``exit_grace`` all the same (a
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
                log.warning("%s is still inside user code at exit", instance.what)
        for server in self.functions.values():
            server.adapter.close()
        self.connections.close()

    def _leave_late(self) -> None:
        time.sleep(self.exit_grace)  # a daemon: it goes with the process that left in time
        log.error("closing the plugin took more than %g s (a teardown that never returns, or "
                  "a socket's close that hangs); it exits without waiting", self.exit_grace)
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


def serve_plugin(plugin: Plugin) -> NoReturn:
    """Serve a collected plugin, supervised where it can be, then exit the process."""
    why_not = supervisor.can_fork()
    if why_not is None:
        host = os.getppid()
        code = supervisor.supervise(
            lambda journal, page, replay, serving: serve_worker(
                plugin, host, journal, page, replay, serving))
    else:
        code = serve_alone(plugin, why_not)
    exit_now(code)


def serve_worker(plugin: Plugin, host: int, journal: Journal, page: mmap.mmap,
                 replay: Sequence[Replay], serving: Callable[[], None]) -> int:
    """Serve a plugin in a supervised worker (see :func:`supervisor.supervise`); the exit code.

    Args:
        host: the pid of the process that started the supervisor (eKuiper).
    """
    logs.configure(plugin.name)
    journal.named(plugin.name)
    log.debug("eKuiper portable config: %s", wire.parse_portable_config(sys.argv))
    try:
        inflight = InFlight(len(plugin.functions), page)
    except KuiperliteError as err:
        log.error("%s", err)
        return 2
    return Runtime(plugin, journal=journal, inflight=inflight, replay=replay,
                   serving=serving, host_pid=host).serve()


def serve_alone(plugin: Plugin, why: str) -> int:
    """Serve a plugin in this process, unsupervised because of ``why``; the exit code."""
    logs.configure(plugin.name)
    log.debug("eKuiper portable config: %s", wire.parse_portable_config(sys.argv))
    log.info("plugin %s runs unsupervised: %s", plugin.name, why)
    return Runtime(plugin).serve()


def exit_now(code: int) -> NoReturn:
    """Flush the output and leave at once.

    Threads still blocked in nng calls (keepalive receives, user code
    that ignores its stop) must not hold the process or hang interpreter
    shutdown: every instance has been stopped by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(plugin: Optional[Plugin] = None) -> None:
    """Serve the program's own symbols, as eKuiper's executable.

    Put ``if __name__ == "__main__": kuiperlite.run()`` at the end of the
    plugin file; eKuiper starts it with ``python -u file.py '<config>'``.
    Like ``unittest.main()``, it serves the ``__main__`` module: the file run
    as the program. A packaged plugin needs no such line (its launcher
    serves the file), nor does ``python -m kuiperlite run FILE``; there, a
    ``run()`` line met while the file is imported returns at once, and the
    file is served once imported. Otherwise it never returns.

    Args:
        plugin: serve this plugin instead of the ``__main__`` module.
    """
    if plugin is None and importing():
        return
    if plugin is None:
        try:
            plugin = collect(sys.modules["__main__"])
        except (DefinitionError, PluginError) as err:
            hint = (" (kuiperlite.run() serves the file run as the program: call it under "
                    "`if __name__ == \"__main__\":`)") if isinstance(err, NoSymbols) else ""
            print(f"kuiperlite: {err}{hint}", file=sys.stderr, flush=True)
            os._exit(2)
    serve_plugin(plugin)
