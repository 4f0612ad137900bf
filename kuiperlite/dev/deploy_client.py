"""eKuiper's REST API as ``deploy`` speaks it: :class:`EKuiper`, over http.client.

Each request has a bound on its time and on the answer read; no redirect is
followed. :func:`message` reads eKuiper's error texts, :func:`function_args`
its function metadata.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import math
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlsplit

from .. import settings
from ..declare.hints import describe_value
from ..declare.kinds import KINDS
from ..errors import KuiperliteError

TOKEN_ENV = settings.EKUIPER_TOKEN.name
REQUEST_TIMEOUT = 120.0  # seconds one request may take, from connecting to its answer's end
MAX_ANSWER = 4 << 20  # bytes of one answer read; eKuiper's are a few kilobytes


class DeployFailed(KuiperliteError):
    """Deploying, or asking eKuiper, failed; the message says what and what to do."""


class EKuiper:
    """eKuiper's REST API, over http.client.

    Each request has a connection of its own and one deadline, from connecting
    to the last byte of the answer, and no answer is read beyond
    :data:`MAX_ANSWER` bytes. No redirect is followed: eKuiper's API answers
    every route itself, so a redirect means the address is not that API (a
    proxy, a login page), and following one would send the request, its body
    and the token where the user did not point.

    Args:
        url: eKuiper's REST address, ``http://host:9081``.
        token: the token for eKuiper's ``Authorization`` header, when it asks for one.
        timeout: seconds one request may take in all.

    Raises:
        DeployFailed: the URL is not an http(s) address, or the timeout not a number
            of seconds above 0.
    """

    def __init__(self, url: str, token: Optional[str] = None,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:  # not a number, or out of range
            port = 0
        if (parts.scheme not in ("http", "https") or not parts.hostname or port == 0
                or parts.query or parts.fragment):
            raise DeployFailed(f"{url!r} is not eKuiper's REST address; give one like "
                               "http://127.0.0.1:9081")
        if not (math.isfinite(timeout) and timeout > 0):
            raise DeployFailed(f"the request timeout (--request-timeout) must be a number of "
                               f"seconds above 0, not {timeout!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._connect = (parts.scheme, parts.hostname, port)
        self._prefix = parts.path.rstrip("/")

    def call(self, method: str, path: str, *, body: Any = None, data: Optional[bytes] = None,
             media: Optional[str] = None) -> tuple[int, bytes]:
        """The status and body of eKuiper's answer; 2xx and 4xx answers are returned.

        Raises:
            DeployFailed: eKuiper cannot be reached, does not answer in time, answers
                with a redirect or more than :data:`MAX_ANSWER` bytes, asks for a
                token, or fails (5xx).
        """
        headers = {}
        if body is not None:
            data, media = json.dumps(body).encode(), "application/json"
        if media:
            headers["Content-Type"] = media
        if self.token:
            headers["Authorization"] = self.token
        status, location, text = self._exchange(method, path, data, headers)
        if 300 <= status < 400:
            raise DeployFailed(f"eKuiper at {self.url} answered {method} {path} with a redirect "
                               f"({status}) to {location[:200] or 'nowhere'}; kuiperlite follows "
                               "no redirect: give eKuiper's own REST address with --url")
        if status == 401:
            raise DeployFailed(f"eKuiper at {self.url} refused {method} {path} without a valid "
                               f"token ({message(text)}); pass --token or set {TOKEN_ENV}")
        if status >= 500:
            raise DeployFailed(f"eKuiper at {self.url} failed on {method} {path} ({status}): "
                               f"{message(text)}")
        if status < 200:
            raise DeployFailed(f"eKuiper at {self.url} answered {method} {path} with status "
                               f"{status}; expected a final answer (2xx or 4xx)")
        return status, text

    def _exchange(self, method: str, path: str, data: Optional[bytes],
                  headers: dict[str, str]) -> tuple[int, str, bytes]:
        """One request on a connection of its own: the answer's status, Location and body.

        A timer shuts the socket down at the deadline, ending whatever read or
        write is under way: a socket's timeout bounds each read, not the answer.
        """
        scheme, host, port = self._connect
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = kind(host, port, timeout=self.timeout)
        expired = threading.Event()
        held: list[socket.socket] = []  # the connection lets go of its socket once answered

        def expire() -> None:
            expired.set()
            for sock in held or [connection.sock]:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

        late = DeployFailed(f"eKuiper at {self.url} did not answer {method} {path} within "
                            f"{self.timeout:g} s (--request-timeout sets the bound)")
        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            try:
                connection.connect()
            except OSError as err:
                if expired.is_set():
                    raise late from None
                raise DeployFailed(f"cannot reach eKuiper at {self.url}: {_reason(err)}; is it "
                                   "running there?") from None
            held.append(connection.sock)
            if expired.is_set():  # before the socket was there to shut down
                raise late
            connection.request(method, self._prefix + path, body=data, headers=headers)
            with connection.getresponse() as answer:
                text = self._read(answer, method, path)
            timer.cancel()
            if expired.is_set():  # the end of the answer may be the shutdown's
                raise late
            return answer.status, answer.getheader("Location") or "", text
        except (OSError, http.client.HTTPException) as err:
            if expired.is_set():
                raise late from None
            raise DeployFailed(f"eKuiper at {self.url} broke off {method} {path} "
                               f"({_reason(err)}); is that eKuiper's REST address?") from None
        finally:
            timer.cancel()
            connection.close()

    def _read(self, answer: http.client.HTTPResponse, method: str, path: str) -> bytes:
        """The answer's body; refused, unread, beyond :data:`MAX_ANSWER` bytes."""
        too_big = DeployFailed(f"eKuiper at {self.url} answered {method} {path} with more than "
                               f"{MAX_ANSWER} bytes, the most kuiperlite reads of one answer; "
                               "is that eKuiper's REST address?")
        if answer.length is not None and answer.length > MAX_ANSWER:
            raise too_big
        body = bytearray()
        while True:
            chunk = answer.read(1 << 16)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > MAX_ANSWER:
                raise too_big

    def json(self, path: str) -> Any:
        """The JSON eKuiper answers ``GET path`` with; None for a 404.

        Raises:
            DeployFailed: any other error, or an answer that is not JSON.
        """
        status, text = self.call("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise DeployFailed(f"eKuiper at {self.url} refused GET {path} ({status}): "
                               f"{message(text)}")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise DeployFailed(f"{self.url} answered GET {path} with something that is not "
                               f"JSON ({text[:60]!r}); is it eKuiper's REST address?") from None

    def unexpected(self, where: str, described: str, expected: str) -> DeployFailed:
        """The error for an answer of the wrong shape: ``where`` is the request."""
        return DeployFailed(f"eKuiper at {self.url} answered {where} with {described}; "
                            f"expected {expected}")

    def field(self, answer: dict[str, Any], key: str, kind: type, expected: str,
              where: str) -> Any:
        """``answer[key]``, when it is missing, null or a ``kind``."""
        value = answer.get(key)
        if value is not None and not isinstance(value, kind):
            raise self.unexpected(where, f"{key!r} being {describe_value(value)}", expected)
        return value

    def object(self, path: str) -> Optional[dict[str, Any]]:
        """The JSON object eKuiper answers ``GET path`` with; None for a 404."""
        answer = self.json(path)
        if answer is not None and not isinstance(answer, dict):
            raise self.unexpected(f"GET {path}", describe_value(answer), "an object")
        return answer

    def plugin(self, name: str) -> Optional[dict[str, Any]]:
        """Plugin ``name``'s info, None when eKuiper holds none of that name.

        Raises:
            DeployFailed: the answer is not a plugin's info; the message names what was
                expected.
        """
        path = f"/plugins/portables/{quote(name)}"
        info = self.object(path)
        if info is not None:
            self.field(info, "version", str, "a string", f"GET {path}")
            for kind in (k.folder for k in KINDS):
                names = self.field(info, kind, list, "a list of names", f"GET {path}")
                for symbol in names or []:
                    if not isinstance(symbol, str):
                        raise self.unexpected(f"GET {path}", f"{kind!r} holding "
                                              f"{describe_value(symbol)}", "a list of names")
        return info

    def status(self, name: str) -> Optional[dict[str, Any]]:
        """Plugin ``name``'s process status (``status``, ``errMsg``, ``refCount``); None
        when eKuiper holds none.

        Raises:
            DeployFailed: the answer is not a status; the message names what was expected.
        """
        path = f"/plugins/portables/{quote(name)}/status"
        status = self.object(path)
        if status is not None:
            for key, kind, expected in (("status", str, "a string"), ("errMsg", str, "a string"),
                                        ("refCount", dict, "an object of rule ids")):
                self.field(status, key, kind, expected, f"GET {path}")
        return status

    def function_args(self) -> Optional[dict[str, int]]:
        """Each installed function's number of arguments, from ``GET /metadata/functions``;
        None when eKuiper does not describe its functions."""
        try:
            groups = self.json("/metadata/functions")
        except DeployFailed:
            return None
        if not isinstance(groups, list):
            return None
        return function_args(groups)

    def upload(self, zip_path: Path) -> str:
        """Upload the zip as eKuiper's UI does (``POST /config/uploads``); the path
        eKuiper saved it at."""
        boundary = uuid.uuid4().hex
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="uploadFile"; '
                f'filename="{zip_path.name}"\r\nContent-Type: application/zip\r\n\r\n')
        data = head.encode() + zip_path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        status, text = self.call("POST", "/config/uploads", data=data,
                                 media=f"multipart/form-data; boundary={boundary}")
        if status != 201:
            raise DeployFailed(f"eKuiper at {self.url} refused the upload of {zip_path.name} "
                               f"({status}): {message(text)}")
        path = html.unescape(text.decode("utf-8", "replace")).strip()
        if not path or "\n" in path:
            raise self.unexpected("POST /config/uploads", repr(text[:60]),
                                  f"the path it saved {zip_path.name} at")
        return path


def _reason(err: BaseException) -> str:
    """Why a connection failed, in words: the system's, else the error's own."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def message(text: bytes) -> str:
    """eKuiper's error text on one line: the ``message`` of its JSON error, else the
    text itself; lines (an install.sh's output) are joined with " | "."""
    decoded = text.decode("utf-8", "replace").strip()
    message = decoded[:2000] or "no message"
    with contextlib.suppress(ValueError, RecursionError):
        body = json.loads(decoded)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        elif isinstance(body, dict) and isinstance(body.get("error"), str):
            message = body["error"]
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())


def function_args(groups: list[Any]) -> dict[str, int]:
    """Function name to number of arguments, from function metadata files' contents."""
    found: dict[str, int] = {}
    for group in groups:
        functions = group.get("functions") if isinstance(group, dict) else None
        for entry in functions if isinstance(functions, list) else []:
            if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get("args"), list)):
                found[entry["name"]] = len(entry["args"])
    return found

