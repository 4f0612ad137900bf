"""The embedded host: eKuiper's side of the portable plugin protocol.

:class:`Host` listens on a plugin's control channel, launches the plugin the
way eKuiper does, waits for its handshake, and then starts and stops symbols,
receives source records, pushes sink payloads and reads acks, and calls
functions. Like eKuiper it restarts a plugin that died on the next use and
replays the start commands still active. It backs the debug server, ``check``
and the tests; nothing in it is a mock.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

import pynng

from . import wire
from .channels import TICK, Direct, dial, listen, ms, puller
from .errors import HostError
from .wire import FUNC, SINK, SOURCE, START, STOP, Control, FuncMeta, Meta

PORTABLE_CONFIG = '{"sendTimeout":1000}'


class Responder:
    """The host's end of an inverted channel: commands go out as replies."""

    def __init__(self, address: str, alive: Callable[[], None]) -> None:
        self.address = address
        self.alive = alive
        self.sock = pynng.Rep0(recv_timeout=ms(TICK))
        self.sock.recv_max_size = 0
        listen(self.sock, address)
        self.direct = Direct(self.sock)
        self.lock = threading.Lock()

    def _recv(self, deadline: float, what: str) -> bytes:
        while True:
            try:
                return self.direct.recv()
            except pynng.Timeout:
                self.alive()
                if time.monotonic() > deadline:
                    raise HostError(f"No {what} on {self.address} in time.") from None

    def wait_handshake(self, timeout: float) -> None:
        """Wait for the plugin's first request, which is not answered yet."""
        with self.lock:
            self._recv(time.monotonic() + timeout, "handshake")

    def request(self, payload: bytes, timeout: float) -> bytes:
        """Send one command or call and return the plugin's answer.

        As eKuiper does: with no request pending, take the plugin's next one
        (a keepalive or a late answer) first; skip answers starting with ``h``,
        which are keepalives that crossed a command.
        """
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                try:
                    self.sock.send(payload)
                except pynng.BadState:
                    self._recv(deadline, "request from the plugin")
                    self.sock.send(payload)
                answer = self._recv(deadline, "answer")
                if answer[:1] != b"h":
                    return answer

    def close(self) -> None:
        with self.lock:
            self.sock.close()


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
                self.popen.wait()
        self.reader.join(2.0)
        return self.popen.returncode


class Host:
    """eKuiper's side for one plugin: control channel, plugin process, symbols.

    Use as a context manager: ``with Host.launch("pysam.py") as host: ...``.

    Args:
        name: the plugin name (the control channel is ``plugin_<name>.ipc``).
        timeout: seconds to wait for a command's answer or a function result.
        on_output: called with each line the plugin process prints.
    """

    def __init__(self, name: str, *, timeout: float = 10.0,
                 on_output: Optional[Callable[[str], None]] = None) -> None:
        self.name = name
        self.timeout = timeout
        self.on_output = on_output
        self.process: Optional[PluginProcess] = None
        self.launch_args: Optional[tuple[list[str], str, Optional[dict[str, str]]]] = None
        self.restarts = 0
        # Active start commands by meta, replayed after a plugin restart; like
        # eKuiper, all functions share the empty meta, so only the last stays.
        self.commands: dict[Meta, bytes] = {}
        self.handles: list[Any] = []
        self._restart_lock = threading.Lock()
        self._closed = threading.Event()
        self.control = Responder(wire.control_address(name), self._check_alive)

    @classmethod
    def launch(cls, executable: str, *, name: Optional[str] = None, python: str = sys.executable,
               env: Optional[dict[str, str]] = None, timeout: float = 10.0,
               init_timeout: float = 30.0,
               on_output: Optional[Callable[[str], None]] = None) -> Host:
        """Listen, start ``python -u executable '{"sendTimeout":1000}'`` and handshake.

        Args:
            executable: the plugin's file; the process runs in its folder.
            name: the plugin name; defaults to the file's stem.
            python: the interpreter eKuiper would use.
            env: the process environment (default: this one).
        """
        path = os.path.abspath(executable)
        host = cls(name or os.path.splitext(os.path.basename(path))[0], timeout=timeout,
                   on_output=on_output)
        try:
            host.spawn([python, "-u", path, PORTABLE_CONFIG], os.path.dirname(path), env)
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
        self.launch_args = (argv, cwd, env)
        self.process = PluginProcess(argv, cwd, env, self.on_output)

    def wait_handshake(self, timeout: float = 30.0) -> None:
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

    def restart(self, timeout: float = 30.0) -> None:
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
        payload = wire.encode_command(name, control)
        if name == START:
            self._ensure_running()
            self._send(payload)
            self.commands[key] = payload
            return
        self.commands.pop(key, None)
        if self.alive:
            self._send(payload)

    def send_raw(self, payload: bytes) -> bytes:
        """Send arbitrary bytes as a command and return the raw answer."""
        return self.control.request(payload, self.timeout)

    def start_source(self, symbol: str, *, rule: str = "rule1", op: str = "op1",
                     instance: int = 0, datasource: str = "",
                     config: Optional[dict] = None) -> SourceHandle:
        """Listen for a source's records, then start it."""
        control = Control(symbol, SOURCE, Meta(rule, op, instance), datasource, config or {})
        return SourceHandle(self, control)

    def start_sink(self, symbol: str, *, rule: str = "rule1", op: str = "op1",
                   instance: int = 0, config: Optional[dict] = None) -> SinkHandle:
        """Listen for acks, start the sink, then connect to its data channel."""
        return SinkHandle(self, Control(symbol, SINK, Meta(rule, op, instance), "", config or {}))

    def function(self, symbol: str) -> FunctionHandle:
        """Listen on a function's channel and start the function symbol."""
        return FunctionHandle(self, symbol)

    def close(self) -> None:
        """Close every channel and stop the plugin process (SIGTERM, then SIGKILL)."""
        self._closed.set()
        for handle in list(self.handles):
            handle.close()
        with self._restart_lock:
            if self.process is not None:
                self.process.stop()
        self.control.close()


class SourceHandle:
    """A started source instance, seen from the host."""

    def __init__(self, host: Host, control: Control) -> None:
        assert control.meta is not None
        self.host = host
        self.control = control
        self.sock: Optional[pynng.Pull0] = puller(wire.data_address(control.meta))
        self.receive = Direct(self.sock).recv
        try:
            host.command(START, control)
        except BaseException:
            self.sock.close()
            raise
        self.errors: list[str] = []
        host.handles.append(self)

    def __enter__(self) -> SourceHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def recv(self, timeout: float = 10.0) -> tuple[Any, Any]:
        """The next record as ``(message, meta)``; error messages go to ``errors``."""
        if self.sock is None:
            raise HostError(f"The {self.control.label} is stopped.")
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self.receive()
            except pynng.Timeout:
                if time.monotonic() > deadline:
                    raise HostError(f"No record from {self.control.label} within "
                                    f"{timeout:g} s.") from None
                self.host._check_alive()
                continue
            message, meta, error = wire.decode_source_message(raw)
            if error is not None:
                self.errors.append(error)
                continue
            return message, meta

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
        if self.sock is None:
            return False
        self.sock.close()
        self.sock = None
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
        self.ack = puller(wire.ack_address(control.meta))
        self.receive_ack = Direct(self.ack).recv
        self.data: Optional[pynng.Push0] = None
        try:
            host.command(START, control)
            self.data = pynng.Push0(send_timeout=ms(host.timeout))
            dial(self.data, wire.data_address(control.meta))
        except BaseException:
            self.ack.close()
            if self.data is not None:
                self.data.close()
            raise
        host.handles.append(self)

    def __enter__(self) -> SinkHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def send(self, payload: Any, timeout: Optional[float] = None) -> Optional[str]:
        """Push one payload (bytes, or a value encoded as eKuiper does).

        Returns:
            With requireAck, None for an ok ack or the ack's error text;
            without it, None at once.
        """
        if self.data is None:
            raise HostError(f"The {self.control.label} is stopped.")
        self.data.send(wire.encode_payload(payload))
        if not self.require_ack:
            return None
        deadline = time.monotonic() + (self.host.timeout if timeout is None else timeout)
        while True:
            try:
                return wire.decode_ack(self.receive_ack())
            except pynng.Timeout:
                if time.monotonic() > deadline:
                    raise HostError(f"No ack from {self.control.label} in time.") from None
                self.host._check_alive()

    def stop(self) -> None:
        """Close data and ack channels, then send stop (eKuiper's order)."""
        if self.close():
            self.host.command(STOP, self.control)

    def close(self) -> bool:
        """Close both channels without a command; False if already closed."""
        if self.data is None:
            return False
        self.data.close()
        self.ack.close()
        self.data = None
        if self in self.host.handles:
            self.host.handles.remove(self)
        return True


class FunctionHandle:
    """A function symbol's channel, seen from the host."""

    def __init__(self, host: Host, symbol: str) -> None:
        self.host = host
        self.symbol = symbol
        self.channel = Responder(wire.function_address(symbol), host._check_alive)
        try:
            host.command(START, Control(symbol, FUNC))
        except BaseException:
            self.channel.close()
            raise
        host.handles.append(self)

    def __enter__(self) -> FunctionHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, func: str, args: Optional[list]) -> tuple[bool, Any]:
        """Send one raw request; returns ``(state, result)``."""
        raw = self.channel.request(wire.encode_function_call(func, args), self.host.timeout)
        return wire.decode_reply(raw)

    def validate(self, *args: Any) -> Optional[str]:
        """None when the plugin accepts this many arguments, else its error text."""
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
        state, result = self.request("Exec", [*args, wire.encode_func_meta(meta)])
        if not state:
            raise HostError(str(result))
        return result

    def close(self) -> bool:
        """Close the function channel (functions are never stopped by command)."""
        if self not in self.host.handles:
            return False
        self.host.handles.remove(self)
        self.channel.close()
        return True
