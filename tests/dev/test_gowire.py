"""eKuiper's half of the wire: what the embedded host sends and how it reads answers."""

import orjson
import pytest

from kuiperlite import wire
from kuiperlite.dev import gowire
from kuiperlite.wire import Control, FuncMeta, Meta


def test_acks_are_decoded():
    assert gowire.decode_ack(wire.encode_ack("disk full")) == "disk full"
    assert gowire.decode_ack(b"{}") is None


def test_host_command_matches_go_encoding():
    control = Control("pyjson", "source", Meta("r1", "o1", 0), "a<b", {"z": 1.0, "a": "&"})
    raw = gowire.encode_command("start", control)
    assert raw.startswith(b'{"cmd":"start","arg":"{\\"symbolName\\":\\"pyjson\\",\\"meta\\"')
    arg = orjson.loads(raw)["arg"]
    assert arg == ('{"symbolName":"pyjson","meta":{"ruleId":"r1","opId":"o1","instanceId":0},'
                   '"pluginType":"source","dataSource":"a\\u003cb",'
                   '"config":{"a":"\\u0026","z":1}}')
    assert wire.decode_command(raw)[1] == Control("pyjson", "source", Meta("r1", "o1", 0), "a<b",
                                                  {"a": "&", "z": 1})


def test_host_function_control_omits_empty_fields_but_not_meta():
    arg = orjson.loads(gowire.encode_command("start", Control("revert", "func")))["arg"]
    assert arg == ('{"symbolName":"revert","meta":{"ruleId":"","opId":"","instanceId":0},'
                   '"pluginType":"func"}')


def test_function_requests_and_meta():
    assert gowire.encode_function_call("IsAggregate", None) == b'{"func":"IsAggregate","arg":null}'
    assert gowire.encode_function_call("Validate", []) == b'{"func":"Validate","arg":null}'
    meta = gowire.encode_func_meta(FuncMeta("r", "o", 1, 2))
    assert meta == '{"ruleId":"r","opId":"o","instanceId":1,"funcId":2}'
    assert wire.decode_func_meta(meta) == FuncMeta("r", "o", 1, 2)
    name, args = wire.decode_function_call(gowire.encode_function_call("Exec", ["abc", meta]))
    assert (name, args) == ("Exec", ["abc", meta])


def test_source_messages_are_decoded_like_go():
    assert gowire.decode_source_message(b'{"Message":{"a":1},"META":{"m":2},"x":3}') == (
        {"a": 1}, {"m": 2}, None)
    assert gowire.decode_source_message(b'{"message":{"a":1},"MESSAGE":{"b":2}}').message == {
        "b": 2}  # the last key that matches wins
    assert gowire.decode_source_message(b"null") == (None, None, None)  # an empty row
    # The SDKs' error message decodes to no message at all: an empty row in eKuiper.
    assert gowire.decode_source_message(b'{"error":"boom"}') == (None, None, "boom")


@pytest.mark.parametrize(("raw", "text"), [
    (b'"sensor offline"', "sensor offline"),
    (b'{"message":[1]}', '{"message":[1]}'),
    (b'{"message":{"a":1},"meta":"m"}', '{"message":{"a":1},"meta":"m"}'),
    (b"[{}]", "[{}]"),
    (b"not json", "not json"),
])
def test_source_messages_go_fails_to_decode_are_errors(raw, text):
    with pytest.raises(gowire.SourceError) as info:
        gowire.decode_source_message(raw)
    assert str(info.value).startswith(f"Invalid data format, cannot decode {raw.decode()} to "
                                      "json format with error ")
    assert info.value.text == text


def test_a_source_error_is_a_message_ekuiper_fails_to_decode():
    raw = wire.encode_source_error('The source "x" failed: ValueError: <bad>')
    assert raw == b'"The source \\"x\\" failed: ValueError: <bad>"'
    with pytest.raises(gowire.SourceError) as info:
        gowire.decode_source_message(raw)
    assert info.value.text == 'The source "x" failed: ValueError: <bad>'
