"""The embedded host held to eKuiper's own answers (tests/golden), line by line.

Source messages, acks and function replies go through the functions the host
reads them with, commands and function requests through those it encodes
them with; each line must give what eKuiper 2.x's Go code gave. Where the
host deliberately does otherwise, the line is in :data:`DIFFERENCES` (and in
docs/host.md), and its test asserts what the host does instead.
"""

import base64
import threading

import pynng
import pytest

from kuiperlite.declare.kinds import FUNCTION, SINK
from kuiperlite.dev import gojson, gojson_fmt, gowire
from kuiperlite.dev.ends import Responder
from kuiperlite.dev.host import PORTABLE_CONFIG, launch_argv, source_control, stream_options
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Control, FuncMeta, Meta

import golden_corpus
from conftest import unique

DIFFERENCES = {
    ("command.jsonl", "source_config_anymap"):
        "eKuiper fails to start a source whose conf holds a map[interface{}]interface{} (the "
        "maps yaml.v2 made); the host's config is Python dicts, string-keyed maps as eKuiper's "
        "yaml.v3 gives them, so the host sends it",
}

# The op of the source in the corpus's rule (its stream): eKuiper's log line names it.
SOURCE_OP = "demo"


def typed(value):
    """A value in the corpus's typed form: a float64 as {"$f64": its %v text}."""
    if isinstance(value, float):
        return {"$f64": gojson_fmt.format_g(value)}
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return value


def go_value(value):
    """The Python value that stands for a typed corpus value. An untyped JSON
    number is a float64, as the numbers of rule rows and props are."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("$"):
        (kind, text), = value.items()
        if kind in ("$int", "$i64", "$u64"):
            return int(text)
        if kind == "$f64":
            return float(text)
        if kind == "$f32":
            return gojson_fmt.Float32(float(text))
        if kind == "$bytes_b64":
            return base64.b64decode(text)
        if kind == "$str_b64":
            return base64.b64decode(text).decode("utf-8", "surrogateescape")
        assert kind == "$anymap", kind
        return dict(text)
    if isinstance(value, dict):
        return {k: go_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [go_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def nesting(value):
    """How many arrays are nested in ``value`` (the corpus's deep rows, which
    Python compares and encodes only by recursion)."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


# ------------------------------------------------------------- sources

@pytest.mark.parametrize("case", golden_corpus.cases("source_decode.jsonl"))
def test_a_source_message_is_what_ekuiper_ingests_or_logs(case):
    raw, go = golden_corpus.raw(case["input"], "bytes"), case["go"]
    if go["outcome"] == "error":
        with pytest.raises(gowire.SourceError) as info:
            gowire.decode_source_message(raw)
        assert info.value.error == golden_corpus.raw(go, "error")
        assert info.value.node_log(SOURCE_OP) == golden_corpus.raw(go, "node_log")
        return
    decoded = gowire.decode_source_message(raw)
    assert (decoded.message is None) is go.get("row_nil_map", False)
    if "row_omitted" in go:  # too deep for Python to compare
        assert nesting(decoded.message["a"]) == go["row_json"].count("[")
    elif decoded.message is not None:
        assert typed(decoded.message) == go["row_typed"]
        assert gojson.go_json(decoded.message) == golden_corpus.raw(go, "row_json")
    assert typed(decoded.meta or {}) == go["meta_typed"]
    assert (decoded.meta is None) is go["meta_nil_from_plugin"]


# ------------------------------------------------------------ commands

def _control(given):
    meta = Meta(given.get("rule", ""), given.get("op", ""), given.get("instance", 0))
    if given["kind"] == "source":
        names = {name.lower(): name for name in stream_options(2, "")}
        options = {names[k.lower()]: v for k, v in given.get("options", {}).items()}
        return source_control(given["symbol"], meta, options.pop("datasource", ""),
                              go_value(given.get("yaml_conf", {})), **options)
    if given["kind"] == "sink":
        return Control(given["symbol"], SINK.wire, meta, "", go_value(given.get("config", {})))
    return Control(given["symbol"], FUNCTION.wire)


def _request(given):
    if given["func"] == "IsAggregate":
        return gowire.encode_function_call("IsAggregate", None)
    meta = FuncMeta(given["rule"], given["op"], given["instance"], given["func_id"])
    return gowire.encode_function_call(
        "Exec", [*go_value(given["args"]), gowire.encode_func_meta(meta)])


@pytest.mark.parametrize("case", golden_corpus.cases("command.jsonl"))
def test_a_command_is_the_bytes_ekuiper_sends(case):
    given, go = case["input"], case["go"]
    if given["kind"] == "process_arg":
        assert launch_argv("plugin.py", "python3") == ["python3", "-u", "plugin.py", go["argv1"]]
        assert go["argv1"] == PORTABLE_CONFIG
    elif given["kind"] == "func_request":
        if go["requests"] is None:
            with pytest.raises(gojson_fmt.MarshalError) as info:
                _request(given)
            assert str(info.value) == go["exec_error"]
        else:
            assert _request(given) == golden_corpus.raw(go["requests"][0], "bytes")
    elif (case["file"], case["case"]) in DIFFERENCES:
        control = _control(given)
        assert b'\\"x\\":{\\"a\\":1}' in gowire.encode_command("start", control)
        assert all(message["err"] for message in go["messages"])
    else:
        control = _control(given)
        if "config_go_typed" in go:
            assert set(control.config) == set(go["config_go_typed"])
        for message in go["messages"]:
            if message["err"] is None:
                expected = golden_corpus.raw(message, "bytes")
                assert gowire.encode_command(message["cmd"], control) == expected
            else:
                with pytest.raises(gojson_fmt.MarshalError) as info:
                    gowire.encode_command(message["cmd"], control)
                assert str(info.value) == message["err"]


# ---------------------------------------------------------------- acks

@pytest.mark.parametrize("case", golden_corpus.cases("ack.jsonl"))
def test_an_ack_is_what_the_sink_concludes(case):
    ack, go = gowire.decode_ack(golden_corpus.raw(case["input"], "bytes")), case["go"]
    assert ack.ok is (go["outcome"] == "ok")
    assert ack.error == go.get("error")
    assert ack.io is go.get("error_is_io", False)


# ------------------------------------------------------------- replies

def _replies(first_byte_h):
    return [param for param in golden_corpus.cases("reply.jsonl")
            if param.values[0]["input"]["bytes"].startswith("h") is first_byte_h]


def _logged(go):
    encoded = go.get("logged_b64")
    if encoded is not None:
        return [base64.b64decode(line) for line in encoded]
    return [line.encode() for line in go.get("logged", [])]


def _assert_concluded(go, reply, validated=None, asked=None):
    """``reply`` (and the replies to Validate and IsAggregate, when they are
    others) concludes what eKuiper concluded."""
    execed = reply.exec
    assert execed.ok is go["exec"]["ok"]
    assert execed.error == go["exec"].get("error")
    if "result_typed" in go["exec"]:
        assert typed(execed.result) == go["exec"]["result_typed"]
    assert (validated or reply).validate == go["validate"].get("error")
    answer = (asked or reply).is_aggregate
    assert answer.result is go["is_aggregate"]["result"]
    # The corpus's logger writes each line as "error: <message>".
    assert ([] if answer.logged is None else [b"error: " + answer.logged]) == \
        _logged(go["is_aggregate"])


@pytest.mark.parametrize("case", _replies(False))
def test_a_reply_is_what_exec_validate_and_is_aggregate_conclude(case):
    reply = gowire.decode_reply(golden_corpus.raw(case["input"], "bytes"))
    _assert_concluded(case["go"], reply)


SECOND_REPLY = b'{"state":true,"result":"second reply"}'


@pytest.mark.parametrize("case", _replies(True))
def test_a_reply_starting_with_h_makes_the_host_ask_again(case):
    """eKuiper takes such a reply for a late handshake and sends its request
    again; a plugin on a real channel answers each request first with the
    case's bytes, then with the second reply."""
    meta = gowire.encode_func_meta(FuncMeta("r", "o", 0, 0))
    calls = {"exec": gowire.encode_function_call("Exec", ["abc", meta]),
             "validate": gowire.encode_function_call("Validate", [gowire.literal("abc")]),
             "is_aggregate": gowire.encode_function_call("IsAggregate", None)}
    address = wire.function_address(unique("h"))
    channel = Responder(address, lambda: None)
    plugin = pynng.Req0(recv_timeout=10_000, send_timeout=10_000)
    asked: list[bytes] = []

    def answer():
        plugin.send(b"first request")
        for _ in calls:
            asked.append(plugin.recv())
            plugin.send(golden_corpus.raw(case["input"], "bytes"))
            asked.append(plugin.recv())
            plugin.send(SECOND_REPLY)

    try:
        plugin.dial(address, block=True)
        thread = threading.Thread(target=answer)
        thread.start()
        replies = {name: gowire.decode_reply(channel.request(call, 10))
                   for name, call in calls.items()}
        thread.join(10)
        assert not thread.is_alive()
    finally:
        plugin.close()
        channel.close()
    assert asked == [call for call in calls.values() for _ in range(2)]
    for name, call in calls.items():
        assert call == golden_corpus.raw(case["go"][name], "resent_request")
        assert replies[name].raw == SECOND_REPLY
    _assert_concluded(case["go"], replies["exec"], replies["validate"], replies["is_aggregate"])
