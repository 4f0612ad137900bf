"""serve's HTTP plumbing: the request handler and the server that holds the session.

A request must be addressed to loopback and may not come from a web page
of another site; its body has a size limit and arrives within a bound. The
routes and the statuses errors become are :mod:`kuiperlite.dev.server_routes`'s,
an upload's form is read by :mod:`kuiperlite.dev.server_form`.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import ipaddress
import math
import re
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from ..errors import KuiperliteError
from .manage import HostedPlugin, Plugins, Upload
from .server_form import Form
from .server_routes import (
    EKUIPER_ERROR,
    EKUIPER_NOT_FOUND,
    MANAGE_PREFIXES,
    MANAGE_ROUTES,
    PLUGIN_PATH,
    ROUTES,
    BodyTimeout,
    Forbidden,
    TooLarge,
    Unauthorized,
    WrongMediaType,
    WrongMethod,
    status_of,
)
from .session import BadRequest, NotFound, ServeError, Session

MAX_BODY = 1 << 20
# The largest body POST /config/uploads takes (--max-upload). eKuiper sets
# none: the 1 GiB it names is how much of a form Go keeps in memory before
# it spills to disk. serve refuses more than that 1 GiB.
MAX_UPLOAD = 1 << 30
REQUEST_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PORT = 33333  # eKuiper's plugin test server's
WILDCARD = ("0.0.0.0", "::", "")
# Browsers send text/plain and multipart/form-data across sites without
# asking first; curl -d sends the form type, so that one stays accepted.
BODY_TYPES = ("", "application/json", "application/x-www-form-urlencoded")
DRAIN_MAX = 64 << 20  # read and drop at most this much of a refused body
_HOST = re.compile(r"\[([0-9A-Fa-f:.]+)\]|[^\s:/@\[\]]+")
_PORT = re.compile(r"(?::[0-9]{1,5})?")
_ORIGIN = re.compile(r"https?://(.+)", re.IGNORECASE)


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
            match = PLUGIN_PATH.fullmatch(path)
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
