"""The host's channel ends."""

import pytest

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
