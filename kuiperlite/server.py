"""``serve``: the plugin test server, a fake eKuiper with a REST API.

It serves eKuiper's plugin test server API (``POST /symbol/start`` and
``POST /symbol/stop``, same body) and more: ``GET /symbols``,
``GET /symbol/output``, ``POST /symbol/send`` and ``POST /function/call``.
Errors are JSON ``{"error": "..."}`` with the status that says why: 400 bad
body, 404 unknown symbol, 409 already running, 413 body too large, 502
plugin error. It listens on loopback unless told otherwise.
"""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, urlsplit

import orjson

from .errors import HostError
from .session import ApiError, Mock, Session

MAX_BODY = 1 << 20
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/symbol/start"): "start",
    ("POST", "/symbol/stop"): "stop",
    ("POST", "/symbol/send"): "send",
    ("POST", "/function/call"): "call",
    ("GET", "/symbols"): "symbols",
    ("GET", "/symbol/output"): "output",
}


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`Session`; every answer is JSON."""

    server: DebugServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        """The live log already tells what happened; no access log."""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        session = self.server.session
        try:
            route = ROUTES.get((method, url.path))
            if route is None:
                known = [m for (m, path) in ROUTES if path == url.path]
                if known:
                    raise ApiError(405, f"{url.path} takes {' or '.join(known)}, not {method}.")
                raise ApiError(404, f"No endpoint {url.path}; see GET /symbols.")
            if route == "symbols":
                self._reply(200, session.symbols())
            elif route == "output":
                self._output(dict(parse_qsl(url.query)))
            else:
                self._reply(200, getattr(session, route)(self._body()))
        except ApiError as err:
            self._reply(err.status, {"error": str(err)})
        except HostError as err:
            self._reply(502, {"error": str(err)})

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number.") from None
        if length > self.server.max_body:
            self.close_connection = True
            raise ApiError(413, f"The body has {length} bytes; the limit is "
                                f"{self.server.max_body}.")
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as err:
            raise ApiError(400, f"Invalid body: not JSON ({err}).") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid body: expected a JSON object.")
        return body

    def _output(self, query: dict[str, str]) -> None:
        try:
            since = int(query.pop("since", 0))
            wait = min(float(query.pop("wait", 0)), 60.0)
        except ValueError:
            raise ApiError(400, "since must be an integer and wait a number.") from None
        follow = query.pop("follow", "") in ("1", "true", "yes")
        session = self.server.session
        if not follow:
            events = session.output(query, since, wait)
            self._reply(200, {"events": events, "next": events[-1]["seq"] if events else since})
            return
        # A stream of NDJSON lines until the client goes away or serve stops.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        self.close_connection = True
        while not session.closing.is_set():
            for event in session.output(query, since, 1.0):
                since = event["seq"]
                try:
                    self.wfile.write(orjson.dumps(event) + b"\n")
                    self.wfile.flush()
                except OSError:
                    return

    def _reply(self, status: int, body: Any) -> None:
        data = orjson.dumps(body) + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class DebugServer(ThreadingHTTPServer):
    """The HTTP server, holding the session its handlers use."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], session: Session, max_body: int) -> None:
        self.session = session
        self.max_body = max_body
        super().__init__(address, Handler)


def load_mock(path: Optional[str], sink_data: Optional[str],
              function_args: Optional[str], interval: float) -> Mock:
    """Mock data from a JSON file (``{"sink": ..., "function": ...}``) and flags.

    Raises:
        ValueError: a file or flag is not the JSON expected, said in one sentence.
    """
    mock = Mock(interval=interval)
    sources: list[tuple[str, Any]] = []
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Cannot read mock data from {path}: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold an object with 'sink' and/or 'function'.")
        sources += [(f"{path}: {k}", data[k]) for k in ("sink", "function") if k in data]
    for flag, text in (("--sink-data", sink_data), ("--function-args", function_args)):
        if text is not None:
            try:
                sources.append((flag, json.loads(text)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{flag} is not JSON: {err}") from None
    for where, value in sources:
        if not isinstance(value, (list, dict)):
            raise ValueError(f"{where} must be a list, or an object of lists by symbol name.")
        if where.endswith(("sink", "--sink-data")):
            mock.sink = value
        else:
            mock.function = value
    return mock


def _interrupt(signum: int, _frame: Any) -> None:
    """SIGTERM stops serve the way Ctrl-C does."""
    raise KeyboardInterrupt


def serve(target: str, *, host: str = "127.0.0.1", port: int = 33333, attach: bool = False,
          reload: bool = False, mock: Optional[Mock] = None, allow_remote: bool = False,
          max_body: int = MAX_BODY, ekuiper: int = 2, log: Callable[[str], None] = print) -> int:
    """Run the test server until Ctrl-C or SIGTERM; returns the exit code."""
    if host not in LOOPBACK and not allow_remote:
        log(f"kuiperlite: refusing to listen on {host}: the test server starts and stops "
            "plugin code for anyone who reaches it; add --allow-remote to mean it.")
        return 2
    if attach and reload:
        log("kuiperlite: --reload restarts a plugin serve launched; it cannot with --attach.")
        return 2
    try:
        session = Session(target, attach=attach, mock=mock, log=log, ekuiper=ekuiper)
    except ApiError as err:
        log(f"kuiperlite: {target} does not load:\n{err}")
        return 2
    try:
        httpd = DebugServer((host, port), session, max_body)
    except OSError as err:
        log(f"kuiperlite: cannot listen on {host}:{port}: {err.strerror or err}.")
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        session.open()
        if reload:
            session.watch_files()
        log(f"REST API on http://{host}:{httpd.server_address[1]}: POST /symbol/start, "
            "/symbol/stop, /symbol/send, /function/call; GET /symbols, /symbol/output")
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    except HostError as err:
        log(f"kuiperlite: the plugin did not start: {err}")
        return 1
    finally:
        log("stopping: running symbols, then the plugin")
        session.close()
        httpd.server_close()
    return 0
