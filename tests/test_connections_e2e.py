"""Shared connections in a real plugin process, driven through the embedded host.

The plugin is tests/plugins/connected.py: each connection is a journal file
that records every open and close, so the file says how often a connection
opened, for whom, and when it closed.
"""

import os
import signal
import threading
import time

import pytest

from kuiperlite.errors import HostError

from conftest import fresh_worker, pid_alive, unique, wait_until


@pytest.fixture
def host(kuiperlite_host, copy_plugin):
    return kuiperlite_host(copy_plugin("connected"))


def lines(path, word):
    """The lines of a journal that start with ``word``."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split(" ", 1)[1].strip() for line in f if line.startswith(word + " ")]


def test_twenty_sinks_with_equal_config_share_one_connection(host, tmp_path):
    path = str(tmp_path / "journal")
    sinks = [host.start_sink("write", rule=unique("k"), config={"path": path,
                                                                 "requireAck": True})
             for _ in range(20)]
    for n, snk in enumerate(sinks):
        assert snk.send({"n": n}) is None
    assert len(lines(path, "OPEN")) == 1
    assert len(lines(path, "ROW")) == 20
    assert sum(host.process.printed(f"opened connection 'db' for {s.described}")
               for s in sinks) == 1
    for snk in sinks[:-1]:
        snk.stop()
    assert lines(path, "CLOSE") == []  # the last user still writes through it
    assert sinks[-1].send({"n": "last"}) is None
    sinks[-1].stop()
    wait_until(lambda: lines(path, "CLOSE") == lines(path, "OPEN"),
               message="the connection to close after its last user stopped")
    with host.start_sink("write", rule=unique("k"), config={"path": path,
                                                             "requireAck": True}) as snk:
        assert snk.send({"n": "again"}) is None  # a later start opens it again
        assert len(lines(path, "OPEN")) == 2
    wait_until(lambda: len(lines(path, "CLOSE")) == 2, message="the second one to close")


def test_a_source_and_a_sink_share_it_and_distinct_configs_get_their_own(host, tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    with host.start_source("watch", rule=unique("r"), config={"path": first}) as src, \
            host.start_sink("write", rule=unique("k"),
                            config={"path": first, "requireAck": True}) as same, \
            host.start_sink("write", rule=unique("k"), config={"path": first, "tag": "x",
                                                               "requireAck": True}) as tagged, \
            host.start_sink("write", rule=unique("k"),
                            config={"path": second, "requireAck": True}) as other:
        for snk in (same, tagged, other):
            assert snk.send({"to": snk.described}) is None
        # the sink's own config (tag) is not the connection's: still one journal
        assert lines(first, "OPEN") == [src.recv()[0]["journal"]]
        assert len(lines(first, "ROW")) == 2
        assert len(lines(second, "OPEN")) == 1 and len(lines(second, "ROW")) == 1
        assert lines(first, "OPEN") != lines(second, "OPEN")
    wait_until(lambda: len(lines(first, "CLOSE")) == len(lines(second, "CLOSE")) == 1,
               message="both to close")


def test_a_failed_open_is_the_starts_sentence_and_leaks_nothing(host, tmp_path):
    path, spare = str(tmp_path / "journal"), str(tmp_path / "spare")
    with host.start_sink("write", rule=unique("k"),
                         config={"path": path, "requireAck": True}) as running:
        rule = unique("k")
        with pytest.raises(HostError) as info:
            host.start_sink("write", rule=rule, config={"path": path, "fail": True})
        assert "'db'" in str(info.value) and f"{rule}/op1/0" in str(info.value)
        wait_until(lambda: host.process.printed("OSError: unable to open database file"),
                   message="the failed open's traceback")
        # The sink's first connection opened, its second failed: the first closes again.
        with pytest.raises(HostError, match="'spare'"):
            host.start_sink("both", rule=unique("k"),
                            config={"path": str(tmp_path / "other"), "spare_path": spare,
                                    "spare_fail": True})
        other = str(tmp_path / "other")  # closed on a thread of its own, after the answer
        wait_until(lambda: lines(other, "OPEN") == lines(other, "CLOSE") != [],
                   message="the first connection to close again")
        # ... and one it shared with a running rule stays open for that rule.
        with pytest.raises(HostError, match="'spare'"):
            host.start_sink("both", rule=unique("k"),
                            config={"path": path, "spare_path": spare, "spare_fail": True})
        assert running.send({"still": "served"}) is None
        assert lines(path, "CLOSE") == []
        assert len(lines(path, "OPEN")) == 1
    wait_until(lambda: len(lines(path, "CLOSE")) == 1, message="the running rule's to close")


def test_a_teardown_that_raises_is_logged_and_the_plugin_goes_on(host, tmp_path):
    path = str(tmp_path / "journal")
    with host.start_sink("write", rule=unique("k"),
                         config={"path": path, "broken_close": True, "requireAck": True}) as snk:
        assert snk.send({"n": 1}) is None
    wait_until(lambda: host.process.printed("RuntimeError: disk gone"),
               message="the teardown's traceback")
    assert host.process.printed("ERROR connection 'db' ")
    assert host.alive
    with host.start_sink("write", rule=unique("k"), config={"path": path,
                                                             "requireAck": True}) as snk:
        assert snk.send({"n": 2}) is None
    with host.function("alive") as fn:
        assert fn.call() is True


def test_a_killed_worker_comes_back_and_its_connections_open_again(host, tmp_path):
    path = str(tmp_path / "journal")
    src = host.start_source("watch", rule=unique("r"), config={"path": path})
    snk = host.start_sink("write", rule=unique("k"), config={"path": path, "requireAck": True})
    before = src.recv()[0]["journal"]
    assert lines(path, "OPEN") == [before]
    worker = host.process.worker
    assert worker is not None and before.startswith(f"{worker} ")
    os.kill(worker, signal.SIGKILL)
    fresh_worker(host, worker)
    after = wait_until(lambda: (lambda j: j if j != before else None)(src.recv()[0]["journal"]),
                       30, message="records through the reopened connection")
    assert after.startswith(f"{host.process.worker} ")
    assert snk.send({"n": "after the crash"}) is None
    assert lines(path, "OPEN") == [before, after]  # the new worker opened it once, for both
    assert lines(path, "CLOSE") == []  # kill -9 runs no teardown
    snk.stop()
    assert lines(path, "CLOSE") == []  # the source still uses it
    src.stop()
    wait_until(lambda: lines(path, "CLOSE") == [after], message="the connection to close")


def test_connections_close_when_the_plugin_exits(host, tmp_path):
    path = str(tmp_path / "journal")
    host.start_source("watch", rule=unique("r"), config={"path": path}).recv()
    os.kill(host.process.pid, signal.SIGTERM)
    wait_until(lambda: host.process.poll() is not None, message="the plugin to exit")
    assert lines(path, "CLOSE") == lines(path, "OPEN") != []


def test_an_open_that_hangs_fails_its_start_in_time_and_every_other_command_is_answered(
        kuiperlite_host, copy_plugin, tmp_path):
    host = kuiperlite_host(copy_plugin("connected"), env={"KUIPERLITE_OPEN_TIMEOUT": "1"})
    hung, path = str(tmp_path / "hung"), str(tmp_path / "journal")
    began = time.monotonic()
    with pytest.raises(HostError, match=r"\b1 s\b"):
        host.start_sink("write", rule=unique("k"), config={"path": hung, "hang": 3600})
    assert time.monotonic() - began < 8
    with host.start_sink("write", rule=unique("k"),
                         config={"path": path, "requireAck": True}) as snk:
        assert snk.send({"n": 1}) is None
    with host.function("alive") as fn:
        assert fn.call() is True
    os.kill(host.process.pid, signal.SIGTERM)
    wait_until(lambda: host.process.poll() is not None, 15, message="the plugin to exit")
    assert lines(path, "CLOSE") == lines(path, "OPEN") != []


@pytest.mark.parametrize("ending", ["SIGTERM", "the host goes away"])
def test_a_start_waiting_for_an_open_that_hangs_never_holds_up_the_exit(
        kuiperlite_host, copy_plugin, tmp_path, ending):
    host = kuiperlite_host(copy_plugin("connected"), env={
        "KUIPERLITE_OPEN_TIMEOUT": "600", "KUIPERLITE_ORPHAN_GRACE": "0.5"})
    hung = str(tmp_path / "hung")
    refused = []

    def start() -> None:
        try:
            host.start_sink("write", rule=unique("k"), config={"path": hung, "hang": 3600})
        except HostError as err:
            refused.append(err)

    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    wait_until(lambda: host.process.printed(f"OPENING {hung}"), message="the open to begin")
    supervisor, worker = host.process.pid, host.process.worker
    if ending == "SIGTERM":
        os.kill(supervisor, signal.SIGTERM)
    else:
        host.control.close()
    wait_until(lambda: host.process.poll() is not None and not pid_alive(worker), 15,
               message="the plugin and its worker to exit")
    starting.join(30)
    assert refused  # the start got no ok


@pytest.mark.parametrize("user", ["sink", "finished source"])
def test_a_close_that_hangs_holds_up_no_command_and_the_exit_is_bounded(
        kuiperlite_host, copy_plugin, tmp_path, user):
    host = kuiperlite_host(copy_plugin("connected"), env={"KUIPERLITE_EXIT_GRACE": "2"})
    slow, path = str(tmp_path / "slow"), str(tmp_path / "journal")
    config = {"path": slow, "hang_close": 3600}
    if user == "sink":
        running = host.start_sink("write", rule=unique("k"), config={**config, "requireAck": True})
        assert running.send({"n": 1}) is None
    else:
        running = host.start_source("once", rule=unique("r"), config=config)
        assert running.recv()[0]["journal"]
        wait_until(lambda: host.process.printed(f"{running.described} finished"),
                   message="the source to finish")
    began = time.monotonic()
    running.stop()
    wait_until(lambda: host.process.printed(f"CLOSING {slow}"), message="the close to begin")
    with host.start_sink("write", rule=unique("k"),
                         config={"path": path, "requireAck": True}) as other:
        assert other.send({"n": 2}) is None
    with host.function("alive") as fn:
        assert fn.call() is True
    assert time.monotonic() - began < 8
    worker = host.process.worker
    os.kill(host.process.pid, signal.SIGTERM)
    wait_until(lambda: host.process.poll() is not None and not pid_alive(worker), 15,
               message="the plugin to exit despite the close that hangs")
