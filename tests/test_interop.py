"""The same checks against the official SDK's plugins and kuiperlite's, as eKuiper 2.x and 1.x.

Passing against the SDK's plugin shows the embedded host speaks eKuiper's
protocol; passing against kuiperlite's shows the plugin side does. Where
the SDK is wrong (it never sees the top-level datasource, and its errors
become empty rows), the check states what the SDK does, so that a fixed
SDK shows up here.
"""

import shutil
import time
from typing import Any, NamedTuple

import pytest

from kuiperlite.dev import gowire
from kuiperlite.errors import HostError

from conftest import EXAMPLES, FIXTURES, unique, wait_until

INTEROP = FIXTURES / "interop"
PLUGINS = {
    "official-sdk": {"pysam": INTEROP / "sdk_pysam.py", "probe": INTEROP / "sdk_probe.py"},
    "kuiperlite": {"pysam": EXAMPLES / "pysam" / "pysam.py", "probe": INTEROP / "probe.py"},
}

# What eKuiper's plugin test server feeds a sink and a function.
MOCK_SINK_DATA = [{"name": "hello", "count": 5}, {"name": "world", "count": 10}]
MOCK_FUNC_DATA = [["twelve"], ["eleven"]]


class Peer(NamedTuple):
    """A plugin under a host, and the names its symbols have there."""

    system: str
    ekuiper: int
    host: Any
    suffix: str

    def name(self, symbol: str) -> str:
        return symbol + self.suffix


@pytest.fixture(params=[(system, generation) for generation in (2, 1) for system in PLUGINS],
                ids=lambda p: f"{p[0]}-ekuiper{p[1]}")
def launch(request, kuiperlite_host, tmp_path):
    """Launch one of the system's plugins under a host of the given eKuiper generation.

    kuiperlite's plugins run in a socket folder of the test's own; the SDK's
    only knows /tmp, so its copy gets a plugin and symbol names of its own.
    """
    system, generation = request.param

    def start(kind: str) -> Peer:
        path = PLUGINS[system][kind]
        if system == "kuiperlite":
            return Peer(system, generation, kuiperlite_host(path, ekuiper=generation), "")
        suffix = unique("_")
        copy = tmp_path / f"{unique('sdk')}.py"
        shutil.copy(path, copy)
        host = kuiperlite_host(copy, executable=True, ekuiper=generation, ipc_dir="/tmp",
                               env={"SYMBOL_SUFFIX": suffix})
        return Peer(system, generation, host, suffix)

    return start


@pytest.fixture
def peer(launch):
    return launch("pysam")



def test_source_emits_pyjson_records(peer):
    with peer.host.start_source(peer.name("pyjson"), rule=unique("r")) as src:
        assert src.records(3) == [{"name": "pyjson", "value": 2021}] * 3
        assert src.errors == [] and src.mistakes == []


def test_sink_acks_every_record_with_require_ack(peer):
    with peer.host.start_sink(peer.name("print"), rule=unique("r"),
                              config={"requireAck": True}) as snk:
        for record in MOCK_SINK_DATA * 3:
            assert snk.send(record) is None
    wait_until(lambda: peer.host.process.printed("hello") and peer.host.process.printed("world"),
               message="both records printed")


def test_function_reverts_strings(peer):
    with peer.host.function(peer.name("revert")) as fn:
        assert fn.validate(gowire.field("col1", ekuiper=peer.ekuiper)) is None
        assert fn.is_aggregate() is False
        assert [fn.call(*args) for args in MOCK_FUNC_DATA] == ["evlewt", "nevele"]


# What Validate answers for revert(true), a literal revert's Exec cannot take, and
# for revert(123), which eKuiper refuses for a string parameter of its own functions.
VALIDATE_TRUE = {
    "kuiperlite": "Argument 1 (s) of revert() must be a string, got true.",
    "official-sdk": None,  # its example's validate accepts everything; Exec then fails
}
VALIDATE_NUMBER = {
    "kuiperlite": "Argument 1 (s) of revert() must be a string, got the number 123.",
    "official-sdk": None,
}


def test_validate_of_a_literal_exec_cannot_take(peer):
    with peer.host.function(peer.name("revert")) as fn:
        assert fn.validate(gowire.literal("abc")) is None
        assert fn.validate(gowire.call("lower", gowire.field("col1", ekuiper=peer.ekuiper),
                                       ekuiper=peer.ekuiper)) is None
        assert fn.validate(gowire.literal(True)) == VALIDATE_TRUE[peer.system]
        with pytest.raises(HostError) as info:
            fn.call(True)
        if peer.system == "kuiperlite":
            assert str(info.value) == VALIDATE_TRUE["kuiperlite"]
        else:
            assert "TypeError" in str(info.value)  # its traceback, as the call's error


def test_validate_of_a_rules_sql(peer):
    name = peer.name("revert")
    with peer.host.function(name) as fn:
        assert fn.validate_sql(f"SELECT {name}(lower(col1)) FROM demo WHERE "
                               f"{name}('abc') = 'cba'") is None
        assert fn.validate(gowire.literal(123)) == VALIDATE_NUMBER[peer.system]
        if peer.system == "kuiperlite":
            assert fn.validate_sql(f"SELECT {name}(123) FROM demo") == (
                f"validate function {name} error: validate return state is false, "
                f"got &{{State:false Result:{VALIDATE_NUMBER['kuiperlite']}}}")
            assert fn.call(123) == "321"  # a column's number is still converted
        else:
            assert fn.validate_sql(f"SELECT {name}(123) FROM demo") is None


def test_concurrent_source_instances(peer):
    handles = [peer.host.start_source(peer.name("pyjson"), rule=unique("r"), instance=i)
               for i in range(5)]
    for handle in handles:
        assert handle.recv()[0] == {"name": "pyjson", "value": 2021}
    for handle in handles:
        handle.stop()


def test_stop_then_start_the_same_instance_again(peer):
    rule = unique("r")
    peer.host.start_source(peer.name("pyjson"), rule=rule).stop()
    with peer.host.start_source(peer.name("pyjson"), rule=rule) as again:
        assert again.recv()[0]["name"] == "pyjson"


def test_unknown_symbol_fails_the_start_and_the_plugin_goes_on(peer):
    with pytest.raises(HostError):
        peer.host.start_source(peer.name("nosuch"), rule=unique("r"))
    with peer.host.function(peer.name("revert")) as fn:
        assert fn.call("ab") == "ba"


def test_a_call_after_a_keepalive_period_is_answered(peer):
    with peer.host.function(peer.name("revert")) as fn:
        assert fn.call("abc") == "cba"
        time.sleep(6)  # longer than the SDKs' 5 s keepalive: the stale-handshake path
        assert fn.call("xyz") == "zyx"


def test_under_ekuiper_1x_the_sdks_keepalive_is_taken_for_a_commands_answer(kuiperlite_host,
                                                                            tmp_path):
    # eKuiper 1.x's control channel takes a keepalive handshake that crossed a
    # command for its answer. The SDK sends one after 5 s of silence, so the
    # next command fails; kuiperlite's plugins send none under 1.x (test_runtime).
    suffix = unique("_")
    copy = tmp_path / f"{unique('sdk')}.py"
    shutil.copy(PLUGINS["official-sdk"]["pysam"], copy)
    host = kuiperlite_host(copy, executable=True, ekuiper=1, ipc_dir="/tmp",
                           env={"SYMBOL_SUFFIX": suffix})
    src = host.start_source("pyjson" + suffix, rule=unique("r"), datasource="demo")
    time.sleep(6)  # longer than the SDK's 5 s keepalive
    with pytest.raises(HostError, match="^handshake$"):
        src.stop()


def test_under_ekuiper_1x_the_sdks_sink_cannot_start_again(kuiperlite_host, tmp_path):
    # eKuiper 1.x never closes a sink's ack listener; nothing frees the address
    # for the SDK's sink, so its rule's next start fails (kuiperlite's sinks
    # start again: test_runtime).
    suffix = unique("_")
    copy = tmp_path / f"{unique('sdk')}.py"
    shutil.copy(PLUGINS["official-sdk"]["pysam"], copy)
    host = kuiperlite_host(copy, executable=True, ekuiper=1, ipc_dir="/tmp",
                           env={"SYMBOL_SUFFIX": suffix})
    rule = unique("k")
    with host.start_sink("print" + suffix, rule=rule) as snk:
        assert snk.send({"name": "once"}) is None
    with pytest.raises(HostError, match="Cannot listen on .*_ack.ipc"):
        host.start_sink("print" + suffix, rule=rule)


# The stream's datasource, as each system's source sees it: (argument, config).
DATASOURCE_SEEN = {
    ("kuiperlite", 2): ("building-7", "building-7"),
    ("kuiperlite", 1): ("building-7", None),
    ("official-sdk", 2): ("", "building-7"),  # it reads a top-level 'datasource' no one sends
    ("official-sdk", 1): ("", None),
}


def test_the_datasource_arrives_and_errors_never_become_rows(launch):
    probe = launch("probe")
    with probe.host.start_source(probe.name("probe"), rule=unique("r"),
                                 datasource="building-7") as src:
        argument, config = DATASOURCE_SEEN[probe.system, probe.ekuiper]
        assert src.recv()[0] == {"datasource": argument, "config_datasource": config}
        if probe.system == "kuiperlite":
            assert src.recv()[0] == {"after": "error"}  # no row in between
            assert src.errors == ["sensor offline"] and src.mistakes == []
            assert src.exceptions == (1 if probe.ekuiper == 2 else 0)  # 1.x only logs it
        else:
            assert src.recv()[0] == {}  # eKuiper's empty row: the text is lost
            assert src.recv()[0] == {"after": "error"}
            assert src.errors == [] and src.mistakes == ["sensor offline"]
