"""The plugin's channels: the inverted request/reply loop of the control and
function channels, and a send that waits for a slow peer.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from .. import settings
from . import transport, wire
from .transport import Closed, NNGException, Timeout

log = logging.getLogger("kuiperlite")

# How often a blocked send wakes to look at its stop flag.
TICK = 0.2

# How long a send waits for a slow peer before the log says so.
SLOW_READER = 5.0


class Waiting:
    """A send waiting for a slow peer: said in the log once it has waited
    SLOW_READER seconds, and again when the peer reads (nothing is dropped)."""

    def __init__(self, described: str) -> None:
        self.described = described
        self.since = time.monotonic()
        self.warned = False

    def check(self) -> None:
        """Say so once the wait is long enough."""
        if not self.warned and time.monotonic() - self.since >= SLOW_READER:
            self.warned = True
            log.warning("%s has not read for %g s; waiting (nothing is dropped)", self.described,
                        SLOW_READER)

    def over(self) -> None:
        """The peer took the message."""
        if self.warned:
            log.info("%s reads again after %.1f s", self.described, time.monotonic() - self.since)


def send_waiting(sock: transport.SendGate, payload: bytes, stopping: threading.Event,
                 described: str = "eKuiper") -> bool:
    """Send, waiting as long as the peer is slow, until sent or stopping.

    The socket's send timeout is how often the wait looks at ``stopping``.

    Returns:
        True once sent, False when ``stopping`` was set first or the socket closed.
    """
    waiting = None
    while not stopping.is_set():
        try:
            sock.send(payload)
        except Timeout:
            waiting = waiting or Waiting(described)
            waiting.check()
            continue
        except Closed:
            return False
        if waiting is not None:
            waiting.over()
        return True
    return False


class Requester:
    """The plugin's end of an inverted request/reply channel (control, function).

    The plugin's REQ socket asks "what next?" with ``handshake``; the host's
    reply is the next command and the plugin's answer goes out as its next
    request. When no command comes for ``keepalive`` seconds, or the peer
    went away, the handshake is sent again.

    Args:
        address: the channel, which the host listens on.
        keepalive: seconds without a command before the handshake is sent again
            (``KUIPERLITE_KEEPALIVE``'s default; 5 s in the official SDKs, and
            eKuiper relies on it).
        block: wait until connected (raising ConnectionError after 5 s);
            otherwise nng connects in the background whenever the host listens.
    """

    def __init__(self, address: str, *, keepalive: float = settings.KEEPALIVE.default,
                 block: bool = True) -> None:
        self.address = address
        self.listener: Optional[tuple[int, int]] = None  # the socket file reconnect() reached
        self._lost_at: Optional[float] = time.monotonic()
        self.sock = transport.requester(keepalive=keepalive)
        if block:
            try:
                transport.dial(self.sock, address)
            except ConnectionError:
                self.sock.close()
                raise
        else:
            # Nothing may listen yet: nng keeps reconnecting in the background.
            self.sock.reconnect_time_min = 50
            self.sock.reconnect_time_max = 500
            self.sock.dial(address, block=False)

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
        listener = transport.socket_file_id(self.address)
        if self.sock.pipes and listener == self.listener:
            return
        dialers = self.sock.dialers
        known = frozenset(pipe.id for pipe in self.sock.pipes)
        try:
            self.sock.dial(self.address, block=False)  # tries at once
        except NNGException:
            return
        for dialer in dialers:
            dialer.close()
        if transport.wait_for_pipe(self.sock, timeout, known):
            self.listener = listener

    def stop_keepalive(self) -> None:
        """Wait for each command for as long as it takes, never sending the handshake again.

        eKuiper 1.x takes a handshake sent while it was idle for the answer
        to its next command, which then fails with "receive error:
        handshake" (2.x skips it).
        """
        self.sock.recv_timeout = -1

    def disconnected_for(self) -> float:
        """Seconds since the channel was last seen with a peer; 0 while it has one.

        Asked now and then (the runtime's watch loop), so no callback from
        nng's threads is needed to know.
        """
        if self.sock.pipes:
            self._lost_at = None
            return 0.0
        now = time.monotonic()
        if self._lost_at is None:
            self._lost_at = now
        return now - self._lost_at

    def serve(self, handle: Callable[[bytes], Optional[bytes]],
              stopping: threading.Event) -> None:
        """Answer requests with ``handle`` until ``stopping`` is set or the socket
        closes, then close it.

        ``handle`` returns the answer, or None to leave the request
        unanswered: the channel closes at once. The host's request then stays
        open until a peer connects to the channel again and sends its
        handshake; taking that for the answer, the host sends the request
        again, to the new peer.
        """
        sock = self.sock
        need_handshake = True
        try:
            while not stopping.is_set():
                if need_handshake:
                    try:
                        sock.send(wire.HANDSHAKE)
                    except Timeout:
                        continue
                    need_handshake = False
                try:
                    request = transport.receive(sock)
                except Closed:
                    return
                except NNGException:
                    # Timeout (keepalive), BadState, or ConnectionReset when the
                    # host restarted: the REQ socket must send before it receives.
                    need_handshake = True
                    continue
                try:
                    answer = handle(request)
                    if answer is None:  # left for the next peer
                        return
                    sock.send(answer)
                except Closed:
                    return
                except NNGException:
                    need_handshake = True
        except Closed:
            return
        finally:
            sock.close()

    def close(self) -> None:
        """Close the channel; a thread serving it returns."""
        self.sock.close()
