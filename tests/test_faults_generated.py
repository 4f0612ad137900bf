"""Fault 6, generated: commands, sink payloads and function requests from hypothesis.

These share one process of the plugin tests/plugins/faults.py (in their own
module, since function channels are named globally, by symbol, as in eKuiper).
"""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuiperlite.dev import Host, gowire
from kuiperlite.protocol import wire

from conftest import place_plugin, unique

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
real_symbols = {"tagged", "idle", "bad_records", "fails_setup", "fails_midway",
                "fails_teardown", "hoard", "returns_at_once", "record", "slow", "fails_open",
                "fails_record", "fails_close", "never_yields", "echo", "sleepy", "raises"}
controls = st.fixed_dictionaries({}, optional={
    "symbolName": st.text().filter(lambda s: s not in real_symbols) | json_values,
    "pluginType": st.sampled_from(["source", "sink", "func", "bogus"]) | json_values,
    "meta": json_values | st.fixed_dictionaries({"ruleId": st.text(), "opId": st.text(),
                                                 "instanceId": json_values}),
    "config": json_values, "dataSource": json_values})
commands = st.one_of(
    st.binary(max_size=64),
    json_values.map(orjson.dumps),
    st.builds(lambda cmd, arg: orjson.dumps({"cmd": cmd, "arg": arg}),
              st.sampled_from(["start", "stop"]) | st.text(), json_values),
    st.builds(lambda cmd, ctrl: orjson.dumps({"cmd": cmd, "arg": orjson.dumps(ctrl).decode()}),
              st.sampled_from(["start", "stop"]), controls),
)


@pytest.fixture(scope="module")
def shared_host(tmp_path_factory):
    path = place_plugin("faults", tmp_path_factory.mktemp("gen"), stem=unique("gen"))
    host = Host.launch(str(path))
    yield host
    host.close()


@pytest.fixture(scope="module")
def shared_sink(shared_host):
    sink = shared_host.start_sink("fails_record", rule=unique("g"), config={"requireAck": True})
    return sink


@pytest.fixture(scope="module")
def shared_function(shared_host):
    return shared_host.function("echo")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=commands)
def test_generated_commands_get_a_sentence_or_ok(shared_host, raw):
    answer = shared_host.send_raw(raw)
    assert answer and answer[:1] != b"h" and b"\n" not in answer
    assert answer == wire.OK or answer.endswith(b".") or b": " in answer
    assert shared_host.alive


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(max_size=256) | json_values.map(orjson.dumps))
def test_generated_sink_payloads_always_get_one_ack(shared_sink, payload):
    sink = shared_sink
    ack = sink.send(payload)
    data = None
    try:
        data = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        pass
    if isinstance(data, dict) and data.get("bad"):
        assert ack == "ValueError: bad record"
    elif isinstance(data, dict):
        assert ack is None
    else:
        assert ack is not None and "AttributeError" in ack  # the user code's own failure
    assert sink.extra_ack() is None  # exactly one ack per message


ECHO_COUNT = "echo() takes exactly 1 argument (x) but got {}."


def echo_reply(raw: bytes) -> tuple[bool, Any]:
    """What the plugin's ``echo(x)`` owes a request, read as eKuiper's requests are:
    ``(True, the result)``, or ``(False, a phrase its error holds)``."""
    if not raw:
        return False, "The function request is empty; expected JSON."
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, "The function request is not valid JSON ("
    if type(request) is not dict or type(request.get("func")) is not str:
        return False, "The function request must be a JSON object with 'func' and 'arg'."
    args = request.get("arg")
    if args is None:
        args = []
    elif not isinstance(args, list):
        return False, "The function request's 'arg' must be a list, got "
    func = request["func"]
    if func == "Validate":
        return (True, "") if len(args) == 1 else (False, ECHO_COUNT.format(len(args)))
    if func == "IsAggregate":
        return True, False
    if func == "Exec":  # the arguments, then the function meta: a JSON string
        if not args or type(args[-1]) is not str:
            return False, "Exec needs the function meta as its last argument, a JSON string"
        if len(args) != 2:
            return False, ECHO_COUNT.format(len(args) - 1)
        return True, args[0]
    return False, f"Unknown function request {func!r}; expected Validate, Exec or IsAggregate."


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=64) | json_values.map(orjson.dumps) | st.builds(
    lambda func, arg: orjson.dumps({"func": func, "arg": arg}),
    st.sampled_from(["Validate", "Exec", "IsAggregate"]) | st.text(), json_values))
def test_generated_function_requests_get_a_reply(shared_function, raw):
    reply = gowire.decode_reply(shared_function.channel.request(raw, 10), python_ints=True)
    state, result = reply.state, reply.result
    expected_state, expected = echo_reply(raw)
    if expected_state:
        assert (state, result) == (True, expected)
    else:
        assert state is False and isinstance(result, str) and expected in result, result
        assert "\n" not in result and "Traceback" not in result
