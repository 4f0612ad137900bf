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
it arrives (:class:`~.server_form.Form`) and its file written to disk on the way, so
memory does not grow with its size. With a plugin file, the same paths
describe the plugin it hosts, read-only (:class:`~.manage.HostedPlugin`).

Its parts: :mod:`~kuiperlite.dev.server_handler` (the handler and the HTTP
server), :mod:`~kuiperlite.dev.server_routes` (the routes and the statuses),
:mod:`~kuiperlite.dev.server_form` (an upload's form); this module starts it.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

from ..errors import HostError
from ..serve.signals import StopSignals
from .manage import Plugins
from .server_form import Form as Form
from .server_handler import LOOPBACK, MAX_BODY, MAX_UPLOAD, PORT, REQUEST_TIMEOUT, DebugServer
from .server_handler import Handler as Handler
from .server_routes import STATUS as STATUS
from .server_routes import BodyTimeout as BodyTimeout
from .server_routes import Forbidden as Forbidden
from .server_routes import TooLarge as TooLarge
from .server_routes import Unauthorized as Unauthorized
from .server_routes import WrongMediaType as WrongMediaType
from .server_routes import WrongMethod as WrongMethod
from .server_routes import status_of as status_of
from .session import LoadFailed, Mock, Session


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


def serve(target: Optional[str], *, host: str = "127.0.0.1", port: int = PORT,
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
