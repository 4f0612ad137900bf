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
or 404 for what does not exist. An upload's form is read part by part as
it arrives (:class:`Form`) and its file written to disk on the way, so
memory does not grow with its size. With a plugin file, the same paths
describe the plugin it hosts, read-only (:class:`~.manage.HostedPlugin`).
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import hmac
import ipaddress
import json
import math
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from ..errors import HostError, KuiperliteError
from ..serve.signals import StopSignals
from .manage import HostedPlugin, Plugins, Upload
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
# The largest body POST /config/uploads takes (--max-upload). eKuiper sets
# none: the 1 GiB it names is how much of a form Go keeps in memory before
# it spills to disk. serve refuses more than that 1 GiB.
MAX_UPLOAD = 1 << 30
MAX_PART_HEAD = 16 << 10  # bytes of one form part's headers
CHUNK = 1 << 16  # bytes read from the socket at a time
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


class Form:
    """A multipart/form-data body, read part by part as it arrives (RFC 7578).

    Memory holds one chunk and a part's headers at most: a part's data is
    handed on chunk by chunk, and what no one reads is dropped.

    Args:
        read: up to that many more bytes of the body; ``b""`` once all came.
        boundary: the boundary the Content-Type names.
    """

    def __init__(self, read: Callable[[int], bytes], boundary: str) -> None:
        self.read = read
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.buffer = b"\r\n"  # the first boundary is then found as the others are

    def parts(self) -> Iterator[tuple[email.message.EmailMessage, Iterator[bytes]]]:
        """Each part's headers and its data, until the closing boundary.

        Raises:
            BadRequest: the body is not such a form, or ended before its closing boundary.
        """
        while (at := self.buffer.find(self.delimiter)) < 0:  # the preamble goes
            self.buffer = self.buffer[-len(self.delimiter):]
            self._more("before the first boundary")
        self.buffer = self.buffer[at + len(self.delimiter):]
        while self._next_part():
            headers = self._headers()
            data = self._data()
            yield headers, data
            for _ in data:
                pass

    def _more(self, where: str) -> None:
        chunk = self.read(CHUNK)
        if not chunk:
            raise BadRequest(f"Error parse the multi part form: the body ended {where}.")
        self.buffer += chunk

    def _next_part(self) -> bool:
        """Past a boundary: False at the closing one, else True once past its line end."""
        while len(self.buffer.lstrip(b" \t")) < 2:
            if len(self.buffer) > MAX_PART_HEAD:
                break
            self._more("after a boundary")
        if self.buffer.startswith(b"--"):
            return False
        rest = self.buffer.lstrip(b" \t")
        if not rest.startswith(b"\r\n"):
            raise BadRequest("Error parse the multi part form: a boundary must end its line.")
        self.buffer = rest[2:]
        return True

    def _headers(self) -> email.message.EmailMessage:
        while not self.buffer.startswith(b"\r\n") and (
                end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_PART_HEAD:
                raise BadRequest("Error parse the multi part form: a part's headers take "
                                 f"more than {MAX_PART_HEAD} bytes.")
            self._more("in a part's headers")
        if self.buffer.startswith(b"\r\n"):
            head, self.buffer = b"", self.buffer[2:]
        else:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
        parser = email.parser.BytesHeaderParser(policy=email.policy.HTTP)
        return parser.parsebytes(head + b"\r\n\r\n")

    def _data(self) -> Iterator[bytes]:
        keep = len(self.delimiter) - 1  # what may be the start of the next boundary
        while (at := self.buffer.find(self.delimiter)) < 0:
            if len(self.buffer) > keep:
                yield self.buffer[:-keep]
                self.buffer = self.buffer[-keep:]
            self._more("inside a part, before the closing boundary")
        if at:
            yield self.buffer[:at]
        self.buffer = self.buffer[at + len(self.delimiter):]


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`Session`; every answer is JSON.

    A request must be addressed to loopback (its ``Host``) and may not come
    from a web page of another site (``Origin``, ``Sec-Fetch-Site``). Reads
    time out after the server's ``request_timeout``, so a slow or half-sent
    request ends; the ``follow=1`` stream only writes, and lives on.
    """

    server: DebugServer
    unread = 0  # body bytes announced and not read yet
    drain_max = DRAIN_MAX  # how much of a refused body is read and dropped

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
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
                self._text(201, self._upload(plugins))
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
                self._drain()
            except OSError:
                return
        except OSError:
            self.close_connection = True
        except Exception as err:
            plugins.log(f"serve: {method} {path} failed; this is a bug in serve:\n"
                        f"{traceback.format_exc()}")
            self._refuse(500, f"serve failed on this request: {type(err).__name__}: {err}")

    def _upload(self, plugins: Union[Plugins, HostedPlugin]) -> str:
        """Save the multipart form's ``uploadFile`` as it arrives; its absolute path."""
        length = self._length()
        if length > self.server.max_upload:
            raise TooLarge(f"The body has {length} bytes; the limit is "
                           f"{self.server.max_upload} (--max-upload).")
        self.drain_max = length  # a refusal mid-form is still answered
        media = self.headers.get("Content-Type") or ""
        head = email.parser.HeaderParser(policy=email.policy.HTTP).parsestr(
            f"Content-Type: {media}\r\n\r\n")
        boundary = head.get_param("boundary")
        if head.get_content_type() != "multipart/form-data":
            raise BadRequest("Error parse the multi part form: request Content-Type isn't "
                             "multipart/form-data")
        if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
            raise BadRequest("Error parse the multi part form: the Content-Type needs a "
                             "boundary of 1 to 70 characters")
        deadline = time.monotonic() + self.server.request_timeout

        def read(size: int) -> bytes:
            if self.unread <= 0:
                return b""
            if time.monotonic() > deadline:
                raise self._late()
            try:
                chunk = self.rfile.read1(min(size, self.unread))
            except OSError:
                raise self._late() from None
            self.unread = self.unread - len(chunk) if chunk else 0
            return chunk

        upload: Optional[Upload] = None
        try:
            for headers, data in Form(read, boundary).parts():
                filename = headers.get_filename()
                if upload is None and filename and headers.get_param(
                        "name", header="content-disposition") == "uploadFile":
                    upload = plugins.receive(filename)
                    for chunk in data:
                        upload.write(chunk)
            if upload is None:
                raise BadRequest("Error Retrieving the File: http: no such file")
            self.close_connection = True  # as eKuiper, which keeps no connection alive
            self._drain()  # what follows the closing boundary
            return upload.keep()
        finally:
            if upload is not None:
                upload.discard()

    def _late(self) -> BodyTimeout:
        self.unread = 0
        return BodyTimeout(f"The body did not arrive within {self.server.request_timeout:g} s "
                           "(--request-timeout sets the bound).")

    def _length(self) -> int:
        """The body's length as its one Content-Length announces it.

        Raises:
            BadRequest: no plain Content-Length, more than one, or a Transfer-Encoding.
        """
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
        return length

    def _drain(self) -> None:
        """Read and drop the body no one read (so the client, still sending it, sees the
        answer rather than a reset), when it is not too long for that."""
        left, self.unread = self.unread, 0
        if 0 < left <= self.drain_max:
            self._read(left, keep=False)

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
            self._drain()
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
        length = self._length()
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
        max_upload: the largest body ``POST /config/uploads`` accepts, in bytes.
        allow_remote: also answer requests for ``address``'s host (for any IP
            address when it is a wildcard such as 0.0.0.0), not only loopback;
            web pages must still come from loopback or that host.
        request_timeout: seconds a request may take to arrive.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], session: Optional[Session], max_body: int, *,
                 allow_remote: bool = False, request_timeout: float = REQUEST_TIMEOUT,
                 plugins: Optional[Plugins] = None, token: Optional[str] = None,
                 max_upload: int = MAX_UPLOAD) -> None:
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
        self.max_upload = max_upload
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


def _serve_until_stopped(httpd: DebugServer, signals: StopSignals) -> None:
    """Answer requests on a thread of their own until SIGTERM or SIGINT (Ctrl-C).

    The signals only set a flag (:class:`~kuiperlite.serve.signals.StopSignals`), so
    that a burst of them, as a terminal sends to a whole process group, can
    never break into the shutdown that follows the first.
    """
    answering = threading.Thread(target=httpd.serve_forever, name="serve http", daemon=True)
    answering.start()
    while signals.wait(3600) is None:
        pass
    httpd.shutdown()


def serve(target: Optional[str], *, host: str = "127.0.0.1", port: int = 33333,
          attach: bool = False, reload: bool = False, mock: Optional[Mock] = None,
          allow_remote: bool = False,
          max_body: int = MAX_BODY, request_timeout: float = REQUEST_TIMEOUT, ekuiper: int = 2,
          state_dir: Optional[str] = None, state_url: Optional[str] = None,
          token: Optional[str] = None, max_upload: int = MAX_UPLOAD,
          log: Callable[[str], None] = print) -> int:
    """Run the test server until Ctrl-C or SIGTERM.

    Args:
        target: the plugin's file; None for a local eKuiper offering its plugin
            management API, with plugins installed into a temporary folder.
        host: the address to listen on; other than loopback only with ``allow_remote``.
        port: the port to listen on.
        attach: wait for a plugin started by hand instead of launching it.
        reload: restart the plugin when its file or local modules change.
        mock: what running sinks and functions are fed (default: nothing, unless a
            start request asks).
        allow_remote: allow ``host`` to be other than loopback.
        max_body: the largest request body accepted, in bytes.
        request_timeout: seconds a request may take to arrive.
        ekuiper: the eKuiper generation to behave like, 2 or 1.
        state_dir: keep the plugin's state in this folder (default: a fresh
            one of this session's, removed at exit).
        state_url: keep it in this Redis server instead.
        token: without a plugin file, answer only requests whose ``Authorization``
            header is this token, as an eKuiper with authentication does.
        max_upload: without a plugin file, the largest upload accepted, in bytes.
        log: called with each line for the terminal.

    Returns:
        The exit code: 0 after Ctrl-C or SIGTERM, 1 when the plugin did not
        start, 2 when serve could not begin (a file that does not load, a
        socket or port it cannot have); each failure is one sentence in the log.
    """
    signals = StopSignals()
    signals.install()  # from the start: a Ctrl-C never lands in the middle of something
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
                              max_upload=max_upload, log=log, signals=signals)
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
    try:
        session.open()
        if reload:
            session.watch_files()
        log(f"REST API on http://{host}:{httpd.server_address[1]}: POST /symbol/start, "
            "/symbol/stop, /symbol/send, /function/call; GET /symbols, /symbol/output")
        _serve_until_stopped(httpd, signals)
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
                   max_upload: int, log: Callable[[str], None], signals: StopSignals) -> int:
    """serve with no plugin file: eKuiper's plugin management API until Ctrl-C or SIGTERM."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="kuiperlite-ekuiper-")
    plugins = Plugins(base, ekuiper=ekuiper, log=log)
    try:
        httpd = DebugServer((host, port), None, max_body, allow_remote=allow_remote,
                            request_timeout=request_timeout, plugins=plugins, token=token,
                            max_upload=max_upload)
    except (OSError, OverflowError) as err:
        shutil.rmtree(base, ignore_errors=True)
        reason = (err.strerror if isinstance(err, OSError) else None) or str(err)
        log(f"kuiperlite: cannot listen on {host}:{port}: {reason.rstrip('.')}.")
        return 2
    try:
        log(f"eKuiper plugin API on http://{host}:{httpd.server_address[1]}: POST "
            "/config/uploads; GET, POST /plugins/portables; GET, PUT, DELETE "
            "/plugins/portables/{name}; GET /plugins/portables/{name}/status "
            f"(plugins installed under {base})")
        _serve_until_stopped(httpd, signals)
    finally:
        log("stopping: installed plugins")
        plugins.close()
        httpd.server_close()
        shutil.rmtree(base, ignore_errors=True)
    return 0
