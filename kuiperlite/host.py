"""The embedded host: eKuiper's side of the portable plugin protocol.

:class:`Host` listens on a plugin's control channel, launches the plugin the
way eKuiper does, waits for its handshake, and then starts and stops symbols,
receives source records, pushes sink payloads and reads acks, and calls
functions. It behaves like eKuiper 2.x by default (``ekuiper=1`` for 1.x
where the two differ): the Controls it sends, the order in which it opens
channels, how it decodes source messages, its timeouts, one call at a time
per function. Like eKuiper it restarts a plugin that died on the next start
and replays the start commands still active. It backs ``serve``, ``check``
and the tests; nothing in it is a mock.

Unlike eKuiper, every wait has a bound: where eKuiper would wait forever
(an ack that never comes), the host raises :class:`HostError` saying so.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional, TypeVar

import pynng

from . import wire
from .channels import TICK, Direct, close, dial, listen, ms, puller
from .dev import gowire
from .errors import HostError, ProtocolError
from .wire import FUNC, SINK, SOURCE, START, STOP, Control, FuncMeta, Meta

log = logging.getLogger("kuiperlite.host")
T = TypeVar("T")

PORTABLE_CONFIG = '{"sendTimeout":1000}'

# eKuiper's defaults (etc/kuiper.yaml, portable section).
INIT_TIMEOUT = 60.0  # portable.initTimeout: the wait for a new plugin's handshake
SEND_TIMEOUT = 5.0  # portable.sendTimeout: function requests, sink payloads
RECV_TIMEOUT = 5.0  # portable.recvTimeout: function replies
ACK_TICK = 1.0  # eKuiper waits for an ack in 1 s receives, retried until it comes


def stream_options(ekuiper: int, datasource: str, **options: Any) -> dict[str, Any]:
    """The stream options eKuiper adds to a source's config, over its yaml properties.

    eKuiper 2.x adds these nine (internal/topo/node/conf/source.go), the
    datasource among them; 1.x added ``format``, ``key`` and ``delimiter``
    and sent the datasource as the Control's top-level ``dataSource``.

    Args:
        ekuiper: the eKuiper generation, 1 or 2.
        datasource: the stream's DATASOURCE.
        options: other stream options by their config name (``format="csv"``).
    """
    if ekuiper == 1:
        out: dict[str, Any] = {"format": "json", "key": "", "delimiter": ""}
    else:
        out = {"format": "json", "key": "", "datasource": datasource, "schemaId": "",
               "delimiter": "", "retainSize": 0, "strictValidation": False,
               "timestamp": "", "timestampFormat": ""}
    unknown = set(options) - set(out)
    if unknown:
        raise ValueError(f"eKuiper {ekuiper}.x adds no stream option {sorted(unknown)[0]!r}; "
                         f"it adds {', '.join(out)}.")
    out.update(options)
    out["format"] = str(out["format"]).lower()
    return out


def launch_argv(executable: str, python: str = sys.executable,
                conda_env: Optional[str] = None) -> list[str]:
    """The command eKuiper runs for a python plugin.

    With a conda env it is ``conda run -n ENV python exe ARG``: no ``-u``,
    and conda holds the output back until the plugin exits.
    """
    if conda_env:
        return ["conda", "run", "-n", conda_env, python, executable, PORTABLE_CONFIG]
    return [python, "-u", executable, PORTABLE_CONFIG]


def checked_address(address: str, *names: tuple[str, str]) -> str:
    """``address``, once its names fit in a socket file name and its path in a socket.

    Args:
        address: the ``ipc://`` address to listen on or dial.
        names: ``(what, value)`` pairs that are part of it, e.g. ``("ruleId", "rule1")``.

    Raises:
        ValueError: a name holds ``/``, ``..``, NUL or control characters, or the
            path is longer than 107 bytes; the message says which.
    """
    try:
        for what, value in names:
            wire.check_ipc_name(value, what)
        wire.check_ipc_path(address)
    except ProtocolError as err:
        raise ValueError(str(err)) from None
    return address


def listening(address: str, holder: Optional[str], make: Callable[[], T]) -> T:
    """``make()``, which listens on ``address``; its failure becomes a HostError.

    Args:
        holder: what else may hold the address (``"rule 'rule1'"``), for the message.

    Raises:
        HostError: the address is taken, or cannot be listened on.
    """
    try:
        return make()
    except ConnectionError as err:
        path = wire.ipc_path(address)
        if isinstance(err.__cause__, pynng.AddressInUse) and holder:
            raise HostError(f"Cannot listen on {path}: is eKuiper, a serve or a test run "
                            f"already hosting {holder}?") from None
        raise HostError(f"Cannot listen on {path}: {err.__cause__ or err}.") from None


class Channel:
    """A host socket used by one thread at a time and never closed while in use.

    Every blocking call on it is sliced into short receives or sends that
    look at ``closing`` in between, so :meth:`close` from another thread
    waits at most one slice for the user to let go.
    """

    def __init__(self, sock: pynng.Socket) -> None:
        self.sock: Optional[pynng.Socket] = sock
        self.direct = Direct(sock)
        self.lock = threading.Lock()
        self.closing = False

    @property
    def closed(self) -> bool:
        return self.sock is None

    def close(self) -> bool:
        """Close the socket once no thread is inside it; False if already closed."""
        self.closing = True
        with self.lock:
            if self.sock is None:
                return False
            close(self.sock)
            self.sock = None
            return True


class Responder(Channel):
    """The host's end of an inverted channel: commands go out as replies.

    Args:
        holder: what else may hold the address when it is taken, for the error.

    Raises:
        HostError: the address is taken or cannot be listened on.
    """

    def __init__(self, address: str, alive: Callable[[], None],
                 holder: Optional[str] = None) -> None:
        self.address = address
        self.alive = alive
        self.holder = holder
        super().__init__(self._listen())

    def _listen(self) -> pynng.Rep0:
        def make() -> pynng.Rep0:
            sock = pynng.Rep0(recv_timeout=ms(TICK), send_timeout=ms(TICK))
            sock.recv_max_size = 0
            try:
                listen(sock, self.address)
            except ConnectionError:
                sock.close()
                raise
            return sock

        return listening(self.address, self.holder, make)

    def reopen(self) -> None:
        """Close the socket and listen again on the same address."""
        with self.lock:
            if self.sock is not None:
                close(self.sock)
            sock = self._listen()
            self.sock, self.direct = sock, Direct(sock)

    def _recv(self, deadline: float, what: str) -> bytes:
        while True:
            if self.closing:
                raise HostError(f"The channel {self.address} was closed while waiting "
                                f"for the {what}.")
            try:
                return self.direct.recv()
            except pynng.Timeout:
                self.alive()
                if time.monotonic() > deadline:
                    raise HostError(f"No {what} on {self.address} in time.") from None

    def _send(self, payload: bytes, deadline: float) -> None:
        while True:
            try:
                self.direct.send(payload)
                return
            except pynng.Timeout:
                self.alive()
                if self.closing or time.monotonic() > deadline:
                    raise HostError(f"The plugin did not take a message on {self.address} "
                                    "in time.") from None

    def wait_handshake(self, timeout: float) -> None:
        """Wait for the plugin's first request, which is not answered yet."""
        with self.lock:
            if self.sock is None:
                raise HostError(f"The channel {self.address} is closed.")
            self._recv(time.monotonic() + timeout, "handshake")

    def request(self, payload: bytes, timeout: float) -> bytes:
        """Send one command or call and return the plugin's answer.

        As eKuiper does: with no request pending, take the plugin's next one
        (a keepalive or a late answer) first; skip answers starting with ``h``,
        which are keepalives that crossed a command, and send again.
        """
        deadline = time.monotonic() + timeout
        with self.lock:
            if self.sock is None:
                raise HostError(f"The channel {self.address} is closed.")
            while True:
                try:
                    self._send(payload, deadline)
                except pynng.BadState:
                    self._recv(deadline, "request from the plugin")
                    self._send(payload, deadline)
                answer = self._recv(deadline, "answer")
                if answer[:1] != b"h":
                    return answer


class PluginProcess:
    """A plugin process started as eKuiper starts it, with its output collected."""

    def __init__(self, argv: list[str], cwd: str, env: Optional[dict[str, str]],
                 on_output: Optional[Callable[[str], None]]) -> None:
        self.argv = argv
        self.output: collections.deque[str] = collections.deque(maxlen=2000)
        self.on_output = on_output
        self.popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace")
        self.reader = threading.Thread(target=self._read, name=f"output {self.pid}", daemon=True)
        self.reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            if self.on_output is not None:
                self.on_output(line)

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    @property
    def worker(self) -> Optional[int]:
        """The pid of the process that runs the user code.

        A kuiperlite plugin runs it in a child of the process eKuiper started
        (which supervises it); a plugin without one runs it itself.
        """
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                children = [int(pid) for pid in f.read().split()]
        except (OSError, ValueError):
            return None
        return children[0] if children else (None if self.poll() is not None else self.pid)

    def printed(self, text: str) -> bool:
        """Whether a line the plugin printed so far holds ``text``."""
        return any(text in line for line in list(self.output))

    def tail(self, lines: int = 15) -> str:
        return "\n".join(list(self.output)[-lines:])

    def stop(self, timeout: float = 3.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self.reader.join(2.0)
        return self.popen.returncode


class Host:
    """eKuiper's side for one plugin: control channel, plugin process, symbols.

    Use as a context manager: ``with Host.launch("pysam.py") as host: ...``.

    Args:
        name: the plugin name (the control channel is ``plugin_<name>.ipc``).
        ekuiper: the eKuiper generation to behave like, 2 (default) or 1.
        timeout: seconds to wait for a command's answer or a sink's ack
            (eKuiper waits an hour for the one and forever for the other).
        send_timeout: eKuiper's ``portable.sendTimeout``: seconds for a function
            request or a sink payload to be taken.
        recv_timeout: eKuiper's ``portable.recvTimeout``: seconds for a function's
            reply.
        ipc_dir: the folder of the socket files (default: eKuiper's ``/tmp``,
            or ``KUIPERLITE_IPC_DIR``); a launched plugin is told to use it.
        on_output: called with each line the plugin process prints.

    Raises:
        ValueError: the name cannot be part of a socket file name, or a socket
            path is too long; so do ``start_source``, ``start_sink`` and
            ``function`` for their rule, op and symbol names, before they listen.
            A bad argument is a ValueError; HostError is kept for what the
            plugin or the machine did.
        HostError: the control channel's address is taken (another host, or
            eKuiper, hosts the plugin); so do the handles for theirs.
    """

    def __init__(self, name: str, *, ekuiper: int = 2, timeout: float = 10.0,
                 send_timeout: float = SEND_TIMEOUT, recv_timeout: float = RECV_TIMEOUT,
                 ipc_dir: Optional[str] = None,
                 on_output: Optional[Callable[[str], None]] = None) -> None:
        if ekuiper not in (1, 2):
            raise ValueError(f"ekuiper must be 1 or 2, got {ekuiper!r}.")
        self.name = name
        self.ekuiper = ekuiper
        self.timeout = timeout
        self.send_timeout = send_timeout
        self.recv_timeout = recv_timeout
        self.ipc_dir = ipc_dir or wire.IPC_DIR
        self.on_output = on_output
        self.process: Optional[PluginProcess] = None
        self.launch_args: Optional[tuple[list[str], str, Optional[dict[str, str]]]] = None
        self.restarts = 0
        # Active start commands by meta, replayed after a plugin restart; like
        # eKuiper, all functions share the empty meta, so only the last stays.
        self.commands: dict[Meta, bytes] = {}
        self.handles: list[Any] = []
        self.functions: dict[str, FunctionChannel] = {}
        self._restart_lock = threading.Lock()
        self._functions_lock = threading.Lock()
        self._closed = threading.Event()
        self.control = self._control_channel()

    def _control_channel(self) -> Responder:
        address = checked_address(wire.control_address(self.name, self.ipc_dir),
                                  ("plugin name", self.name))
        return Responder(address, self._check_alive, f"plugin {self.name!r}")

    @classmethod
    def launch(cls, executable: str, *, name: Optional[str] = None, python: str = sys.executable,
               conda_env: Optional[str] = None, env: Optional[dict[str, str]] = None,
               ekuiper: int = 2, timeout: float = 10.0, init_timeout: float = INIT_TIMEOUT,
               send_timeout: float = SEND_TIMEOUT, recv_timeout: float = RECV_TIMEOUT,
               ipc_dir: Optional[str] = None,
               on_output: Optional[Callable[[str], None]] = None) -> Host:
        """Listen, start the plugin as eKuiper does (:func:`launch_argv`) and handshake.

        Args:
            executable: the plugin's file; the process runs in its folder.
            name: the plugin name; defaults to the file's stem.
            python: the interpreter eKuiper would use (its ``portable.pythonBin``).
            conda_env: run it with ``conda run -n`` in this environment.
            env: the process environment (default: this one).
            ekuiper: the eKuiper generation to behave like, 2 or 1.
            init_timeout: seconds to wait for the handshake (``portable.initTimeout``).
            send_timeout, recv_timeout, ipc_dir: as for :class:`Host`.
        """
        path = os.path.abspath(executable)
        host = cls(name or os.path.splitext(os.path.basename(path))[0], ekuiper=ekuiper,
                   timeout=timeout, send_timeout=send_timeout, recv_timeout=recv_timeout,
                   ipc_dir=ipc_dir, on_output=on_output)
        try:
            host.spawn(launch_argv(path, python, conda_env), os.path.dirname(path), env)
            host.wait_handshake(init_timeout)
        except BaseException:
            host.close()
            raise
        return host

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ process

    def spawn(self, argv: list[str], cwd: str, env: Optional[dict[str, str]] = None) -> None:
        """Start the plugin process (remembered for restarts)."""
        env = dict(os.environ if env is None else env, KUIPERLITE_IPC_DIR=self.ipc_dir)
        self.launch_args = (argv, cwd, env)
        self.process = PluginProcess(argv, cwd, env, self.on_output)

    def wait_handshake(self, timeout: float = INIT_TIMEOUT) -> None:
        """Wait for the plugin's handshake (a plugin started by hand works too)."""
        self.control.wait_handshake(timeout)

    def _check_alive(self) -> None:
        process = self.process
        if process is not None and process.poll() is not None:
            raise HostError(f"The plugin process {process.pid} exited with code "
                            f"{process.poll()}; its last output:\n{process.tail()}")

    @property
    def alive(self) -> bool:
        """Whether the plugin process runs (True for a plugin started by hand)."""
        return self.process is None or self.process.poll() is None

    def restart(self, timeout: float = INIT_TIMEOUT) -> None:
        """Start a new plugin process and replay the active start commands.

        Raises:
            HostError: the new process did not handshake; the commands stay,
                to be replayed by the next restart.
        """
        if self.launch_args is None:
            raise HostError("This host did not launch its plugin, so it cannot restart it.")
        with self._restart_lock:
            if self._closed.is_set():
                raise HostError("The host is closed.")
            if self.process is not None:
                self.process.stop()
            self.restarts += 1
            self.spawn(*self.launch_args)
            self.wait_handshake(timeout)
            for payload in list(self.commands.values()):
                self._send(payload)

    def supervise(self, interval: float = 0.2) -> None:
        """Restart the plugin as soon as it dies, replaying its starts.

        eKuiper waits for the next rule start; a supervised host brings the
        data back with no step at all. Failed restarts are retried each second.
        """
        def watch() -> None:
            while not self._closed.wait(interval):
                if self.alive or self.launch_args is None:
                    continue
                try:
                    self.restart()
                except HostError:
                    self._closed.wait(1.0)

        threading.Thread(target=watch, name=f"supervise {self.name}", daemon=True).start()

    def _ensure_running(self) -> None:
        """Like eKuiper, restart a plugin that died when a rule starts a symbol."""
        with self._restart_lock:
            dead = not self.alive and self.launch_args is not None
        if dead:
            self.restart()

    # ----------------------------------------------------------- commands

    def _send(self, payload: bytes) -> None:
        answer = self.control.request(payload, self.timeout)
        if answer != wire.OK:
            raise HostError(answer.decode("utf-8", "replace"))

    def command(self, name: str, control: Control) -> None:
        """Send a start or stop command; raises HostError with the plugin's answer.

        A start restarts a plugin that died (replaying the other starts); a stop
        to a dead plugin only forgets the command, as its instance is gone.
        """
        key = control.meta or Meta("", "", 0)
        payload = gowire.encode_command(name, control)
        if name == START:
            self._ensure_running()
            self._send(payload)
            self.commands[key] = payload
            return
        self.commands.pop(key, None)
        if self.alive:
            self._send(payload)

    def restart_sockets(self) -> None:
        """Close and listen again on the control and function channels, as an
        eKuiper restart does, without sending any command."""
        self.control.close()
        self.control = self._control_channel()
        for channel in self.functions.values():
            if not channel.closed:
                channel.reopen()

    def send_raw(self, payload: bytes) -> bytes:
        """Send arbitrary bytes as a command and return the raw answer."""
        return self.control.request(payload, self.timeout)

    def source_control(self, symbol: str, meta: Meta, datasource: str = "",
                       config: Optional[dict] = None, **options: Any) -> Control:
        """The Control this host's eKuiper generation sends to start a source.

        Args:
            config: the properties of the source's yaml conf key.
            options: stream options other than the datasource (``format=...``).
        """
        merged = {**(config or {}), **stream_options(self.ekuiper, datasource, **options)}
        top = datasource if self.ekuiper == 1 else ""
        return Control(symbol, SOURCE, meta, top, merged)

    def start_source(self, symbol: str, *, rule: str = "rule1", op: str = "op1",
                     instance: int = 0, datasource: str = "", config: Optional[dict] = None,
                     **options: Any) -> SourceHandle:
        """Listen for a source's records, then start it, as a stream's rule would.

        Args:
            datasource: the stream's DATASOURCE.
            config: the properties of the source's yaml conf key.
            options: other stream options (``format``, ``key``, ...).

        Raises:
            ValueError: the rule or op cannot be part of a socket file name.
            HostError: the data channel is taken, or the plugin refused the start.
        """
        control = self.source_control(symbol, Meta(rule, op, instance), datasource, config,
                                      **options)
        return SourceHandle(self, control)

    def start_sink(self, symbol: str, *, rule: str = "rule1", op: str = "op1",
                   instance: int = 0, config: Optional[dict] = None) -> SinkHandle:
        """Listen for acks, start the sink, then connect to its data channel.

        Args:
            config: the action's properties in the rule (``requireAck``, ...).

        Raises:
            ValueError: the rule or op cannot be part of a socket file name.
            HostError: the ack channel is taken, the plugin refused the start,
                or it does not listen on the data channel.
        """
        return SinkHandle(self, Control(symbol, SINK, Meta(rule, op, instance), "", config or {}))

    def function(self, symbol: str) -> FunctionHandle:
        """A function's channel: the first use listens and sends its start command.

        Like eKuiper, the host keeps one channel per function symbol, shared
        by every caller, one call at a time; it closes with its last handle.
        Threads may ask for one function at once: the first opens its channel.

        Raises:
            ValueError: the symbol cannot be part of a socket file name.
            HostError: the channel is taken, or the plugin refused the start.
        """
        with self._functions_lock:
            channel = self.functions.get(symbol)
            if channel is None or channel.closed:
                channel = FunctionChannel(self, symbol)
                self.functions[symbol] = channel
            return FunctionHandle(self, channel)

    def close(self) -> None:
        """Close every channel and stop the plugin process (SIGTERM, then SIGKILL)."""
        self._closed.set()
        for handle in list(self.handles):
            handle.close()
        with self._restart_lock:
            if self.process is not None:
                self.process.stop()
        self.control.close()


def _data_address(control: Control, directory: str) -> str:
    meta = control.meta
    assert meta is not None
    return checked_address(wire.data_address(meta, directory), ("ruleId", meta.rule_id),
                           ("opId", meta.op_id))


def _holder(control: Control) -> str:
    assert control.meta is not None
    return f"rule {control.meta.rule_id!r}"


class SourceHandle:
    """A started source instance, seen from the host.

    Attributes:
        errors: what the plugin reported as errors: messages eKuiper fails to
            decode, which it logs and (2.x) counts as the rule's exceptions.
        mistakes: ``{"error": ...}`` messages, which eKuiper takes for empty
            rows, losing the text: the SDKs' way to report an error.
    """

    def __init__(self, host: Host, control: Control) -> None:
        assert control.meta is not None
        self.host = host
        self.control = control
        self.address = _data_address(control, host.ipc_dir)
        self.channel = Channel(listening(self.address, _holder(control),
                                         lambda: puller(self.address)))
        try:
            host.command(START, control)
        except BaseException:
            self.channel.close()
            raise
        self.errors: list[str] = []
        self.mistakes: list[str] = []
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
                    raise HostError(f"The {self.control.label} is stopped.")
                try:
                    return channel.direct.recv()
                except pynng.Timeout:
                    pass
            if time.monotonic() > deadline:
                raise HostError(f"No record from {self.control.label} within {timeout:g} s.")
            self.host._check_alive()

    def recv(self, timeout: float = 10.0) -> tuple[Any, Any]:
        """The next row as eKuiper ingests it: ``(message, meta)``.

        Errors go to ``errors``. A message eKuiper decodes to no message (the
        SDKs' ``{"error": ...}``) is the empty row ``{}`` eKuiper would ingest,
        logged as a warning.
        """
        deadline = time.monotonic() + timeout
        while True:
            raw = self._receive(deadline, timeout)
            try:
                decoded = gowire.decode_source_message(raw)
            except gowire.SourceError as err:
                log.info("%s: %s", self.control.label, err)
                self.errors.append(err.text)
                continue
            except ProtocolError as err:  # pragma: no cover - decode raises SourceError
                self.errors.append(str(err))
                continue
            if decoded.stray_error is not None:
                self.mistakes.append(decoded.stray_error)
                log.warning("%s sent {\"error\": %r}: eKuiper takes it for an EMPTY ROW and "
                            "loses the text; report errors so that eKuiper fails to decode "
                            "them", self.control.label, decoded.stray_error)
            return (decoded.message if decoded.message is not None else {}), decoded.meta

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
    """A started sink instance, seen from the host."""

    def __init__(self, host: Host, control: Control) -> None:
        assert control.meta is not None
        self.host = host
        self.control = control
        self.require_ack = control.config.get("requireAck") is True
        self.address = _data_address(control, host.ipc_dir)
        ack = checked_address(wire.ack_address(control.meta, host.ipc_dir))
        self.ack = Channel(listening(ack, _holder(control), lambda: puller(ack)))
        data: Optional[pynng.Push0] = None
        try:
            host.command(START, control)
            data = pynng.Push0(send_timeout=ms(TICK))
            try:
                dial(data, self.address)
            except ConnectionError:
                raise HostError(f"The {control.label} started, but nothing listens on its "
                                f"data channel {wire.ipc_path(self.address)}.") from None
        except BaseException:
            self.ack.close()
            if data is not None:
                data.close()
            raise
        self.data = Channel(data)
        host.handles.append(self)

    def __enter__(self) -> SinkHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def send(self, payload: Any, timeout: Optional[float] = None) -> Optional[str]:
        """Push one payload (bytes, or a value encoded as eKuiper does).

        Args:
            timeout: how long to wait for the ack (default: the host's timeout).

        Returns:
            With requireAck, None for an ok ack or the ack's error text;
            without it, None at once.

        Raises:
            HostError: the plugin did not take the payload within eKuiper's
                send timeout, or did not ack in time (eKuiper would wait on).
        """
        encoded = gowire.encode_payload(payload)
        label = self.control.label
        send_timeout = self.host.send_timeout
        deadline = time.monotonic() + send_timeout
        with self.data.lock:
            while True:
                if self.data.sock is None or self.data.closing:
                    raise HostError(f"The {label} is stopped.")
                try:
                    self.data.direct.send(encoded)
                    break
                except pynng.Timeout:
                    if time.monotonic() > deadline:
                        raise HostError(f"The {label} did not take a payload within "
                                        f"{send_timeout:g} s (eKuiper's sendTimeout).") from None
                    self.host._check_alive()
        if not self.require_ack:
            return None
        wait = self.host.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            with self.ack.lock:
                if self.ack.sock is None:
                    raise HostError(f"The {label} was stopped while waiting for its ack.")
                try:
                    return gowire.decode_ack(self.ack.direct.recv())
                except pynng.Timeout:
                    pass
            if time.monotonic() > deadline:
                raise HostError(f"No ack from {label} within {wait:g} s; eKuiper would "
                                "still be waiting, and the rule would hang.")
            self.host._check_alive()

    def extra_ack(self, wait: float = 0.05) -> Optional[bytes]:
        """An ack beyond one per payload, if one came within ``wait`` seconds."""
        time.sleep(wait)
        with self.ack.lock:
            if self.ack.sock is None:
                return None
            try:
                return self.ack.sock.recv(block=False)
            except pynng.TryAgain:
                return None

    def stop(self) -> None:
        """Close data and ack channels, then send stop (eKuiper's order)."""
        if self.close():
            self.host.command(STOP, self.control)

    def close(self) -> bool:
        """Close both channels without a command; False if already closed."""
        if not self.data.close():
            return False
        self.ack.close()
        if self in self.host.handles:
            self.host.handles.remove(self)
        return True


class FunctionChannel(Responder):
    """A function symbol's channel, shared by its handles, one call at a time."""

    def __init__(self, host: Host, symbol: str) -> None:
        address = checked_address(wire.function_address(symbol, host.ipc_dir),
                                  ("function name", symbol))
        super().__init__(address, host._check_alive, f"function {symbol!r}")
        self.symbol = symbol
        self.users = 0
        try:
            host.command(START, Control(symbol, FUNC))
        except BaseException:
            self.close()
            raise


class FunctionHandle:
    """A use of a function symbol's channel, seen from the host."""

    def __init__(self, host: Host, channel: FunctionChannel) -> None:
        self.host = host
        self.channel = channel
        self.symbol = channel.symbol
        channel.users += 1
        host.handles.append(self)

    def __enter__(self) -> FunctionHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, func: str, args: Optional[list]) -> tuple[bool, Any]:
        """Send one raw request; returns ``(state, result)``.

        Raises:
            HostError: no answer within eKuiper's send and receive timeouts.
        """
        host = self.host
        try:
            raw = self.channel.request(gowire.encode_function_call(func, args),
                                       host.send_timeout + host.recv_timeout)
        except HostError as err:
            if "in time" not in str(err):
                raise
            raise HostError(f"No answer from function {self.symbol!r} within "
                            f"{host.recv_timeout:g} s (eKuiper's recvTimeout); eKuiper fails "
                            f"the call: time out, plugin {host.name} status running.") from None
        return gowire.decode_reply(raw)

    def validate(self, *args: Any) -> Optional[str]:
        """None when the plugin accepts these arguments, else its error text."""
        state, result = self.request("Validate", list(args))
        return None if state else str(result)

    def is_aggregate(self) -> bool:
        state, result = self.request("IsAggregate", None)
        return bool(state and result is True)

    def call(self, *args: Any, meta: Optional[FuncMeta] = None) -> Any:
        """Exec the function; raises HostError with the text of a failed call.

        Args:
            args: the SQL argument values.
            meta: the calling function instance (default rule1/op1/0, func 0).
        """
        meta = meta or FuncMeta("rule1", "op1", 0, 0)
        state, result = self.request("Exec", [*args, gowire.encode_func_meta(meta)])
        if not state:
            raise HostError(str(result))
        return result

    def close(self) -> bool:
        """Let go of the channel; the last handle closes it (no stop command:
        functions are never stopped)."""
        with self.host._functions_lock:
            if self not in self.host.handles:
                return False
            self.host.handles.remove(self)
            self.channel.users -= 1
            if self.channel.users <= 0:
                self.channel.close()
        return True
