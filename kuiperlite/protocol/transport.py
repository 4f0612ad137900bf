"""nng sockets through pynng's public API: the few kinds kuiperlite opens, and
a dial, a listen and a close that each have a bound.

Only ``pynng.Push0``, ``Pull0``, ``Req0`` and ``Rep0``, their documented
options, ``send``, ``recv``, ``dial``, ``listen``, ``close`` and ``pipes``
are used. A blocking call returns with :class:`Closed` when another thread
closes its socket, which is how every wait here ends at a stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import threading
import time
from collections.abc import Iterator
from typing import Optional

import pynng
from pynng import AddressInUse, BadState, Closed, NNGException, Socket, Timeout, TryAgain

from . import wire

__all__ = ["AddressInUse", "BadState", "Closed", "NNGException", "SendGate", "Socket",
           "Timeout", "TryAgain", "batch_task_threads", "close", "dial", "listen", "ms",
           "out_of_descriptors", "puller", "pusher", "receive", "remove_socket_file", "requester",
           "responder", "socket_file_id", "spare_descriptors", "threads", "wait_for_pipe"]

# Messages a data socket queues in the process. With a queue, a send returns
# once the message is queued instead of waiting for nng's own thread to
# write it, which halves the CPU per record; when the queue is full, sends
# wait as before (back-pressure). 128 is the queue length of eKuiper's side.
QUEUE = 128

# nng before 1.9 (pynng before 0.9 bundles nng 1.6) can hang a close for good
# while a peer sends: a pipe's receive that just completed is never finished,
# and nng's one reaper thread then waits for it, taking every later close with it.
QUIET_CLOSE = tuple(int(part) for part in pynng.__version__.split(".")[:2]) < (0, 9)


def ms(seconds: float) -> int:
    """Seconds as nng's milliseconds, at least 1."""
    return max(1, int(seconds * 1000))


def receive(sock: Socket, block: bool = True) -> bytes:
    """``sock.recv(block)``, which also returns an empty message.

    pynng's ``recv`` raises RuntimeError for a message of no bytes (nng
    hands back no buffer for it, and pynng unpacks that); such a message
    is b"" here. It arrives whole or not at all, so nothing is lost.
    """
    try:
        data: bytes = sock.recv(block)
    except RuntimeError:
        return b""
    return data


def pusher(address: str, *, send_timeout: float, queue: int = QUEUE,
           dial_timeout: float = 5.0) -> pynng.Push0:
    """A PUSH socket dialed to a listener (a source's data, a sink's acks).

    Raises:
        ConnectionError: nothing answered within ``dial_timeout`` (see :func:`dial`).
    """
    sock = pynng.Push0(send_timeout=ms(send_timeout), send_buffer_size=queue)
    return _connected(sock, lambda: dial(sock, address, timeout=dial_timeout))


def puller(address: str, *, recv_timeout: Optional[float] = None) -> pynng.Pull0:
    """A PULL socket listening on an address (a sink's data, the host's receiving side).

    Without ``recv_timeout`` a receive waits until a message comes or the
    socket closes. ``recv_max_size`` 0: no cap (nng's default dropped
    payloads over 1 MB).

    Raises:
        ConnectionError: the address stayed taken (see :func:`listen`).
    """
    sock = pynng.Pull0(recv_max_size=0, recv_buffer_size=QUEUE)
    if recv_timeout is not None:
        sock.recv_timeout = ms(recv_timeout)
    return _connected(sock, lambda: listen(sock, address))


def requester(*, keepalive: float) -> pynng.Req0:
    """The plugin's REQ socket of an inverted channel (control, function).

    ``resend_time`` 0: nng's REQ would resend an unanswered request after
    60 s, and the host would take the copy for a fresh answer.
    """
    return pynng.Req0(recv_timeout=ms(keepalive), send_timeout=ms(keepalive), resend_time=0,
                      recv_max_size=0)


def responder(*, timeout: float) -> pynng.Rep0:
    """The host's REP socket of an inverted channel."""
    return pynng.Rep0(recv_timeout=ms(timeout), send_timeout=ms(timeout), recv_max_size=0)


def _connected(sock: Socket, connect: object) -> Socket:
    """``sock`` once ``connect()`` succeeded; closed again if it fails."""
    try:
        connect()  # type: ignore[operator]
    except BaseException:
        close(sock)
        raise
    return sock


def dial(sock: Socket, address: str, *, timeout: float = 5.0) -> None:
    """Dial and wait until connected, while the listener is not up yet.

    The dial runs in nng's background, which retries until a listener is
    there; a blocking nng dial would wait forever for a listener that takes
    the connection but never answers (a peer out of file descriptors).

    Raises:
        ConnectionError: no connection within ``timeout`` seconds, or none
            can be had (the connection needs a file descriptor).
    """
    if not spare_descriptors(1):  # nng would retry in silence until the timeout
        raise ConnectionError(out_of_descriptors())
    sock.reconnect_time_min = 20
    sock.reconnect_time_max = 200
    dialer = sock.dial(address, block=False)
    if not wait_for_pipe(sock, timeout):
        dialer.close()
        raise ConnectionError(f"nothing answers on {address} within {timeout:g} s")


def wait_for_pipe(sock: Socket, timeout: float, known: frozenset[int] = frozenset()) -> bool:
    """Wait until ``sock`` has a pipe whose id is not in ``known``; whether it has.

    A dial connects within a millisecond or so when something listens: the
    waits between looks grow from 0.5 to 20 ms.
    """
    deadline = time.monotonic() + timeout
    pause = 0.0005
    while not any(pipe.id not in known for pipe in sock.pipes):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)
    return True


def listen(sock: Socket, address: str, *, attempts: int = 10, interval: float = 0.05) -> None:
    """Listen, retrying while an earlier listener still holds the address.

    nng takes over a socket file nobody listens on any more; a file that is
    not a socket (or a link) is refused, so that no path a host names can
    make kuiperlite replace or delete someone's file.

    Raises:
        ConnectionError: the address stayed taken (its cause is nng's error),
            or holds another kind of file.
    """
    path = wire.ipc_path(address)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise ConnectionError(f"{path} exists and is not a socket; kuiperlite does not "
                                  "replace it")
    for attempt in range(attempts):
        try:
            sock.listen(address)
            return
        except NNGException as err:
            if attempt == attempts - 1:
                # The cause tells a taken address from other failures.
                raise ConnectionError(f"cannot listen on {address} ({err})") from err
            time.sleep(interval)


def close(sock: Socket, *, settle: float = 0.0) -> None:
    """Close a socket, without nng 1.6's close hang where it can be helped.

    With nng 1.6, a receiving socket whose peer may still send is first
    given up to ``settle`` seconds for its pipes to go (eKuiper closes its
    end of a sink's data channel before it sends the stop), then a moment
    with nobody receiving, so that no pipe is mid-receive at the close.
    """
    if QUIET_CLOSE and sock.pipes and isinstance(sock, (pynng.Pull0, pynng.Rep0)):
        deadline = time.monotonic() + settle
        while sock.pipes and time.monotonic() < deadline:
            time.sleep(0.002)
        if sock.pipes:
            # poll, not select: a plugin with thousands of sockets has
            # descriptors past select's limit of 1024.
            poller = select.poll()
            poller.register(sock.recv_fd, select.POLLIN)
            poller.poll(20)  # a message comes at once from a busy peer
            time.sleep(0.005)  # and the socket's other pipes stop reading too
    sock.close()


class SendGate:
    """Sends on one socket from any threads, and its close, never at once.

    nng aborts the process (``pthread_mutex_lock: Invalid argument``) now
    and then when a socket closes while other threads send on it. Here a
    close that comes while sends are under way is left to the last of them;
    a send after the close raises :class:`Closed`. Sends need a send timeout,
    so that the last one leaves soon.
    """

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._sending = 0
        self._closed = False

    @contextlib.contextmanager
    def using(self) -> Iterator[Socket]:
        """The socket, for a send or an option; :class:`Closed` once :meth:`close` was called."""
        with self._lock:
            if self._closed:
                raise Closed("the socket is closed", 7)  # nng's NNG_ECLOSED
            self._sending += 1
        try:
            yield self.sock
        finally:
            with self._lock:
                self._sending -= 1
                last = self._closed and not self._sending
            if last:
                self.sock.close()

    def send(self, payload: bytes) -> None:
        """``sock.send(payload)``, or :class:`Closed` once :meth:`close` was called."""
        with self.using() as sock:
            sock.send(payload)

    def close(self) -> None:
        """Close the socket now, or when the sends under way have returned."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = not self._sending
        if now:
            self.sock.close()


def socket_file_id(address: str) -> Optional[tuple[int, int]]:
    """The identity (device, inode) of the socket file behind a listening address."""
    try:
        info = os.lstat(wire.ipc_path(address))
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def remove_socket_file(address: str, file_id: Optional[tuple[int, int]]) -> None:
    """Remove the socket file behind ``address`` if it is still the one ``file_id`` names."""
    if file_id is not None and socket_file_id(address) == file_id:
        with contextlib.suppress(OSError):
            os.unlink(wire.ipc_path(address))


def threads() -> set[str]:
    """The ids of this process's threads now (empty where /proc is not)."""
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return set()


def batch_task_threads(before: set[str], wait: float = 2.0) -> None:
    """Make nng's task threads in this process batch threads.

    A batch thread (Linux's ``SCHED_BATCH``) that is woken does not take the
    core from the thread that woke it; it runs when that thread waits, or on
    another core if one is idle. Sending a message, the Python thread wakes
    one of nng's task threads while it holds nng's locks: woken at once on
    the same core, the task thread only waits for those locks and hands the
    core back, three times per message. nng's other threads stay as they
    are: a close waits for the reaper, a timeout for the expiry thread, and
    as batch threads they would wait for whatever else runs on the core.

    nng starts its threads with the first socket, and each names itself
    once it runs, which on a busy machine may be a while later. So this
    takes the threads that are new since ``before`` (the ids from
    :func:`threads` before that socket opened), and waits up to ``wait``
    seconds for each to have a name of its own. On a system without the
    policy it does nothing.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    inherited = _name("self")  # what a thread is called before it names itself
    pending = threads() - before
    deadline = time.monotonic() + wait
    while pending:
        for tid in list(pending):
            name = _name(f"self/task/{tid}")
            if name == inherited and time.monotonic() < deadline:
                continue  # not named yet
            pending.discard(tid)
            if name == "nng:task":
                try:
                    os.sched_setscheduler(int(tid), policy, os.sched_param(0))
                except OSError:  # a thread that just ended, or a policy the system refuses
                    pass
        if pending:
            time.sleep(0.002)


def _name(where: str) -> str:
    """The name of a process or thread under /proc (empty when it is gone)."""
    try:
        with open(f"/proc/{where}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def out_of_descriptors() -> str:
    """Why a channel cannot open when the process ran out of file descriptors."""
    import resource  # only on this rare path

    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return (f"the plugin has no file descriptors to spare (its limit is {limit}); stop "
            "some rules, or raise the limit (ulimit -n) eKuiper starts plugins with")


def spare_descriptors(count: int) -> bool:
    """Whether the process can still open ``count`` more file descriptors."""
    opened: list[int] = []
    try:
        for _ in range(count):
            opened.append(os.open(os.devnull, os.O_RDONLY))
        return True
    except OSError:
        return False
    finally:
        for fd in opened:
            os.close(fd)
