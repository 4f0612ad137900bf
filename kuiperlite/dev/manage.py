"""``serve``'s plugin management: eKuiper's portable plugin API, played locally.

What eKuiper does for ``/config/uploads`` and ``/plugins/portables``
(``internal/server/rest.go``, ``internal/server/portable_init.go``,
``internal/plugin/portable/manager.go``), in a base folder of the session's
own laid out as eKuiper's:

- an upload is saved as ``data/uploads/<file name>``; its absolute path is
  the answer, the ``file`` to register with as ``file://<path>``;
- a registration ``{"name", "file", "shellParas"}`` installs the zip with
  :mod:`kuiperlite.dev.installer` and starts the plugin as eKuiper does:
  its executable run by the python, in the plugin's folder, until the
  handshake; a plugin that does not start is removed again, and its status
  stays ``error`` with eKuiper's message;
- an update deletes, then registers; a delete stops the process and
  removes the files.

As eKuiper since late 2025 (without ``allowExternalFileAccess``), a
``file://`` is accepted only under ``data/uploads``; this host downloads
nothing, so ``http(s)://`` files are refused too. It hosts no rules: every
plugin's ``refCount`` is empty.

Every plugin name is checked by eKuiper's rule
(:func:`~kuiperlite.dev.installer.check_plugin_name`) before it becomes a
path, and an upload's file name is taken as eKuiper takes it (its last path
element). Every method raises a domain error (:class:`BadRequest`,
:class:`NotFound`) with eKuiper's message, also for what the file system
refuses; the HTTP layer gives it its status.

Reads never wait for an install: one lock guards what is installed, held
only to read or change it, and another lets one install, update or delete
run at a time, install.sh and the plugin's start included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional
from urllib.parse import unquote, urlsplit

import orjson

from ..declare.kinds import FUNCTION, KINDS
from ..errors import KuiperliteError
from ..protocol import layout
from .host import Host
from .installer import InstallFailed, check_plugin_name, install, installed_info, uninstall
from .session import BadRequest, NotFound, Session


class Plugins:
    """The plugins a local eKuiper holds, installed under ``base``.

    Args:
        base: the folder standing for eKuiper's (``data/``, ``etc/``, ``plugins/``).
        python: the interpreter that runs plugins (eKuiper's ``portable.pythonBin``).
        init_timeout: seconds a plugin has to handshake.
        log: called with a line for each change.
    """

    def __init__(self, base: str, *, python: str = sys.executable, ekuiper: int = 2,
                 init_timeout: float = 60.0,
                 log: Callable[[str], None] = print) -> None:
        self.base = Path(base).resolve()
        self.uploads = self.base / "data" / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.python = python
        self.ekuiper = ekuiper
        self.init_timeout = init_timeout
        self.log = log
        self.lock = threading.Lock()  # what is installed; held only to read or change it
        self.changing = threading.RLock()  # one install, update or delete at a time
        self.hosts: dict[str, Host] = {}
        self.infos: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}

    def receive(self, filename: str) -> Upload:
        """Begin saving an uploaded file as eKuiper does: as ``data/uploads/<name>``,
        ``<name>`` the last element of ``filename``; :meth:`Upload.keep` puts it there.

        Raises:
            BadRequest: the name cannot be a file in the uploads folder, or the file
                system refused it.
        """
        name = filename.rstrip("/").rsplit("/", 1)[-1]
        if name in ("", ".", "..") or "\x00" in name:
            raise BadRequest(f"Error saving the file: invalid file name {filename!r}: it "
                             "must end in the name of a file")
        return Upload(self.uploads / name, log=self.log)

    def uploaded(self) -> list[str]:
        """The uploaded files' absolute paths, as ``GET /config/uploads`` lists them."""
        try:
            return sorted(str(p) for p in self.uploads.iterdir())
        except OSError as err:
            raise BadRequest(f"Error reading the file upload dir: {_reason(err)}") from None

    def listing(self) -> list[dict[str, Any]]:
        """Every installed plugin's info, as ``GET /plugins/portables`` lists them."""
        with self.lock:
            return [dict(info) for _, info in sorted(self.infos.items())]

    def describe(self, name: str) -> dict[str, Any]:
        """A plugin's info: name, version, language, executable and its symbols."""
        prefix = f"describe portable plugin {name} error"
        _check_name(name, prefix)
        with self.lock:
            if name not in self.infos:
                raise NotFound(f"{prefix}: not found")
            return dict(self.infos[name])

    def status(self, name: str) -> dict[str, Any]:
        """A plugin's process status: ``refCount``, ``status`` and ``errMsg``."""
        _check_name(name, f"portable plugin {name} status error")
        with self.lock:
            status = self.statuses.get(name)
            host = self.hosts.get(name)
            if status is None:
                raise NotFound(f"portable plugin {name} not found: not found")
            if host is not None and status["status"] == "running" and not host.alive:
                status.update(status="error", errMsg=f"plugin {name} process exited")
            return dict(status, refCount=dict(status["refCount"]))

    def functions_meta(self) -> list[dict[str, Any]]:
        """The installed functions' metadata files, as ``GET /metadata/functions`` lists
        them: each ``etc/functions/<f>.json`` with its ``functions`` and their ``args``."""
        with self.lock:
            names = sorted(f for info in self.infos.values() for f in info[FUNCTION.folder] or [])
        found = []
        for name in names:
            try:
                meta = orjson.loads(layout.metadata_file(self.base, FUNCTION, name).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(meta, dict):
                found.append(meta)
        return found

    def register(self, body: dict[str, Any], action: str = "create") -> str:
        """Install and start the plugin a ``{"name", "file", "shellParas"}`` body names."""
        prefix = f"portable plugin {action} command error"
        name = body.get("name")
        uri = body.get("file")
        paras = body.get("shellParas") or []
        if not isinstance(name, str) or not name.strip(" "):
            raise BadRequest(f"{prefix}: invalid name {name}: should not be empty")
        name = _check_name(name.strip(" "), prefix)
        if not isinstance(uri, str) or not uri.endswith(".zip"):
            raise BadRequest(f"{prefix}: invalid uri {uri}")
        if not isinstance(paras, list) or not all(isinstance(p, str) for p in paras):
            raise BadRequest(f"{prefix}: shellParas must be a list of strings")
        zip_path = self._local_zip(uri, prefix)
        with self.changing:
            with self.lock:
                if name in self.infos:
                    raise BadRequest(f"{prefix}: invalid name {name}: duplicate")
            self._install(name, uri, zip_path, paras, prefix)
        return f"portable plugin {name} is {action}d"

    def update(self, name: str, body: dict[str, Any]) -> str:
        """Delete plugin ``name`` (if installed), then register the body's, as eKuiper's PUT."""
        _check_name(name, "portable plugin update command error")
        with self.changing:
            try:
                self.delete(name)
            except BadRequest:
                pass
            return self.register(body, action="update")

    def delete(self, name: str) -> str:
        """Stop plugin ``name`` and remove its files."""
        prefix = f"delete portable plugin {name} error"
        _check_name(name, prefix)
        with self.changing:
            with self.lock:
                if name not in self.infos:
                    raise BadRequest(f"{prefix}: plugin {name} not found")
                del self.infos[name]
                host = self.hosts.pop(name, None)
                self.statuses[name].update(status="stop", errMsg="")
            if host is not None:
                host.close()
            uninstall(self.base, name)
        self.log(f"deleted plugin {name}")
        return f"portable plugin {name} is deleted"

    def close(self) -> None:
        """Stop every plugin, once an install under way has ended."""
        with self.changing, self.lock:
            hosts = list(self.hosts.values())
            self.hosts.clear()
        for host in hosts:
            host.close()

    def _local_zip(self, uri: str, prefix: str) -> Path:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise BadRequest(f"{prefix}: fail to download file {uri}: serve installs only "
                             "file:// zips uploaded with POST /config/uploads")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.uploads):
            raise BadRequest(f"{prefix}: fail to download file {uri}: file access is "
                             f"allowed only under {self.uploads}")
        if not path.is_file():
            raise BadRequest(f"{prefix}: fail to download file {uri}: no such file")
        return path

    def _install(self, name: str, uri: str, zip_path: Path, paras: list[str],
                 prefix: str) -> None:
        # eKuiper downloads the file as <name>.zip: the plugin name is the zip's.
        staged = layout.plugin_zip(self.base, name)
        try:
            try:
                staged.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(zip_path, staged)
            except OSError as err:
                raise BadRequest(f"{prefix}: fail to download file {uri}: "
                                 f"{_reason(err)}") from None
            try:
                done = install(str(staged), str(self.base), shell_paras=paras)
            except (InstallFailed, OSError) as err:
                raise BadRequest(f"{prefix}: fail to install plugin: {_reason(err)}") from None
        finally:
            with contextlib.suppress(OSError):
                staged.unlink(missing_ok=True)
        info = installed_info(self.base, name) or done.info
        executable = str(done.plugin_dir / str(info["executable"]))
        status: dict[str, Any] = {"refCount": {}, "status": "initializing", "errMsg": ""}
        with self.lock:
            self.statuses[name] = status
        try:
            host = Host.launch(executable, executable=True, name=name, python=self.python,
                               env=_plugin_env(), ekuiper=self.ekuiper,
                               init_timeout=self.init_timeout)
        except (KuiperliteError, ValueError, OSError) as err:
            message = f"plugin {executable} control handshake error: {err}"
            with self.lock:
                status.update(status="error", errMsg=message)
            uninstall(self.base, name)
            raise BadRequest(f"{prefix}: fail to install plugin: {message}") from None
        with self.lock:
            self.hosts[name] = host
            status.update(status="running", errMsg="")
            self.infos[name] = {
                "name": name, "version": str(info.get("version") or ""),
                "language": info.get("language"), "executable": executable,
                **{k: info[k] for k in ("virtualEnvType", "env") if k in info},
                **{kind.folder: info.get(kind.folder) for kind in KINDS}}
        self.log(f"installed plugin {name} in {done.plugin_dir}; running (pid {host.pid})")


class Upload:
    """An uploaded file on its way to ``path``: written in a folder of its own beside
    the uploads, so a name the file system refuses fails before any byte is taken,
    and moved into place by :meth:`keep` only once the whole form has arrived.

    Raises:
        BadRequest: the file system refused the name.
    """

    def __init__(self, path: Path, log: Callable[[str], None]) -> None:
        self.path = path
        self.log = log
        self.size = 0
        self.folder: Optional[Path] = None
        self.file: Optional[BinaryIO] = None
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=".upload-", dir=path.parent.parent))
            self.file = open(self.folder / path.name, "wb")  # noqa: SIM115 - keep() closes it
        except OSError as err:
            self.discard()
            raise self._failed(err) from None

    def write(self, data: bytes) -> None:
        assert self.file is not None
        try:
            self.file.write(data)
        except OSError as err:
            raise self._failed(err) from None
        self.size += len(data)

    def keep(self) -> str:
        """Move the file into place, replacing one of its name; its absolute path."""
        assert self.file is not None
        try:
            self.file.close()
            os.replace(self.file.name, self.path)
        except OSError as err:
            raise self._failed(err) from None
        finally:
            self.discard()
        self.log(f"uploaded {self.path.name} ({self.size} bytes) to {self.path}")
        return str(self.path)

    def _failed(self, err: OSError) -> BadRequest:
        return BadRequest(f"Error saving the file: {self.path}: {err.strerror or err}")

    def discard(self) -> None:
        """Remove what was written and not kept."""
        if self.file is not None:
            self.file.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _check_name(name: str, prefix: str) -> str:
    """``name``, once eKuiper's rule for plugin names takes it."""
    try:
        return check_plugin_name(name)
    except InstallFailed as err:
        raise BadRequest(f"{prefix}: {err}") from None


def _reason(err: Exception) -> str:
    """What went wrong, as one line: an OSError's words and the path it names."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    return str(err)


def _plugin_env() -> dict[str, str]:
    """The environment without this interpreter's import path, as under eKuiper."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


class HostedPlugin:
    """The plugin a ``serve`` with a plugin file hosts, as eKuiper's management API shows it.

    It can be read (``GET /plugins/portables``, ``/plugins/portables/{name}``
    and its ``/status``, whose ``refCount`` counts the symbols serve runs per
    rule) but not installed, updated or deleted: serve hosts it from its file.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.log = session.print

    def _refuse(self, *_args: Any) -> Any:
        raise BadRequest(f"serve hosts plugin {self.session.info['name']} from its file; "
                         "start serve without a plugin file to install plugins")

    receive = register = update = delete = _refuse

    def uploaded(self) -> list[str]:
        return []

    def functions_meta(self) -> list[dict[str, Any]]:
        return list(self.session.info.get("function_metadata") or [])

    def listing(self) -> list[dict[str, Any]]:
        return [self.describe(self.session.info["name"])]

    def describe(self, name: str) -> dict[str, Any]:
        info = self.session.info
        if name != info["name"]:
            raise NotFound(f"describe portable plugin {name} error: not found")
        return {"name": name, "version": str(info.get("version") or ""), "language": "python",
                "executable": str(self.session.path),
                **{kind.folder: list(info.get(kind.folder) or []) for kind in KINDS}}

    def status(self, name: str) -> dict[str, Any]:
        if name != self.session.info["name"]:
            raise NotFound(f"portable plugin {name} not found: not found")
        alive = self.session.host.alive
        return {"refCount": self.session.rule_counts(),
                "status": "running" if alive else "error",
                "errMsg": "" if alive else f"plugin {name} process exited; it restarts on "
                                           "the next start request"}
