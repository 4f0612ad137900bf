import gc
import subprocess
import sys
import time

import pynng
import pytest

from kuiperlite import nng

from conftest import SCRIPTS, unique, wait_until


def address() -> str:
    return f"ipc:///tmp/{unique('nng')}.ipc"


def test_a_socket_counts_its_peers_as_they_come_and_go():
    addr = address()
    with nng.Socket(nng.PULL, recv_timeout=5000) as pull:
        pull.listen(addr)
        assert pull.pipes == 0 and pull.disconnected_for() > 0
        with pynng.Push0(dial=addr) as push:  # an independent peer
            assert pull.wait_connected(5)
            assert pull.pipes == 1 and pull.disconnected_for() == 0.0
            push.send(b"hello")
            assert pull.recv() == b"hello"
        wait_until(lambda: pull.pipes == 0, message="the peer to leave")
        assert pull.disconnected_for() > 0


def test_an_empty_message_is_received_as_empty_bytes():
    addr = address()
    with nng.Socket(nng.PULL, recv_timeout=5000) as pull, pynng.Push0() as push:
        pull.listen(addr)
        push.dial(addr)
        push.send(b"")
        assert pull.recv() == b""


def test_nng_errors_become_exceptions_named_for_what_happened():
    addr = address()
    with nng.Socket(nng.PULL, recv_timeout=50) as pull:
        pull.listen(addr)
        with pytest.raises(nng.Timeout, match="[Tt]imed out"):
            pull.recv()
        with nng.Socket(nng.PULL) as other, pytest.raises(nng.AddressInUse):
            other.listen(addr)
    with pytest.raises(nng.Closed):
        pull.recv()
    # A REP answers only what it received.
    with nng.Socket(nng.REP, send_timeout=50) as rep, pytest.raises(nng.BadState):
        rep.send(b"unasked")


def test_an_unknown_option_is_refused_by_name():
    with nng.Socket(nng.PUSH) as push, \
            pytest.raises(ValueError, match="No socket option 'linger'; expected one of recv_"):
        push.set("linger", 1)


def test_closing_a_dialer_stops_its_reconnecting():
    addr = address()
    with nng.Socket(nng.PUSH, reconnect_time_min=10, reconnect_time_max=10) as push:
        dialer = push.dial(addr)
        assert push.dialers == [dialer]
        dialer.close()
        assert push.dialers == []
        with pynng.Pull0(listen=addr) as pull:
            quiet_until = time.monotonic() + 0.3  # many reconnect intervals
            while time.monotonic() < quiet_until:
                assert not pull.pipes, "the closed dialer connected"
                time.sleep(0.01)


@pytest.mark.parametrize("order", ["first", "later", "midway"])
def test_nng_and_pynng_share_a_process_whichever_is_imported_first(order, tmp_path):
    """A plugin may import pynng itself: both keep their callbacks."""
    out = subprocess.run([sys.executable, str(SCRIPTS / "nng_beside_pynng.py"), order,
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "Traceback" not in out.stderr  # nng's calls into Python raised nothing



def test_a_socket_dropped_open_is_closed_and_frees_its_address():
    addr = address()
    sock = nng.Socket(nng.PULL)
    sock.listen(addr)
    del sock
    gc.collect()  # the socket and its handle for nng's calls form a cycle
    with nng.Socket(nng.PULL) as again:
        again.listen(addr)  # the address is free again
