"""The same checks against the official SDK's pysam and kuiperlite's pysam.

Passing against the SDK's plugin shows the embedded host speaks eKuiper's
protocol; passing against kuiperlite's shows the plugin side does.
"""

import time

import pytest

from kuiperlite.errors import HostError

from conftest import EXAMPLES, FIXTURES, unique

PLUGINS = {
    "official-sdk": FIXTURES / "sdk_pysam" / "pysam.py",
    "kuiperlite": EXAMPLES / "pysam" / "pysam.py",
}

# What eKuiper's plugin test server feeds a sink and a function.
MOCK_SINK_DATA = [{"name": "hello", "count": 5}, {"name": "world", "count": 10}]
MOCK_FUNC_DATA = [["twelve"], ["eleven"]]


@pytest.fixture(params=list(PLUGINS))
def host(request, kuiperlite_host):
    return kuiperlite_host(PLUGINS[request.param])


def printed(host, text):
    return any(text in line for line in host.process.output)


def test_source_emits_pyjson_records(host):
    with host.start_source("pyjson", rule=unique("r")) as src:
        assert src.records(3) == [{"name": "pyjson", "value": 2021}] * 3
        assert src.errors == []


def test_sink_acks_every_record_with_require_ack(host):
    with host.start_sink("print", rule=unique("r"), config={"requireAck": True}) as snk:
        for record in MOCK_SINK_DATA * 3:
            assert snk.send(record) is None
    assert printed(host, "hello") and printed(host, "world")


def test_function_reverts_strings(host):
    with host.function("revert") as fn:
        assert fn.validate("col1") is None
        assert fn.is_aggregate() is False
        assert [fn.call(*args) for args in MOCK_FUNC_DATA] == ["evlewt", "nevele"]


def test_concurrent_source_instances(host):
    handles = [host.start_source("pyjson", rule=unique("r"), instance=i) for i in range(5)]
    for handle in handles:
        assert handle.recv()[0] == {"name": "pyjson", "value": 2021}
    for handle in handles:
        handle.stop()


def test_stop_then_start_the_same_instance_again(host):
    rule = unique("r")
    host.start_source("pyjson", rule=rule).stop()
    with host.start_source("pyjson", rule=rule) as again:
        assert again.recv()[0]["name"] == "pyjson"


def test_unknown_symbol_fails_the_start_and_the_plugin_goes_on(host):
    with pytest.raises(HostError):
        host.start_source("nosuch", rule=unique("r"))
    with host.function("revert") as fn:
        assert fn.call("ab") == "ba"


def test_a_call_after_a_keepalive_period_is_answered(host):
    with host.function("revert") as fn:
        assert fn.call("abc") == "cba"
        time.sleep(6)  # longer than the SDKs' 5 s keepalive: the stale-handshake path
        assert fn.call("xyz") == "zyx"
