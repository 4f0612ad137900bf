"""Careless and hostile user code and starved machines, in real plugin processes.

The plugin is tests/plugins/hostile.py, launched under the embedded host.
"""

import os
import signal
import threading
import time

import pytest

from kuiperlite.dev import gowire
from kuiperlite.errors import HostError
from kuiperlite.protocol import wire

from conftest import ROOT, fresh_worker, unique, wait_until

HOSTILE = ROOT / "tests" / "plugins" / "hostile.py"



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
    wait_until(lambda: host.process.printed(f"TORN-DOWN {rule}"),
               message="the first teardown to end")


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
    host = kuiperlite_host(HOSTILE, env={"HOSTILE_NO_INSTANCE_THREADS": "1"})
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
    wait_until(lambda: host.process.printed("STUCK"), message="the sink to get stuck")
    path = wire.ipc_path(snk.address)
    assert os.path.exists(path)
    host.process.stop()  # SIGTERM: the plugin exits, its sink still inside user code
    assert not os.path.exists(path)
    assert host.process.printed("is still inside user code at exit")


def test_a_teardown_that_never_returns_does_not_keep_the_plugin_behind(kuiperlite_host):
    host = kuiperlite_host(HOSTILE, env={"KUIPERLITE_EXIT_GRACE": "1"})
    src = host.start_source("holds", rule=unique("r"))
    assert src.recv()[0] == {"n": 1}
    wait_until(lambda: host.process.printed("finished; it stays open"), message="the source to end")
    # Its connection is closed as the rule stops, here by the exit itself.
    os.kill(host.process.pid, signal.SIGTERM)
    wait_until(lambda: host.process.poll() is not None, 20, message="the plugin to exit")
    host.process.reader.join(5)  # the last lines may still be in the pipe
    assert host.process.printed("STUBBORN-CLOSING")
    assert host.process.printed("it exits without waiting")
    assert not host.process.printed("starting a new one")  # the supervisor does not restart it


@pytest.mark.parametrize(("call", "died"), [
    (("hard_exit", 3), "exited with code 3"), (("segfault", 0), "was killed by signal 11")])
def test_a_worker_killed_by_user_code_is_back_at_once_and_the_call_gets_an_error(
        kuiperlite_host, call, died):
    host = kuiperlite_host(HOSTILE)
    supervisor = host.process.pid
    src = host.start_source("callbacks", rule=unique("r"), config={"threads": 1, "size": 10})
    snk = host.start_sink("collect", rule=unique("k"), config={"requireAck": True})
    with host.function("pid") as pid, host.function(call[0]) as fn:
        worker = pid.call()
        started = time.monotonic()
        with pytest.raises(HostError, match="The plugin process died while running"):
            fn.call(call[1])  # the call in flight: answered with an error, not run again
        assert time.monotonic() - started < 5
        assert pid.call() != worker  # a new worker answers
    wait_until(lambda: host.process.printed(f"worker process {worker} {died}"))
    assert host.process.pid == supervisor and host.alive  # eKuiper sees no death
    assert src.recv()[0] == {"pad": "x" * 10}  # the running source and sink are back
    assert snk.send({"after": "death"}) is None
    src.stop()
    snk.stop()


def test_a_worker_killed_from_outside_is_back_within_a_second(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    src = host.start_source("callbacks", rule=unique("r"), config={"threads": 1, "size": 10})
    snk = host.start_sink("collect", rule=unique("k"), config={"requireAck": True})
    assert snk.send({"n": 1}) is None
    worker = host.process.worker
    os.kill(worker, signal.SIGKILL)  # as the OOM killer does
    killed = time.monotonic()
    fresh_worker(host, worker, 10)
    with host.function("pid") as pid:
        assert pid.call() == host.process.worker
    assert snk.send({"n": 2}) is None
    src.recv()
    assert time.monotonic() - killed < 1.0 + 0.5  # back within a second (and one round trip)
    src.stop()
    snk.stop()


def test_a_worker_that_forked_a_helper_is_replaced_at_once_when_it_dies(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    with host.function("spawn_helper") as spawn:
        helper = spawn.call(60)
    try:
        worker = host.process.worker
        os.kill(worker, signal.SIGKILL)
        fresh_worker(host, worker, 5)  # not once the helper, holding the journal's pipe, ends
        with host.function("pid") as pid:
            assert pid.call() == host.process.worker
    finally:
        os.kill(helper, signal.SIGKILL)


def test_a_sink_message_in_flight_when_the_worker_died_is_acked_with_an_error(
        kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    rule = unique("k")
    with host.start_sink("dies", rule=rule, config={"requireAck": True}) as snk:
        assert snk.send({"n": 1}) is None
        ack = snk.send({"die": True})  # eKuiper would wait for this ack forever
        assert ack.startswith("The plugin process died while the sink 'dies' collected")
        try:
            after = snk.send({"n": 2})
        except HostError as err:  # say which side lost it (this failed once, not since)
            got = host.process.printed(f"DIES-GOT {rule} {{'n': 2}}")
            pytest.fail(f"{err} The fresh worker {'collected' if got else 'never got'} the "
                        f"record.\n{host.process.tail()}")
        assert after is None
    wait_until(lambda: host.process.printed(f"DIES-GOT {rule} {{'n': 2}}"),
               message="the record after the crash printed")


def test_host_supplied_names_never_reach_the_filesystem(kuiperlite_host, tmp_path):
    host = kuiperlite_host(HOSTILE)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    escape = os.path.relpath(tmp_path / "precious", host.ipc_dir)  # ../..: out of the folder
    for rule in (escape, "a/b", "nul\x00", "r" * 200):
        control = wire.Control("collect", "sink", wire.Meta(rule, "op1", 0), "", {})
        answer = host.send_raw(gowire.encode_command("start", control)).decode()
        assert "cannot be part of a socket file name" in answer or "bytes long" in answer
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]
    # A file where a sink's socket would go is never replaced, nor removed.
    rule = unique("k")
    squatter = wire.ipc_path(wire.data_address(wire.Meta(rule, "op1", 0), host.ipc_dir))
    with open(squatter, "w") as f:
        f.write("not a socket")
    with pytest.raises(HostError, match="exists and is not a socket"):
        host.start_sink("collect", rule=rule)
    with open(squatter) as f:
        assert f.read() == "not a socket"
    os.unlink(squatter)
    assert host.alive


def test_a_source_emitting_from_its_own_threads_stops_without_an_abort(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    worker = host.process.worker
    for _ in range(30):
        rule = unique("r")
        src = host.start_source("callbacks", rule=rule, config={"threads": 4, "size": 2000})
        src.recv()
        src.stop()  # eKuiper's order: the data channel goes, then the stop, under 4 senders
        wait_until(lambda: sum(f"PUMP-STOPPED {rule}" in line  # noqa: B023
                               for line in list(host.process.output)) == 4,
                   message="every emitting thread to see Stopped")
    assert host.process.worker == worker  # the same worker: no abort, no restart
    assert not host.process.printed("PUMP-ERROR")


def test_host_side_sends_and_receives_racing_a_stop_end_cleanly(kuiperlite_host):
    host = kuiperlite_host(HOSTILE)
    for _ in range(10):
        snk = host.start_sink("collect", rule=unique("k"), config={"requireAck": True})
        src = host.start_source("callbacks", rule=unique("r"), config={"threads": 2})
        outcomes: list = []
        exchanges = [0]

        def hammer(snk=snk, src=src, outcomes=outcomes, exchanges=exchanges):
            try:
                while True:
                    snk.send({"n": 1})
                    src.recv()
                    exchanges[0] += 1
            except HostError as err:
                outcomes.append(str(err))

        thread = threading.Thread(target=hammer)
        thread.start()
        wait_until(lambda: exchanges[0] >= 5, message="traffic")  # noqa: B023
        src.stop()  # while the other thread sends and receives
        snk.stop()
        thread.join(15)
        assert not thread.is_alive()
        assert len(outcomes) == 1 and ("is stopped" in outcomes[0]
                                       or "was stopped" in outcomes[0]), outcomes
    assert host.alive
