"""Careless and hostile user code and starved machines, in real plugin processes.

The plugin is tests/plugins/hostile.py, launched under the embedded host.
"""

import os

import pytest

from kuiperlite import wire
from kuiperlite.errors import HostError

from conftest import ROOT, unique, wait_until

HOSTILE = ROOT / "tests" / "plugins" / "hostile.py"


def said(host, text):
    return any(text in line for line in host.process.output)


@pytest.mark.parametrize(("how", "name"), [
    ("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt"), ("genexit", "GeneratorExit")])
def test_exit_and_interrupt_in_user_code_are_answered_and_channels_go_on(kuiperlite_host, how,
                                                                         name):
    host = kuiperlite_host(HOSTILE)
    with host.function("escape") as fn:
        with pytest.raises(HostError, match=f"escape\\(\\) raised {name}: from the function"):
            fn.call(how)
        assert fn.call("fine") == "fine"  # the same channel answers the next call
    with host.start_sink("collect", rule=unique("k"), config={"requireAck": True}) as snk:
        assert snk.send({"raise": how}) == f"{name}: from the sink"
        assert snk.send({"after": how}) is None
    with host.start_source("escapes", rule=unique("r"), config={"how": how}) as src:
        assert src.recv()[0] == {"before": how}
        with pytest.raises(HostError, match="No record"):
            src.recv(timeout=1)  # takes in the error; no row follows
        assert src.errors == [f"The source 'escapes' failed: {name}: from the source"]
    assert host.alive


def test_a_slow_teardown_does_not_hold_the_address_a_restart_needs(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    rule = unique("k")
    first = host.start_sink("slow_teardown", rule=rule, config={"requireAck": True})
    assert first.send({"n": 1}) is None
    first.stop()  # its teardown takes 2 s from now
    with host.start_sink("slow_teardown", rule=rule, config={"requireAck": True}) as again:
        assert again.send({"n": 2}) is None
    wait_until(lambda: said(host, f"TORN-DOWN {rule}"), message="the first teardown to end")


def test_a_start_without_file_descriptors_is_an_error_never_ok(kuiperlite_host):
    host = kuiperlite_host(HOSTILE, env={"HOSTILE_NOFILE": "48"})
    started, refused = [], []
    for _ in range(30):
        try:
            started.append(host.start_sink("collect", rule=unique("k"),
                                           config={"requireAck": True}))
        except HostError as err:
            refused.append(str(err))
    assert started and refused
    assert all("cannot open its data channel" in text for text in refused), refused
    for snk in started:  # every start answered ok is served
        assert snk.send({"n": 1}) is None
    for snk in started:
        snk.stop()
    with host.start_sink("collect", rule=unique("k"), config={"requireAck": True}) as snk:
        assert snk.send({"n": 2}) is None  # the descriptors came back


def test_a_start_without_a_thread_is_an_error_and_leaves_no_socket(kuiperlite_host):
    # Four threads: the main one, the control channel's and one per function.
    host = kuiperlite_host(HOSTILE, env={"HOSTILE_THREADS": "4"})
    rule = unique("k")
    with pytest.raises(HostError, match="cannot start: RuntimeError: can't start new thread"):
        host.start_sink("collect", rule=rule)
    path = wire.ipc_path(wire.data_address(wire.Meta(rule, "op1", 0), host.ipc_dir))
    assert not os.path.exists(path)  # the data socket it listened on is closed again
    assert host.alive


def test_socket_files_go_at_exit_even_while_a_sink_is_stuck_in_user_code(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    snk = host.start_sink("stuck", rule=unique("k"))
    snk.send({"n": 1})
    wait_until(lambda: said(host, "STUCK"), message="the sink to get stuck")
    path = wire.ipc_path(snk.address)
    assert os.path.exists(path)
    host.process.stop()  # SIGTERM: the plugin exits, its sink still inside user code
    assert not os.path.exists(path)
    assert said(host, "is still inside user code at exit")
