"""nng sockets through pynng's public API, with a bound on every wait."""

import socket
import threading
import time

import pytest

from kuiperlite.protocol import transport

from conftest import unique, wait_until


def address() -> str:
    return f"ipc:///tmp/{unique('tr')}.ipc"


def test_dial_gives_up_with_a_clear_error():
    sock = transport.requester(keepalive=1)
    try:
        with pytest.raises(ConnectionError, match="nothing answers on ipc:///tmp/.* within 0.2 s"):
            transport.dial(sock, address(), timeout=0.2)
    finally:
        sock.close()


def test_dial_gives_up_on_a_listener_that_never_answers(tmp_path):
    """A peer out of file descriptors takes the connection and never answers."""
    path = tmp_path / "mute.ipc"
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(path))
    mute.listen(8)  # the kernel queues the connection; nobody accepts it
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match="nothing answers"):
            transport.pusher(f"ipc://{path}", send_timeout=1, dial_timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        mute.close()


def test_a_file_that_is_not_a_socket_is_never_listened_over(tmp_path):
    path = tmp_path / "data.ipc"
    path.write_text("someone's file")
    with pytest.raises(ConnectionError, match="exists and is not a socket"):
        transport.puller(f"ipc://{path}")
    assert path.read_text() == "someone's file"


def test_an_empty_message_is_received_as_no_bytes():
    addr = address()
    pull = transport.puller(addr, recv_timeout=5)
    push = transport.pusher(addr, send_timeout=5)
    try:
        for payload in (b"", b"x", b""):
            push.send(payload)
            assert transport.receive(pull) == payload
    finally:
        push.close()
        transport.close(pull)


def test_a_receive_without_a_timeout_ends_when_another_thread_closes_the_socket():
    # How a stop ends a sink's wait for its next message.
    addr = address()
    pull = transport.puller(addr)
    ended: list[BaseException] = []

    def receive() -> None:
        try:
            transport.receive(pull)
        except BaseException as err:
            ended.append(err)

    waiter = threading.Thread(target=receive)
    waiter.start()
    time.sleep(0.1)  # the receive is under way
    assert not ended
    transport.close(pull)
    waiter.join(5)
    assert len(ended) == 1 and isinstance(ended[0], transport.Closed)


def test_a_send_waiting_for_its_peer_ends_when_another_thread_closes_the_socket():
    addr = address()
    pull = transport.puller(addr)
    push = transport.pusher(addr, send_timeout=60, queue=0)
    ended: list[BaseException] = []

    def send() -> None:
        try:
            for _ in range(100_000):  # nobody reads: the queues fill, then it waits
                push.send(b"x" * 1000)
        except BaseException as err:
            ended.append(err)

    try:
        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.5)
        assert not ended and sender.is_alive()
        push.close()
        sender.join(5)
        assert len(ended) == 1 and isinstance(ended[0], transport.Closed)
    finally:
        transport.close(pull)


def test_closing_a_receiving_socket_whose_peer_sends_returns(tmp_path):
    addr = address()
    pull = transport.puller(addr, recv_timeout=1)
    push = transport.pusher(addr, send_timeout=1)
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                push.send(b"x" * 100)
            except transport.NNGException:
                return

    flooding = threading.Thread(target=flood)
    flooding.start()
    try:
        wait_until(lambda: transport.receive(pull) == b"x" * 100, message="the flood")
        closer = threading.Thread(target=transport.close, args=(pull,))
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
    finally:
        stop.set()
        push.close()
        flooding.join(5)


def test_a_gated_close_waits_for_the_sends_under_way_and_refuses_later_ones():
    """nng can abort the process when a socket closes under a send from another thread."""
    where = address()
    pull = transport.puller(where)
    gate = transport.SendGate(transport.pusher(where, send_timeout=0.3, queue=0))
    outcomes: list = []

    def sender() -> None:  # nobody receives: the send waits for its timeout
        try:
            while True:
                gate.send(b"x" * 100)
        except transport.Timeout:
            outcomes.append("timeout")
        except transport.Closed:
            outcomes.append("closed")

    try:
        threads = [threading.Thread(target=sender) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_until(lambda: gate.sock.pipes and len(outcomes) < 4, message="sends under way")
        gate.close()
        for thread in threads:
            thread.join(5)
        assert len(outcomes) == 4 and not any(thread.is_alive() for thread in threads)
        with pytest.raises(transport.Closed):
            gate.send(b"late")
        with pytest.raises(transport.Closed):
            gate.sock.send(b"closed by the last send to leave")
    finally:
        pull.close()
        gate.close()
