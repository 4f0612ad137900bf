"""The runtime in real plugin processes, driven through the embedded host."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from kuiperlite.dev import Host, gowire
from kuiperlite.errors import HostError
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Control, Meta

from conftest import FIXTURES, fresh_worker, pid_alive, place_plugin, unique, wait_until

CONDA = FIXTURES / "bin"  # a stand-in for `conda run`, which holds output back


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("runtime")



def test_source_gets_datasource_and_converted_config(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_source("counter", datasource="topic/a",
                           config={"count": "3", "tag": 7, "sendSingle": True}) as src:
        assert src.records(3) == [
            {"i": i, "rule": "rule1", "tag": "7", "ds": "topic/a", "pad": ""} for i in range(3)]


def test_config_errors_fail_the_start_and_the_plugin_goes_on(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with pytest.raises(Exception, match="'count'"):
        host.start_source("counter", config={"count": "many"})
    with host.function("revert") as fn:
        assert fn.call("abc") == "cba"


@pytest.mark.parametrize("known", ["from the start command", "declared"])
def test_under_ekuiper_1x_no_keepalive_is_taken_for_a_commands_answer(kuiperlite_host, plugin,
                                                                      known):
    # eKuiper 1.x takes a handshake the plugin sent while it was idle for the
    # answer to its next command, which then fails ("receive error: handshake").
    env = {"KUIPERLITE_KEEPALIVE": "0.2"}
    if known == "declared":
        env["KUIPERLITE_EKUIPER"] = "1"
    host = kuiperlite_host(plugin, ekuiper=1, env=env)
    src = host.start_source("sleeper", rule=unique("r"), datasource="demo")
    time.sleep(1.0)  # five keepalive periods of silence on the control channel
    src.stop()
    time.sleep(1.0)
    with host.start_source("counter", rule=unique("r"), datasource="demo") as again:
        assert again.recv()[0]["i"] == 0
    assert host.process.printed("eKuiper 1.x serves this plugin")


def test_a_refused_sink_start_frees_the_ack_address_ekuiper_leaves_listening(kuiperlite_host,
                                                                              plugin):
    # eKuiper 2.x listens on the ack channel, sends the start, and on a refusal
    # returns without closing that listener (so does the host): a retry would
    # find the address taken.
    host = kuiperlite_host(plugin)
    rule = unique("k")
    with pytest.raises(HostError, match="'quiet'"):
        host.start_sink("collect", rule=rule, config={"quiet": "loud"})
    assert [channel.closed for channel in host.leaked] == [False]
    with host.start_sink("collect", rule=rule, config={"requireAck": True}) as retried:
        assert retried.send({"name": "after the retry"}) is None


def test_under_ekuiper_1x_a_sink_starts_again_though_1x_never_closes_its_ack_listener(
        kuiperlite_host, plugin):
    host = kuiperlite_host(plugin, ekuiper=1, env={"KUIPERLITE_EKUIPER": "1"})
    rule = unique("k")
    for round_ in range(3):
        with host.start_sink("collect", rule=rule, config={"requireAck": True}) as snk:
            assert snk.send({"name": f"round {round_}"}) is None  # 1.x reads no ack
            # Without acks nothing tells the host the record was taken before its stop.
            wait_until(lambda n=round_: host.process.printed(
                f"GOT {rule} {{'name': 'round {n}'}}"), message=f"round {round_}'s record")
    assert len(host.leaked) == 3 and not any(channel.closed for channel in host.leaked)
    assert host.process.printed("eKuiper 1.x reads no acks")


@pytest.mark.parametrize(("raw", "phrase"), [
    (b"not json", "The command is not valid JSON"),
    (b"", "The command is empty"),
    (b'{"cmd":"start","arg":{"symbolName":"counter"}}', "must be a string holding the control"),
    (b'{"cmd":"pause","arg":"{}"}', "Unknown command 'pause'"),
    (b'{"cmd":"start","arg":"{\\"symbolName\\":\\"counter\\",\\"pluginType\\":\\"source\\"}"}',
     "needs 'meta'"),
    (gowire.encode_command("start", Control("nothing", "source", Meta("r", "o", 0))),
     "has no source named 'nothing'; its sources: counter, sleeper, reader, broken."),
    (gowire.encode_command("start", Control("counter", "widget", Meta("r", "o", 0))),
     "Unknown plugin type 'widget'"),
])
def test_bad_commands_get_a_sentence_and_the_loop_goes_on(kuiperlite_host, plugin, raw, phrase):
    host = kuiperlite_host(plugin)
    answer = host.send_raw(raw).decode()
    assert phrase in answer
    assert "Traceback" not in answer and "\n" not in answer
    with host.function("revert") as fn:
        assert fn.call("ab") == "ba"


def test_stop_while_sleeping_is_prompt_and_runs_finally(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    src = host.start_source("sleeper", rule="sleepy")
    started = time.monotonic()
    src.stop()
    assert time.monotonic() - started < 1.0
    wait_until(lambda: host.process.printed("SLEEPER-CLOSED sleepy"), message="the finally block")


def test_stop_of_an_instance_that_is_gone_is_ok(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    stopped = host.start_source("sleeper", rule="gone")
    stopped.stop()
    wait_until(lambda: host.process.printed("SLEEPER-CLOSED gone"), message="the instance to end")
    for control in (stopped.control,  # stopped already
                    Control("counter", "source", Meta("never", "started", 0)),
                    Control("revert", "func")):
        assert host.send_raw(gowire.encode_command("stop", control)) == wire.OK, control
    assert host.alive
    with host.function("revert") as fn:  # and the plugin goes on
        assert fn.call("ab") == "ba"


def test_many_instances_each_get_exactly_their_own_data(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    sources = [host.start_source("counter", rule=unique("r"), config={"count": 40})
               for _ in range(25)]
    sinks = [host.start_sink("collect", rule=unique("k"), config={"requireAck": True})
             for _ in range(25)]
    for src in sources:
        records = src.records(40)
        assert [r["i"] for r in records] == list(range(40))
        assert {r["rule"] for r in records} == {src.control.meta.rule_id}
    for n, snk in enumerate(sinks):
        for i in range(5):
            assert snk.send({"n": n, "i": i}) is None
    for n, snk in enumerate(sinks):
        rule = snk.control.meta.rule_id
        wait_until(lambda rule=rule, n=n: host.process.printed(f"GOT {rule} {{'i': 4, 'n': {n}}}"),
                   message=f"sink {n}")
    sources[0].stop()  # one stops, the others are untouched
    for snk in sinks:
        assert snk.send({"after": True}) is None
    for handle in sources[1:] + sinks:
        handle.stop()


def test_user_code_errors_are_reported_on_their_channel(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_source("broken") as src:
        assert src.recv()[0] == {"ok": 1}
        with pytest.raises(HostError, match="No record"):
            src.recv(timeout=1.0)  # no more records; the error message is kept aside
        assert src.errors == ["The source 'broken' failed: ValueError: sensor unplugged"]
    with host.start_sink("collect", config={"requireAck": True, "fail_on": "x"}) as snk:
        assert snk.send({"name": "x"}) == "OSError: cannot write x"
        assert snk.send({"name": "y"}) is None
    with host.function("boom") as fn, pytest.raises(Exception, match=r"boom\(\) raised "
                                                                     "RuntimeError: nope"):
        fn.call(1)
    wait_until(lambda: host.process.printed("ValueError: sensor unplugged"),
               message="the source's error logged with its traceback")
    assert host.process.poll() is None


def test_sink_payloads_that_are_not_json_arrive_as_bytes(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_sink("collect", config={"requireAck": True}) as snk:
        assert snk.send(b"a,b\n1,2") is None
        wait_until(lambda: host.process.printed("GOT rule1 b'a,b\\n1,2'"), message="raw bytes")


def test_without_require_ack_no_acks_are_sent_and_the_sink_never_stalls(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_sink("last", rule="noack") as snk:
        for i in range(3000):
            snk.send({"i": i})
        wait_until(lambda: host.process.printed('LAST noack 10 {"i":2999}'), 30, message="all 3000")
        assert snk.extra_ack() is None  # nothing was acked: the ack socket stays empty


def test_an_empty_payload_reaches_the_sink(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_sink("last", config={"requireAck": True}) as snk:
        assert snk.send(b"") is None
        assert snk.send(b"after") is None
    wait_until(lambda: host.process.printed("LAST rule1 0 "), message="the empty payload")
    assert host.process.printed("LAST rule1 5 after")


def test_a_large_payload_reaches_the_sink(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    big = {"blob": "y" * (16 * 1024 * 1024)}
    with host.start_sink("last", config={"requireAck": True}) as snk:
        assert snk.send(big, timeout=30) is None
        size = len(gowire.encode_payload(big))
        wait_until(lambda: host.process.printed(f"LAST rule1 {size}"), 30, message="16 MB payload")


def test_back_pressure_waits_and_loses_nothing(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_source("counter", config={"count": 4000, "size": 2000}) as src:
        # eKuiper stalls (a slow rule) for longer than the SDK's send timeout: the 8 MB
        # of records do not fit in the channel, so the source waits, and says so after 5 s
        who = "eKuiper (source 'counter' of rule rule1/op1/0)"
        wait_until(lambda: host.process.printed(f"{who} has not read for 5 s; waiting (nothing "
                                                "is dropped)"), 30, message="the source to wait")
        assert not host.process.printed("FINALLY rule1")  # held back, not done
        records = src.records(4000, timeout=60)
        assert [r["i"] for r in records] == list(range(4000))
        wait_until(lambda: host.process.printed("FINALLY rule1"), message="the source to finish")
        wait_until(lambda: host.process.printed(f"{who} reads again after"),
                   message="the source to say it sends again")


def test_same_key_started_again_replaces_the_instance(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    first = host.start_source("sleeper", rule="again")
    host.command("start", first.control)
    wait_until(lambda: host.process.printed("SLEEPER-CLOSED again"), message="the first instance")
    first.stop()


def test_short_keepalive_idle_then_call_answers(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin, env={"KUIPERLITE_KEEPALIVE": "0.2"})
    with host.function("revert") as fn:
        assert fn.call("ab") == "ba"
        time.sleep(1.0)  # five keepalive periods without a call
        started = time.monotonic()
        assert fn.call("xy") == "yx"
        assert time.monotonic() - started < 2


def test_sigterm_stops_instances_and_exits(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    host.start_source("sleeper", rule="term")
    os.kill(host.process.pid, signal.SIGTERM)
    wait_until(lambda: host.process.poll() is not None, message="the plugin to exit")
    assert host.process.poll() == 0
    host.process.reader.join(5)  # the last lines may still be in the pipe
    assert host.process.printed("SLEEPER-CLOSED term"), list(host.process.output)
    assert host.process.printed("exits: received SIGTERM")


def test_a_burst_of_stop_signals_always_ends_the_plugin(kuiperlite_host, plugin):
    # Ctrl-C or `timeout` signals a whole process group, often more than once. A
    # handler that took a lock its own thread held deadlocked the worker in about
    # a third of such bursts, leaving it behind for good.
    for round_ in range(30):
        host = kuiperlite_host(plugin)
        host.start_source("sleeper", rule=f"burst{round_}")
        pids = (host.process.pid, host.process.worker)
        for _ in range(100):
            for signum in (signal.SIGTERM, signal.SIGINT):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)
        wait_until(lambda process=host.process, worker=pids[1]:
                   process.poll() is not None and not pid_alive(worker),
                   10, message=f"the plugin and its worker to exit after burst {round_}")
        host.close()


def test_plugin_exits_when_the_control_peer_vanishes(plugin):
    host = Host(plugin.stem)
    env = dict(os.environ, KUIPERLITE_ORPHAN_GRACE="0.5")
    proc = subprocess.Popen([sys.executable, "-u", str(plugin)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        host.wait_handshake(30)
        host.close()  # the peer goes away; the plugin's parent (this test) lives on
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "the control channel has had no peer for 0.5 s; eKuiper is gone" in out
    finally:
        proc.kill()
        proc.wait()


def test_plugin_reports_a_missing_host(plugin):
    out = subprocess.run([sys.executable, "-u", str(plugin)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1
    assert (f"cannot reach eKuiper: nothing answers on "
            f"{wire.control_address(plugin.stem)}") in out.stdout


def test_definition_errors_stop_the_plugin_with_one_line(write_plugin):
    path = write_plugin(textwrap.dedent('''
        from kuiperlite import sink

        @sink
        def nodata(ctx):
            pass
    '''))
    out = subprocess.run([sys.executable, "-u", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and f"({path.name}:4)" in out.stderr


def test_records_are_framed_as_the_sdks_frame_them(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_source("counter", config={"count": 1}) as src:
        raw = src.recv_raw()
    assert orjson.loads(raw) == {"message": {"i": 0, "rule": "rule1", "tag": "", "ds": "",
                                             "pad": ""}, "meta": None}


def test_without_dash_u_output_still_arrives_line_by_line(copy_plugin):
    path = copy_plugin("printer")
    with Host(path.stem, ipc_dir=os.path.dirname(path)) as host:
        host.spawn([sys.executable, str(path), "{}"], str(path.parent))  # no -u: buffered stdout
        host.wait_handshake(30)
        with host.start_source("printer", rule="live"):
            wait_until(lambda: host.process.printed("PRINTED live 199"), message="prints, live")
            printed = [line for line in list(host.process.output) if "PRINTED" in line]
            assert printed == [f"PRINTED live {i}" for i in range(200)]  # whole lines


def test_under_conda_the_log_goes_live_to_a_file_in_ekuipers_log_folder(kuiperlite_host,
                                                                          tmp_path):
    # eKuiper's layout: <base>/plugins/portable/<name>/ beside <base>/log.
    name = unique("p")
    folder = tmp_path / "kuiper" / "plugins" / "portable" / name
    folder.mkdir(parents=True)
    (tmp_path / "kuiper" / "log").mkdir()
    path = place_plugin("runtime", folder, stem=name)
    log_file = tmp_path / "kuiper" / "log" / f"plugin_{name}.log"
    host = kuiperlite_host(path, conda_env="edge", env={"PATH": f"{CONDA}:{os.environ['PATH']}"})
    assert host.process.argv[:4] == ["conda", "run", "-n", "edge"]
    with host.start_source("broken", rule=unique("r")) as src:
        assert src.recv()[0] == {"ok": 1}
        wait_until(lambda: log_file.exists() and "sensor unplugged" in log_file.read_text(),
                   message="the source's failure in the log file, while the plugin runs")
    assert f"plugin {name} also logs to {log_file}" in log_file.read_text()
    assert not host.process.printed("sensor unplugged")  # conda holds the output back meanwhile


def test_a_recreated_function_channel_answers_its_first_call_at_once(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    for _ in range(3):
        with host.function("revert") as fn:  # listens, then sends the start command
            started = time.monotonic()
            assert fn.call("abc") == "cba"
            first = time.monotonic() - started
        time.sleep(1.5)  # the plugin redials in the background, backing off to 500 ms
        # The start command made it connect at once, not at its next redial. nng 1.6
        # (pynng 0.8.1) resends a request whose pipe closed on a 100 ms tick, so about
        # one call in 200 there takes 100 ms: the bound sits between that and 500.
        assert first < 0.3


def test_bad_settings_in_the_environment_are_warnings_and_the_plugin_serves(kuiperlite_host,
                                                                           plugin):
    host = kuiperlite_host(plugin, env={"KUIPERLITE_KEEPALIVE": "soon",
                                        "KUIPERLITE_LOG_LEVEL": "LOUD"})
    with host.function("revert") as fn:
        assert fn.call("ab") == "ba"
    wait_until(lambda: host.process.printed("KUIPERLITE_KEEPALIVE='soon'"),
               message="the keepalive warning")
    wait_until(lambda: host.process.printed("KUIPERLITE_LOG_LEVEL='LOUD'"),
               message="the log level warning")


def _policies(pid: int) -> dict[str, set[int]]:
    """The scheduling policies of a process's threads, by thread name."""
    policies: dict[str, set[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as comm:
            name = comm.read().strip()
        policies.setdefault(name, set()).add(os.sched_getscheduler(int(tid)))
    return policies


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux's scheduling policies")
def test_nngs_task_threads_are_batch_threads_and_the_others_are_not(kuiperlite_host, plugin):
    def settled(pid: int) -> dict[str, set[int]]:
        # The worker sets them once nng's threads have named themselves.
        return wait_until(lambda: (lambda p: p if p.get("nng:task") == {os.SCHED_BATCH}
                                   else None)(_policies(pid)), 10,
                          message="nng's task threads to be batch threads")

    host = kuiperlite_host(plugin)
    with host.function("revert") as fn:
        assert fn.call("abc") == "cba"
        first = host.process.worker
        assert first is not None
        seen = [settled(first)]
        os.kill(first, signal.SIGKILL)  # a fresh worker starts nng's threads, and sets them again
        fresh = fresh_worker(host, first)
        assert fn.call("xyz") == "zyx"
        seen.append(settled(fresh))
    for policies in seen:
        assert policies.pop("nng:task") == {os.SCHED_BATCH}
        assert {"nng:poll:epoll", "nng:reap2"} <= set(policies)  # a close waits for the reaper
        assert set().union(*policies.values()) == {os.SCHED_OTHER}
