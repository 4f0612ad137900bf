"""A plugin's output: whole lines on stdout, where eKuiper collects it, and a file under conda.

eKuiper copies a plugin's stdout and stderr into its own log. Lines from
many threads (user prints, kuiperlite's log) must not cut into each other,
and must arrive as they are written, also when eKuiper starts the plugin
without ``python -u``. Under conda eKuiper runs ``conda run``, which holds
all output back until the plugin exits, so there the log also goes to a
file that can be followed live.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from typing import Optional, TextIO

from .. import settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"

log = logging.getLogger("kuiperlite")


class LineWriter(io.TextIOBase):
    """A text stream that writes each line whole, whichever thread writes it.

    A thread's text waits in its own buffer until it ends a line; complete
    lines go out together, under a lock shared by stdout and stderr, then
    the stream is flushed. ``flush()`` sends an unfinished line as it is.
    """

    _lock = threading.Lock()

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._local = threading.local()

    def write(self, text: str) -> int:
        pending = getattr(self._local, "pending", "") + text
        head, newline, rest = pending.rpartition("\n")
        self._local.pending = rest
        if newline:
            self._out(head + newline)
        return len(text)

    def flush(self) -> None:
        pending = getattr(self._local, "pending", "")
        self._local.pending = ""
        self._out(pending)

    def _out(self, text: str) -> None:
        with self._lock:
            if text:
                self.stream.write(text)
            self.stream.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


def log_file(plugin: str) -> Optional[str]:
    """The file the plugin also logs to: ``KUIPERLITE_LOG_FILE``, else one under conda.

    Under conda it is ``plugin_<name>.log`` in eKuiper's log folder (the
    temporary folder when there is none). An empty ``KUIPERLITE_LOG_FILE``
    turns the file off.
    """
    named = settings.LOG_FILE.read()
    if named is not None:
        return named or None
    if not (os.environ.get("CONDA_PREFIX") or os.environ.get("CONDA_DEFAULT_ENV")):
        return None
    import tempfile  # only under conda (and pathlib, which locations uses)

    from .locations import ekuiper_log_dir

    folder = ekuiper_log_dir() or tempfile.gettempdir()
    return os.path.join(folder, f"plugin_{plugin}.log")


def configured() -> bool:
    """Whether :func:`configure` ran in this process."""
    return isinstance(sys.stdout, LineWriter)


def configure(plugin: str) -> None:
    """Send stdout and stderr out line by line, log to stdout, and to :func:`log_file`."""
    if not isinstance(sys.stdout, LineWriter):
        sys.stdout = LineWriter(sys.stdout)
    if not isinstance(sys.stderr, LineWriter):
        sys.stderr = LineWriter(sys.stderr)
    root = logging.getLogger()
    formatter = logging.Formatter(LOG_FORMAT)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    path = log_file(plugin)
    if path:
        try:
            file_handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as err:
            log.warning("cannot log to %s (%s); logging to stdout only", path, err)
            path = None
        else:
            file_handler.setFormatter(formatter)
            root.addHandler(file_handler)
    root.setLevel(settings.LOG_LEVEL.read())
    if path:
        log.info("plugin %s also logs to %s", plugin, path)
