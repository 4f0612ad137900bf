"""``serve``: the plugin test server, a fake eKuiper with a REST API.

It serves eKuiper's plugin test server API (``POST /symbol/start`` and
``POST /symbol/stop``, same body) and more: ``GET /symbols``,
``GET /symbol/output``, ``POST /symbol/send`` and ``POST /function/call``.
Errors are JSON ``{"error": "..."}`` with the status that says why: 400 bad
body, 403 a request from another site or for another host name, 404 unknown
symbol, 405 wrong method, 408 a body that did not arrive, 409 already
running, 413 body too large, 415 a body that is not sent as JSON, 501 an
unknown method, 502 plugin error (500: a bug in serve). It listens on
loopback unless told otherwise, and answers only requests addressed to
loopback: a web page cannot reach it, not even through DNS rebinding.

Started with no plugin file, it is a local eKuiper for plugins instead
(:mod:`kuiperlite.dev.manage`): ``POST``/``GET /config/uploads``,
``GET``/``POST /plugins/portables``, ``GET``/``PUT``/``DELETE
/plugins/portables/{name}``, ``GET /plugins/portables/{name}/status`` and
``GET /metadata/functions``,
with eKuiper's bodies: plain text for what changed, JSON for what is read,
and errors as eKuiper's ``{"error": <code>, "message": "..."}`` with 400,
or 404 for what does not exist. With a plugin file, the same paths
describe the plugin it hosts, read-only (:class:`~.manage.HostedPlugin`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from ..errors import HostError, KuiperliteError
from .manage import HostedPlugin, Plugins
from .session import (
    BadRequest,
    Conflict,
    LoadFailed,
    Mock,
    NotFound,
    PluginFailed,
    ServeError,
    Session,
)

MAX_BODY = 1 << 20
MAX_UPLOAD = 256 << 20  # the largest file POST /config/uploads takes
# eKuiper's error codes (pkg/errorx): NOT_FOUND, and Undefined_Err for the rest.
EKUIPER_NOT_FOUND, EKUIPER_ERROR = 1002, 1000
REQUEST_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
# Browsers send text/plain and multipart/form-data across sites without
# asking first; curl -d sends the form type, so that one stays accepted.
BODY_TYPES = ("", "application/json", "application/x-www-form-urlencoded")
DRAIN_MAX = 64 << 20  # read and drop at most this much of a refused body
_HOST = re.compile(r"\[([0-9A-Fa-f:.]+)\]|[^\s:/@\[\]]+")
_PORT = re.compile(r"(?::[0-9]{1,5})?")
_ORIGIN = re.compile(r"https?://(.+)", re.IGNORECASE)


class Forbidden(ServeError):
    """A request for another host name, or from a web page of another site."""


class Unauthorized(ServeError):
    """A request without the token serve was started with."""


class WrongMethod(ServeError):
    """The endpoint exists, but takes another method."""


class BodyTimeout(ServeError):
    """The body did not arrive within the request timeout."""


class TooLarge(ServeError):
    """The body is over the size limit."""


class WrongMediaType(ServeError):
    """A body sent as a type a browser sends across sites without asking."""


# The one place where what went wrong becomes an HTTP status. A class not
# here (by itself or a base) is a bug in serve: 500.
STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    WrongMethod: 405,
    BodyTimeout: 408,
    Conflict: 409,
    TooLarge: 413,
    WrongMediaType: 415,
    PluginFailed: 502,
    KuiperliteError: 502,  # HostError, or an answer the host cannot decode
}


def status_of(error: Exception) -> int:
    """The HTTP status that answers ``error``: its class's, or its nearest base's in
    :data:`STATUS`; 500 when it has none."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


# eKuiper's plugin management paths, served with no plugin file; {name} is one segment.
MANAGE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/config/uploads"): "uploaded",
    ("POST", "/config/uploads"): "upload",
    ("GET", "/plugins/portables"): "listing",
    ("POST", "/plugins/portables"): "register",
    ("GET", "/plugins/portables/{name}"): "describe",
    ("PUT", "/plugins/portables/{name}"): "update",
    ("DELETE", "/plugins/portables/{name}"): "delete",
    ("GET", "/plugins/portables/{name}/status"): "status",
    ("GET", "/metadata/functions"): "functions_meta",
}
MANAGE_PREFIXES = ("/config/uploads", "/plugins/portables", "/metadata/functions")
_PLUGIN_PATH = re.compile(r"/plugins/portables/([^/]+)(/status)?")

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/symbol/start"): "start",
    ("POST", "/symbol/stop"): "stop",
    ("POST", "/symbol/send"): "send",
    ("POST", "/function/call"): "call",
    ("GET", "/symbols"): "symbols",
    ("GET", "/symbol/output"): "output",
}


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`Session`; every answer is JSON.

    A request must be addressed to loopback (its ``Host``) and may not come
    from a web page of another site (``Origin``, ``Sec-Fetch-Site``). Reads
    time out after the server's ``request_timeout``, so a slow or half-sent
    request ends; the ``follow=1`` stream only writes, and lives on.
    """

    server: DebugServer
    unread = 0  # body bytes announced and not read yet

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:  # noqa: N802 - a browser's preflight gets no CORS grant
        self._dispatch("OPTIONS")

    def log_message(self, format: str, *args: Any) -> None:
        """The live log already tells what happened; no access log."""

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """http.server's own refusals (a bad request line or header) as JSON too."""
        text = message or self.responses.get(code, ("Error",))[0]
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # also when the request line did not say: a status
        self._reply(code, {"error": text if text.endswith(".") else f"{text}."})

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        session = self.server.session
        self.unread = _announced(self.headers.get("Content-Length"))
        if session is None or url.path.startswith(MANAGE_PREFIXES):
            self._manage(method, url.path)
            return
        assert session is not None
        try:
            self._check_caller()
            route = ROUTES.get((method, url.path))
            if route is None:
                known = [m for (m, path) in ROUTES if path == url.path]
                if known:
                    raise WrongMethod(f"{url.path} takes {' or '.join(known)}, not {method}.")
                raise NotFound(f"No endpoint {url.path}; see GET /symbols.")
            if route == "symbols":
                self._reply(200, session.symbols())
            elif route == "output":
                self._output(dict(parse_qsl(url.query)))
            else:
                self._reply(200, getattr(session, route)(self._body()))
        except (ServeError, KuiperliteError) as err:
            self._refuse(status_of(err), str(err))
        except OSError:
            self.close_connection = True  # the client went away or stalled
        except Exception as err:
            session.print(f"serve: {method} {url.path} failed; this is a bug in serve:\n"
                          f"{traceback.format_exc()}")
            self._refuse(500, f"serve failed on this request: {type(err).__name__}: {err}")

    def _manage(self, method: str, path: str) -> None:
        """eKuiper's plugin management API, answered as eKuiper answers."""
        plugins = self.server.plugins
        try:
            self._check_caller()
            if self.server.token is not None:
                given = self.headers.get("Authorization")
                if not given:
                    raise Unauthorized("missing_token")
                if not hmac.compare_digest(given.encode(), self.server.token.encode()):
                    raise Unauthorized("token is invalid")
            match = _PLUGIN_PATH.fullmatch(path)
            name = unquote(match.group(1)) if match else ""
            pattern = (f"/plugins/portables/{{name}}{match.group(2) or ''}" if match else path)
            route = MANAGE_ROUTES.get((method, pattern))
            if route is None:
                known = [m for (m, p) in MANAGE_ROUTES if p == pattern]
                if known:
                    raise WrongMethod(f"{path} takes {' or '.join(known)}, not {method}.")
                raise NotFound(f"No endpoint {path}; serve without a plugin file offers "
                               "/config/uploads and /plugins/portables.")
            if route == "upload":
                self._text(201, plugins.upload(*self._upload()))
            elif route in ("uploaded", "listing", "functions_meta"):
                self._send(200, orjson.dumps(getattr(plugins, route)()), "application/json")
            elif route in ("describe", "status"):
                self._send(200, orjson.dumps(getattr(plugins, route)(name)), "application/json")
            elif route == "register":
                self._text(201, plugins.register(self._body()))
            elif route == "update":
                self._text(200, plugins.update(name, self._body()))
            else:
                self._text(200, plugins.delete(name))
        except (ServeError, KuiperliteError) as err:
            status = status_of(err)
            code = EKUIPER_NOT_FOUND if status == 404 else EKUIPER_ERROR
            self.close_connection = True
            try:
                if status == 401:  # eKuiper's auth answers in plain words
                    self._text(status, f"{err}\n")
                else:
                    self._text(status, orjson.dumps({"error": code, "message": str(err)}).decode())
            except OSError:
                return
        except OSError:
            self.close_connection = True
        except Exception as err:
            plugins.log(f"serve: {method} {path} failed; this is a bug in serve:\n"
                        f"{traceback.format_exc()}")
            self._refuse(500, f"serve failed on this request: {type(err).__name__}: {err}")

    def _upload(self) -> tuple[Optional[str], bytes]:
        """The file name and bytes of the multipart form's ``uploadFile``."""
        import email.parser
        import email.policy

        length = _announced(self.headers.get("Content-Length"))
        if length < 0:
            raise BadRequest("Error parse the multi part form: send a Content-Length.")
        if length > MAX_UPLOAD:
            raise TooLarge(f"The body has {length} bytes; the limit is {MAX_UPLOAD}.")
        media = self.headers.get("Content-Type") or ""
        if not media.lower().startswith("multipart/form-data"):
            raise BadRequest("Error parse the multi part form: request Content-Type isn't "
                             "multipart/form-data")
        try:
            raw = self._read(length)
        except OSError:
            self.unread = 0
            raise BodyTimeout(f"The body did not arrive within {self.server.request_timeout:g}"
                              " s.") from None
        self.unread = 0
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {media}\r\n\r\n".encode("latin-1") + raw)
        for part in form.iter_parts() if form.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "uploadFile":
                data = part.get_payload(decode=True)
                return part.get_filename(), data if isinstance(data, bytes) else b""
        raise BadRequest("Error Retrieving the File: http: no such file")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, data: bytes, media: str) -> None:
        """An answer as eKuiper writes it: the bytes, no newline added."""
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, message: str) -> None:
        """Answer with the error, then read and drop the body no one read (so the
        client, still sending it, sees the answer rather than a reset)."""
        self.close_connection = True
        try:
            self._reply(status, {"error": message})
            left, self.unread = self.unread, 0
            if left <= DRAIN_MAX:
                self._read(left, keep=False)
        except OSError:
            return

    def _read(self, length: int, keep: bool = True) -> bytes:
        """Up to ``length`` bytes of the body (fewer if the client stopped sending),
        read within the request timeout in all, so that a trickle ends too.

        Raises:
            TimeoutError: the bytes did not come in time.
        """
        deadline = time.monotonic() + self.server.request_timeout
        chunks: list[bytes] = []
        while length > 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the body took too long")
            chunk = self.rfile.read1(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)
            if keep:
                chunks.append(chunk)
        return b"".join(chunks)

    def _check_caller(self) -> None:
        """403 unless the request is for this server's name and not from another site."""
        hosts = self.headers.get_all("Host") or []
        name = _host_name(hosts[0]) if len(hosts) == 1 else None
        if name is None or not self.server.accepts(name):
            shown = ", ".join(repr(h) for h in hosts) or "none"
            raise Forbidden(f"serve answers requests for {self.server.names()} only, not for "
                            f"Host {shown}: a web page may reach it by DNS rebinding.")
        origin = self.headers.get("Origin")
        if origin is not None:
            match = _ORIGIN.fullmatch(origin.strip())
            name = _host_name(match.group(1)) if match else None
            if name is None or not self.server.accepts(name, origin=True):
                raise Forbidden(f"serve refuses requests from web pages of other sites; "
                                f"this one came from Origin {origin!r}.")
        site = (self.headers.get("Sec-Fetch-Site") or "").strip().lower()
        if site in ("cross-site", "same-site"):
            raise Forbidden(f"serve refuses requests a browser sends for another site "
                            f"(Sec-Fetch-Site: {site}).")

    def _body(self) -> dict[str, Any]:
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            raise BadRequest(f"The request has {len(lengths)} Content-Length headers; "
                             "send one.")
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("serve reads a body by its Content-Length; send it without "
                             f"Transfer-Encoding {self.headers['Transfer-Encoding']!r}.")
        length = _announced(lengths[0] if lengths else "0")
        if length < 0:
            raise BadRequest(f"Content-Length must be a number of bytes, got {lengths[0]!r}.")
        if length > self.server.max_body:
            raise TooLarge(f"The body has {length} bytes; the limit is "
                           f"{self.server.max_body}.")
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media not in BODY_TYPES:
            raise WrongMediaType(f"The body must be JSON sent as application/json (or with no "
                                 f"Content-Type), not as {media}.")
        try:
            raw = self._read(length)
        except OSError:
            self.unread = 0
            raise BodyTimeout(f"The body did not arrive within {self.server.request_timeout:g}"
                              f" s: Content-Length announced {length} bytes.") from None
        self.unread = 0
        if len(raw) < length:
            raise BadRequest(f"The body ended after {len(raw)} of the {length} bytes "
                             "Content-Length announced.")
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as err:
            raise BadRequest(f"Invalid body: not JSON ({err}).") from None
        if not isinstance(body, dict):
            raise BadRequest("Invalid body: expected a JSON object.")
        return body

    def _output(self, query: dict[str, str]) -> None:
        try:
            since = int(query.pop("since", 0))
            wait = min(float(query.pop("wait", 0)), 60.0)
        except ValueError:
            raise BadRequest("since must be an integer and wait a number.") from None
        if not math.isfinite(wait):
            raise BadRequest(f"wait must be a finite number of seconds, got {wait}.")
        follow = query.pop("follow", "") in ("1", "true", "yes")
        session = self.server.session
        assert session is not None
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
    """The HTTP server, holding the session its handlers use.

    Args:
        address: the host and port to listen on.
        session: the session requests go to.
        max_body: the largest body accepted, in bytes.
        allow_remote: also answer requests for ``address``'s host (for any IP
            address when it is a wildcard such as 0.0.0.0), not only loopback;
            web pages must still come from loopback or that host.
        request_timeout: seconds a request may take to arrive.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], session: Optional[Session], max_body: int, *,
                 allow_remote: bool = False, request_timeout: float = REQUEST_TIMEOUT,
                 plugins: Optional[Plugins] = None, token: Optional[str] = None) -> None:
        self.session = session
        self.plugins: Union[Plugins, HostedPlugin]
        if plugins is not None:
            self.plugins = plugins
        else:
            assert session is not None, "serve needs a plugin file or a plugin manager"
            self.plugins = HostedPlugin(session)
        self.token = token
        self.log: Callable[[str], None] = self.plugins.log
        self.max_body = max_body
        self.request_timeout = request_timeout
        self.remote = address[0].strip("[]").lower() if allow_remote else None
        super().__init__(address, Handler)

    def accepts(self, name: str, origin: bool = False) -> bool:
        """Whether a request for the host ``name`` is answered, or from a page of
        the host ``name`` when ``origin`` (no page of another IP address is)."""
        if name in LOOPBACK or (self.remote is not None and name == self.remote):
            return True
        if self.remote in WILDCARD and not origin:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    def names(self) -> str:
        """The host names requests may be for, as a message shows them."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        if self.remote in WILDCARD:
            names.append("an IP address of this machine")
        elif self.remote is not None and self.remote not in LOOPBACK:
            names.append(f"[{self.remote}]" if ":" in self.remote else self.remote)
        return ", ".join(names[:-1]) + " or " + names[-1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is no error; anything else is shown, once."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        self.log(f"serve: a request from {client_address[0]} failed:\n"
                 f"{traceback.format_exc()}")


def _host_name(value: str) -> Optional[str]:
    """The host of a ``Host`` header or an origin's authority, without its port;
    None when it is not a plain host name or address."""
    match = _HOST.match(value.strip())
    if match is None or not _PORT.fullmatch(value.strip()[match.end():]):
        return None
    return (match.group(1) or match.group(0)).lower()


def _announced(value: Optional[str]) -> int:
    """A Content-Length as a number; -1 when it is not a plain number of bytes."""
    text = (value or "0").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else -1


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
    """SIGTERM and SIGINT stop serve the way Ctrl-C does."""
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Have SIGTERM and SIGINT stop serve, also when it inherited SIGINT ignored
    (a shell starts background commands so, and Python then keeps it)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _interrupt)


def serve(target: Optional[str], *, host: str = "127.0.0.1", port: int = 33333,
          attach: bool = False, reload: bool = False, mock: Optional[Mock] = None,
          allow_remote: bool = False,
          max_body: int = MAX_BODY, request_timeout: float = REQUEST_TIMEOUT, ekuiper: int = 2,
          state_dir: Optional[str] = None, state_url: Optional[str] = None,
          token: Optional[str] = None, log: Callable[[str], None] = print) -> int:
    """Run the test server until Ctrl-C or SIGTERM.

    Args:
        target: the plugin's file; None for a local eKuiper offering its plugin
            management API, with plugins installed into a temporary folder.
        host: the address to listen on; other than loopback only with ``allow_remote``.
        port: the port to listen on.
        attach: wait for a plugin started by hand instead of launching it.
        reload: restart the plugin when its file or local modules change.
        mock: what running sinks and functions are fed (default: eKuiper's mock data).
        allow_remote: allow ``host`` to be other than loopback.
        max_body: the largest request body accepted, in bytes.
        request_timeout: seconds a request may take to arrive.
        ekuiper: the eKuiper generation to behave like, 2 or 1.
        state_dir: keep the plugin's state in this folder (default: a fresh
            one of this session's, removed at exit).
        state_url: keep it in this Redis server instead.
        token: without a plugin file, answer only requests whose ``Authorization``
            header is this token, as an eKuiper with authentication does.
        log: called with each line for the terminal.

    Returns:
        The exit code: 0 after Ctrl-C or SIGTERM, 1 when the plugin did not
        start, 2 when serve could not begin (a file that does not load, a
        socket or port it cannot have); each failure is one sentence in the log.
    """
    if host not in LOOPBACK and not allow_remote:
        log(f"kuiperlite: refusing to listen on {host}: the test server starts and stops "
            "plugin code for anyone who reaches it; add --allow-remote to mean it.")
        return 2
    if attach and reload:
        log("kuiperlite: --reload restarts a plugin serve launched; it cannot with --attach.")
        return 2
    if not 0 <= port <= 65535:
        log(f"kuiperlite: cannot listen on {host}:{port}: a port is a number from 0 to 65535.")
        return 2
    if target is not None and token is not None:
        log("kuiperlite: --token guards the plugin management API, which serve offers "
            "without a plugin file; leave out the file or the token.")
        return 2
    if target is None:
        return _serve_plugins(host, port, allow_remote=allow_remote, max_body=max_body,
                              request_timeout=request_timeout, ekuiper=ekuiper, token=token,
                              log=log)
    try:
        session = Session(target, attach=attach, mock=mock, log=log, ekuiper=ekuiper,
                          state_dir=state_dir, state_url=state_url)
    except LoadFailed as err:
        log(f"kuiperlite: {target} does not load:\n{err}")
        return 2
    except (HostError, ValueError) as err:
        log(f"kuiperlite: cannot host {target}: {err}")
        return 2
    try:
        httpd = DebugServer((host, port), session, max_body, allow_remote=allow_remote,
                            request_timeout=request_timeout)
    except (OSError, OverflowError) as err:  # OverflowError: a port socket refuses
        session.close()
        reason = (err.strerror if isinstance(err, OSError) else None) or str(err)
        log(f"kuiperlite: cannot listen on {host}:{port}: {reason.rstrip('.')}.")
        return 2
    _stop_on_signals()
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


def _serve_plugins(host: str, port: int, *, allow_remote: bool, max_body: int,
                   request_timeout: float, ekuiper: int, token: Optional[str],
                   log: Callable[[str], None]) -> int:
    """serve with no plugin file: eKuiper's plugin management API until Ctrl-C or SIGTERM."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="kuiperlite-ekuiper-")
    plugins = Plugins(base, ekuiper=ekuiper, log=log)
    try:
        httpd = DebugServer((host, port), None, max_body, allow_remote=allow_remote,
                            request_timeout=request_timeout, plugins=plugins, token=token)
    except (OSError, OverflowError) as err:
        shutil.rmtree(base, ignore_errors=True)
        reason = (err.strerror if isinstance(err, OSError) else None) or str(err)
        log(f"kuiperlite: cannot listen on {host}:{port}: {reason.rstrip('.')}.")
        return 2
    _stop_on_signals()
    try:
        log(f"eKuiper plugin API on http://{host}:{httpd.server_address[1]}: POST "
            "/config/uploads; GET, POST /plugins/portables; GET, PUT, DELETE "
            "/plugins/portables/{name}; GET /plugins/portables/{name}/status "
            f"(plugins installed under {base})")
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        log("stopping: installed plugins")
        plugins.close()
        httpd.server_close()
        shutil.rmtree(base, ignore_errors=True)
    return 0
