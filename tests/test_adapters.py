import asyncio
import math
import threading
import time
from collections.abc import AsyncGenerator, Generator

import orjson
import pytest

from kuiperlite import Context, Record, function, sink, source, wire
from kuiperlite.adapters import FunctionAdapter, SinkAdapter, SourceAdapter
from kuiperlite.dev import gowire
from kuiperlite.symbols import AnySpec, marks_of, read


def spec(func) -> AnySpec:
    (mark,) = marks_of(func)
    return read(func, mark)


class Collector:
    """Deliver and report callables that keep what a source produced."""

    def __init__(self):
        self.records = []
        self.errors = []

    def deliver(self, data, meta):
        wire.encode_record(data, meta)  # raises EncodeError like the runtime does
        self.records.append((data, meta))

    def report(self, message):
        self.errors.append(message)


def run_source(func, config=None, datasource="", stop_after=None):
    sym = spec(func)
    out = Collector()
    adapter = SourceAdapter(sym, sym.bind_config(config or {}), out.deliver, out.report,
                            rule_id="r", op_id="o", datasource=datasource)
    if stop_after is not None:
        threading.Timer(stop_after, adapter.stop).start()
    started = time.monotonic()
    adapter.run()
    return out, time.monotonic() - started


def test_generator_records_lists_meta_and_none():
    @source
    def s(ctx, ds):
        yield {"a": 1}
        yield [{"b": 2}, Record({"c": 3}, meta={"m": 1})]
        yield None
        yield Record({"d": ds})

    out, _ = run_source(s, datasource="topic")
    assert out.records == [({"a": 1}, None), ({"b": 2}, None), ({"c": 3}, {"m": 1}),
                           ({"d": "topic"}, None)]
    assert out.errors == []


def test_stop_interrupts_sleep_and_runs_finally():
    closed = []

    @source
    def s(ctx, *, interval: float = 60):
        try:
            while ctx.sleep(interval):
                yield {"never": True}
        finally:
            closed.append(True)

    out, took = run_source(s, stop_after=0.1)
    assert closed == [True] and out.records == []
    assert took < 5


def test_plain_function_source_emits_until_stopped():
    closed = []

    @source
    def s(ctx: Context, *, value: int):
        try:
            while True:  # a careless loop: emit raises Stopped at stop
                ctx.emit({"v": value})
                time.sleep(0.001)
        finally:
            closed.append(True)

    out, _ = run_source(s, {"value": "5"}, stop_after=0.1)
    assert closed == [True]
    assert out.records and out.records[0] == ({"v": 5}, None)


def test_async_generator_is_cancelled_promptly():
    closed = []

    @source
    async def s(ctx):
        try:
            yield {"first": 1}
            while await ctx.asleep(60):
                yield {"never": 1}
        finally:
            closed.append(True)

    out, took = run_source(s, stop_after=0.1)
    assert out.records == [({"first": 1}, None)]
    assert closed == [True] and took < 5


def test_async_function_source_with_emit():
    @source
    async def s(ctx):
        for i in range(3):
            ctx.emit({"i": i})
            await asyncio.sleep(0)

    out, _ = run_source(s)
    assert [r[0]["i"] for r in out.records] == [0, 1, 2]


def test_unencodable_and_misshapen_records_are_reported_and_the_source_goes_on():
    @source
    def s(ctx):
        yield {"bad": {1, 2}}
        yield {"nan": math.nan}
        yield "not a record"
        yield [[{"nested": 1}]]
        yield {"good": 1}

    out, _ = run_source(s)
    assert out.records == [({"good": 1}, None)]
    assert len(out.errors) == 4
    assert all(e.startswith("The source 's' dropped a record: ") for e in out.errors)
    assert "not finite at nan" in out.errors[1]
    assert "must be a dict" in out.errors[2]


def test_failing_source_reports_and_returns():
    @source
    def s(ctx):
        yield {"a": 1}
        raise ValueError("sensor unplugged")

    out, _ = run_source(s)
    assert out.records == [({"a": 1}, None)]
    assert out.errors == ["The source 's' failed: ValueError: sensor unplugged"]


def test_source_that_returns_at_once():
    @source
    def s(ctx):
        return
        yield

    out, _ = run_source(s)
    assert out.records == [] and out.errors == []


def test_emit_error_is_reported():
    @source
    def s(ctx):
        ctx.emit_error("device busy")

    out, _ = run_source(s)
    assert out.errors == ["device busy"]


# ----------------------------------------------------------------- sinks


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


def request(adapter, func, args):
    return orjson.loads(adapter.handle(gowire.encode_function_call(func, args)))


META = gowire.encode_func_meta(wire.FuncMeta("rule1", "op1", 0, 1))


def test_function_requests():
    @function
    def revert(s: str) -> str:
        return s[::-1]

    adapter = FunctionAdapter(spec(revert))
    assert request(adapter, "Validate", ["col"]) == {"state": True, "result": ""}
    assert request(adapter, "Validate", None) == {
        "state": False, "result": "revert() takes exactly 1 argument (s) but got 0."}
    assert request(adapter, "IsAggregate", None) == {"state": True, "result": False}
    assert request(adapter, "Exec", ["abc", META]) == {"state": True, "result": "cba"}
    assert request(adapter, "Exec", [123, META]) == {"state": True, "result": "321"}
    assert request(adapter, "Exec", [None, META]) == {
        "state": False, "result": "Argument 1 (s) of revert() must be a string, got null."}
    assert request(adapter, "Exec", []) == {
        "state": False,
        "result": "Exec needs the function meta as its last argument, a JSON string, got nothing."}
    assert request(adapter, "Nope", None)["result"].startswith("Unknown function request 'Nope'")
    assert orjson.loads(adapter.handle(b"{oops"))["state"] is False


def test_function_exceptions_become_failed_replies():
    @function
    def div(a: float, b: float) -> float:
        return a / b

    adapter = FunctionAdapter(spec(div))
    assert request(adapter, "Exec", [1, 0, META]) == {
        "state": False, "result": "div() raised ZeroDivisionError: float division by zero"}
    assert request(adapter, "Exec", [1, 4, META]) == {"state": True, "result": 0.25}


def test_function_context_per_calling_instance():
    seen = []

    @function
    def who(ctx: Context, x):
        seen.append(ctx)
        return f"{ctx.rule_id}/{ctx.op_id}/{ctx.instance_id}#{ctx.func_id}"

    adapter = FunctionAdapter(spec(who))
    other = gowire.encode_func_meta(wire.FuncMeta("rule2", "op1", 0, 1))
    assert request(adapter, "Exec", [1, META])["result"] == "rule1/op1/0#1"
    assert request(adapter, "Exec", [1, META])["result"] == "rule1/op1/0#1"
    assert request(adapter, "Exec", [1, other])["result"] == "rule2/op1/0#1"
    assert seen[0] is seen[1] and seen[0] is not seen[2]
    assert request(adapter, "Exec", [1, "{}"])["result"].startswith(
        "The control for a function call needs meta.ruleId")


def test_aggregate_and_varargs_and_async():
    @function(aggregate=True)
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    @function
    def joined(sep: str, *parts: str) -> str:
        return sep.join(parts)

    @function
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    agg = FunctionAdapter(spec(mean))
    assert request(agg, "IsAggregate", None)["result"] is True
    assert request(agg, "Exec", [[1, 2, "3"], META])["result"] == 2.0
    va = FunctionAdapter(spec(joined))
    assert request(va, "Exec", ["-", "a", 1, META])["result"] == "a-1"
    assert request(va, "Validate", None)["result"] == (
        "joined() takes at least 1 argument (sep, *parts) but got 0.")
    assert request(FunctionAdapter(spec(later)), "Exec", ["41", META])["result"] == 42


def test_function_returning_unencodable_value():
    @function
    def bad(x):
        return {x}

    reply = request(FunctionAdapter(spec(bad)), "Exec", [1, META])
    assert reply["state"] is False and "cannot be encoded as JSON" in reply["result"]


def test_a_plain_source_that_returns_a_value_says_it_is_dropped(caplog):
    @source
    def s(ctx):
        return {"a": 1}  # meant: yield, or ctx.emit

    with caplog.at_level("WARNING"):
        out, _ = run_source(s)
    assert out.records == []
    assert "returned an object, which is dropped: a source sends records by yielding them " \
           "or with ctx.emit" in caplog.text
