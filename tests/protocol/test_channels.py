"""The plugin's channels: the inverted request/reply loop, and a send that waits."""

import os
import threading
import time

import pynng

from kuiperlite.dev.ends import Responder
from kuiperlite.protocol import transport, wire
from kuiperlite.protocol.channels import Requester, send_waiting

from conftest import unique, wait_until


def address() -> str:
    return f"ipc:///tmp/{unique('chan')}.ipc"


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
        served.requester.sock.reconnect_time_min = 60_000  # no background redial
        served.requester.sock.reconnect_time_max = 60_000
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


def test_send_waiting_waits_for_a_slow_peer_and_loses_nothing():
    addr = address()
    pull = transport.puller(addr, recv_timeout=5)
    push = transport.pusher(addr, send_timeout=0.05)
    stopping = threading.Event()
    sent: list[int] = []
    pad = b" " * 10_000

    def produce() -> None:
        for i in range(2000):
            if not send_waiting(push, str(i).encode() + pad, stopping):
                return
            sent.append(i)

    producer = threading.Thread(target=produce)
    try:
        producer.start()
        # the reader stalls: the producer fills the queues, then waits
        time.sleep(0.3)  # a reader that does not read
        assert len(sent) < 2000
        got = [int(pull.recv().rstrip()) for _ in range(2000)]
        producer.join(5)
        assert got == list(range(2000)) == sent
    finally:
        stopping.set()
        producer.join(5)
        push.close()
        pull.close()


def test_send_waiting_gives_up_when_stopping_or_closed():
    sock = pynng.Push0(send_timeout=50)
    sock.dial(address(), block=False)
    stopping = threading.Event()
    threading.Timer(0.1, stopping.set).start()
    assert send_waiting(sock, b"x", stopping) is False
    threading.Timer(0.1, sock.close).start()
    assert send_waiting(sock, b"x", threading.Event()) is False
