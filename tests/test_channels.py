import os
import socket
import threading
import time

import pynng
import pytest

from kuiperlite import nng, wire
from kuiperlite.channels import (
    TICK,
    Direct,
    Pending,
    Requester,
    dial,
    env_count,
    env_seconds,
    puller,
    pusher,
    send_blocking,
)
from kuiperlite.dev.ends import Responder

from conftest import unique, wait_until


def address() -> str:
    return f"ipc:///tmp/{unique('chan')}.ipc"


class Connected:
    """Makes PULL listeners with a PUSH dialed to each: ``pull, push = connected()``.

    Keywords go to :func:`pusher`, ``recv_timeout`` to :func:`puller`. The
    sockets, and every :class:`Pending` made by :meth:`pending`, are closed
    after the test, the Pendings first.
    """

    def __init__(self):
        self.socks = []
        self.pendings = []

    def __call__(self, *, recv_timeout=TICK, **push_options):
        addr = address()
        pull = puller(addr, recv_timeout=recv_timeout)
        self.socks.append(pull)
        push = pusher(addr, **push_options)
        self.socks.append(push)
        return pull, push

    def pending(self, sock, done=None):
        made = Pending(sock, done)
        self.pendings.append(made)
        return made

    def close(self):
        for pending in self.pendings:
            pending.close()
        for sock in reversed(self.socks):
            sock.close()


@pytest.fixture
def connected():
    made = Connected()
    yield made
    made.close()


class Served:
    """A Requester answering with ``handle`` on a thread, stopped at exit."""

    def __init__(self, addr, keepalive=0.3, block=True, handle=lambda req: b"re:" + req):
        self.stop = threading.Event()
        self.requester = Requester(addr, keepalive=keepalive, block=block)
        self.thread = threading.Thread(target=self.requester.serve, args=(handle, self.stop))
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_commands_are_replies_and_answers_are_requests():
    addr = address()
    host = Responder(addr, lambda: None)
    try:
        with Served(addr):
            host.wait_handshake(5)
            assert host.request(b"cmd1", 5) == b"re:cmd1"
            assert host.request(b"cmd2", 5) == b"re:cmd2"
    finally:
        host.close()


def test_keepalive_resends_handshake_and_a_command_after_idle_still_arrives():
    addr = address()
    rep = pynng.Rep0(recv_timeout=5000, listen=addr)  # an independent peer
    try:
        with Served(addr, keepalive=0.2):
            assert rep.recv() == b"handshake"
            assert rep.recv() == b"handshake"  # the first one timed out unanswered
            rep.close()
            host = Responder(addr, lambda: None)  # the host restarts its socket
            try:
                host.wait_handshake(5)
                time.sleep(0.5)  # idle past several keepalive periods
                assert host.request(b"late", 5) == b"re:late"
            finally:
                host.close()
    finally:
        rep.close()


def test_late_listener_gets_the_handshake():
    addr = address()
    with Served(addr, block=False):
        time.sleep(0.3)
        host = Responder(addr, lambda: None)
        try:
            host.wait_handshake(5)
            assert host.request(b"x", 5) == b"re:x"
        finally:
            host.close()


def test_reconnect_reaches_a_recreated_listener_while_the_old_pipe_is_still_listed():
    # eKuiper re-creates a function's channel: it closes its listener and listens
    # again, then sends the start. The plugin may still list its pipe to the old
    # listener then; here the old one stays open, so the pipe stays listed.
    addr = address()
    old = Responder(addr, lambda: None)
    with Served(addr, block=False) as served:
        served.requester.sock.set("reconnect_time_min", 60_000)  # no background redial
        served.requester.sock.set("reconnect_time_max", 60_000)
        old.wait_handshake(5)
        served.requester.reconnect()
        os.unlink(wire.ipc_path(addr))  # the socket file goes, as when eKuiper closes it
        new = Responder(addr, lambda: None)
        try:
            assert served.requester.sock.pipes  # the old pipe is still there
            served.requester.reconnect()
            new.wait_handshake(5)
            assert new.request(b"x", 5) == b"re:x"
        finally:
            new.close()
            old.close()


def test_disconnected_for_tracks_the_peer():
    addr = address()
    host = Responder(addr, lambda: None)
    with Served(addr, keepalive=0.2) as served:
        host.wait_handshake(5)
        assert served.requester.disconnected_for() == 0.0
        host.close()
        wait_until(lambda: served.requester.disconnected_for() > 0.2, 5, message="peer loss")
        host = Responder(addr, lambda: None)
        wait_until(lambda: served.requester.disconnected_for() == 0.0, 5, message="reconnect")
        host.close()


def test_dial_gives_up_with_a_clear_error():
    sock = nng.Socket(nng.REQ)
    try:
        with pytest.raises(ConnectionError, match="nothing answers on ipc:///tmp/.* within 0.2 s"):
            dial(sock, address(), timeout=0.2)
    finally:
        sock.close()


def test_dial_gives_up_on_a_listener_that_never_answers(tmp_path):
    """A peer out of file descriptors takes the connection and never answers."""
    path = tmp_path / "mute.ipc"
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(path))
    mute.listen(8)  # the kernel queues the connection; nobody accepts it
    sock = nng.Socket(nng.PUSH)
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match="nothing answers"):
            dial(sock, f"ipc://{path}", timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        sock.close()
        mute.close()


def test_send_blocking_waits_for_a_slow_peer_and_loses_nothing(connected):
    pull, push = connected(recv_timeout=5, send_timeout=0.05)
    stopping = threading.Event()
    sent = []
    timeouts = []

    class Counted:
        """The push socket, counting the sends that time out on a full pipe."""

        def send(self, data):
            try:
                push.send(data)
            except nng.Timeout:
                timeouts.append(data)
                raise

    pad = b" " * 10_000

    def produce():
        for i in range(2000):
            if not send_blocking(Counted(), str(i).encode() + pad, stopping):
                return
            sent.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    # the reader stalls; the producer fills the pipe and waits, send after send
    wait_until(lambda: len(timeouts) >= 3, message="the producer to wait on a full pipe")
    assert len(sent) < 2000
    got = []
    while len(got) < 2000:
        got.append(int(pull.recv().rstrip()))
    producer.join(5)
    assert got == list(range(2000)) == sent


def test_send_blocking_gives_up_when_stopping():
    sock = nng.Socket(nng.PUSH, send_timeout=50)
    sock.dial(address())
    stopping = threading.Event()
    threading.Timer(0.1, stopping.set).start()
    assert send_blocking(sock, b"x", stopping) is False
    sock.close()


def test_try_recv_and_try_send_never_wait(connected):
    pull, push = connected(queue=1)
    assert Direct(pull).try_recv() is None  # nothing there yet
    sender = Direct(push)
    assert sender.try_send(b"one")
    wait_until(lambda: Direct(pull).try_recv() == b"one", message="the message")
    sent = 0
    while sender.try_send(b"x"):  # nobody reads: the queues fill, and it says so
        sent += 1
        assert sent < 10_000
    assert sent >= 1


def test_a_pending_receive_completes_in_the_background(connected):
    pull, push = connected()
    done = threading.Event()
    pending = connected.pending(pull, done.set)
    pending.recv()
    assert not done.wait(0.1) and pending.busy
    push.send(b"late")
    assert done.wait(10)
    assert pending.received() == b"late"
    assert not pending.busy
    done.clear()
    pending.recv()
    pending.cancel()  # a stop: it completes at once, as cancelled
    assert done.wait(10)
    with pytest.raises(nng.NNGError):
        pending.received()


def test_a_pending_receive_without_a_callback_is_waited_for_and_a_cancel_ends_the_wait(
        connected):
    pull, push = connected()
    pending = connected.pending(pull)
    pending.recv()
    push.send(b"one")
    pending.wait()
    assert pending.received() == b"one"
    pending.recv()
    threading.Timer(0.1, pending.cancel).start()  # a stop, from another thread
    pending.wait()
    with pytest.raises(nng.NNGError):
        pending.received()


def test_a_pending_send_completes_once_the_peer_reads(connected):
    pull, push = connected(queue=0)
    done = threading.Event()
    pending = connected.pending(push, done.set)
    pending.send(b"record")
    assert done.wait(10)
    pending.sent()
    assert Direct(pull).recv() == b"record"


def test_closing_frees_a_pending_operation_whatever_its_state(connected):
    pull, push = connected()
    done = threading.Event()
    unfinished = Pending(pull, done.set)
    unfinished.recv()
    unfinished.close()  # waits for the cancelled receive's completion
    assert done.is_set()
    received = threading.Event()
    untaken = Pending(pull, received.set)
    untaken.recv()
    push.send(b"never taken")
    assert received.wait(10)
    untaken.close()  # the message nobody took is freed with it
    unfinished.cancel()  # after close: nothing to cancel, and no crash


@pytest.mark.parametrize("raw, seconds, count", [
    (None, 5.0, 7), ("2.5", 2.5, 7), ("3", 3.0, 3), ("0", 5.0, 0),
    ("-1", 5.0, 7), ("soon", 5.0, 7), ("inf", 5.0, 7),
])
def test_numbers_from_the_environment_fall_back_with_a_warning(monkeypatch, caplog, raw, seconds,
                                                               count):
    if raw is None:
        monkeypatch.delenv("KL_TEST_NUMBER", raising=False)
    else:
        monkeypatch.setenv("KL_TEST_NUMBER", raw)
    assert env_seconds("KL_TEST_NUMBER", 5.0) == seconds
    assert env_count("KL_TEST_NUMBER", 7) == count
    warned = [r.getMessage() for r in caplog.records]
    if seconds == 5.0 and raw is not None:
        assert any("is not a positive number of seconds; using 5" in w for w in warned)
    if count == 7 and raw is not None:
        assert any("is not a whole number, 0 or more; using 7" in w for w in warned)
