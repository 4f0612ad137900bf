"""A sink's user code of every style, handed each message."""

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Generator

import pytest

from kuiperlite import sink
from kuiperlite.declare.symbols import AnySpec, marks_of, read
from kuiperlite.serve.sink_adapter import SinkAdapter

from conftest import wait_until


def spec(func) -> AnySpec:
    (mark,) = marks_of(func)
    return read(func, mark)


def make_sink(func, config=None):
    sym = spec(func)
    adapter = SinkAdapter(sym, sym.bind_config(config or {}), rule_id="r", op_id="o")
    adapter.open()
    return adapter


def test_plain_sink_gets_decoded_payloads_and_acks_errors():
    got = []

    @sink
    def k(ctx, data, *, prefix: str = ""):
        if data == {"fail": True}:
            raise OSError("disk full")
        got.append((prefix, data))

    adapter = make_sink(k, {"prefix": ">"})
    assert adapter.collect(b'{"a":1}') is None
    assert adapter.collect(b'[{"a":1},{"a":2}]') is None
    assert adapter.collect(b"a,b\n1,2") is None
    assert adapter.collect(b'{"fail":true}') == "OSError: disk full"
    assert got == [(">", {"a": 1}), (">", [{"a": 1}, {"a": 2}]), (">", b"a,b\n1,2")]


@pytest.mark.parametrize(("hint", "expected"), [(bytes, b'{"a":1}'), (str, '{"a":1}')])
def test_sink_data_hint_chooses_raw_payloads(hint, expected):
    got = []

    def k(data):
        got.append(data)

    k.__annotations__["data"] = hint
    make_sink(sink(k)).collect(b'{"a":1}')
    assert got == [expected]


def test_generator_sink_setup_messages_teardown_and_reopen():
    events = []

    @sink
    def k(ctx, *, path: str):
        events.append(("open", path))
        try:
            while True:
                data = yield
                if data == "boom":
                    raise RuntimeError("write failed")
                events.append(("got", data))
        finally:
            events.append(("close", path))

    adapter = make_sink(k, {"path": "/x"})
    assert events == [("open", "/x")]
    assert adapter.collect(b"1") is None
    assert adapter.collect(b'"boom"') == "RuntimeError: write failed"
    assert adapter.collect(b"2") is None  # opened again
    adapter.close()
    assert events == [("open", "/x"), ("got", 1), ("close", "/x"), ("open", "/x"), ("got", 2),
                      ("close", "/x")]


def test_generator_sink_receiving_bytes():
    got = []

    @sink
    def k() -> Generator[None, bytes, None]:
        while True:
            got.append((yield))

    make_sink(k).collect(b"[1]")
    assert got == [b"[1]"]


def test_generator_sink_that_never_yields_acks_a_clear_error():
    @sink
    def k(ctx):
        return
        yield

    adapter = make_sink(k)
    error = adapter.collect(b"{}")
    assert "returned before its first yield" in error and "`data = yield`" in error


def test_generator_sink_setup_failure_is_every_ack():
    @sink
    def k(ctx):
        raise ConnectionRefusedError("db down")
        yield

    adapter = make_sink(k)
    assert adapter.collect(b"{}") == "The sink 'k' failed to open: ConnectionRefusedError: db down"
    assert adapter.collect(b"{}") == "The sink 'k' failed to open: ConnectionRefusedError: db down"


def test_async_sinks():
    got = []

    @sink
    async def k(data):
        await asyncio.sleep(0)
        got.append(data)

    @sink
    async def g(ctx) -> AsyncGenerator[None, dict]:
        got.append("open")
        try:
            while True:
                got.append((yield))
        finally:
            got.append("close")

    make_sink(k).collect(b"1")
    adapter = make_sink(g)
    adapter.collect(b'{"x":1}')
    adapter.stop()
    adapter.close()
    assert got == [1, "open", {"x": 1}, "close"]


# ------------------------------------------------------------- functions


@dataclasses.dataclass
class Reading:
    a: int


@pytest.mark.parametrize(("hint", "shown"), [(dict, "dict"), (dict[str, int], "dict[str, int]"),
                                             (Reading, "Reading")])
def test_a_batch_for_a_sink_that_takes_one_record_is_one_sentence(hint, shown, caplog):
    got = []

    def k(data):
        got.append(data)

    k.__annotations__["data"] = hint
    adapter = make_sink(sink(k))
    expected = (f"The sink 'k' takes one record (its data is annotated {shown}) and received "
                f"a list of 2; annotate the data list[{shown}] or Any to take a batch, or set "
                "sendSingle to true in the rule's sink properties to get each record alone.")
    with caplog.at_level("WARNING"):
        assert adapter.collect(b'[{"a":1},{"a":2}]') == expected
    assert expected in caplog.text
    assert adapter.collect(b'{"a":3}') is None
    assert got == [Reading(3) if hint is Reading else {"a": 3}]


def test_a_rule_without_send_single_gets_the_sentence_from_a_plugin_process(kuiperlite_host,
                                                                            write_plugin):
    path = write_plugin("from kuiperlite import sink\n\n\n@sink\n"
                        "def keep(data: dict):\n    data.get('a')\n")
    host = kuiperlite_host(path)
    with host.start_sink("keep", config={"requireAck": True}) as snk:
        (message,) = snk.emit([{"a": 1}])  # eKuiper sends a row as a list of one
        assert message.ack == (
            "The sink 'keep' takes one record (its data is annotated dict) and received a list "
            "of 1; annotate the data list[dict] or Any to take a batch, or set sendSingle to "
            "true in the rule's sink properties to get each record alone.")
        wait_until(lambda: host.process.printed("received a list of 1"),
                   message="the sentence in the log")
    with host.start_sink("keep", rule="single", config={"requireAck": True,
                                                        "sendSingle": True}) as snk:
        assert [m.ack for m in snk.emit([{"a": 1}])] == [None]
