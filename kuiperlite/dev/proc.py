"""Helper processes with a bound: every wait ends, and output is kept in files, not memory.

``serve`` reads a plugin's symbols and ``check`` runs a zip's ``install.sh``
this way, so that neither waits forever on code it does not control.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from typing import IO, NamedTuple, Optional

NO_KUIPERLITE = "No module named 'kuiperlite'"  # Python's words when it is not installed


def not_installed(python: str, loads: str) -> str:
    """The sentence for a Python that runs a plugin (``loads`` it) without kuiperlite."""
    return (f"kuiperlite is not installed in the Python at {python}, which loads {loads}; "
            f"install it there: {python} -m pip install kuiperlite (or pip install -e with "
            "the path of a kuiperlite checkout).")


class Finished(NamedTuple):
    """How a process ended: its exit code and the end of each of its outputs."""

    code: int
    stdout: str
    stderr: str


def run(argv: list[str], *, cwd: str, timeout: float, env: Optional[dict[str, str]] = None,
        keep: int = 64 * 1024) -> Finished:
    """Run ``argv`` to its end, for at most ``timeout`` seconds.

    The process runs in a session of its own. When it takes too long (or
    the wait is interrupted) it is killed together with every process it
    started, so nothing it began outlives the call.

    Args:
        argv: the command.
        cwd: its working folder.
        timeout: seconds it may run.
        env: its environment (default: this one).
        keep: how many bytes to keep from the end of each output.

    Raises:
        subprocess.TimeoutExpired: it ran longer than ``timeout``; it and its
            children were killed.
        OSError: it could not be started.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=True)
        try:
            code = process.wait(timeout)
        except BaseException:
            _kill_group(process)
            raise
        return Finished(code, _tail(out, keep), _tail(err, keep))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _tail(file: IO[bytes], keep: int) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - keep))
    return file.read().decode("utf-8", "replace")
