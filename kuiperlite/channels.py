"""nng channels: socket options, retried dial and listen, the inverted REQ loop.

Sockets are closed by the thread that uses them: with nng 1.6 (pynng 0.8.1),
closing a socket while another thread is blocked in ``recv`` on it can hang, so every
blocking call here has a short timeout and a stop flag to look at.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import stat
import threading
import time
from typing import Any, Callable, Optional, TypeVar

from . import nng, wire
from .nng import Socket
from .nng import check as _check_err
from .nng import ffi as _ffi
from .nng import lib as _lib
from .nng import take as _take

log = logging.getLogger("kuiperlite")
N = TypeVar("N", int, float)


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from an environment variable, else ``default``.

    A value that is not one is a warning in the log, not a silent default.
    """
    return _from_env(name, default, float, lambda value: 0 < value < float("inf"),
                     "a positive number of seconds")


def env_number(name: str, default: float) -> float:
    """A number, 0 or more, from an environment variable, else ``default``."""
    return _from_env(name, default, float, lambda value: 0 <= value < float("inf"),
                     "a number, 0 or more")


def env_count(name: str, default: int) -> int:
    """A whole number, 0 or more, from an environment variable, else ``default``."""
    return _from_env(name, default, int, lambda value: value >= 0, "a whole number, 0 or more")


def _from_env(name: str, default: N, parse: Callable[[str], N], fits: Callable[[N], bool],
              phrase: str) -> N:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is not None and fits(value):
        return value
    log.warning("%s=%r is not %s; using %s", name, raw, phrase, default)
    return default


# How long a control or function channel waits for a command before it sends
# the handshake again. The official SDKs use 5 s; eKuiper relies on it.
KEEPALIVE = 5.0

# How often a blocked send or receive wakes to look at its stop flag.
TICK = 0.2

# Messages a data socket queues in the process. With a queue, a send returns
# once the message is queued instead of waiting for nng's own thread to
# write it, which halves the CPU per record; when the queue is full, sends
# wait as before (back-pressure). 128 is the queue length of eKuiper's side.
QUEUE = 128


# nng before 1.9 (pynng 0.8.1 bundles 1.6.0) can hang a close for good while
# a peer sends: a pipe's receive that just completed is never finished, and
# nng's one reaper thread then waits for it, taking every later close with it.
QUIET_CLOSE = nng.VERSION < (1, 9)


def close(sock: Socket) -> None:
    """Close a socket no thread uses any more, without nng 1.6's close hang.

    Before nng 1.9, a receiving socket that still has a peer is first let
    to settle: with nobody receiving, its pipes stop reading once a message
    waits in the socket (or at once when the peer is quiet), so none is
    mid-receive at close. One whose peers closed first (eKuiper closes a
    sink's data channel before it sends the stop) has no pipe to wait for.
    """
    if QUIET_CLOSE and sock.pipes:
        try:
            fd: Optional[int] = sock.recv_fd
        except nng.NNGError:  # a socket that cannot receive (PUSH)
            fd = None
        if fd is not None:
            # poll, not select: a plugin with thousands of sockets has
            # descriptors past select's limit of 1024.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll(20)  # a message comes at once from a busy peer
            time.sleep(0.005)  # and the socket's other pipes stop reading too
    sock.close()


def ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


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
    sock.set("reconnect_time_min", 20)
    sock.set("reconnect_time_max", 200)
    dialer = sock.dial(address)
    if not sock.wait_connected(timeout):
        dialer.close()
        raise ConnectionError(f"nothing answers on {address} within {timeout:g} s")


def listen(sock: Socket, address: str, *, attempts: int = 10,
           interval: float = 0.05) -> None:
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
        except nng.NNGError as err:
            if attempt == attempts - 1:
                # The cause tells a taken address from other failures.
                raise ConnectionError(f"cannot listen on {address} ({err})") from err
            time.sleep(interval)


def socket_file_id(address: str) -> Optional[tuple[int, int]]:
    """The identity (device, inode) of the socket file behind a listening address."""
    try:
        info = os.lstat(wire.ipc_path(address))
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def remove_socket_file(address: str, file_id: Optional[tuple[int, int]]) -> None:
    """Remove the socket file of a listener that cannot close, if it is still ours."""
    if file_id is not None and socket_file_id(address) == file_id:
        with contextlib.suppress(OSError):
            os.unlink(wire.ipc_path(address))


_NONBLOCK = _lib.NNG_FLAG_NONBLOCK
_ALLOC = _lib.NNG_FLAG_ALLOC
_AGAIN = _lib.NNG_EAGAIN


class Direct:
    """A socket's ``send`` and ``recv`` on the hot path.

    A socket's ``recv`` allocates two cffi pointers per message; a Direct
    keeps one pair, so no two threads may receive through one Direct at once.
    """

    __slots__ = ("sock", "_handle", "_data", "_size")

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self._handle = sock.socket
        self._data = _ffi.new("char **")
        self._size = _ffi.new("size_t *")

    def recv(self) -> bytes:
        err = _lib.nng_recv(self._handle, self._data, self._size, _ALLOC)
        if err:
            _check_err(err)
        return _take(self._data, self._size)

    def try_recv(self) -> Optional[bytes]:
        """A message if one is waiting in the socket, else None, at once."""
        err = _lib.nng_recv(self._handle, self._data, self._size, _ALLOC | _NONBLOCK)
        if err:
            if err == _AGAIN:
                return None
            _check_err(err)
        return _take(self._data, self._size)

    def send(self, data: bytes) -> None:
        err = _lib.nng_send(self._handle, data, len(data), 0)
        if err:
            _check_err(err)

    def try_send(self, data: bytes) -> bool:
        """Send if the socket takes the message at once; False if it would wait."""
        err = _lib.nng_send(self._handle, data, len(data), _NONBLOCK)
        if err:
            if err == _AGAIN:
                return False
            _check_err(err)
        return True


class Pending:
    """One receive or send at a time that nng completes in the background.

    nng calls ``done`` on a thread of its own when the operation completes,
    fails, is cancelled or its socket closes; the owner then takes the
    outcome with :meth:`received` or :meth:`sent`. Without ``done``, the
    owner's thread :meth:`wait` s for it instead. Only the owner starts,
    waits, takes and closes; :meth:`cancel` may come from any thread.
    """

    def __init__(self, sock: Socket, done: Optional[Callable[[], None]] = None) -> None:
        self._handle = sock.socket
        self._done = done
        self._key = id(self)  # how nng's completion finds ``done`` (see nng.on_complete)
        self._lock = threading.Lock()
        aio = _ffi.new("nng_aio **")
        callback = _ffi.NULL if done is None else _lib._async_complete
        _check_err(_lib.nng_aio_alloc(aio, callback, _ffi.cast("void *", self._key)))
        self._aio: Any = aio[0]
        _lib.nng_aio_set_timeout(self._aio, -1)  # no deadline: a stop cancels it
        self.busy = False  # started, and its outcome not taken yet
        self._receiving = False

    def recv(self) -> None:
        """Start receiving a message; ``done`` is called once it is in."""
        self.busy, self._receiving = True, True
        if self._done is not None:
            nng.on_complete(self._key, self._done)
        _lib.nng_recv_aio(self._handle, self._aio)

    def wait(self) -> None:
        """Wait, without the GIL, until the operation started is over (no ``done`` only)."""
        _lib.nng_aio_wait(self._aio)

    def received(self) -> bytes:
        """The message received; raises :class:`nng.NNGError` for a failed receive."""
        self.busy = False
        err = _lib.nng_aio_result(self._aio)
        if err:
            _check_err(err)
        msg = _lib.nng_aio_get_msg(self._aio)
        size = _lib.nng_msg_len(msg)
        data: bytes = _ffi.unpack(_ffi.cast("char *", _lib.nng_msg_body(msg)), size) \
            if size else b""
        _lib.nng_msg_free(msg)
        return data

    def send(self, data: bytes) -> None:
        """Start sending ``data``; ``done`` is called once the socket took it."""
        msg = _ffi.new("nng_msg **")
        _check_err(_lib.nng_msg_alloc(msg, 0))
        err = _lib.nng_msg_append(msg[0], data, len(data))
        if err:
            _lib.nng_msg_free(msg[0])
            _check_err(err)
        _lib.nng_aio_set_msg(self._aio, msg[0])
        self.busy, self._receiving = True, False
        if self._done is not None:
            nng.on_complete(self._key, self._done)
        _lib.nng_send_aio(self._handle, self._aio)

    def sent(self) -> None:
        """Raises :class:`nng.NNGError` when the send failed (the message is dropped)."""
        self.busy = False
        err = _lib.nng_aio_result(self._aio)
        if err:
            _lib.nng_msg_free(_lib.nng_aio_get_msg(self._aio))
            _check_err(err)

    def cancel(self) -> None:
        """Make a started operation complete at once, as cancelled; from any thread."""
        with self._lock:
            if self._aio is not None:
                _lib.nng_aio_cancel(self._aio)

    def close(self) -> None:
        """Cancel what is started, wait for its ``done``, and free the operation."""
        with self._lock:
            aio, self._aio = self._aio, None
        if aio is None:
            return
        _lib.nng_aio_stop(aio)
        if self.busy:
            err = _lib.nng_aio_result(aio)
            if self._receiving == (err == 0):  # a message nobody took, or one never sent
                _lib.nng_msg_free(_lib.nng_aio_get_msg(aio))
        _lib.nng_aio_free(aio)
        nng.forget(self._key)


def _connected(sock: Socket, connect: Callable[[Socket, str], None], address: str) -> Socket:
    """``sock`` dialed or listening on ``address``; closed again if that fails."""
    try:
        connect(sock, address)
    except ConnectionError:
        close(sock)
        raise
    return sock


def pusher(address: str, *, send_timeout: float = TICK, queue: int = QUEUE) -> Socket:
    """A PUSH socket dialed to a listener (source data, sink acks), queueing ``queue``."""
    sock = Socket(nng.PUSH, send_timeout=ms(send_timeout), send_buffer=queue)
    return _connected(sock, dial, address)


def puller(address: str, *, recv_timeout: float = TICK) -> Socket:
    """A PULL socket listening on an address (sink data, and the host's receiving side)."""
    # recv_max_size 0: no size cap; nng's default dropped payloads over 1 MB.
    sock = Socket(nng.PULL, recv_timeout=ms(recv_timeout), recv_max_size=0, recv_buffer=QUEUE)
    return _connected(sock, listen, address)


# How long a send waits for a slow peer before the log says so.
SLOW_READER = 5.0


class Waiting:
    """A send waiting for a slow peer: said in the log once it has waited
    SLOW_READER seconds, and again when the peer reads (nothing is dropped)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since = time.monotonic()
        self.warned = False

    def check(self) -> float:
        """Say so if the wait is long enough; the seconds until it will be, else 0."""
        left = SLOW_READER - (time.monotonic() - self.since)
        if left > 0:
            return left
        if not self.warned:
            self.warned = True
            log.warning("%s has not read for %g s; waiting (nothing is dropped)", self.what,
                        SLOW_READER)
        return 0.0

    def over(self) -> None:
        """The peer took the message."""
        if self.warned:
            log.info("%s reads again after %.1f s", self.what, time.monotonic() - self.since)


def send_blocking(sock: Socket, payload: bytes, stopping: threading.Event,
                  what: str = "eKuiper") -> bool:
    """Send, waiting as long as the peer is slow, until sent or stopping.

    Returns:
        True once sent, False when ``stopping`` was set first or the socket closed.
    """
    waiting = Waiting(what)
    while not stopping.is_set():
        try:
            sock.send(payload)
            waiting.over()
            return True
        except nng.Timeout:
            waiting.check()
        except nng.Closed:
            return False
    return False


class Unanswered(Exception):
    """Raised by a :class:`Requester`'s handler: leave the request unanswered and close.

    The host's request stays open until a peer connects to the channel again
    and sends its handshake; taking that for the answer, the host sends the
    request again, to the new peer.
    """


class Requester:
    """The plugin's end of an inverted request/reply channel (control, function).

    The plugin's REQ socket asks "what next?" with ``handshake``; the host's
    reply is the next command and the plugin's answer goes out as its next
    request. When no command comes for ``keepalive`` seconds, or the peer
    went away, the handshake is sent again.
    """

    def __init__(self, address: str, *, keepalive: float = KEEPALIVE, block: bool = True) -> None:
        self.address = address
        self.listener: Optional[tuple[int, int]] = None  # the socket file reconnect() reached
        # resend_time=0: nng's REQ would resend an unanswered request after
        # 60 s, and the host would take the copy for a fresh answer.
        self.sock = Socket(nng.REQ, recv_timeout=ms(keepalive), send_timeout=ms(keepalive),
                           resend_time=0, recv_max_size=0)
        if block:
            _connected(self.sock, dial, address)
        else:
            # Nothing may listen yet: nng keeps reconnecting in the background.
            self.sock.set("reconnect_time_min", 50)
            self.sock.set("reconnect_time_max", 500)
            self.sock.dial(address)

    def reconnect(self, timeout: float = 1.0) -> None:
        """Connect to the channel's listener now, unless connected to that one already.

        eKuiper listens on a function's channel just before it sends the
        function's start command, also when it re-creates the channel. A
        channel connected to none, or to a listener that is gone (its pipe
        may still be listed a moment after eKuiper closed it), dials at once
        and waits up to ``timeout`` seconds for the connection: the first
        call then never waits for nng's background redial (50 to 500 ms).
        A listener is told apart from the one before by its socket file.
        """
        listener = socket_file_id(self.address)
        if self.sock.pipes and listener == self.listener:
            return
        dialers = list(self.sock.dialers)
        connects = self.sock.connects
        try:
            self.sock.dial(self.address)  # tries at once
        except nng.NNGError:
            return
        for dialer in dialers:
            dialer.close()
        if self.sock.wait_connected(timeout, since=connects):
            self.listener = listener

    def stop_keepalive(self) -> None:
        """Wait for each command for as long as it takes, never sending the handshake again.

        eKuiper 1.x takes a handshake sent while it was idle for the answer
        to its next command, which then fails with "receive error:
        handshake" (2.x skips it). Call it from the thread that serves.
        """
        self.sock.set("recv_timeout", -1)

    def disconnected_for(self) -> float:
        """Seconds since the channel lost its last peer; 0 while connected."""
        return self.sock.disconnected_for()

    def serve(self, handle: Callable[[bytes], bytes], stopping: threading.Event) -> None:
        """Answer requests with ``handle`` until ``stopping`` is set, then close."""
        direct = Direct(self.sock)
        need_handshake = True
        try:
            while not stopping.is_set():
                if need_handshake:
                    try:
                        direct.send(wire.HANDSHAKE)
                    except nng.Timeout:
                        continue
                    need_handshake = False
                try:
                    request = direct.recv()
                except nng.Closed:
                    return
                except nng.NNGError:
                    # Timeout (keepalive), BadState, or ConnectionReset when the
                    # host restarted: the REQ socket must send before it receives.
                    need_handshake = True
                    continue
                try:
                    direct.send(handle(request))
                except Unanswered:
                    return
                except nng.Closed:
                    return
                except nng.NNGError:
                    need_handshake = True
        except nng.Closed:
            return
        finally:
            close(self.sock)
