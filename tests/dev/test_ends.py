"""The host's channel ends."""

import threading
import time

import pynng
import pytest

from kuiperlite.dev import ends
from kuiperlite.dev.ends import Responder
from kuiperlite.errors import HostError

from conftest import unique


def address() -> str:
    return f"ipc:///tmp/{unique('chan')}.ipc"


def test_host_responder_notices_a_dead_peer():
    addr = address()

    def dead():
        raise HostError("plugin gone")

    host = Responder(addr, dead)
    try:
        with pytest.raises(HostError, match="plugin gone"):
            host.wait_handshake(5)
    finally:
        host.close()


def test_nudges_from_many_threads_each_move_their_own_message():
    def nudges():
        for _ in range(50):
            ends.nudge()

    threads = [threading.Thread(target=nudges) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert ends._pair is not None
    _push, pull = ends._pair
    with pytest.raises(pynng.TryAgain):  # no nudge left a message behind
        pull.recv(block=False)


def test_a_close_that_hangs_is_left_behind_in_bounded_time(monkeypatch, caplog):
    # nng 1.6 can hang a close for good; this one hangs until the test lets it go.
    real_close, release = ends.close, threading.Event()

    def hanging(sock):
        release.wait(30)
        real_close(sock)

    monkeypatch.setattr(ends, "close", hanging)
    monkeypatch.setattr(ends, "CLOSE_WAIT", 0.5)
    monkeypatch.setattr(ends, "_reaper_stuck", threading.Event())
    host = Responder(address(), lambda: None)
    began = time.monotonic()
    try:
        assert host.close() is True
        assert time.monotonic() - began < 5
        assert host.closed
        assert f"closing the socket on {host.address} did not end within 0.5 s" in caplog.text
        # Behind a hung close every later one hangs too: each takes a moment only.
        others = [Responder(address(), lambda: None) for _ in range(20)]
        began = time.monotonic()
        for other in others:
            other.close()
        assert time.monotonic() - began < 20 * 0.5
        assert caplog.text.count("did not end within") == 1
    finally:
        release.set()
