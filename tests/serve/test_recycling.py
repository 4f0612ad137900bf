"""An idle worker that grew gives way to a fresh one; nothing eKuiper sends meanwhile is lost."""

import logging
import os
import sys
import threading

import pytest

from kuiperlite import function
from kuiperlite.declare.plugin import collect
from kuiperlite.dev import gowire
from kuiperlite.dev.ends import Responder
from kuiperlite.protocol.channels import Requester
from kuiperlite.protocol.wire import Control, Meta
from kuiperlite.serve.instances import FunctionServer
from kuiperlite.serve.recycling import Recycler, resident_mb
from kuiperlite.serve.runtime import Runtime, Worker
from kuiperlite.serve.stores import Stores
from kuiperlite.serve.supervisor import InFlight, Journal

from conftest import fresh_worker, unique, wait_until

# Recycling is asked for: a worker idle for half a second gives way once it grew past 4 MB.
QUICK = {"KUIPERLITE_RECYCLE_MB": "4", "KUIPERLITE_RECYCLE_IDLE": "0.5"}
GIVES_WAY = "a fresh worker takes its place"


def test_resident_memory_is_read_from_proc():
    assert 1 < resident_mb() < 10_000


def looked_once(running: int, started: int, *, idle: float, grown: float = 0.001,
                startup: float = 0.0) -> Recycler:
    """A recycler that looked once, at 0 s, and counts all the worker holds as growth."""
    recycler = Recycler(grown=grown, idle=idle, startup=startup)
    recycler.due(running, started, 0, now=0.0)
    recycler.floor = 0.0
    return recycler


def test_the_worker_is_due_once_instances_ran_all_stopped_and_it_idled():
    recycler = Recycler(grown=0.001, idle=30)
    assert recycler.floor == pytest.approx(resident_mb(), abs=5)
    recycler.floor = 0.0  # whatever it holds is growth
    assert recycler.due(0, 0, 0, now=0.0) is None
    assert recycler.due(2, 2, 0, now=1.0) is None  # instances run
    assert recycler.due(0, 2, 0, now=30.0) is None  # 29 s after the last ran
    over = recycler.due(0, 2, 0, now=31.5)
    assert over is not None and over == pytest.approx(resident_mb(), abs=1)
    assert recycler.due(0, 2, 0, now=99.0) is None  # looked at once per idle spell


def test_an_instance_that_came_and_went_between_two_looks_counts():
    recycler = looked_once(0, 0, idle=1)
    assert recycler.due(0, 1, 0, now=0.25) is None
    assert recycler.due(0, 1, 0, now=1.5) is not None


def test_a_function_call_restarts_the_idle_clock():
    recycler = looked_once(1, 1, idle=30)
    assert recycler.due(0, 1, 5, now=20.0) is None  # a call came
    assert recycler.due(0, 1, 5, now=40.0) is None
    assert recycler.due(0, 1, 5, now=50.5) is not None


def test_functions_alone_never_make_it_due():
    recycler = looked_once(0, 0, idle=1)
    assert recycler.due(0, 0, 7, now=1.0) is None
    assert recycler.due(0, 0, 7, now=100.0) is None


def test_a_worker_that_grew_less_than_the_limit_stays():
    recycler = Recycler(grown=10_000, idle=1)
    recycler.due(1, 1, 0, now=0.0)
    assert recycler.due(0, 1, 0, now=5.0) is None


def test_zero_megabytes_turns_it_off():
    recycler = looked_once(1, 1, idle=1, grown=0)
    assert recycler.due(0, 1, 0, now=100.0) is None


def test_a_worker_slow_to_start_is_kept(caplog):
    caplog.set_level(logging.INFO, logger="kuiperlite")
    recycler = looked_once(1, 1, idle=1, startup=3.5)
    assert recycler.due(0, 1, 0, now=100.0) is None
    assert "took 3.5 s to start" in caplog.text


@function
def double(x: int) -> int:
    """Twice x."""
    return 2 * x


def test_a_leaving_worker_leaves_calls_and_commands_for_its_successor():
    plugin = collect(sys.modules[__name__], name=unique("p"))
    stopping, leaving = threading.Event(), threading.Event()
    inflight = InFlight(1)
    server = FunctionServer(plugin.functions["double"], stopping, leaving, inflight, 0,
                            Stores(lambda: None))
    try:
        call = b'{"func":"Exec","arg":[4,"{}"]}'
        assert b"8" in server.handle(call) and server.calls == 1
        leaving.set()
        assert server.handle(call) is None
        assert server.calls == 1 and inflight.function_pending(0) is None
    finally:
        stopping.set()
        server.channel.sock.close()
    read_end, write_end = os.pipe()
    try:
        runtime = Runtime(plugin, worker=Worker(Journal(write_end), InFlight(1)))
        runtime.leaving.set()
        assert runtime.handle(gowire.encode_command(
            "start", Control("double", "func", Meta("", "", 0)))) is None
    finally:
        os.close(read_end)
        os.close(write_end)


def hoard(host, mb: int = 8) -> dict:
    """Start and stop the plugin's ``hoard`` source; its one record."""
    with host.start_source("hoard", rule=unique("r"), config={"mb": mb}) as src:
        return src.recv()[0]


def test_an_idle_worker_gives_way_and_the_fresh_one_serves_everything(kuiperlite_host,
                                                                       copy_plugin):
    host = kuiperlite_host(copy_plugin("faults"), env=QUICK)
    supervisor, first = host.process.pid, host.process.worker
    fn = host.function("echo")
    assert fn.call(1) == 1
    assert hoard(host) == {"pid": first, "hoards": 1}
    second = fresh_worker(host, first, 15)
    assert host.process.pid == supervisor and host.process.printed(GIVES_WAY)
    # eKuiper's open call on the function channel goes to the fresh worker.
    assert fn.call(2) == 2
    # It imported the plugin again: module state starts as at import.
    assert hoard(host, 1) == {"pid": second, "hoards": 1}, host.process.tail(40)
    with host.start_sink("record", rule=unique("k"), config={"requireAck": True}) as snk:
        assert snk.send({"n": 1}) is None
    assert not host.process.printed("ERROR") and not host.process.printed("Traceback")


def test_a_worker_that_grew_less_stays(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("faults"),
                           env={**QUICK, "KUIPERLITE_LOG_LEVEL": "DEBUG"})
    first = host.process.worker
    assert hoard(host, 1)["hoards"] == 1
    wait_until(lambda: host.process.printed("within the 4 MB it may keep"), 15,
               message="the worker's look at its memory")
    assert hoard(host, 1) == {"pid": first, "hoards": 2}


@pytest.mark.parametrize("asked", ["not asked for", "zero megabytes"])
def test_without_recycling_asked_for_the_worker_stays(kuiperlite_host, copy_plugin, asked):
    env = {"KUIPERLITE_RECYCLE_IDLE": "0.5"}
    if asked == "zero megabytes":
        env["KUIPERLITE_RECYCLE_MB"] = "0"
    host = kuiperlite_host(copy_plugin("faults"), env=env)
    first = host.process.worker
    for n in range(1, 4):
        assert hoard(host) == {"pid": first, "hoards": n}
        threading.Event().wait(0.75)  # longer than the idle spell after which it would go


def test_a_plugin_slow_to_import_keeps_its_worker(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("faults"),
                           env={**QUICK, "FAULTS_IMPORT_SECONDS": "2.5"})
    first = host.process.worker
    wait_until(lambda: host.process.printed("its worker is kept when idle"), 15,
               message="the worker's decision")
    assert hoard(host)["hoards"] == 1
    threading.Event().wait(1.5)  # three idle spells after which it would go
    assert hoard(host) == {"pid": first, "hoards": 2}


def test_calls_keep_the_worker_and_their_end_lets_it_go(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("faults"), env=QUICK)
    first = host.process.worker
    fn = host.function("echo")
    hoard(host)
    for n in range(30):  # 3 s of calls, each within the idle half second of the last
        assert fn.call(n) == n
        assert host.process.worker == first
        threading.Event().wait(0.1)
    fresh_worker(host, first, 15)


def test_commands_that_meet_the_swap_are_answered_by_the_fresh_worker(kuiperlite_host,
                                                                      copy_plugin):
    host = kuiperlite_host(copy_plugin("faults"), env={**QUICK, "KUIPERLITE_RECYCLE_IDLE": "0.25"})
    fn = host.function("echo")
    workers = {host.process.worker}
    for n in range(12):
        # Each start comes a little before, at or after the moment the last stop's
        # worker gives way (its watch looks every 0.25 s).
        threading.Event().wait(0.2 + 0.03 * n)
        workers.add(hoard(host, 5)["pid"])
        assert fn.call(n) == n
    assert len(workers) > 2
    assert not host.process.printed("ERROR")


def test_a_closed_unanswered_channel_leaves_the_request_open_for_the_next_peer(tmp_path):
    address = f"ipc://{tmp_path}/c.ipc"
    host = Responder(address, alive=lambda: None)
    try:
        first = Requester(address)
        stopping = threading.Event()

        def refuse(raw: bytes) -> None:
            return None

        answers: list[bytes] = []
        asking = threading.Thread(target=lambda: answers.append(host.request(b"cmd", 10)))
        asking.start()
        first.serve(refuse, stopping)  # takes the command, leaves it open, closes
        second = Requester(address)
        serving = threading.Thread(target=second.serve, args=(lambda raw: b"ok:" + raw, stopping))
        serving.start()
        asking.join(10)
        assert answers == [b"ok:cmd"]
        stopping.set()
        serving.join(10)
    finally:
        host.close()
