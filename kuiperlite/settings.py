"""Every ``KUIPERLITE_*`` environment variable, in one table: its name, its
default, the values it takes, what it does, and who reads it.

Code reads one with ``settings.KEEPALIVE.read()``: a value that does not
parse is a warning in the log and the default, never a crash. docs/running.md's
table of environment variables is :func:`table`, and a test holds them
equal. Code that sets one for a process it starts names it as
``settings.IPC_DIR.name``.

Like :mod:`kuiperlite.errors`, this module imports nothing of kuiperlite.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")

log = logging.getLogger("kuiperlite")

# Who reads a variable.
PLUGIN = "plugin"  # a running plugin
TOOLS = "tools"  # the command line and the embedded host
INSTALL = "install.sh"  # the script a plugin's zip installs its requirements with


class Setting(Generic[T]):
    """One environment variable.

    Args:
        name: the variable, ``KUIPERLITE_KEEPALIVE``.
        default: its value when unset or not valid.
        parse: text to value; raises ValueError for text it does not take.
        takes: the values it takes, as the warning and the docs say them.
        doc: what it does, one line.
        readers: who reads it: :data:`PLUGIN`, :data:`TOOLS`, :data:`INSTALL`.
        shown: the default as the docs say it, when ``default`` does not say it.
    """

    __slots__ = ("name", "default", "parse", "takes", "doc", "readers", "shown")

    def __init__(self, name: str, default: T, parse: Callable[[str], T], takes: str, doc: str,
                 readers: tuple[str, ...] = (PLUGIN,), shown: Optional[str] = None) -> None:
        self.name = name
        self.default = default
        self.parse = parse
        self.takes = takes
        self.doc = doc
        self.readers = readers
        self.shown = shown if shown is not None else _shown(default)

    def read(self, environ: Optional[Mapping[str, str]] = None) -> T:
        """Its value now; one that does not parse is a warning and the default.

        Args:
            environ: the variables to read it from (default: ``os.environ``).
        """
        raw = (os.environ if environ is None else environ).get(self.name)
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError:
            if self.default is None:  # what unset means is the docs' to say, not one value
                log.warning("%s=%r is not %s; it is ignored, as if unset", self.name, raw,
                            self.takes)
            else:
                log.warning("%s=%r is not %s; using %s", self.name, raw, self.takes, self.shown)
            return self.default

    def __repr__(self) -> str:
        return f"Setting({self.name!r})"


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def seconds(raw: str) -> float:
    """A positive number of seconds."""
    value = float(raw)
    if not 0 < value < math.inf:
        raise ValueError(raw)
    return value


def number(raw: str) -> float:
    """A number, 0 or more."""
    value = float(raw)
    if not 0 <= value < math.inf:
        raise ValueError(raw)
    return value


def text(raw: str) -> str:
    """Any text, the empty one included."""
    return raw


def folder(raw: str) -> str:
    """A folder's path: any text but the empty one."""
    if not raw:
        raise ValueError(raw)
    return raw


def flag(raw: str) -> bool:
    """``1`` (on) or ``0`` (off)."""
    if raw not in ("0", "1"):
        raise ValueError(raw)
    return raw == "1"


def generation(raw: str) -> int:
    """An eKuiper generation, ``1`` or ``2``, or ``0`` for one learned from the commands."""
    if raw.strip() not in ("0", "1", "2"):
        raise ValueError(raw)
    return int(raw)


def level(raw: str) -> str:
    """A log level's name, in any case."""
    name = raw.strip().upper()
    if not isinstance(logging.getLevelName(name), int):  # the number for a known name
        raise ValueError(raw)
    return name


LOG_LEVEL = Setting(
    "KUIPERLITE_LOG_LEVEL", "INFO", level, "a log level (DEBUG, INFO, WARNING or ERROR)",
    "the plugin's log level")
LOG_FILE: Setting[Optional[str]] = Setting(
    "KUIPERLITE_LOG_FILE", None, text, "a file's path (empty: no file)",
    "also log to this file", shown="unset: under conda, `plugin_<name>.log` in eKuiper's "
    "log folder")
KEEPALIVE = Setting(
    "KUIPERLITE_KEEPALIVE", 5.0, seconds, "a positive number of seconds",
    "seconds without a command before the plugin sends its handshake again (5 in the "
    "official SDKs)")
ORPHAN_GRACE = Setting(
    "KUIPERLITE_ORPHAN_GRACE", 3.0, seconds, "a positive number of seconds",
    "seconds the control channel may have no peer before the plugin exits")
EXIT_GRACE = Setting(
    "KUIPERLITE_EXIT_GRACE", 10.0, seconds, "a positive number of seconds",
    "seconds closing may take at exit before the plugin leaves anyway")
OPEN_TIMEOUT = Setting(
    "KUIPERLITE_OPEN_TIMEOUT", 10.0, seconds, "a positive number of seconds",
    "seconds a start waits for its connections to open")
EKUIPER = Setting(
    "KUIPERLITE_EKUIPER", 0, generation, "1 or 2 (0: learned from the commands)",
    "the eKuiper generation serving the plugin; set 1 for a 1.x serving a plugin without "
    "sources", shown="0")
IPC_DIR = Setting(
    "KUIPERLITE_IPC_DIR", "/tmp", folder, "a folder",
    "the folder of the socket files (eKuiper's is /tmp); the embedded host sets it for the "
    "plugins it launches", readers=(PLUGIN, TOOLS))
STATE_DIR: Setting[Optional[str]] = Setting(
    "KUIPERLITE_STATE_DIR", None, folder, "a folder",
    "the folder of the SQLite state stores", readers=(PLUGIN, TOOLS),
    shown="unset: `<eKuiper>/data/kuiperlite` under eKuiper, else "
    "`~/.local/state/kuiperlite`")
STATE_URL: Setting[Optional[str]] = Setting(
    "KUIPERLITE_STATE_URL", None, text, "a Redis URL, redis://host:port/db (empty: SQLite)",
    "keep ctx.state in this Redis server instead of SQLite", readers=(PLUGIN, TOOLS))
SUPERVISE = Setting(
    "KUIPERLITE_SUPERVISE", True, flag, "1 or 0",
    "0: no supervisor process; the plugin runs alone in the process eKuiper starts")
RECYCLE_MB = Setting(
    "KUIPERLITE_RECYCLE_MB", 0.0, number, "a number of MB, 0 or more",
    "MB an idle worker may grow before a fresh one takes its place (0: never)")
RECYCLE_IDLE = Setting(
    "KUIPERLITE_RECYCLE_IDLE", 30.0, seconds, "a positive number of seconds",
    "seconds with no rule running and no function call before a worker counts as idle")
EKUIPER_TOKEN: Setting[Optional[str]] = Setting(
    "KUIPERLITE_EKUIPER_TOKEN", None, text, "eKuiper's token",
    "sent as eKuiper's Authorization header by deploy, status and undeploy",
    readers=(TOOLS,))
CACHE_DIR: Setting[Optional[str]] = Setting(
    "KUIPERLITE_CACHE_DIR", None, folder, "a folder",
    "where check keeps the plugin environments it built, to use again", readers=(TOOLS,),
    shown="unset: `$XDG_CACHE_HOME/kuiperlite`, else `~/.cache/kuiperlite`")
PYTHON: Setting[Optional[str]] = Setting(
    "KUIPERLITE_PYTHON", None, folder, "an interpreter's command or path",
    "the interpreter install.sh builds the plugin's environment with, when given none",
    readers=(INSTALL,), shown="unset: python, else python3")
PIP_ARGS: Setting[Optional[str]] = Setting(
    "KUIPERLITE_PIP_ARGS", None, text, "pip options, e.g. --index-url URL",
    "extra options install.sh gives pip", readers=(INSTALL,))

ALL: tuple[Setting[Any], ...] = (
    LOG_LEVEL, LOG_FILE, KEEPALIVE, ORPHAN_GRACE, EXIT_GRACE, OPEN_TIMEOUT, EKUIPER, IPC_DIR,
    STATE_DIR, STATE_URL, SUPERVISE, RECYCLE_MB, RECYCLE_IDLE, EKUIPER_TOKEN, CACHE_DIR, PYTHON,
    PIP_ARGS)


def table() -> str:
    """The table of environment variables in docs/running.md, in markdown, from :data:`ALL`."""
    rows = ["| Variable | Default | Takes | What it does | Read by |", "|---|---|---|---|---|"]
    rows += [f"| `{s.name}` | {s.shown} | {s.takes} | {s.doc} | {', '.join(s.readers)} |"
             for s in ALL]
    return "\n".join(rows) + "\n"
