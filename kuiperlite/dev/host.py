"""The embedded host: eKuiper's side of the portable plugin protocol.

:class:`Host` listens on a plugin's control channel, launches the plugin the
way eKuiper does, waits for its handshake, and then starts and stops symbols,
receives source records, pushes sink payloads and reads acks, and calls
functions. It behaves like eKuiper 2.x by default (``ekuiper=1`` for 1.x
where the two differ): the Controls it sends, the order in which it opens
channels, how it decodes source messages, its timeouts, one call at a time
per function. Like eKuiper it restarts a plugin that died on the next start
and replays the start commands still active. It backs ``serve``, ``check``
and the tests; nothing in it is a mock. Its channel ends are in
:mod:`kuiperlite.dev.ends`, the handles of started symbols in
:mod:`kuiperlite.dev.handles`.

Unlike eKuiper, every wait has a bound: where eKuiper would wait forever
(an ack that never comes), the host raises :class:`HostError` saying so.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any, Callable, Optional

from .. import settings
from ..declare.kinds import SINK, SOURCE
from ..errors import HostError
from ..protocol import wire
from ..protocol.wire import START, Control, Meta
from . import gojson_fmt, gowire
from .ends import Channel, Responder, checked_address
from .handles import FunctionChannel, FunctionHandle, described
from .handles_sink import SinkHandle
from .handles_source import SourceHandle

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


def source_control(symbol: str, meta: Meta, datasource: str = "",
                   config: Optional[dict[str, Any]] = None, *, ekuiper: int = 2,
                   **options: Any) -> Control:
    """The Control eKuiper sends to start a source: the properties of its yaml
    conf key, then the stream options (:func:`stream_options`) over them.

    Args:
        ekuiper: the eKuiper generation, 2 (``dataSource`` in the config) or 1
            (``dataSource`` in the Control).
    """
    merged = {**(config or {}), **stream_options(ekuiper, datasource, **options)}
    return Control(symbol, SOURCE.wire, meta, datasource if ekuiper == 1 else "", merged)


def launch_argv(executable: str, python: str = sys.executable,
                conda_env: Optional[str] = None, *, serve: bool = False) -> list[str]:
    """The command eKuiper runs for a python plugin.

    With a conda env it is ``conda run -n ENV python exe ARG``: no ``-u``,
    and conda holds the output back until the plugin exits.

    Args:
        serve: ``executable`` is a kuiperlite plugin file: serve it as its
            packaged launcher does under eKuiper (``python -m kuiperlite run
            FILE ARG``), so that a file without a ``run()`` line works too.
    """
    program = ["-m", "kuiperlite", "run", executable] if serve else [executable]
    if conda_env:
        return ["conda", "run", "-n", conda_env, python, *program, PORTABLE_CONFIG]
    return [python, "-u", *program, PORTABLE_CONFIG]


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
        state_dir: the folder of the plugin's state store, for a launched
            plugin (default: a fresh folder of this host's, removed at close,
            so tests and sessions never share state unless told to).
        state_url: a Redis URL to keep the plugin's state in instead.
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
                 ipc_dir: Optional[str] = None, state_dir: Optional[str] = None,
                 state_url: Optional[str] = None,
                 on_output: Optional[Callable[[str], None]] = None) -> None:
        if ekuiper not in (1, 2):
            raise ValueError(f"ekuiper must be 1 or 2, got {ekuiper!r}.")
        self.name = name
        self.ekuiper = ekuiper
        self.timeout = timeout
        self.send_timeout = send_timeout
        self.recv_timeout = recv_timeout
        self.ipc_dir = ipc_dir or wire.IPC_DIR
        self.state_dir = state_dir  # made at the first launch when None
        self._own_state_dir = state_dir is None
        self.state_url = state_url
        self.on_output = on_output
        self.process: Optional[PluginProcess] = None
        self.launch_args: Optional[tuple[list[str], str, Optional[dict[str, str]]]] = None
        self.restarts = 0
        # Active start commands by meta, replayed after a plugin restart; like
        # eKuiper, all functions share the empty meta, so only the last stays.
        self.commands: dict[Meta, bytes] = {}
        self.handles: list[Any] = []
        # Sink ack listeners eKuiper leaves open, and so does the host: 2.x after a
        # start the plugin refused, 1.x after every start; closed with the host.
        self.leaked: list[Channel] = []
        self.functions: dict[str, FunctionChannel] = {}
        self._restart_lock = threading.Lock()
        self.functions_lock = threading.Lock()  # guards functions and their handles
        self._closed = threading.Event()
        self.control = self._control_channel()

    def _control_channel(self) -> Responder:
        address = checked_address(wire.control_address(self.name, self.ipc_dir),
                                  ("plugin name", self.name))
        return Responder(address, self.check_alive, f"plugin {self.name!r}",
                         as_1x=self.ekuiper == 1)

    @classmethod
    def launch(cls, path: str, *, executable: bool = False, name: Optional[str] = None,
               python: str = sys.executable,
               conda_env: Optional[str] = None, env: Optional[dict[str, str]] = None,
               ekuiper: int = 2, timeout: float = 10.0, init_timeout: float = INIT_TIMEOUT,
               send_timeout: float = SEND_TIMEOUT, recv_timeout: float = RECV_TIMEOUT,
               ipc_dir: Optional[str] = None, state_dir: Optional[str] = None,
               state_url: Optional[str] = None,
               on_output: Optional[Callable[[str], None]] = None) -> Host:
        """Listen, start the plugin as eKuiper does (:func:`launch_argv`) and handshake.

        Args:
            path: the plugin's file; the process runs in its folder. It is
                served as its packaged launcher serves it under eKuiper
                (``python -u -m kuiperlite run FILE '<config>'``), so it
                needs no ``kuiperlite.run()`` line.
            executable: run the file itself, as eKuiper runs a plugin's
                executable (``python -u FILE '<config>'``): for a plugin
                written with the official SDK, or a file that must be its own
                program.
            name: the plugin name; defaults to the file's stem.
            python: the interpreter eKuiper would use (its ``portable.pythonBin``).
            conda_env: run it with ``conda run -n`` in this environment.
            env: the process environment (default: this one).
            ekuiper: the eKuiper generation to behave like, 2 or 1.
            init_timeout: seconds to wait for the handshake (``portable.initTimeout``).
            send_timeout, recv_timeout, ipc_dir, state_dir, state_url: as for
                :class:`Host`.
        """
        path = os.path.abspath(path)
        host = cls(name or os.path.splitext(os.path.basename(path))[0], ekuiper=ekuiper,
                   timeout=timeout, send_timeout=send_timeout, recv_timeout=recv_timeout,
                   ipc_dir=ipc_dir, state_dir=state_dir, state_url=state_url,
                   on_output=on_output)
        try:
            host.spawn(launch_argv(path, python, conda_env, serve=not executable),
                       os.path.dirname(path), env)
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
        if self.state_dir is None:
            self.state_dir = tempfile.mkdtemp(prefix="kuiperlite-state-")
        env = dict(os.environ if env is None else env)
        env[settings.IPC_DIR.name] = self.ipc_dir
        env[settings.STATE_DIR.name] = self.state_dir
        env.pop(settings.STATE_URL.name, None)
        if self.state_url:
            env[settings.STATE_URL.name] = self.state_url
        self.launch_args = (argv, cwd, env)
        self.process = PluginProcess(argv, cwd, env, self.on_output)

    def wait_handshake(self, timeout: float = INIT_TIMEOUT) -> None:
        """Wait for the plugin's handshake (a plugin started by hand works too)."""
        self.control.wait_handshake(timeout)

    def check_alive(self) -> None:
        """Raise HostError when the plugin process has exited, with its last output."""
        process = self.process
        if process is not None and process.poll() is not None:
            raise HostError(f"The plugin process {process.pid} exited with code "
                            f"{process.poll()}; its last output:\n{process.tail()}")

    @property
    def pid(self) -> Optional[int]:
        """The plugin process's pid (None for a plugin started by hand)."""
        return self.process.pid if self.process is not None else None

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

        Raises:
            ValueError: the config holds a value Go cannot encode (NaN, an
                infinity); nothing is sent.
        """
        key = control.meta or Meta("", "", 0)
        try:
            payload = gowire.encode_command(name, control)
        except gojson_fmt.MarshalError as err:
            raise ValueError(f"The {name} command of {described(control)} cannot be sent: Go's "
                             f"encoder refuses its config ({err}), and eKuiper fails the "
                             f"{name} the same way.") from None
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
                       config: Optional[dict[str, Any]] = None, **options: Any) -> Control:
        """The Control this host's eKuiper generation sends to start a source.

        Args:
            config: the properties of the source's yaml conf key.
            options: stream options other than the datasource (``format=...``).
        """
        return source_control(symbol, meta, datasource, config, ekuiper=self.ekuiper,
                              **options)

    def start_source(self, symbol: str, *, rule: str = "rule1", op: str = "op1",
                     instance: int = 0, datasource: str = "",
                     config: Optional[dict[str, Any]] = None,
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
                   instance: int = 0, config: Optional[dict[str, Any]] = None) -> SinkHandle:
        """Listen for acks, start the sink, then connect to its data channel.

        Args:
            config: the action's properties in the rule (``requireAck``, ...).

        Raises:
            ValueError: the rule or op cannot be part of a socket file name.
            HostError: the ack channel is taken, the plugin refused the start,
                or it does not listen on the data channel.
        """
        control = Control(symbol, SINK.wire, Meta(rule, op, instance), "", config or {})
        return SinkHandle(self, control)

    def function(self, symbol: str) -> FunctionHandle:
        """A function's channel: the first use listens and sends its start command.

        Like eKuiper, the host keeps one channel per function symbol, shared
        by every caller, one call at a time; it closes with its last handle.
        Threads may ask for one function at once: the first opens its channel.

        Raises:
            ValueError: the symbol cannot be part of a socket file name.
            HostError: the channel is taken, or the plugin refused the start.
        """
        with self.functions_lock:
            channel = self.functions.get(symbol)
            if channel is None or channel.closed:
                channel = FunctionChannel(self, symbol)
                self.functions[symbol] = channel
            return FunctionHandle(self, channel)

    def close(self) -> None:
        """Stop the plugin process (SIGTERM, then SIGKILL), then close every channel.

        The process goes first, as when eKuiper shuts down: with its ends
        of the channels gone, the host's close without waiting for them.
        """
        self._closed.set()
        with self._restart_lock:
            if self.process is not None:
                self.process.stop()
        for handle in list(self.handles):
            handle.close()
        for channel in self.leaked:
            channel.close()
        self.control.close()
        if self._own_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
