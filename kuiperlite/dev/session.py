"""The session behind ``serve``: the plugin, its running symbols and their events.

A :class:`Session` launches the plugin (or waits for one started by hand),
starts and stops symbols on request, reads what running sources emit, feeds
running sinks and functions mock data where it was asked for (``--mock``,
``--sink-data``, ``--function-args``, or ``"mock"`` in a start request;
nothing unasked, as a sink may write to a real system), keeps every event
for the REST API, prints a live log, and with ``--reload`` restarts the
plugin when its files change.

Its parts: :mod:`~kuiperlite.dev.session_requests` (the errors, the mock
data, a running instance, a body read), :mod:`~kuiperlite.dev.session_feeds`
(what passes between serve and a running symbol).
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from ..bundle.package import local_modules
from ..declare.hints import describe_value
from ..declare.kinds import BY_WIRE, FUNCTION, SINK, SOURCE, Kind
from ..declare.state import Scope, Store
from ..errors import HostError, KuiperliteError, ProtocolError, StateError
from ..protocol import wire
from ..protocol.wire import Control
from ..serve.stores import open_store, sqlite_path
from . import gowire, proc
from .handles import FunctionHandle
from .handles_source import SourceHandle, SourceStatus
from .host import Host, launch_argv
from .session_feeds import call, read_source, send
from .session_requests import BadRequest as BadRequest
from .session_requests import Conflict as Conflict
from .session_requests import LoadFailed as LoadFailed
from .session_requests import Mock as Mock
from .session_requests import NotFound as NotFound
from .session_requests import PluginFailed as PluginFailed
from .session_requests import Running, parse_control, parse_meta
from .session_requests import ServeError as ServeError

DESCRIBE_TIMEOUT = 60.0  # seconds the plugin file may take to import


def describe(path: Path, python: str = sys.executable,
             timeout: float = DESCRIBE_TIMEOUT) -> dict[str, Any]:
    """The plugin's name and symbols, read in a separate process (user code stays out).

    Raises:
        LoadFailed: the file does not load, or not within ``timeout`` seconds;
            the message holds its error output.
    """
    try:
        result = proc.run([python, "-m", "kuiperlite.dev.describe", str(path)],
                          cwd=str(path.parent), timeout=timeout, keep=1 << 20)
    except subprocess.TimeoutExpired:
        raise LoadFailed(f"{path.name} did not load within {timeout:g} s; does it wait "
                         "for something when it is imported?") from None
    except OSError as err:
        raise LoadFailed(f"Cannot run {python} to load {path.name}: {err}.") from None
    if result.code != 0 and proc.NO_KUIPERLITE in result.stderr:
        raise LoadFailed(proc.not_installed(python, path.name))
    if result.code != 0:
        raise LoadFailed((result.stderr or result.stdout).strip() or "the plugin did not load")
    try:
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError):
        raise LoadFailed(f"{path.name} loaded, but its symbols could not be read from the "
                         f"output:\n{result.stdout.strip()[-2000:]}") from None


class Session:
    """The host side of ``serve``: the plugin, running symbols and their events."""

    def __init__(self, target: str, *, attach: bool = False, mock: Optional[Mock] = None,
                 log: Callable[[str], None] = print, python: str = sys.executable,
                 ekuiper: int = 2, state_dir: Optional[str] = None,
                 state_url: Optional[str] = None) -> None:
        self.path = Path(target).resolve()
        self.attach = attach
        self.mock = mock or Mock()
        self.python = python
        self.print = log
        self.info = describe(self.path, python)
        self.running: dict[tuple[Any, ...], Running] = {}
        self.functions: dict[str, FunctionHandle] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self.changed = threading.Condition()
        self.seq = itertools.count(1)
        self.lock = threading.RLock()
        self.functions_lock = threading.Lock()
        self.closing = threading.Event()
        self.reload_error: Optional[str] = None
        self.host = Host(self.info["name"], ekuiper=ekuiper, state_dir=state_dir,
                         state_url=state_url, on_output=lambda line: log(f"  plugin | {line}"))

    # ----------------------------------------------------------- lifecycle

    def open(self, init_timeout: float = 60.0) -> None:
        """Start the plugin (or wait for it with ``--attach``) and its watchers."""
        if self.attach:
            self.print(f"waiting for plugin {self.info['name']}: start it with "
                       f"`python -m kuiperlite run {self.path}` (or in your debugger)")
            self.host.wait_handshake(24 * 3600)
        else:
            started = time.monotonic()
            self.host.spawn(launch_argv(str(self.path), self.python, serve=True),
                            str(self.path.parent), dict(os.environ))
            self.host.wait_handshake(init_timeout)
            self.print(f"plugin {self.info['name']} is up (pid {self.pid}, "
                       f"handshake after {time.monotonic() - started:.2f} s)")
            threading.Thread(target=self._watch_process, name="serve process watch",
                             daemon=True).start()
        threading.Thread(target=self._watch_state, name="serve state watch",
                         daemon=True).start()

    @property
    def pid(self) -> Optional[int]:
        """The plugin process's pid (None with --attach)."""
        return self.host.pid

    def close(self) -> None:
        """Stop every running symbol and the plugin process."""
        self.closing.set()
        with self.lock:
            for running in list(self.running.values()):
                self._stop(running)
            for handle in self.functions.values():
                handle.close()
            self.functions.clear()
        self.host.close()

    def _watch_process(self) -> None:
        reported: Optional[int] = None
        while not self.closing.wait(0.3):
            process = self.host.process
            if process is None or process.poll() is None or reported == process.pid:
                continue
            reported = process.pid
            if not self.closing.is_set():
                self.print(f"plugin process {process.pid} exited with code {process.poll()}; "
                           f"its last output:\n{process.tail(10)}\nit restarts on the next "
                           "start request, replaying the running symbols")

    def _state_store(self) -> Optional[Store]:
        """The plugin's state store, once there is one to read (never made here)."""
        name, host = self.info["name"], self.host
        if host.state_url:
            return open_store(name, url=host.state_url)
        path = sqlite_path(name, host.state_dir)
        return open_store(name, directory=os.path.dirname(path)) if os.path.exists(path) \
            else None

    def _watch_state(self, interval: float = 0.5) -> None:
        """Show each change of the plugin's state as a ``state`` event and a line."""
        seen: dict[tuple[Scope, str], str] = {}
        store: Optional[Store] = None
        said = ""
        try:
            while not self.closing.wait(interval):
                try:
                    store = store or self._state_store()
                    if store is None:
                        continue
                    now = {(scope, key): value for scope, key, value in store.entries()}
                except StateError as err:
                    if str(err) != said:
                        said = str(err)
                        self.print(f"state: {err}")
                    continue
                for scope, key in sorted(set(seen) | set(now)):
                    if seen.get((scope, key)) != now.get((scope, key)):
                        self._record_state(scope, key, now.get((scope, key)))
                seen = now
        finally:
            if store is not None:
                store.close()

    def _record_state(self, scope: Scope, key: str, value: Optional[str]) -> None:
        kind = BY_WIRE[scope.kind]
        meta = {"ruleId": scope.rule, "funcId": scope.instance} if not kind.per_rule else \
            {"ruleId": scope.rule, "opId": scope.op, "instanceId": scope.instance}
        data = {"key": key, "value": None if value is None else orjson.loads(value),
                "deleted": value is None}
        change = f"{key} deleted" if value is None else f"{key} = {value}"
        self._publish("state", scope.kind, scope.symbol, meta, data,
                      f"[state {kind.word} {scope.symbol} {scope.rule}] {change}")

    def watch_files(self, interval: float = 0.5) -> None:
        """``--reload``: restart the plugin when its file or local modules change."""
        threading.Thread(target=self._reload_loop, args=(interval,), name="serve reload",
                         daemon=True).start()

    def _snapshot(self) -> dict[Path, float]:
        files = [self.path, *local_modules(self.path)]
        return {f: f.stat().st_mtime for f in files if f.exists()}

    def _reload_loop(self, interval: float) -> None:
        seen = self._snapshot()
        while not self.closing.wait(interval):
            now = self._snapshot()
            if now == seen:
                continue
            changed = sorted(str(p.name) for p in set(now) | set(seen) if now.get(p) != seen.get(p))
            seen = now
            self.print(f"changed: {', '.join(changed)}; restarting the plugin")
            try:
                self.info = describe(self.path, self.python)
                with self.lock:
                    self.host.restart()
            except (LoadFailed, HostError) as err:
                self.reload_error = str(err)
                self.print(f"the plugin does not start; fix it and save again:\n{err}")
            else:
                self.reload_error = None
                self.print(f"plugin restarted (pid {self.pid}); "
                           f"{len(self.running)} running symbols replayed")

    # ------------------------------------------------------------- symbols

    def _known(self, kind: Kind, symbol: str) -> None:
        if symbol not in self.info[kind.folder]:
            names = ", ".join(self.info[kind.folder]) or "none"
            raise NotFound(f"Plugin {self.info['name']!r} has no {kind.word} named {symbol!r}; "
                           f"its {kind.folder}: {names}.")

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /symbol/start``: start an instance and its reader or feeder."""
        control = parse_control(body)
        kind, symbol, meta = control.kind, control.symbol_name, control.meta
        assert meta is not None
        self._known(kind, symbol)
        config = body.get("config")
        if config is None:
            config = {}
        elif not isinstance(config, dict):
            raise BadRequest(f"config must be an object, got {describe_value(config)}.")
        datasource = body.get("dataSource", body.get("datasource"))
        if datasource is None:
            datasource = ""
        elif not isinstance(datasource, str):
            raise BadRequest(f"dataSource must be a string, got {describe_value(datasource)}.")
        feed = self.mock.for_start(kind, symbol, body.get("mock"))
        if kind.per_rule:
            self._fits(control)
        with self.lock:
            running = Running(control._replace(datasource=datasource, config=config))
            if running.key in self.running:
                raise Conflict(f"{running.tag} is already running; stop it first.")
            for other in self.running.values():
                if kind.per_rule and other.kind.per_rule and other.ids == meta:
                    raise Conflict(f"{other.tag} already uses the data channel of rule "
                                   f"{running.rule}; give this one another opId or instanceId.")
            try:
                if kind is SOURCE:
                    running.handle = self.host.start_source(
                        symbol, rule=meta.rule_id, op=meta.op_id, instance=meta.instance_id,
                        config=config, datasource=datasource)
                    work: Callable[[], None] = functools.partial(self._read_source, running)
                elif kind is SINK:
                    running.handle = self.host.start_sink(
                        symbol, rule=meta.rule_id, op=meta.op_id, instance=meta.instance_id,
                        config=config)
                    work = functools.partial(self._mock, running, feed,
                                             functools.partial(self._send, running))
                else:
                    running.handle = self._function(symbol)
                    work = functools.partial(self._mock, running, feed, functools.partial(
                        self._call, running, running.handle))
            except ValueError as err:
                raise BadRequest(str(err)) from None
            except KuiperliteError as err:
                raise PluginFailed(str(err)) from None
            self.running[running.key] = running
            running.thread = threading.Thread(target=work, daemon=True,
                                              name=f"serve {running.tag}")
            running.thread.start()
        self.print(f"{running.tag} started")
        return {"started": _as_json(running)}

    def stop(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /symbol/stop``: stop an instance serve started."""
        wanted = Running(parse_control(body))
        with self.lock:
            running = self.running.get(wanted.key)
            if running is None:
                raise NotFound(f"{wanted.kind.word} {wanted.symbol!r} is not running for rule "
                               f"{wanted.rule}.")
            try:
                self._stop(running)
            except KuiperliteError as err:
                raise PluginFailed(str(err)) from None
        return {"stopped": _as_json(running)}

    def _stop(self, running: Running) -> None:
        self.running.pop(running.key, None)
        running.stopping.set()
        if running.thread is not None:
            running.thread.join(5)
        if running.kind.per_rule:
            running.handle.stop()
        self.print(f"{running.tag} stopped")

    def _function(self, symbol: str) -> FunctionHandle:
        # Two first calls at once must not both open the function's channel.
        with self.functions_lock:
            handle = self.functions.get(symbol)
            if handle is None:
                handle = self.functions[symbol] = self.host.function(symbol)
            return handle

    def _fits(self, control: Control) -> None:
        """A source's or sink's sockets can be files in the host's socket folder,
        by the rule the plugin applies to a start (:func:`kuiperlite.protocol.wire.check_meta`)."""
        assert control.meta is not None
        try:
            wire.check_meta(control.meta, control.kind, self.host.ipc_dir)
        except ProtocolError as err:
            raise BadRequest(f"{err} Use a shorter ruleId or opId.") from None

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /symbol/send``: feed one rule output (``data``: a row, or a list
        of rows) to a running sink as eKuiper does; its ack and messages."""
        wanted = Running(parse_control(dict(body, pluginType=SINK.wire)))
        if "data" not in body:
            raise BadRequest("send needs 'data', the payload to push into the sink.")
        running = self.running.get(wanted.key)
        if running is None:
            raise NotFound(f"sink {wanted.symbol!r} is not running for rule "
                           f"{wanted.ids.rule_id}; start it first.")
        return self._send(running, body["data"])

    def call(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /function/call``: call a function once; its result.

        Validate sees the rule that passes these values: each string, number
        or boolean as its literal, so that one the function refuses is a
        BadRequest, as at rule creation; anything else as a column.
        """
        symbol = body.get("symbolName")
        args = body.get("args", [])
        if not isinstance(symbol, str) or not isinstance(args, list):
            raise BadRequest("call needs 'symbolName' (a string) and 'args' (a list).")
        self._known(FUNCTION, symbol)
        running = Running(Control(symbol, FUNCTION.wire, parse_meta(body.get("meta"))))
        try:
            handle = self._function(symbol)
            error = handle.validate(*gowire.arguments(args, aggregate=handle.is_aggregate()))
        except ValueError as err:
            raise BadRequest(str(err)) from None
        except KuiperliteError as err:
            raise PluginFailed(str(err)) from None
        if error is not None:
            raise BadRequest(error)
        return {"result": self._call(running, handle, args)}

    # --------------------------------------------------- readers, feeders

    def _record(self, running: Running, kind: str, data: Any, text: str) -> None:
        self._publish(kind, running.kind.wire, running.symbol, running.meta, data,
                      f"{running.tag} {text}")

    def _publish(self, kind: str, plugin_type: str, symbol: str, meta: dict[str, Any],
                 data: Any, line: str) -> None:
        """One event for ``/symbol/output``, and its line on the terminal."""
        event = {"seq": next(self.seq), "time": time.time(), "kind": kind,
                 "pluginType": plugin_type, "symbolName": symbol, "meta": meta, "data": data}
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()
        self.print(line)

    def _read_source(self, running: Running) -> None:
        read_source(running, self._record, self.print)

    def _mock(self, running: Running, items: list[Any], action: Callable[[Any], Any]) -> None:
        """Every mock interval, hand the next of ``items`` (payloads or argument lists)
        to ``action``."""
        for item in itertools.cycle(items) if items and self.mock.interval > 0 else []:
            if running.stopping.wait(self.mock.interval):
                return
            try:
                action(item)
            except ServeError:
                continue  # recorded and shown already; the next one may work

    def _send(self, running: Running, output: Any) -> dict[str, Any]:
        return send(running, output, self._record)

    def _call(self, running: Running, handle: FunctionHandle, args: list[Any]) -> Any:
        return call(running, handle, args, self._record)

    # --------------------------------------------------------------- views

    def rule_counts(self) -> dict[str, int]:
        """How many symbol instances serve runs per rule, as eKuiper's ``refCount``."""
        with self.lock:
            counts = collections.Counter(r.ids.rule_id for r in self.running.values())
        return dict(counts)

    def symbols(self) -> dict[str, Any]:
        """``GET /symbols``: what the plugin offers and what runs."""
        process = self.host.process
        return {"plugin": self.info["name"], "file": str(self.path),
                "pid": self.pid, "worker": process.worker if process else None,
                "alive": self.host.alive,
                "restarts": self.host.restarts,
                # After a reload that failed, the plugin serving is the old code.
                "stale": self.reload_error is not None,
                "reload_error": self.reload_error,
                "symbols": {k: self.info[k] for k in ("sources", "sinks", "functions")},
                "running": [{**_as_json(r), **_status(r)} for r in self.running.values()]}

    def output(self, query: dict[str, str], since: int, wait: float) -> list[dict[str, Any]]:
        """Events after ``since`` that match the query, waiting up to ``wait`` for one."""
        def matching() -> list[dict[str, Any]]:
            return [e for e in list(self.events) if e["seq"] > since and _matches(e, query)]

        deadline = time.monotonic() + wait
        with self.changed:
            found = matching()
            while not found and time.monotonic() < deadline and not self.closing.is_set():
                self.changed.wait(max(0.0, deadline - time.monotonic()))
                found = matching()
        return found


def _matches(event: dict[str, Any], query: dict[str, str]) -> bool:
    for key, value in query.items():
        if key in ("pluginType", "symbolName", "kind"):
            if str(event[key]) != value:
                return False
        elif key in ("ruleId", "opId", "instanceId") and str(event["meta"][key]) != value:
            return False
    return True


def _as_json(running: Running) -> dict[str, Any]:
    return {"pluginType": running.kind.wire, "symbolName": running.symbol, "meta": running.meta}


def _status(running: Running) -> dict[str, Any]:
    """How an instance is doing, for ``GET /symbols``: a source's status as its
    messages say (:class:`~kuiperlite.dev.handles_source.SourceStatus`), else running."""
    status = running.handle.status if isinstance(running.handle, SourceHandle) \
        else SourceStatus()
    shown: dict[str, Any] = {"status": status.state}
    if status.error is not None:
        shown["error"] = status.error
    if status.again_at is not None:
        shown["startsAgainAt"] = status.again_at
        shown["startsAgainIn"] = round(max(0.0, status.again_at - time.time()), 3)
    return shown

