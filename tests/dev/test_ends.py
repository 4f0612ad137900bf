"""The host's channel ends."""

import threading

import pytest

from kuiperlite.channels import Direct
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
    assert Direct(pull).try_recv() is None  # no nudge left a message behind
