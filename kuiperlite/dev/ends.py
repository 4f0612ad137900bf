"""The host's ends of the channels: sockets eKuiper listens on, used one thread at a time.

:class:`Channel` is a host socket that is never closed while a thread is
inside it; :class:`Responder` is the host's end of an inverted channel (the
control channel and each function's), where commands go out as replies.
:func:`listening` turns a taken address into a sentence saying who may hold it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Callable, Optional, TypeVar

import pynng

from ..errors import HostError, ProtocolError
from ..protocol import transport, wire
from ..protocol.channels import TICK
from ..protocol.transport import BadState, NNGException, Timeout, TryAgain, close, listen, ms

T = TypeVar("T")
log = logging.getLogger("kuiperlite")

# How long the host waits for a socket's close before it leaves it behind.
CLOSE_WAIT = 10.0


def checked_address(address: str, *names: tuple[str, str]) -> str:
    """``address``, once its names fit in a socket file name and its path in a socket.

    Args:
        address: the ``ipc://`` address to listen on or dial.
        names: ``(what, value)`` pairs that are part of it, e.g. ``("ruleId", "rule1")``.

    Raises:
        ValueError: a name holds ``/``, ``..``, NUL or control characters, or the
            path is longer than 107 bytes; the message says which.
    """
    try:
        for described, value in names:
            wire.check_ipc_name(value, described)
        wire.check_ipc_path(address)
    except ProtocolError as err:
        raise ValueError(str(err)) from None
    return address


# An in-process pair of sockets, opened on the first nudge.
_pair: Optional[tuple[pynng.Socket, pynng.Socket]] = None
_pair_lock = threading.Lock()


def nudge() -> None:
    """Move one message through an in-process pair of nng sockets.

    Now and then a host socket stops being read with data waiting in it and
    every nng thread idle, until anything else moves through nng in the
    process (seen with nng 1.6 and 1.11, under a source sending faster than
    the host reads; the cause is not known). A receive that waited in vain
    calls this, so such a stall lasts one wait (TICK), not until the plugin's
    next keepalive handshake.
    """
    global _pair
    with _pair_lock:
        if _pair is None:
            address = f"inproc://kuiperlite-nudge-{os.getpid()}"
            pull = pynng.Pull0(recv_timeout=ms(TICK))
            push = pynng.Push0(send_timeout=ms(TICK))
            pull.listen(address)
            push.dial(address, block=True)
            _pair = (push, pull)
        push, pull = _pair
        with contextlib.suppress(NNGException):
            push.send(b"\0")
            pull.recv()


# Set once a close hung: nng's one reaper thread waits for that socket, and
# every later close in the process hangs behind it.
_reaper_stuck = threading.Event()


def bounded_close(sock: pynng.Socket, address: str) -> None:
    """Close a socket no thread uses, waiting at most :data:`CLOSE_WAIT` seconds.

    nng can hang a close for good while the peer sends (often with pynng
    0.8.1's nng 1.6, rarely with 0.9's; see
    :func:`kuiperlite.protocol.transport.close`). The close runs on
    a thread of its own, so that such a hang leaves that one socket behind,
    said in the log, instead of hanging the test or serve that closed it.
    Once one has hung, the later closes hang behind it: each is then given
    a moment only, so that a host with a hundred sockets still closes in
    seconds.
    """
    done = threading.Event()

    def run() -> None:
        try:
            close(sock)
        finally:
            done.set()

    threading.Thread(target=run, name=f"close {address}", daemon=True).start()
    if done.wait(0.2 if _reaper_stuck.is_set() else CLOSE_WAIT) or _reaper_stuck.is_set():
        return
    _reaper_stuck.set()
    log.warning("closing the socket on %s did not end within %g s; it is left behind, and so "
                "is every socket this process closes after it (nng can hang a close while the "
                "plugin sends: seen with pynng 0.8.1 often, and with pynng 0.9 rarely; this is "
                "pynng %s)", address, CLOSE_WAIT, pynng.__version__)


def listening(address: str, holder: Optional[str], make: Callable[[], T]) -> T:
    """``make()``, which listens on ``address``; its failure becomes a HostError.

    Args:
        holder: what else may hold the address (``"rule 'rule1'"``), for the message.

    Raises:
        HostError: the address is taken, or cannot be listened on.
    """
    try:
        return make()
    except ConnectionError as err:
        path = wire.ipc_path(address)
        if isinstance(err.__cause__, transport.AddressInUse) and holder:
            raise HostError(f"Cannot listen on {path}: is eKuiper, a serve or a test run "
                            f"already hosting {holder}?") from None
        raise HostError(f"Cannot listen on {path}: {err.__cause__ or err}.") from None


class Channel:
    """A host socket used by one thread at a time and never closed while in use.

    Every blocking call on it is sliced into short receives or sends that
    look at ``closing`` in between, so :meth:`close` from another thread
    waits at most one slice for the user to let go.
    """

    def __init__(self, sock: pynng.Socket, address: str = "") -> None:
        self.address = address
        self.sock: Optional[pynng.Socket] = sock
        self.lock = threading.Lock()
        self.closing = False

    def _open(self) -> pynng.Socket:
        """The socket, to a thread holding ``lock`` (raises when it is closed)."""
        if self.sock is None:
            raise HostError(f"The channel {self.address} is closed.")
        return self.sock

    def recv(self) -> bytes:
        """Receive, waiting up to the socket's timeout; hold ``lock``."""
        return transport.receive(self._open())

    def try_recv(self) -> Optional[bytes]:
        """A message if one waits, else None at once; hold ``lock``."""
        try:
            return transport.receive(self._open(), block=False)
        except TryAgain:
            return None

    def send(self, payload: bytes) -> None:
        """Send, waiting up to the socket's timeout; hold ``lock``."""
        self._open().send(payload)

    @property
    def closed(self) -> bool:
        return self.sock is None

    def close(self) -> bool:
        """Close the socket once no thread is inside it; False if already closed."""
        self.closing = True
        with self.lock:
            if self.sock is None:
                return False
            bounded_close(self.sock, self.address)
            self.sock = None
            return True


class Responder(Channel):
    """The host's end of an inverted channel: commands go out as replies.

    Args:
        holder: what else may hold the address when it is taken, for the error.

    Raises:
        HostError: the address is taken or cannot be listened on.
    """

    def __init__(self, address: str, alive: Callable[[], None],
                 holder: Optional[str] = None, *, as_1x: bool = False) -> None:
        self.address = address
        self.alive = alive
        self.holder = holder
        self.as_1x = as_1x
        super().__init__(self._listen(), address)

    def _listen(self) -> pynng.Socket:
        def make() -> pynng.Socket:
            sock = transport.responder(timeout=TICK)
            try:
                listen(sock, self.address)
            except ConnectionError:
                sock.close()
                raise
            return sock

        return listening(self.address, self.holder, make)

    def reopen(self) -> None:
        """Close the socket and listen again on the same address."""
        with self.lock:
            if self.sock is not None:
                bounded_close(self.sock, self.address)
            self.sock = self._listen()

    def _recv(self, deadline: float, described: str) -> bytes:
        while True:
            if self.closing:
                raise HostError(f"The channel {self.address} was closed while waiting "
                                f"for the {described}.")
            try:
                return self.recv()
            except Timeout:
                nudge()
                self.alive()
                if time.monotonic() > deadline:
                    raise HostError(f"No {described} on {self.address} in time.") from None

    def _send(self, payload: bytes, deadline: float) -> None:
        while True:
            try:
                self.send(payload)
                return
            except Timeout:
                self.alive()
                if self.closing or time.monotonic() > deadline:
                    raise HostError(f"The plugin did not take a message on {self.address} "
                                    "in time.") from None

    def wait_handshake(self, timeout: float) -> None:
        """Wait for the plugin's first request, which is not answered yet."""
        with self.lock:
            if self.sock is None:
                raise HostError(f"The channel {self.address} is closed.")
            self._recv(time.monotonic() + timeout, "handshake")

    def request(self, payload: bytes, timeout: float) -> bytes:
        """Send one command or call and return the plugin's answer.

        As eKuiper does: with no request pending, take the plugin's next one
        (a keepalive or a late answer) first; skip answers starting with ``h``,
        which are keepalives that crossed a command, and send again.

        eKuiper 1.x's control channel (``as_1x``) skips no such answer, so a
        keepalive that crossed a command is taken for its answer; and after
        taking the plugin's next request first, it sends the command and
        reports success without reading the answer.
        """
        deadline = time.monotonic() + timeout
        with self.lock:
            if self.sock is None:
                raise HostError(f"The channel {self.address} is closed.")
            while True:
                try:
                    self._send(payload, deadline)
                except BadState:
                    self._recv(deadline, "request from the plugin")
                    self._send(payload, deadline)
                    if self.as_1x:
                        return wire.OK
                answer = self._recv(deadline, "answer")
                if answer[:1] != b"h" or self.as_1x:
                    return answer

