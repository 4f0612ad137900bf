"""``deploy``: from a plugin file or zip to an installed plugin.

``deploy TARGET --into DIR`` installs into a folder laid out as eKuiper's
(:mod:`kuiperlite.dev.installer`). TARGET is a ``.zip``, or a plugin's
``.py`` file, packaged first as ``package`` does, into a temporary folder.

``deploy TARGET --url URL`` installs into a running eKuiper through its REST
API, as eKuiper's own UI does: the zip, once it passes the installer's
checks (it is not run), is uploaded with ``POST /config/uploads`` (eKuiper
saves it under ``data/uploads``, the one place it installs ``file://`` zips
from), then registered with ``POST /plugins/portables`` (``PUT
/plugins/portables/{name}`` when eKuiper holds it already) and ``file``
pointing at the uploaded path; deploy then polls
``GET /plugins/portables/{name}/status`` until it is ``running`` or
``error``. An upgrade is refused when a symbol of the installed plugin
disappears, or a function's number of arguments changes (read from
``GET /metadata/functions`` when eKuiper answers it), unless forced.

``status NAME --url URL`` and ``undeploy NAME --url URL`` read and delete
an installed plugin; undeploy refuses while rules use it (see
:func:`rules_using`), unless forced.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import math
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

from ..declare.hints import describe_value
from ..declare.kinds import FUNCTION, KINDS, SINK
from ..errors import KuiperliteError
from ..protocol import layout
from .installer import INSTALL_TIMEOUT, Installed, InstallFailed, PluginZip, install


@contextlib.contextmanager
def plugin_zip(target: str, *, include: Iterable[str] = (),
               exclude: Iterable[str] = ()) -> Iterator[Path]:
    """The zip to deploy: ``target`` itself, or the zip ``package`` builds from it,
    in a temporary folder removed on exit.

    Raises:
        DefinitionError, PluginError: the plugin file cannot be loaded or packaged.
    """
    if target.endswith(".zip"):
        yield Path(target)
        return
    from ..bundle import package
    from ..declare.plugin import load

    with tempfile.TemporaryDirectory(prefix="kuiperlite-deploy-") as folder:
        yield package.build(load(target), folder, include=include, exclude=exclude)


def deploy_into(target: str, into: str, *, run_script: bool = True, force: bool = False,
                shell_paras: Sequence[str] = (), include: Iterable[str] = (),
                exclude: Iterable[str] = (), install_timeout: float = INSTALL_TIMEOUT,
                report: Callable[[str], None] = print) -> Installed:
    """Install ``target`` under the folder ``into`` as eKuiper's installer does.

    Raises:
        InstallFailed: the zip fails a check, the plugin exists without ``force``,
            or install.sh failed.
    """
    base = Path(into).resolve()
    with plugin_zip(target, include=include, exclude=exclude) as zip_path:
        done = install(str(zip_path), str(base), shell_paras=shell_paras,
                       run_script=run_script, force=force, install_timeout=install_timeout)
    report(f"installed plugin {done.name} into {done.plugin_dir} "
           f"({len(done.files)} files; symbol metadata in {base / 'etc'})")
    if done.install_seconds is not None:
        report(f"install.sh finished in {done.install_seconds:.1f} s")
    elif not run_script and (done.plugin_dir / "install.sh").exists():
        report("install.sh not run (--no-install)")
    return done


TOKEN_ENV = "KUIPERLITE_EKUIPER_TOKEN"
STATUS_WAIT = 30.0  # seconds deploy waits for the plugin to run
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
                               f"token ({_message(text)}); pass --token or set {TOKEN_ENV}")
        if status >= 500:
            raise DeployFailed(f"eKuiper at {self.url} failed on {method} {path} ({status}): "
                               f"{_message(text)}")
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
                               f"{_message(text)}")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise DeployFailed(f"{self.url} answered GET {path} with something that is not "
                               f"JSON ({text[:60]!r}); is it eKuiper's REST address?") from None

    def unexpected(self, where: str, what: str, expected: str) -> DeployFailed:
        """The error for an answer of the wrong shape: ``where`` is the request."""
        return DeployFailed(f"eKuiper at {self.url} answered {where} with {what}; "
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
        return _function_args(groups)

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
                               f"({status}): {_message(text)}")
        path = html.unescape(text.decode("utf-8", "replace")).strip()
        if not path or "\n" in path:
            raise self.unexpected("POST /config/uploads", repr(text[:60]),
                                  f"the path it saved {zip_path.name} at")
        return path


def _reason(err: BaseException) -> str:
    """Why a connection failed, in words: the system's, else the error's own."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _message(text: bytes) -> str:
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


def _function_args(groups: list[Any]) -> dict[str, int]:
    """Function name to number of arguments, from function metadata files' contents."""
    found: dict[str, int] = {}
    for group in groups:
        functions = group.get("functions") if isinstance(group, dict) else None
        for entry in functions if isinstance(functions, list) else []:
            if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get("args"), list)):
                found[entry["name"]] = len(entry["args"])
    return found


def _symbols(info: dict[str, Any]) -> dict[str, list[str]]:
    return {kind.folder: list(info.get(kind.folder) or []) for kind in KINDS}


def breaking_changes(installed: dict[str, Any], new: dict[str, Any],
                     old_args: Optional[dict[str, int]], new_args: dict[str, int]) -> list[str]:
    """What upgrading from ``installed`` to ``new`` would break for rules: symbols
    that disappear, functions whose number of arguments changes."""
    broken = []
    old_symbols, new_symbols = _symbols(installed), _symbols(new)
    for kind in KINDS:
        for symbol in old_symbols[kind.folder]:
            if symbol not in new_symbols[kind.folder]:
                broken.append(f"{kind.word} {symbol} disappears")
    for symbol in new_symbols[FUNCTION.folder]:
        if (old_args is not None and symbol in old_symbols[FUNCTION.folder] and symbol in old_args
                and symbol in new_args and old_args[symbol] != new_args[symbol]):
            broken.append(f"function {symbol} takes {new_args[symbol]} arguments instead of "
                          f"{old_args[symbol]}")
    return broken


def _checked(zip_path: Path) -> tuple[str, dict[str, Any], dict[str, int]]:
    """The plugin name, json and function argument counts of a zip passing eKuiper's
    installer checks (it is not run)."""
    try:
        with PluginZip.open(zip_path) as plugin:
            plugin.scan()
            info = plugin.plugin_json()
            plugin.required()
            groups = []
            for symbol in info.get(FUNCTION.folder) or []:
                entry = plugin.entries.files.get(layout.zip_metadata(FUNCTION, symbol))
                if entry is not None:
                    with contextlib.suppress(ValueError, InstallFailed):
                        groups.append(json.loads(plugin.read(entry)))
            return plugin.name, info, _function_args(groups)
    except InstallFailed as err:
        raise DeployFailed(f"{zip_path.name} fails eKuiper's installer checks: {err}") from None


def deploy_url(target: str, url: str, *, token: Optional[str] = None,
               shell_paras: Sequence[str] = (), force: bool = False,
               include: Iterable[str] = (), exclude: Iterable[str] = (),
               wait: float = STATUS_WAIT, timeout: float = REQUEST_TIMEOUT,
               report: Callable[[str], None] = print) -> None:
    """Upload the plugin to the eKuiper at ``url``, install or upgrade it, and wait until
    it runs.

    Raises:
        DeployFailed: a step failed; the message says what state the plugin is in.
    """
    client = EKuiper(url, token, timeout)
    with plugin_zip(target, include=include, exclude=exclude) as zip_path:
        name, info, new_args = _checked(zip_path)
        installed = client.plugin(name)
        if installed is not None and not force:
            broken = breaking_changes(installed, info, client.function_args(), new_args)
            if broken:
                raise DeployFailed(f"upgrading plugin {name} on {client.url} would break rules "
                                   f"that use it: {'; '.join(broken)}; nothing was changed "
                                   "(pass --force to upgrade anyway)")
        path = client.upload(zip_path)
    report(f"uploaded {zip_path.name} to {path}")
    body = {"name": name, "file": f"file://{path}", "shellParas": list(shell_paras)}
    if installed is None:
        status, text = client.call("POST", "/plugins/portables", body=body)
    else:
        status, text = client.call("PUT", f"/plugins/portables/{quote(name)}", body=body)
    if status >= 300:
        left = ("; eKuiper's update removes the old version first, so plugin "
                f"{name} is not installed now" if installed is not None else "")
        raise DeployFailed(f"eKuiper refused to install plugin {name} ({status}): "
                           f"{_message(text)}{left}")
    report(text.decode("utf-8", "replace").strip())
    deadline = time.monotonic() + wait
    while True:
        state = client.status(name) or {}
        if state.get("status") == "running":
            break
        if state.get("status") == "error" or time.monotonic() > deadline:
            why = state.get("errMsg") or f"status {state.get('status', 'unknown')!r} after " \
                                         f"{wait:g} s"
            raise DeployFailed(f"plugin {name} is installed on {client.url} but does not run: "
                               f"{why}; fix it and deploy again with --force, or undeploy it")
        time.sleep(0.2)
    symbols = ", ".join(f"{kind} {', '.join(names)}" for kind, names in _symbols(info).items()
                        if names)
    report(f"plugin {name} {'upgraded' if installed else 'installed'} and running on "
           f"{client.url}: {symbols}")


def rules_using(client: EKuiper, name: str, info: dict[str, Any],
                status: Optional[dict[str, Any]]) -> list[str]:
    """The rules that use plugin ``name``, as far as eKuiper's REST API tells.

    Two sources, joined: the rules eKuiper counts in the plugin's status
    (``refCount``: rules that started one of its symbols), and the rules of
    ``GET /rules`` whose ``GET /rules/{id}`` calls one of its functions in
    its ``sql`` or names one of its sinks in its ``actions``. A rule reading
    one of its sources through a stream shows in ``refCount`` while it runs.
    An eKuiper without ``/rules`` (serve) has no rules.
    """
    found = set((status or {}).get("refCount") or {})
    listed = client.json("/rules")
    if listed is not None and not isinstance(listed, list):
        raise client.unexpected("GET /rules", describe_value(listed), "a list of rules")
    symbols = _symbols(info)
    calls = [re.compile(rf"\b{re.escape(f)}\s*\(", re.IGNORECASE) for f in symbols[FUNCTION.folder]]
    for rule in listed or []:
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rule_id, str):
            what = (f"a rule whose 'id' is {describe_value(rule_id)}" if isinstance(rule, dict)
                    else f"the rule {describe_value(rule)}")
            raise client.unexpected("GET /rules", what, "rules as objects with a string 'id'")
        if rule_id in found:
            continue
        path = f"/rules/{quote(rule_id)}"
        detail = client.object(path)
        if detail is None:  # deleted meanwhile
            continue
        sql = client.field(detail, "sql", str, "a string", f"GET {path}") or ""
        actions = client.field(detail, "actions", list, "a list of objects", f"GET {path}")
        sinks: set[str] = set()
        for action in actions or []:
            if not isinstance(action, dict):
                raise client.unexpected(f"GET {path}", f"'actions' holding "
                                        f"{describe_value(action)}", "a list of objects")
            sinks.update(action)
        if any(call.search(sql) for call in calls) or sinks & set(symbols[SINK.folder]):
            found.add(rule_id)
    return sorted(found)


def _installed(client: EKuiper, name: str) -> dict[str, Any]:
    info = client.plugin(name)
    if info is None:
        raise DeployFailed(f"eKuiper at {client.url} holds no portable plugin {name}")
    return info


def show_status(name: str, url: str, *, token: Optional[str] = None,
                timeout: float = REQUEST_TIMEOUT, report: Callable[[str], None] = print) -> None:
    """Report plugin ``name``'s status, symbols and the rules using it.

    Raises:
        DeployFailed: eKuiper cannot be asked, or holds no such plugin.
    """
    client = EKuiper(url, token, timeout)
    info = _installed(client, name)
    status = client.status(name) or {}
    state = status.get("status", "unknown")
    error = f" ({status['errMsg']})" if status.get("errMsg") else ""
    report(f"plugin {name} {info.get('version') or ''}".rstrip() + f" on {client.url}: "
           f"{state}{error}")
    for kind, names in _symbols(info).items():
        report(f"  {kind}: {', '.join(names) if names else '-'}")
    rules = rules_using(client, name, info, status)
    report(f"  rules using it: {', '.join(rules) if rules else 'none'}")


def undeploy(name: str, url: str, *, token: Optional[str] = None, force: bool = False,
             timeout: float = REQUEST_TIMEOUT, report: Callable[[str], None] = print) -> None:
    """Delete plugin ``name`` from eKuiper; refused while rules use it, unless ``force``.

    Raises:
        DeployFailed: eKuiper cannot be asked, holds no such plugin, rules use
            it, or eKuiper refused the delete.
    """
    client = EKuiper(url, token, timeout)
    info = _installed(client, name)
    rules = rules_using(client, name, info, client.status(name))
    if rules and not force:
        raise DeployFailed(f"rules use plugin {name}: {', '.join(rules)}; stop or delete them "
                           "first (or pass --force to delete it anyway)")
    status, text = client.call("DELETE", f"/plugins/portables/{quote(name)}")
    if status >= 300:
        raise DeployFailed(f"eKuiper refused to delete plugin {name} ({status}): "
                           f"{_message(text)}")
    report(text.decode("utf-8", "replace").strip())
