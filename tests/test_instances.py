"""Running instances: many sources and sinks in one plugin share a few threads."""

import threading

import pytest

from conftest import threads_of, unique, wait_until


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("runtime")


def test_hundreds_of_instances_share_a_few_threads_and_every_record_arrives(
        kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("revert") as fn:  # the plugin is all up: its function channels too
        assert fn.call("ab") == "ba"
    pid = host.process.worker
    baseline = threads_of(pid)
    count, each = 150, 40
    sources = [host.start_source("counter", rule=unique("r"), config={"count": each})
               for _ in range(count)]
    sinks = [host.start_sink("collect", rule=unique("k"),
                             config={"requireAck": True, "quiet": True})
             for _ in range(count)]
    # Workers and the monitor, not one per instance: past 128 sinks, those that
    # had a thread of their own leave it.
    wait_until(lambda: threads_of(pid) <= baseline + 4, 30, message="a few threads")
    got: dict[int, list] = {}
    acks: dict[int, list] = {}

    def drain(i: int) -> None:
        got[i] = [record["i"] for record in sources[i].records(each, timeout=60)]

    def feed(i: int) -> None:
        acks[i] = [sinks[i].send({"n": n}, timeout=60) for n in range(each)]

    feeders = [threading.Thread(target=drain, args=(i,)) for i in range(count)]
    feeders += [threading.Thread(target=feed, args=(i,)) for i in range(count)]
    for thread in feeders:
        thread.start()
    for thread in feeders:
        thread.join(120)
    assert all(got[i] == list(range(each)) for i in range(count))
    assert all(acks[i] == [None] * each for i in range(count))
    assert threads_of(pid) <= baseline + 8
    for handle in sources + sinks:
        handle.stop()
    wait_until(lambda: host.process.printed("FINALLY"), message="the sources' finally blocks")
    wait_until(lambda: threads_of(pid) <= baseline, 30, message="threads back to baseline")
    assert not host.process.printed("still inside user code")


def test_a_few_sinks_have_a_thread_each_until_more_start_and_lose_nothing_meanwhile(
        kuiperlite_host, plugin):
    host = kuiperlite_host(plugin, env={"KUIPERLITE_SINK_THREADS": "3"})
    with host.function("revert") as fn:
        assert fn.call("ab") == "ba"
    pid = host.process.worker
    baseline = threads_of(pid)
    sinks = [host.start_sink("collect", rule=unique("k"),
                             config={"requireAck": True, "quiet": True})
             for _ in range(3)]
    wait_until(lambda: threads_of(pid) == baseline + 3, message="a thread for each sink")
    acks: list = []
    stream = threading.Thread(
        target=lambda: acks.extend(sinks[0].send({"n": n}, timeout=30) for n in range(2000)))
    stream.start()
    wait_until(lambda: len(acks) >= 100, 30, message="the stream to flow")
    # A fourth sink: more than 3 run, so each is a task now, the streaming one too.
    sinks.append(host.start_sink("collect", rule=unique("k"),
                                 config={"requireAck": True, "quiet": True}))
    wait_until(lambda: threads_of(pid) <= baseline + 2, 30,
               message="the sinks' own threads to end (a worker and the monitor stay)")
    stream.join(60)
    assert acks == [None] * 2000  # every message collected and acked, across the change
    for snk in sinks:
        assert [snk.send({"after": True}) for _ in range(3)] == [None] * 3
        snk.stop()
    wait_until(lambda: threads_of(pid) <= baseline, 30, message="threads back to baseline")
