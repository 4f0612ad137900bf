"""kuiperlite's nng sockets and pynng's in one process, pynng imported first or later.

``python nng_beside_pynng.py first|later|midway DIR`` imports pynng before
or after :mod:`kuiperlite.nng`, or while a kuiperlite receive is in flight
and its peer connected (a plugin may import pynng at any time, a sink in
its setup), then checks that both keep their peer counts and asynchronous
completions:
each pair connects and parts, a Pending receive completes through nng's call into
Python, and pynng's own pipe callbacks still fire. Prints ``ok`` at the end;
a failure is an exception (exit code 1).
"""

import sys
import threading
import time

order, directory = sys.argv[1:3]
if order == "first":
    import pynng

from kuiperlite import nng  # noqa: E402
from kuiperlite.channels import Pending, dial, listen  # noqa: E402

if order == "later":
    import pynng


def check_ours(address: str, import_midway: bool = False) -> None:
    pull = nng.Socket(nng.PULL, recv_timeout=5000)
    push = nng.Socket(nng.PUSH, send_timeout=5000)
    listen(pull, address)
    dial(push, address)
    assert pull.wait_connected(5) and pull.pipes == 1, pull.pipes
    done = threading.Event()
    pending = Pending(pull, done.set)
    pending.recv()
    if import_midway:
        global pynng
        import pynng
    push.send(b"through nng's callback")
    assert done.wait(5), "the Pending's completion never came"
    assert pending.received() == b"through nng's callback"
    pending.close()
    push.close()
    deadline = time.monotonic() + 5
    while pull.pipes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pull.pipes == 0 and pull.disconnected_for() > 0, pull.pipes
    pull.close()


def check_pynngs(address: str) -> None:
    added = threading.Event()
    with pynng.Pull0(recv_timeout=5000, listen=address) as pull:
        pull.add_post_pipe_connect_cb(lambda _pipe: added.set())
        with pynng.Push0(dial=address) as push:
            assert added.wait(5), "pynng's pipe callback never came"
            push.send(b"plain")
            assert pull.recv() == b"plain"


# Each kind again after the other: the calls into Python change hands in between.
check_ours(f"ipc://{directory}/ours.ipc", import_midway=order == "midway")
check_pynngs(f"ipc://{directory}/theirs.ipc")
check_ours(f"ipc://{directory}/ours-again.ipc")
check_pynngs(f"ipc://{directory}/theirs-again.ipc")
print("ok")
