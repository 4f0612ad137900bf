"""The fault suite: each fault injected with real processes and sockets, each bounded.

1 idle and host socket restarts, 2 host death, 3 plugin death and replay,
4 stop storms, 5 slow user code, 6 bad input on every channel, 7 user code
that fails, 8 concurrency; then the security guarantees.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev import gowire
from kuiperlite.errors import HostError
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Meta

from conftest import EXAMPLES, SCRIPTS, pid_alive, stacks_of, threads_of, unique, wait_until


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("faults")





# 1 ----------------------------------------------------------------- idle


def test_idle_then_a_call_answers_at_once_also_after_host_socket_restarts(kuiperlite_host,
                                                                          plugin):
    host = kuiperlite_host(plugin, env={"KUIPERLITE_KEEPALIVE": "0.3"})
    fn = host.function("echo")
    assert fn.call(1) == 1
    time.sleep(2.0)  # six keepalive periods without a command or a call
    started = time.monotonic()
    assert fn.call(2) == 2
    with host.start_source("tagged", rule=unique("r"), config={"count": 1}) as src:
        assert src.recv()[0]["i"] == 0
    assert time.monotonic() - started < 1.5
    # eKuiper restarts: its control and function sockets go away and come back.
    host.restart_sockets()
    started = time.monotonic()
    assert fn.call(3) == 3
    with host.start_source("tagged", rule=unique("r"), config={"count": 1}) as src:
        assert src.recv()[0]["i"] == 0
    assert time.monotonic() - started < 3


# 2 ----------------------------------------------------------- host death


def test_host_killed_mid_stream_the_plugin_exits_and_cleans_up(plugin, tmp_path):
    log = tmp_path / "plugin.log"
    host = subprocess.Popen([sys.executable, str(SCRIPTS / "stream_host.py"), plugin.stem,
                             str(plugin), str(log)], stdout=subprocess.PIPE, text=True)
    sink_file = wire.ipc_path(wire.data_address(Meta(plugin.stem, "op2", 0)))
    try:
        pid = int(host.stdout.readline())
        wait_until(lambda: "REC" in log.read_text(), message="data flowing")
        assert os.path.exists(sink_file)
        host.kill()
        host.wait()
        killed = time.monotonic()
        wait_until(lambda: not pid_alive(pid), 10, message="the orphaned plugin to exit")
        assert time.monotonic() - killed < 5
        assert f"exits: the host process {host.pid} is gone" in log.read_text()
        assert not os.path.exists(sink_file)  # the plugin's own socket file
    finally:
        host.kill()
        host.stdout.close()
        # The killed host's own listeners stay behind, as a killed eKuiper's would.
        for path in (wire.data_address(Meta(plugin.stem, "op1", 0)),
                     wire.ack_address(Meta(plugin.stem, "op2", 0)),
                     wire.control_address(plugin.stem)):
            if os.path.exists(wire.ipc_path(path)):
                os.unlink(wire.ipc_path(path))


# 3 -------------------------------------------------- plugin death, replay


def test_plugin_killed_in_use_is_restarted_and_data_flows_again(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    host.supervise()
    src = host.start_source("tagged", rule=unique("r"), config={"interval": 0.01})
    snk = host.start_sink("record", rule=unique("k"), config={"requireAck": True})
    fn = host.function("echo")
    old, worker = host.process.pid, src.recv()[0]["pid"]
    assert worker == host.process.worker and snk.send({"n": 1}) is None and fn.call(1) == 1
    os.kill(old, signal.SIGKILL)  # as eKuiper kills a plugin: its worker dies with it
    wait_until(lambda: host.process.pid != old and host.alive, 15, message="the new plugin")
    wait_until(lambda: src.recv()[0]["pid"] not in (old, worker), 15,
               message="records from the new plugin")
    assert snk.send({"n": 2}) is None
    wait_until(lambda: fn.call(2) == 2, 15, message="the function channel")
    wait_until(lambda: host.process.printed(f"REC {snk.control.meta.rule_id} 2"))


# 4 ----------------------------------------------------------- stop storms


def test_stop_storm(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    pid = host.process.worker
    with host.start_sink("record", rule=unique("k"), config={"requireAck": True}) as snk:
        snk.send({"n": 0})
        baseline = threads_of(pid)
        slowest = 0.0
        for n in range(200):
            src = host.start_source("tagged", rule=f"storm{n}", config={"interval": 0.005})
            assert src.recv()[0]["rule"] == f"storm{n}"
            assert snk.send({"n": n}) is None  # data on another instance meanwhile
            started = time.monotonic()
            src.stop()
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0
        try:
            wait_until(lambda: threads_of(pid) <= baseline, 15, message="threads back to baseline")
        except pytest.fail.Exception:
            pytest.fail(f"{threads_of(pid)} threads 15 s after the storm, {baseline} before it; "
                        f"the plugin's stacks:\n{stacks_of(pid)}")
    assert not host.process.printed("still inside user code")


# 5 ------------------------------------------------------ slow user code


def test_a_slow_sink_does_not_hold_the_control_channel(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    rule = unique("k")
    snk = host.start_sink("slow", rule=rule, config={"requireAck": True})
    acks = []
    sender = threading.Thread(target=lambda: acks.append(snk.send({"x": 1}, timeout=10)))
    sender.start()
    wait_until(lambda: host.process.printed(f"SLOW-IN {rule}"),
               message="the sink to be inside its 2 s call")
    for _ in range(5):
        started = time.monotonic()
        host.start_source("idle", rule=unique("r")).stop()
        assert time.monotonic() - started < 1.0
    sender.join(10)
    assert acks == [None]
    snk.stop()


def test_a_call_longer_than_the_hosts_timeout_fails_without_wedging_the_channel(
        kuiperlite_host, plugin):
    host = kuiperlite_host(plugin, send_timeout=0.5, recv_timeout=0.5)
    fn = host.function("sleepy")
    started = time.monotonic()
    with pytest.raises(HostError, match="No answer"):
        fn.call(2.5)
    assert time.monotonic() - started < 2.0
    with host.start_source("tagged", rule=unique("r"), config={"count": 1}) as src:
        assert src.recv()[0]["i"] == 0  # the control channel answers meanwhile
    wait_until(lambda: host.process.printed("SLEPT 2.5"))
    assert fn.call(0.01) == 0.01  # the late 2.5 is dropped, never taken for this answer


# 6 ------------------------------------------------------------ bad input


@pytest.mark.parametrize(("raw", "phrase"), [
    (b'{"cmd": "start", "arg": "{\\"symbolName\\": \\"tag', "is not valid JSON"),
    (b'{"cmd": "start"', "The command is not valid JSON"),
    (gowire.encode_command("start", wire.Control("tagged", "source", Meta("r", "o", 0), "",
                                               {"count": [1]})),
     "Config 'count' of the source 'tagged' must be an integer, got a list."),
    (b'{"cmd":"start","arg":"{\\"symbolName\\":\\"tagged\\",\\"pluginType\\":\\"source\\",'
     b'\\"meta\\":{\\"opId\\":\\"o\\"}}"}', "needs meta.ruleId"),
    (b"\x00\xff\xfe", "The command is not valid JSON"),
    (b"", "The command is empty; expected JSON."),
])
def test_bad_commands(kuiperlite_host, plugin, raw, phrase):
    host = kuiperlite_host(plugin)
    answer = host.send_raw(raw).decode()
    assert phrase in answer and not answer.startswith("h")
    assert host.function("echo").call("still") == "still"


@pytest.mark.parametrize(("raw", "phrase"), [
    (b"", "The function request is empty"),
    (b"{not json", "The function request is not valid JSON"),
    (b'{"func": "Exec", "arg": {"a": 1}}', "'arg' must be a list, got an object"),
    (b'{"func": "Exec", "arg": []}', "Exec needs the function meta"),
    (b'{"func": "Exec", "arg": [1, 2]}', "a JSON string, got the number 2"),
    (b'{"func": "Explode", "arg": null}', "Unknown function request 'Explode'"),
])
def test_bad_function_requests(kuiperlite_host, plugin, raw, phrase):
    host = kuiperlite_host(plugin)
    fn = host.function("echo")
    reply = gowire.decode_reply(fn.channel.request(raw, 10))
    assert reply.state is False and phrase in reply.result
    assert fn.call("ok") == "ok"


def test_odd_sink_payloads_are_acked(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    rule = unique("k")
    with host.start_sink("record", rule=rule, config={"requireAck": True}) as snk:
        assert snk.send(b"") is None  # a 0-byte message
        big = b'{"n": "' + b"x" * (16 * 1024 * 1024) + b'"}'
        assert snk.send(big, timeout=60) is None  # over nng's old 1 MB cap
        assert snk.send(b"not json") is None
        wait_until(lambda: host.process.printed(f"REC {rule} 8"), message="the raw payload")
        wait_until(lambda: host.process.printed(f"REC {rule} {'x' * 20}"[:40]),
                   message="the 16 MB one")


def test_unencodable_records_are_errors_on_the_source_channel(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_source("bad_records", rule=unique("r")) as src:
        assert src.recv()[0] == {"ok": True}
        assert len(src.errors) == 4
        assert all(e.startswith("The source 'bad_records' dropped a record: ") for e in src.errors)
        assert "not finite at nan" in src.errors[1] and "must be a dict" in src.errors[3]
    assert host.function("echo").call(1) == 1


# 7 ------------------------------------------------------ user code fails


@pytest.mark.parametrize(("symbol", "records", "error"), [
    ("fails_setup", [], "The source 'fails_setup' failed: RuntimeError: no device"),
    ("fails_midway", [{"n": 1}], "The source 'fails_midway' failed: RuntimeError: lost the device"),
    ("returns_at_once", [], None),
])
def test_failing_sources(kuiperlite_host, plugin, symbol, records, error):
    host = kuiperlite_host(plugin)
    with host.start_source(symbol, rule=unique("r")) as src:
        got = []
        with pytest.raises(HostError, match="No record"):
            while True:
                got.append(src.recv(timeout=1.0)[0])
        assert got == records
        assert src.errors == ([error] if error else [])
    assert host.function("echo").call(1) == 1


def test_a_source_failing_in_teardown_still_stops(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    started = time.monotonic()
    host.start_source("fails_teardown", rule=unique("r")).stop()
    assert time.monotonic() - started < 1.0
    wait_until(lambda: host.process.printed("RuntimeError: cannot close"))
    assert host.function("echo").call(1) == 1


@pytest.mark.parametrize(("symbol", "payload", "ack"), [
    ("fails_open", {}, "The sink 'fails_open' failed to open: RuntimeError: no database"),
    ("fails_record", {"bad": 1}, "ValueError: bad record"),
    ("never_yields", {}, "The sink 'never_yields' returned before its first yield; a generator "
                         "sink must receive data with `data = yield`."),
])
def test_failing_sinks_ack_errors(kuiperlite_host, plugin, symbol, payload, ack):
    host = kuiperlite_host(plugin)
    with host.start_sink(symbol, rule=unique("k"), config={"requireAck": True}) as snk:
        assert snk.send(payload) == ack
        assert snk.send(payload) == ack  # and again: the sink keeps serving
    assert host.function("echo").call(1) == 1


def test_a_sink_failing_in_teardown_still_stops(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    snk = host.start_sink("fails_close", rule=unique("k"), config={"requireAck": True})
    assert snk.send({}) is None
    started = time.monotonic()
    snk.stop()
    assert time.monotonic() - started < 1.0
    wait_until(lambda: host.process.printed("RuntimeError: cannot flush"))


def test_a_failing_function_keeps_serving(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("raises") as fn:
        for i in range(3):
            with pytest.raises(HostError, match=f"raises\\(\\) raised ValueError: bad value {i}"):
                fn.call(i)
    assert host.function("echo").call("fine") == "fine"


# 8 ----------------------------------------------------------- concurrency


def test_100_sources_and_100_sinks_at_once(kuiperlite_host, plugin, tmp_path):
    host = kuiperlite_host(plugin, timeout=30)
    received = tmp_path / "received.txt"
    sources = [host.start_source("tagged", rule=f"src{i:03d}", config={"count": 20})
               for i in range(100)]
    sinks = [host.start_sink("record", rule=f"snk{i:03d}",
                             config={"requireAck": True, "path": str(received)})
             for i in range(100)]
    failures = []

    def feed(batch):
        try:
            for snk in batch:
                for n in range(20):
                    assert snk.send({"n": n}) is None
        except Exception as err:  # a thread cannot fail the test itself
            failures.append(err)

    feeders = [threading.Thread(target=feed, args=(sinks[i::10],)) for i in range(10)]
    for thread in feeders:
        thread.start()
    for src in sources:
        records = src.records(20, timeout=30)
        assert [r["i"] for r in records] == list(range(20))
        assert {r["rule"] for r in records} == {src.control.meta.rule_id}
    for thread in feeders:
        thread.join(60)
    assert failures == []
    time.sleep(0.05)  # a stray ack would have come by now
    for snk in sinks:
        assert snk.extra_ack(wait=0) is None  # no ack beyond one per record
    lines = received.read_text().splitlines()  # every record was written before its ack
    assert len(lines) == 2000
    for i in range(100):
        got = sorted(int(line.split()[2]) for line in lines if line.split()[1] == f"snk{i:03d}")
        assert got == list(range(20))  # each acked record arrived once, none lost
    for handle in sources + sinks:
        handle.stop()


# security --------------------------------------------------------------


def test_a_sinks_socket_file_goes_when_it_stops(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    snk = host.start_sink("record", rule=unique("k"))
    path = wire.ipc_path(snk.address)
    assert os.path.exists(path)
    snk.stop()
    wait_until(lambda: not os.path.exists(path), message="the socket file to go")
    assert host.alive


def test_package_writes_only_its_zip(tmp_path):
    out = tmp_path / "out"
    package.build(load(str(EXAMPLES / "pysam" / "pysam.py")), str(out))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out", "pysam.zip"]
    with zipfile.ZipFile(out / "pysam.zip") as archive:
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in archive.namelist())
