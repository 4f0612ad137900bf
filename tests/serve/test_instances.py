"""Running instances: each source and sink runs its user code on a thread of its own."""

import threading

import pytest

from conftest import threads_of, unique, wait_until


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("runtime")


def test_each_instance_has_a_thread_of_its_own_until_its_rule_stops(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("revert") as fn:  # the plugin is all up: its function channels too
        assert fn.call("ab") == "ba"
    pid = host.process.worker
    baseline = threads_of(pid)
    count, each = 100, 40
    sources = [host.start_source("sleeper", rule=unique("r")) for _ in range(count)]
    sinks = [host.start_sink("collect", rule=unique("k"),
                             config={"requireAck": True, "quiet": True})
             for _ in range(count)]
    wait_until(lambda: threads_of(pid) == baseline + 2 * count, 30,
               message="a thread for each instance")
    acks: dict[int, list] = {}

    def feed(i: int) -> None:
        acks[i] = [sinks[i].send({"n": n}, timeout=60) for n in range(each)]

    feeders = [threading.Thread(target=feed, args=(i,)) for i in range(count)]
    for thread in feeders:
        thread.start()
    for thread in feeders:
        thread.join(120)
    assert all(acks[i] == [None] * each for i in range(count))
    for handle in sources + sinks:
        handle.stop()
    wait_until(lambda: host.process.printed("SLEEPER-CLOSED"), message="the finally blocks")
    wait_until(lambda: threads_of(pid) <= baseline, 30, message="threads back to baseline")
    assert not host.process.printed("still inside user code")


def test_sources_blocked_in_user_code_hold_up_no_other_instance(kuiperlite_host, plugin):
    # Half the sources idle in ctx.sleep or block in a read that never returns;
    # the other half have records to send, and sinks ack. Each has its own thread.
    host = kuiperlite_host(plugin)
    blocked, sending, each = 2500, 2500, 3
    for i in range(blocked):
        host.start_source("sleeper" if i % 2 else "reader", rule=unique("b"))
    sources = [host.start_source("counter", rule=unique("r"), config={"count": each})
               for _ in range(sending)]
    sinks = [host.start_sink("collect", rule=unique("k"),
                             config={"requireAck": True, "quiet": True})
             for _ in range(50)]
    for src in sources:
        assert [record["i"] for record in src.records(each, timeout=60)] == list(range(each))
    for snk in sinks:
        assert snk.send({"n": 1}, timeout=30) is None
    assert threads_of(host.process.worker) >= blocked + len(sinks)
