"""eKuiper's half of the wire: what the embedded host sends and how it reads answers."""

import math

import orjson
import pytest

from kuiperlite.dev import gojson, gojson_fmt, gowire
from kuiperlite.dev.host import Host
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Control, FuncMeta, Meta

from conftest import unique


def test_acks_are_decoded():
    assert gowire.decode_ack(wire.encode_ack("disk full")) == gowire.Ack("disk full", io=True)
    assert gowire.decode_ack(wire.ACK_OK).ok


def test_host_command_matches_go_encoding():
    control = Control("pyjson", "source", Meta("r1", "o1", 0), "a<b", {"z": 1.0, "a": "&"})
    raw = gowire.encode_command("start", control)
    assert raw.startswith(b'{"cmd":"start","arg":"{\\"symbolName\\":\\"pyjson\\",\\"meta\\"')
    arg = orjson.loads(raw)["arg"]
    assert arg == ('{"symbolName":"pyjson","meta":{"ruleId":"r1","opId":"o1","instanceId":0},'
                   '"pluginType":"source","dataSource":"a\\u003cb",'
                   '"config":{"a":"\\u0026","z":1}}')
    assert wire.decode_command(raw)[1] == Control("pyjson", "source", Meta("r1", "o1", 0), "a<b",
                                                  {"a": "&", "z": 1}, generation=1)


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
        "a": 1, "b": 2}  # keys that match one field fill one map
    assert gowire.decode_source_message(b"null") == (None, None, None)  # an empty row
    # The SDKs' error message decodes to no message at all: an empty row in eKuiper.
    assert gowire.decode_source_message(b'{"error":"boom"}') == (None, None, "boom")


def test_numbers_written_as_integers_can_be_python_ints():
    raw = b'{"message":{"a":1,"b":1.0,"c":-0,"d":9007199254740993,"e":-12}}'
    go = gowire.decode_source_message(raw).message
    assert all(type(v) is float for v in go.values())
    host = gowire.decode_source_message(raw, python_ints=True).message
    assert host == go  # the same values: the ones float64 holds
    assert [type(v) for v in host.values()] == [int, float, float, float, int]
    assert math.copysign(1, host["c"]) == -1 and host["d"] == 2**53


def test_go_json_refuses_what_go_cannot_encode_with_a_sentence():
    assert gojson.go_json({"b\udcff": 1, "a": b"\x00"}) == b'{"a":"AA==","b\\ufffd":1}'
    for value, message in [
            (2**64, "The integer 18446744073709551616 is beyond Go's int64 and uint64"),
            ({1, 2}, "The value cannot be encoded as JSON"),
            ([float("-inf")], "json: unsupported value: -Inf"),
            (_nested(255), "The value nests too deep for the host to encode")]:
        with pytest.raises(gojson_fmt.MarshalError, match=message):
            gojson.go_json(value)
    assert gojson.go_json(_nested(254)) == b"[" * 254 + b"]" * 254


def _nested(levels):
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_config_go_cannot_encode_is_refused_before_anything_is_sent():
    with Host(unique("p"), timeout=1) as host:
        control = Control("s", "source", Meta("r", "o", 0), "", {"x": float("nan")})
        with pytest.raises(ValueError, match=r"The start command of source 's' of rule r/o/0 "
                           r"cannot be sent: Go's encoder refuses its config \(json: "
                           r"unsupported value: NaN\), and eKuiper fails the start"):
            host.command("start", control)
        assert host.commands == {}


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


# Validate requests as eKuiper's Go code marshals them: the pkg/ast nodes its
# parser makes for each SQL argument (internal/xsql/parser.go), put in a
# FuncData by internal/plugin/portable/runtime/function.go. Produced by Go's
# encoding/json from eKuiper's own pkg/ast (2.4 and 1.14).
X2 = '{"StreamName":"$$default","Name":"x","HasIndex":false,"SourceIndex":0,"Index":0}'
X1 = '{"StreamName":"$$default","Name":"x"}'
GO_VALIDATE = [
    ("f('abc', 3, 1.5, true)", 2,
     '{"func":"Validate","arg":[{"Val":"abc"},{"Val":3},{"Val":1.5},{"Val":true}]}'),
    ("f(3.0, -3, 'a<b')", 2,
     '{"func":"Validate","arg":[{"Val":3},{"Val":-3},{"Val":"a\\u003cb"}]}'),
    ("f(x, demo.x, lower(x), x + 1)", 2,
     '{"func":"Validate","arg":[' + X2 + ','
     '{"StreamName":"demo","Name":"x","HasIndex":false,"SourceIndex":0,"Index":0},'
     '{"Name":"lower","FuncId":0,"FuncType":0,"Args":[' + X2 + '],"CachedField":"",'
     '"CacheIndex":0,"Cached":false,"Partition":null,"WhenExpr":null,"SortFields":null},'
     '{"OP":12,"LHS":' + X2 + ',"RHS":{"Val":1}}]}'),
    ("f(total(x), x > 1.5)", 2,
     '{"func":"Validate","arg":[{"Name":"total","FuncId":1,"FuncType":1,"Args":[' + X2 + '],'
     '"CachedField":"","CacheIndex":0,"Cached":false,"Partition":null,"WhenExpr":null,'
     '"SortFields":null},{"OP":26,"LHS":' + X2 + ',"RHS":{"Val":1.5}}]}'),
    ("f(x, demo.x, lower(x), x + 1)", 1,
     '{"func":"Validate","arg":[' + X1 + ',{"StreamName":"demo","Name":"x"},'
     '{"Name":"lower","FuncId":0,"FuncType":0,"Args":[' + X1 + '],"CachedField":"",'
     '"Cached":false,"Partition":null,"WhenExpr":null,"SortFields":null},'
     '{"OP":12,"LHS":' + X1 + ',"RHS":{"Val":1}}]}'),
    ("f()", 2, '{"func":"Validate","arg":null}'),
]


def _built(sql, ekuiper):
    x = gowire.field("x", ekuiper=ekuiper)
    return {
        "f('abc', 3, 1.5, true)": [gowire.literal(v) for v in ("abc", 3, 1.5, True)],
        "f(3.0, -3, 'a<b')": [gowire.literal(v) for v in (3.0, -3, "a<b")],
        "f(x, demo.x, lower(x), x + 1)": [
            x, gowire.field("x", "demo", ekuiper=ekuiper),
            gowire.call("lower", x, ekuiper=ekuiper),
            gowire.binary(x, "+", gowire.literal(1))],
        "f(total(x), x > 1.5)": [
            gowire.call("total", x, func_id=1, aggregate=True, ekuiper=ekuiper),
            gowire.binary(x, ">", gowire.literal(1.5))],
        "f()": [],
    }[sql]


@pytest.mark.parametrize(("sql", "ekuiper", "go"), GO_VALIDATE)
def test_validate_arguments_are_the_bytes_ekuiper_sends(sql, ekuiper, go):
    raw = gowire.encode_function_call("Validate", _built(sql, ekuiper))
    assert raw == go.encode()


def test_a_value_without_a_sql_literal_has_no_literal_shape():
    for value in ([1], {"a": 1}, None, float("nan"), b"x"):
        with pytest.raises(ValueError, match="eKuiper's SQL has no literal for"):
            gowire.literal(value)
    with pytest.raises(ValueError, match="Unknown operator 'LIKE'"):
        gowire.binary(gowire.field("x"), "LIKE", gowire.literal("a%"))


def test_arguments_are_literals_where_sql_has_them_else_columns():
    assert gowire.arguments(["a", 2, 2.5, False, None, [1], {"Val": 1}]) == [
        {"Val": "a"}, {"Val": 2}, {"Val": 2.5}, {"Val": False},
        gowire.field("arg5"), gowire.field("arg6"), gowire.field("arg7")]
    assert gowire.arguments([[1, 2], 3], aggregate=True) == [
        gowire.field("arg1"), gowire.field("arg2")]  # an aggregate's values are windows
