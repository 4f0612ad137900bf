"""The plugin's first process keeps the process that runs user code alive.

eKuiper restarts a dead plugin only when one of its sources or sinks
starts, so a plugin whose rules use only its functions stays dead, and user
code can kill a process in ways no exception handler sees: ``os._exit``, a
crash in a C extension, the OOM killer. So the process eKuiper starts (and
watches) forks a *worker* before it has opened any socket or started any
thread, and only supervises it: the worker serves the plugin, and tells the
supervisor over a pipe every start it accepted and every stop. When the
worker dies without saying goodbye, the supervisor forks a new one at once,
which replays those starts and reopens every function's channel. A worker
that leaves idle to give its memory back (see :mod:`kuiperlite.serve.recycling`)
says so first, and a fresh one is forked the same way, with nothing to
replay and nothing logged as an error.

Started as ``python -m kuiperlite run`` (as eKuiper runs a packaged
plugin), the worker is forked before the runtime or the plugin is
imported, and imports them itself: the supervisor stays small, and pages
it shares with the worker are few. A worker that dies before it has loaded
the plugin is not replaced (a new one would die the same way).

A page of memory shared by both (:class:`InFlight`) says which function
call or sink message a worker had in hand when it died; the new worker
answers that call, when eKuiper sends it again, and that message with an
error instead of running them again: they may be what killed it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Callable, NamedTuple, NoReturn, Optional, Union

from ..errors import KuiperliteError

if TYPE_CHECKING:
    import logging

# Frames on the pipe from worker to supervisor: a kind byte, a length, data.
_HEAD = struct.Struct("<cI")
START, STOP, EXIT, NAME, RECYCLE = b"S", b"T", b"X", b"N", b"R"
_SLOT = struct.Struct("<i")
_EXIT = struct.Struct("<i")

# The page: per function 8 bytes (a flag and the CRC of the request in
# hand) from its start, one flag byte per sink instance slot from its end.
_FUNCTION = struct.Struct("<BxxxI")
# The shared page is made before the worker knows its functions; only the
# parts of it in use take memory.
PAGE = 1 << 20
# The sink slots of a page that is not shared.
SLOTS = 1024


class Replay(NamedTuple):
    """A start the worker accepted, to replay in its successor."""

    key: str
    slot: int
    command: bytes


class InFlight:
    """What a worker has in hand, in memory it shares with its successors.

    Function ``i`` marks a request with :meth:`function_begin` and clears it
    with :meth:`function_end`; a sink marks its slot (``page[slot] = 1``)
    while it collects a message it owes an ack for.

    Args:
        functions: the plugin's number of functions.
        page: the page shared with the supervisor (:func:`shared_page`);
            without one, a page of this process alone.

    Raises:
        KuiperliteError: the page cannot hold a mark for every function.
    """

    def __init__(self, functions: int, page: Optional[mmap.mmap] = None) -> None:
        floor = functions * _FUNCTION.size
        self.page: Union[bytearray, mmap.mmap] = bytearray(floor + SLOTS) if page is None else page
        if floor >= len(self.page):
            most = len(self.page) // _FUNCTION.size - 1
            raise KuiperliteError(f"A plugin can have at most {most} functions; this one has "
                                  f"{functions}.")
        self.functions = functions
        self._floor = floor
        self._next = len(self.page) - 1  # this slot and those below it were never taken
        self._free: list[int] = []  # slots taken and released
        self._lock = threading.Lock()

    def function_begin(self, index: int, request: bytes) -> None:
        _FUNCTION.pack_into(self.page, index * _FUNCTION.size, 1, zlib.crc32(request))

    def function_end(self, index: int) -> None:
        self.page[index * _FUNCTION.size] = 0

    def function_pending(self, index: int) -> Optional[int]:
        """The CRC of the request function ``index`` had in hand when its worker died."""
        flag, crc = _FUNCTION.unpack_from(self.page, index * _FUNCTION.size)
        return crc if flag else None

    def calls_in_hand(self) -> bool:
        """Whether any function has a request in hand."""
        return any(self.page[i * _FUNCTION.size] for i in range(self.functions))

    def take_slot(self, slot: Optional[int] = None) -> int:
        """A sink slot: the given one (a replayed start keeps its own), else a free one.

        Returns -1 when none is left; that sink then goes unmarked.
        """
        with self._lock:
            if slot is None or slot < 0:
                if self._free:
                    return self._free.pop()
                if self._next < self._floor:
                    return -1
                self._next -= 1
                return self._next + 1
            if slot in self._free:
                self._free.remove(slot)
            elif self._floor <= slot <= self._next:
                self._free.extend(range(self._next, slot, -1))
                self._next = slot - 1
            return slot

    def release_slot(self, slot: int) -> None:
        if slot >= 0:
            self.page[slot] = 0
            with self._lock:
                self._free.append(slot)


def shared_page() -> mmap.mmap:
    """A page of :data:`PAGE` bytes that a forked worker shares with this process."""
    return mmap.mmap(-1, PAGE)


class Journal:
    """The worker's end of the pipe: what it started and stopped, and its goodbye.

    Made as the worker is forked: ``since`` is then (``time.monotonic()``).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.since = time.monotonic()
        self._lock = threading.Lock()

    def forked(self) -> None:
        """In a process the worker forked (user code's ``multiprocessing``): close the pipe."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        self._lock = threading.Lock()

    def _write(self, kind: bytes, data: bytes) -> None:
        frame = _HEAD.pack(kind, len(data)) + data
        with self._lock:
            if self.fd < 0:
                return
            try:
                view = memoryview(frame)
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError:
                pass  # the supervisor is gone; the orphan check ends this worker

    def started(self, key: str, slot: int, command: bytes) -> None:
        encoded = key.encode()
        self._write(START, _SLOT.pack(slot) + _SLOT.pack(len(encoded)) + encoded + command)

    def stopped(self, key: str) -> None:
        self._write(STOP, key.encode())

    def exiting(self, code: int) -> None:
        self._write(EXIT, _EXIT.pack(code))

    def recycling(self) -> None:
        """The worker leaves to give its memory back: fork a fresh one, not a replacement."""
        self._write(RECYCLE, b"")

    def named(self, plugin: str) -> None:
        """The plugin's name, for the supervisor's log (the worker is the one that loads it)."""
        self._write(NAME, plugin.encode())


def _frames(fd: int, worker: int) -> Iterator[tuple[bytes, bytes]]:
    """Frames from the pipe until ``worker`` has exited or died.

    The end of the pipe is no sign of that: a process the worker forked
    (``multiprocessing``, say) may hold its write end long after. So the
    worker itself is watched, through a pidfd where Linux has one, else by
    asking every tenth of a second; once it is gone, what it wrote is read.
    """
    watch = _pidfd(worker)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if watch is not None:
        poller.register(watch, select.POLLIN)
    frames = _Frames()
    reading = True
    try:
        while True:
            events = dict(poller.poll(None if watch is not None else 100))
            if reading and events.get(fd):
                chunk = os.read(fd, 65536)
                if chunk:
                    yield from frames.feed(chunk)
                else:  # every write end is closed: wait for the worker alone
                    poller.unregister(fd)
                    reading = False
            if (watch in events) if watch is not None else _exited(worker):
                break
        if reading:  # what the worker wrote before it went
            os.set_blocking(fd, False)
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(fd, 65536):
                    yield from frames.feed(chunk)
    finally:
        if watch is not None:
            os.close(watch)


class _Frames:
    """Splits the bytes read from the pipe into frames."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, chunk: bytes) -> Iterator[tuple[bytes, bytes]]:
        buffer = self.buffer + chunk
        while len(buffer) >= _HEAD.size:
            kind, size = _HEAD.unpack_from(buffer)
            if len(buffer) < _HEAD.size + size:
                break
            yield kind, buffer[_HEAD.size:_HEAD.size + size]
            buffer = buffer[_HEAD.size + size:]
        self.buffer = buffer


def _pidfd(pid: int) -> Optional[int]:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3 and later), else None."""
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None


def _exited(pid: int) -> bool:
    """Whether the child ``pid`` has exited (it stays to be reaped by ``waitpid``)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _record(kind: bytes, data: bytes, starts: dict[str, Replay]) -> Optional[int]:
    """Apply one frame to the record of starts; the exit code for a goodbye."""
    if kind == START:
        slot = _SLOT.unpack_from(data)[0]
        size = _SLOT.unpack_from(data, 4)[0]
        key = data[8:8 + size].decode()
        starts[key] = Replay(key, slot, data[8 + size:])
    elif kind == STOP:
        starts.pop(data.decode(), None)
    elif kind == EXIT:
        return int(_EXIT.unpack(data)[0])
    return None


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker the moment its supervisor dies (Linux).

    eKuiper kills a plugin with SIGKILL when it deletes or updates it, and
    then starts the new one on the same control channel: a worker living on
    would take its commands.
    """
    try:
        import ctypes  # only here: a few milliseconds, paid after the handshake

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the runtime's orphan check ends the worker
    if os.getppid() != parent:
        os._exit(1)  # the supervisor died before the kernel was told


def can_fork() -> Optional[str]:
    """None when this process can fork a worker, else why not."""
    if not hasattr(os, "fork"):
        return "this platform cannot fork"
    if threading.active_count() > 1:
        names = ", ".join(t.name for t in threading.enumerate()
                          if t is not threading.current_thread())
        return (f"threads were started before kuiperlite.run() ({names}), and a fork keeps "
                "none of them; start them in a symbol instead")
    return None


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"was killed by signal {number} ({name})"
    return f"exited with code {os.WEXITSTATUS(status)} without stopping its rules"


def _exit_code(stop: SystemExit) -> int:
    """The exit code of a ``SystemExit``, its message said as the interpreter says it."""
    if stop.code is None or isinstance(stop.code, int):
        return stop.code or 0
    print(stop.code, file=sys.stderr)
    return 1


def exit_now(code: int) -> NoReturn:
    """Flush the output and leave at once.

    Threads still blocked in nng calls (keepalive receives, user code
    that ignores its stop) must not hold the process or hang interpreter
    shutdown: every instance has been stopped by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


Work = Callable[[Journal, mmap.mmap, list[Replay], Callable[[], None]], int]


def _log(plugin: str) -> logging.Logger:
    """The log, set up as the worker's is: the supervisor has it only once it has news."""
    from . import logs

    if not logs.configured():
        logs.configure(plugin)
    return logs.log


def supervise(work: Work) -> int:
    """Run ``work`` in a forked worker, and fork a new one whenever it dies.

    Args:
        work: serves the plugin in the worker and returns the exit code. It
            is given the journal, the in-flight page (:class:`InFlight`
            wraps it), the starts to replay, and a function it calls once
            it is serving (the worker then dies with its supervisor).

    Returns:
        The exit code of the worker that ended on purpose.
    """
    page = shared_page()
    starts: dict[str, Replay] = {}
    stopping: list[int] = []
    worker = 0
    plugin = ""

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        if worker:
            try:
                os.kill(worker, signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    gc.freeze()  # objects stay put, so the pages the worker shares stay shared
    deaths: list[float] = []
    while True:
        read_end, write_end = os.pipe()
        worker = os.fork()
        if worker == 0:
            os.close(read_end)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            journal = Journal(write_end)
            os.register_at_fork(after_in_child=journal.forked)
            result = 1
            supervisor = os.getppid()
            try:
                result = work(journal, page, list(starts.values()),
                              functools.partial(die_with_parent, supervisor))
            except SystemExit as stop:
                result = _exit_code(stop)
            except BaseException:
                sys.excepthook(*sys.exc_info())
            finally:
                journal.exiting(result)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(result)
        os.close(write_end)
        started = time.monotonic()
        code: Optional[int] = None
        recycled = False
        for kind, data in _frames(read_end, worker):
            if kind == NAME:
                plugin = data.decode()
            recycled = recycled or kind == RECYCLE
            said = _record(kind, data, starts)
            if said is not None:
                code = said
        os.close(read_end)
        _, status = os.waitpid(worker, 0)
        if stopping:
            return code or 0
        if recycled:
            continue
        if code is not None:
            return code
        if not plugin:  # it died loading the plugin, as a new one would
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        deaths = [t for t in deaths if time.monotonic() - t < 10] + [time.monotonic()]
        pause = 0.0 if len(deaths) == 1 else min(5.0, 0.1 * 2 ** (len(deaths) - 2))
        _log(plugin).error(
            "the plugin's worker process %d %s after %.1f s; starting a new one%s, which "
            "replays %d starts", worker, _describe(status), time.monotonic() - started,
            f" in {pause:g} s" if pause else "", len(starts))
        resume = time.monotonic() + pause
        while time.monotonic() < resume and not stopping:
            time.sleep(0.05)
        if stopping:
            return 0
