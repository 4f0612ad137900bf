import math
import os
import re
import socket
import subprocess
import sys

import orjson
import pytest

from kuiperlite.declare.kinds import FUNCTION, SINK, SOURCE
from kuiperlite.errors import EncodeError, ProtocolError
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Control, FuncMeta, Meta


def command(cmd="start", **ctrl):
    base = {"symbolName": "pyjson", "pluginType": "source",
            "meta": {"ruleId": "r1", "opId": "o1", "instanceId": 2}}
    base.update(ctrl)
    return orjson.dumps({"cmd": cmd, "arg": orjson.dumps(base).decode()})


def test_decode_start_command():
    name, control = wire.decode_command(command(dataSource="t/1", config={"a": 1}))
    assert name == "start"
    # the top-level dataSource is eKuiper 1.x's
    assert control == Control("pyjson", "source", Meta("r1", "o1", 2), "t/1", {"a": 1},
                              generation=1)
    assert control.meta.key("pyjson") == "r1_o1_2_pyjson"


def test_a_command_shows_the_ekuiper_generation_where_it_can():
    assert wire.decode_command(command(dataSource="t/1"))[1].generation == 1
    assert wire.decode_command(command(config={"datasource": "t/1"}))[1].generation == 2
    sink = {"symbolName": "print", "pluginType": "sink", "config": {"requireAck": True}}
    assert wire.decode_command(command(**sink))[1].generation == 0  # sinks look alike


def test_both_datasource_spellings_are_accepted():
    assert wire.decode_command(command(datasource="x"))[1].datasource == "x"
    assert wire.decode_command(command(dataSource="y"))[1].datasource == "y"


def test_the_datasource_comes_from_the_config_when_ekuiper_2_sends_it_there():
    config = {"datasource": "building-7", "format": "json", "key": "", "retainSize": 0}
    control = wire.decode_command(command(config=config))[1]
    assert control.datasource == "building-7"
    assert control.config == config  # the stream options stay visible
    assert wire.decode_command(command(dataSource="1.x", config=config))[1].datasource == "1.x"
    assert wire.decode_command(command(config={"format": "json"}))[1].datasource == ""


def test_function_control_needs_no_meta():
    raw = orjson.dumps({"cmd": "start", "arg": '{"symbolName":"revert","pluginType":"func"}'})
    assert wire.decode_command(raw)[1] == Control("revert", "func")


@pytest.mark.parametrize(("raw", "phrase"), [
    (b"", "is empty"),
    (b"not json", "not valid JSON"),
    (b'{"cmd": "start", "arg": "{\\"symbolName\\": ', "not valid JSON"),
    (b"[1]", "must be a JSON object"),
    (b'{"cmd": "restart", "arg": "{}"}', "Unknown command 'restart'"),
    (b'{"cmd": "start", "arg": {"symbolName": "x"}}', "must be a string holding the control"),
    (b'{"cmd": "start", "arg": "[]"}', "must hold a JSON object"),
    (command(symbolName=""), "needs 'symbolName'"),
    (command(pluginType="widget"), "Unknown plugin type 'widget'"),
    (command(meta=None), "needs 'meta'"),
    (command(meta={"ruleId": "r", "instanceId": 0}), "needs meta.opId"),
    (command(meta={"ruleId": "r", "opId": "o", "instanceId": "x"}), "meta.instanceId"),
    (command(config=[1]), "config of 'pyjson' must be an object"),
])
def test_bad_commands_get_one_sentence(raw, phrase):
    with pytest.raises(ProtocolError) as info:
        wire.decode_command(raw)
    message = str(info.value)
    assert phrase in message
    assert "\n" not in message and message.endswith(".")


def test_answers_never_start_with_h():
    assert wire.answer("handler failed") == b"Handler failed"
    assert wire.answer("ok") == b"ok"
    assert wire.answer("") == b"error"


def test_record_frame():
    assert wire.encode_record({"a": 1}) == b'{"message":{"a":1},"meta":null}'
    framed = orjson.loads(wire.encode_record({"é": "ü"}, {"topic": "t"}))
    assert framed == {"message": {"é": "ü"}, "meta": {"topic": "t"}}


def test_records_with_numpy_style_keys_fall_back_to_lenient_encoding():
    assert orjson.loads(wire.encode_record({1: "a"})) == {"message": {"1": "a"}, "meta": None}


@pytest.mark.parametrize(("record", "phrase"), [
    ({"s": {1, 2}}, "cannot be encoded as JSON"),
    ({"x": object()}, "cannot be encoded as JSON"),
    ({"v": [1.0, math.nan]}, "not finite at v[1]"),
    ({"v": {"w": math.inf}}, "not finite at v.w"),
])
def test_unencodable_records_raise(record, phrase):
    with pytest.raises(EncodeError) as info:
        wire.encode_record(record)
    assert phrase in str(info.value)


def test_null_values_are_not_mistaken_for_nan():
    assert wire.encode_record({"a": None}) == b'{"message":{"a":null},"meta":null}'


def test_function_reply_of_unencodable_result_fails_cleanly():
    assert orjson.loads(wire.encode_reply(True, "x")) == {"state": True, "result": "x"}
    bad = orjson.loads(wire.encode_reply(True, {1, 2}))
    assert bad["state"] is False and "cannot be encoded" in bad["result"]


def test_acks():
    assert wire.encode_ack() == b"{}"
    assert wire.encode_ack("disk full") == b'{"error":"disk full"}'


def test_function_requests_and_meta_are_decoded():
    meta = '{"ruleId":"r","opId":"o","instanceId":1,"funcId":2}'
    assert wire.decode_func_meta(meta) == FuncMeta("r", "o", 1, 2)
    raw = orjson.dumps({"func": "Exec", "arg": ["abc", meta]})
    assert wire.decode_function_call(raw) == ("Exec", ["abc", meta])


# Validate's arguments as eKuiper's Go code marshals its pkg/ast nodes.
X = {"StreamName": "$$default", "Name": "x", "HasIndex": False, "SourceIndex": 0, "Index": 0}


@pytest.mark.parametrize(("expr", "values"), [
    ({"Val": "abc"}, ("abc",)),                     # 'abc'
    ({"Val": "3"}, ("3",)),                         # '3': a string, whatever it holds
    ({"Val": True}, (True,)),                       # true
    ({"Val": 1.5}, (1.5,)),                         # 1.5
    ({"Val": -3}, (-3,)),                           # -3
    ({"Val": 3}, (3, None)),                        # 3, 3.0, or a time literal such as ss
    ({"Expr": {"Expr": {"Val": "a"}}}, ("a",)),     # (('a'))
    (X, ()),                                        # x
    ({"StreamName": "demo", "Name": "x"}, ()),      # demo.x in eKuiper 1.x
    ({"OP": 12, "LHS": X, "RHS": {"Val": 1}}, ()),  # x + 1
    ({"Name": "lower", "FuncId": 0, "FuncType": 0, "Args": [X], "CachedField": "",
      "CacheIndex": 0, "Cached": False, "Partition": None, "WhenExpr": None,
      "SortFields": None}, ()),                     # lower(x)
    ({"Token": 40, "Replace": None, "Except": None}, ()),  # *
    ({"Value": None, "WhenClauses": [{"Expr": X, "Result": {"Val": "a"}}],
      "ElseClause": {"Val": "b"}}, ()),             # CASE WHEN x THEN 'a' ELSE 'b' END
    ({"Expr": X}, ()),                              # (x)
    ({"Val": None}, ()), ({"Val": [1]}, ()), ({"Val": 1, "X": 2}, ()),  # never sent
    ("abc", ()), (3, ()), (None, ()), ([{"Val": 1}], ()),
])
def test_literal_values_are_read_from_the_shape_alone(expr, values):
    assert wire.literal_values(expr) == values


def test_a_source_error_is_a_json_string():
    raw = wire.encode_source_error('The source "x" failed: ValueError: <bad>')
    assert raw == b'"The source \\"x\\" failed: ValueError: <bad>"'


@pytest.mark.parametrize("again", [None, 2, 0.05, 30])
def test_a_source_failure_is_read_back_from_its_sentence(again):
    text = wire.source_failure("source 'feed'", "OSError: gateway down\nat 10:00", again)
    assert text.startswith("The source 'feed' failed: OSError: gateway down\nat 10:00")
    assert wire.read_source_failure(text) == ("OSError: gateway down\nat 10:00", again)


def test_other_source_errors_are_no_failure():
    assert wire.read_source_failure("sensor 3 is offline") is None
    assert wire.read_source_failure("The source 'feed' dropped a record: A record must be a "
                                    "dict") is None
    assert wire.source_failure("source 'feed'", "E", 2) == \
        "The source 'feed' failed: E; it starts again in 2 s"


def test_portable_config_argument_is_optional_and_tolerant():
    assert wire.parse_portable_config(["x"]) == {}
    assert wire.parse_portable_config(["x", '{"sendTimeout":1000,"more":1}'])["more"] == 1
    assert wire.parse_portable_config(["x", "garbage"]) == {}


def test_addresses():
    meta = Meta("rule1", "op1", 3)
    assert wire.control_address("pysam", "/tmp") == "ipc:///tmp/plugin_pysam.ipc"
    assert wire.function_address("revert", "/tmp") == "ipc:///tmp/func_revert.ipc"
    assert wire.data_address(meta, "/tmp") == "ipc:///tmp/rule1_op1_3.ipc"
    assert wire.ack_address(meta, "/tmp") == "ipc:///tmp/rule1_op1_3_ack.ipc"
    assert wire.ipc_path(wire.ack_address(meta, "/tmp")) == "/tmp/rule1_op1_3_ack.ipc"
    assert wire.data_address(meta) == f"ipc://{wire.IPC_DIR}/rule1_op1_3.ipc"


def test_sockets_live_in_ekuipers_folder_unless_told_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "KUIPERLITE_IPC_DIR"}
    code = "from kuiperlite.protocol import wire; print(wire.IPC_DIR)"
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
    assert default.stdout.strip() == "/tmp"
    moved = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(env, KUIPERLITE_IPC_DIR="/run/kl"), check=True)
    assert moved.stdout.strip() == "/run/kl"


@pytest.mark.parametrize("name", ["rule1", "r-1.x", "règle_7", "a.b"])
def test_names_that_fit_a_socket_file_name(name, tmp_path):
    wire.check_ipc_name(name, "ruleId")  # raises for a name that does not fit
    file_name = os.path.basename(wire.ipc_path(wire.data_address(Meta(name, "op1", 0))))
    assert file_name == f"{name}_op1_0.ipc"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / file_name))  # a socket file of that name can be made
    assert (tmp_path / file_name).is_socket()


@pytest.mark.parametrize("name", ["a/b", "..", "x..y", "a\x00b", "a\nb", "tab\t", "del\x7f",
                                  "c1\x85"])
def test_names_that_do_not_fit_a_socket_file_name(name):
    with pytest.raises(ProtocolError) as info:
        wire.check_ipc_name(name, "ruleId")
    assert repr(name) in str(info.value)


def test_socket_paths_longer_than_a_socket_holds():
    fits = "/tmp/" + "a" * (wire.IPC_PATH_MAX - 5)
    wire.check_ipc_path(f"ipc://{fits}")
    wire.check_ipc_path(fits)
    with pytest.raises(ProtocolError, match=f"{fits}b .*108"):
        wire.check_ipc_path(f"ipc://{fits}b")
    with pytest.raises(ProtocolError, match="108"):
        wire.check_ipc_path("/tmp/" + "é" * 51 + "x")  # bytes, not characters


@pytest.mark.parametrize(("meta", "phrase"), [
    ({"ruleId": "../../home/x", "opId": "o", "instanceId": 0}, "'../../home/x'"),
    ({"ruleId": "a/b", "opId": "o", "instanceId": 0}, "'a/b'"),
    ({"ruleId": "r", "opId": "o\x00", "instanceId": 0}, "'o\\x00'"),
    ({"ruleId": "r\n", "opId": "o", "instanceId": 0}, "'r\\n'"),
    ({"ruleId": "r" * 120, "opId": "o", "instanceId": 0}, "107"),
])
def test_names_that_would_reach_the_filesystem_are_refused(meta, phrase):
    for kind in ("source", "sink"):
        with pytest.raises(ProtocolError, match=re.escape(phrase)):
            wire.decode_command(command(pluginType=kind, meta=meta))


def test_a_sinks_longer_ack_path_is_checked_too():
    room = 107 - len(wire.IPC_DIR) - len("/_o_0.ipc")  # the data path fills it exactly
    meta = {"ruleId": "r" * room, "opId": "o", "instanceId": 0}
    assert wire.decode_command(command(pluginType="source", meta=meta))[1].meta is not None
    with pytest.raises(ProtocolError, match="bytes long"):
        wire.decode_command(command(pluginType="sink", meta=meta))


def test_check_meta_is_the_one_rule_for_a_starts_socket_files():
    room = 107 - len("/d") - len("/_o_0.ipc")  # the data path fills a socket path exactly
    meta = Meta("r" * room, "o", 0)
    wire.check_meta(meta, SOURCE, "/d")
    with pytest.raises(ProtocolError, match="111"):
        wire.check_meta(meta, SINK, "/d")  # the ack path is the longer
    wire.check_meta(Meta("r" * 200, "o", 0), FUNCTION, "/d")  # a function's meta names no file
    with pytest.raises(ProtocolError, match="'a/b'"):
        wire.check_meta(Meta("r", "a/b", 0), FUNCTION)
