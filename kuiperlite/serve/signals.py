"""SIGTERM and SIGINT as a flag and a wake-up, never as code that takes a lock.

A Python signal handler runs in the main thread between two bytecodes,
possibly while that thread holds a lock (inside ``Event.wait``, a logging
handler, a queue). A handler that sets an ``Event`` or logs can then wait
for a lock its own thread holds, for ever: a burst of signals, as Ctrl-C or
``timeout`` sends to a whole process group, did that. So the handler here
only records the signal's number, and the interpreter writes a byte to a
pipe (``signal.set_wakeup_fd``) that the main thread waits on.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from typing import Optional

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Catches SIGTERM and SIGINT; the main thread learns of them from :meth:`wait`."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)

    def install(self) -> bool:
        """Catch the signals from now on; False when this is not the main thread (no signals)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._caught)
        return True

    def _caught(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signum  # an assignment takes no lock

    def wake(self) -> None:
        """Make a :meth:`wait` return now (from any thread)."""
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:  # the pipe is full: a wake-up is pending anyway
            pass

    def wait(self, timeout: float) -> Optional[int]:
        """Wait up to ``timeout`` seconds for a signal or a wake-up; the signal caught, if any."""
        if self.received is None:
            self._poll.poll(max(0, int(timeout * 1000)))
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass
        return self.received

    @property
    def name(self) -> str:
        """The caught signal's name, e.g. ``SIGTERM`` (empty while none was)."""
        return "" if self.received is None else signal.Signals(self.received).name
