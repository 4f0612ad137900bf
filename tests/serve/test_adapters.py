import asyncio
import enum
import math
import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any, Literal, Optional

import orjson
import pytest

from kuiperlite import Backoff, ConfigError, Context, Record, function, sink, source, testing
from kuiperlite.declare import hints
from kuiperlite.declare.symbols import AnySpec, marks_of, read
from kuiperlite.dev import gowire
from kuiperlite.protocol import wire
from kuiperlite.serve.adapters import FunctionAdapter, SinkAdapter, SourceAdapter

from conftest import wait_until


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


def _a_list_with_a_bad_element():
    """What the three list tests send: a good record, a number, a nested list, a good one."""
    return [{"seq": 3}, 5, [{"nested": 1}], {"seq": 4}]


@pytest.mark.parametrize("style", ["generator", "emit", "async generator"])
def test_each_element_of_a_list_is_its_own_message_and_a_bad_one_drops_alone(style):
    if style == "generator":
        @source
        def s(ctx):
            yield _a_list_with_a_bad_element()
            yield {"seq": 5}
    elif style == "emit":
        @source
        def s(ctx):
            ctx.emit(_a_list_with_a_bad_element())
            ctx.emit({"seq": 5})
    else:
        @source
        async def s(ctx):
            yield _a_list_with_a_bad_element()
            yield {"seq": 5}

    out, _ = run_source(s)
    assert out.records == [({"seq": 3}, None), ({"seq": 4}, None), ({"seq": 5}, None)]
    assert out.errors == [
        "The source 's' dropped a record: A record must be a dict, an attrs or dataclass "
        "instance, a list of those or a Record, got the number 5.",
        "The source 's' dropped a record: A list of records holds a list; expected objects."]


@pytest.mark.parametrize("style", ["yield", "ctx.emit"])
def test_a_single_record_json_cannot_carry_is_reported_and_the_source_goes_on(style):
    if style == "yield":
        @source(retry=False)
        def s(ctx):
            yield {"when": {1, 2}}
            yield {"seq": 2}
    else:
        @source(retry=False)
        def s(ctx):
            ctx.emit({"when": {1, 2}})
            ctx.emit({"seq": 2})

    out, _ = run_source(s)
    assert out.records == [({"seq": 2}, None)]
    assert len(out.errors) == 1
    assert out.errors[0].startswith("The source 's' dropped a record: The record cannot be "
                                    "encoded as JSON")


def test_a_source_that_raises_a_config_error_is_not_started_again():
    runs = []

    @source(retry=Backoff(first=0.01, most=0.02))
    def s(ctx, *, interval: int = 0):
        runs.append(interval)
        if interval <= 0:
            raise ConfigError(f"interval must be positive, got {interval}")
        yield {"interval": interval}

    with pytest.raises(ConfigError, match="interval must be positive, got 0"):
        testing.run_source(s, restarts=5)
    assert runs == [0]


def test_a_failing_source_with_retry_off_reports_and_returns():
    @source(retry=False)
    def s(ctx):
        yield {"a": 1}
        raise ValueError("sensor unplugged")

    out, _ = run_source(s)
    assert out.records == [({"a": 1}, None)]
    assert out.errors == ["The source 's' failed: ValueError: sensor unplugged"]


def flaky(style, backoff):
    """A source of ``style`` that raises in its first two runs, then emits its run count."""
    def begin(ctx):
        runs = ctx.state.incr("runs")
        if runs < 3:
            raise OSError(f"gateway down ({runs})")
        return {"runs": runs}

    if style == "generator":
        def s(ctx):
            yield begin(ctx)
    elif style == "plain":
        def s(ctx):
            ctx.emit(begin(ctx))
    elif style == "async":
        async def s(ctx):
            ctx.emit(begin(ctx))
    else:
        async def s(ctx):
            yield begin(ctx)
    return source(retry=backoff)(s)


def run_until_a_record(func, timeout=10.0):
    """Run a source until its first record; what it produced, and the seconds it took."""
    sym = spec(func)
    out = Collector()

    def deliver(data, meta):
        out.deliver(data, meta)
        adapter.stop()

    adapter = SourceAdapter(sym, {}, deliver, out.report, rule_id="r", op_id="o")
    started = time.monotonic()
    thread = threading.Thread(target=adapter.run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"no record within {timeout} s"
    return out, time.monotonic() - started


@pytest.mark.parametrize("style", ["generator", "plain", "async", "async generator"])
def test_a_source_that_raises_starts_again_after_its_backoff_with_its_state(style):
    out, took = run_until_a_record(flaky(style, Backoff(first=0.05, most=1)))
    assert out.errors == [
        "The source 's' failed: OSError: gateway down (1); it starts again in 0.05 s",
        "The source 's' failed: OSError: gateway down (2); it starts again in 0.1 s"]
    assert out.records == [({"runs": 3}, None)]  # the third run saw what the first two kept
    assert took >= 0.15


def test_the_backoff_doubles_up_to_its_most_and_starts_over_after_a_healthy_run():
    assert [Backoff().delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert Backoff(first=0.5, most=3).delay(10_000) == 3
    lasted = [0, 0, 0, 0.2, 0]  # how long each run lasts before it raises

    @source(retry=Backoff(first=0.01, most=0.02))
    def s(ctx):
        runs = ctx.state.incr("runs")
        if runs > len(lasted):
            ctx.emit({"runs": runs})
            return
        ctx.sleep(lasted[runs - 1])
        raise OSError("down")

    out, _ = run_until_a_record(s)
    waits = [e.rsplit(" in ", 1)[1] for e in out.errors]
    # A run of 0.2 s, past the longest wait, was healthy: the wait after it is the first.
    assert waits == ["0.01 s", "0.02 s", "0.02 s", "0.01 s", "0.02 s"]


def test_a_stop_during_the_backoff_ends_the_source_at_once():
    calls = []

    @source(retry=Backoff(first=60, most=60))
    def s(ctx):
        calls.append(1)
        raise OSError("down")

    sym = spec(s)
    out = Collector()
    adapter = SourceAdapter(sym, {}, out.deliver, out.report)
    thread = threading.Thread(target=adapter.run)
    thread.start()
    wait_until(lambda: out.errors, message="the failure")
    started = time.monotonic()
    adapter.stop()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 1
    assert calls == [1]
    assert out.errors == ["The source 's' failed: OSError: down; it starts again in 60 s"]


def test_a_source_that_returns_or_fails_at_its_stop_is_not_started_again():
    calls = []

    @source
    def returns(ctx):
        calls.append("returns")

    @source
    def fails_at_stop(ctx):
        calls.append("fails")
        ctx.sleep(60)
        raise OSError("the connection closed")

    run_source(returns)
    out, took = run_source(fails_at_stop, stop_after=0.05)
    assert calls == ["returns", "fails"] and took < 5
    assert out.errors == ["The source 'fails_at_stop' failed: OSError: the connection closed"]


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


class Color(enum.Enum):
    RED = "red"
    ONE = 1


HINTS = [str, int, float, bool, list, dict, list[int], Literal["a", 2], Color, Optional[int],
         Optional[bool], Optional[list[str]], Any]
LITERALS = ["abc", "12", " 7 ", "1.5", "true", "FALSE", "red", "RED", "a", "", 12, 0, 2, -3,
            1.5, -0.5, 3.0, 1e21, True, False]
STRINGS = [value for value in LITERALS if isinstance(value, str)]
INTEGERS = [12, 0, 2, -3, 3.0]  # 3.0 reaches Validate as 3, like an integer
NUMBERS = [*INTEGERS, 1.5, -0.5, 1e21]
BOOLEANS = [True, False]
# The literals Validate takes for a parameter of each hint (for an aggregate, of a
# list of it): by eKuiper's rules for its own functions, a string takes strings, an
# integer integers, a number numbers, a boolean booleans; others take what converts.
TAKEN = {str: STRINGS, int: INTEGERS, float: NUMBERS, bool: BOOLEANS, list: [], dict: [],
         list[int]: [], Literal["a", 2]: ["a", 2], Color: ["red", "RED"],
         Optional[int]: INTEGERS, Optional[bool]: BOOLEANS, Optional[list[str]]: [],
         Any: LITERALS}


def typed_function(hint, aggregate):
    def f(x):
        return None  # the argument alone decides whether a call fails

    f.__annotations__ = {"x": list[hint] if aggregate else hint}
    return FunctionAdapter(spec(function(aggregate=aggregate)(f)))


@pytest.mark.parametrize("aggregate", [False, True])
@pytest.mark.parametrize("hint", HINTS, ids=str)
def test_validate_takes_the_literals_ekuipers_own_functions_take(hint, aggregate):
    """A literal of the parameter's type passes; any other is refused in Exec's
    sentence: the one Exec gives when it refuses the value too, and the same
    words when Exec would convert it."""
    adapter = typed_function(hint, aggregate)
    phrase = adapter.spec.params[0].type.phrase
    for value in LITERALS:
        validated = request(adapter, "Validate", [gowire.literal(value)])
        if value in TAKEN[hint] and type(value) in map(type, TAKEN[hint]):
            assert validated == {"state": True, "result": ""}, value
            continue
        executed = request(adapter, "Exec", [[value] * 3 if aggregate else value, META])
        if not executed["state"]:
            assert validated == executed, value
            continue
        got = hints.describe_value(orjson.loads(gowire.go_json(value)))  # 3.0 goes as 3
        expected = hints.describe(hints.unwrap_optional(hint))  # a literal is never null
        if aggregate:
            got = f"a list (item 0 must be {expected}, got {got})"
            expected = phrase
        assert validated == {"state": False, "result": f"Argument 1 (x) of f() must be "
                                                       f"{expected}, got {got}."}, value


def test_validate_refuses_what_ekuiper_refuses_and_exec_still_converts_columns():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    ok = {"state": True, "result": ""}

    def refused(text):
        return {"state": False, "result": text}

    assert request(adapter, "Validate", [gowire.literal(v) for v in ("a", 3, 1.5, True)]) == ok
    assert request(adapter, "Validate", [gowire.literal(v) for v in ("a", 3, 2, False)]) == ok
    assert request(adapter, "Validate", [gowire.literal(12), x, x, x]) == refused(
        "Argument 1 (s) of typed() must be a string, got the number 12.")
    assert request(adapter, "Validate", [x, gowire.literal("12"), x, x]) == refused(
        "Argument 2 (n) of typed() must be an integer, got the string '12'.")
    assert request(adapter, "Validate", [x, gowire.literal(3.5), x, x]) == refused(
        "Argument 2 (n) of typed() must be an integer, got the number 3.5.")
    assert request(adapter, "Validate", [x, x, gowire.literal("1.5"), x]) == refused(
        "Argument 3 (x) of typed() must be a number, got the string '1.5'.")
    assert request(adapter, "Validate", [x, x, x, gowire.literal("true")]) == refused(
        "Argument 4 (flag) of typed() must be true or false, got the string 'true'.")
    # a value the running rule supplies is converted at Exec, as before
    assert request(adapter, "Exec", [12, "12", "1.5", "TRUE", META]) == {
        "state": True, "result": ["12", 12, 1.5, True]}


def test_a_condition_is_true_or_false():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    above = gowire.binary(x, ">", gowire.literal(1))  # x > 1
    for condition in (above, gowire.binary(above, "AND", above), gowire.paren(above),
                      gowire.operation(x, 35, gowire.like_pattern(gowire.literal("a%")))):
        assert request(adapter, "Validate", [x, x, x, condition])["state"] is True
        assert request(adapter, "Validate", [condition, x, x, x]) == {
            "state": False, "result": "Argument 1 (s) of typed() must be a string, got a "
                                      "condition, which is true or false."}
    assert request(adapter, "Validate", [x, x, above, x])["result"] == (
        "Argument 3 (x) of typed() must be a number, got a condition, which is true or false.")
    plus = gowire.binary(x, "+", gowire.literal(1))  # x + 1: its value is the rule's
    assert request(adapter, "Validate", [plus, plus, plus, plus])["state"] is True


def test_validate_leaves_what_only_the_running_rule_knows():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    assert request(adapter, "Validate", [x, gowire.call("lower", x),
                                         gowire.binary(x, "+", gowire.literal(1)),
                                         gowire.field("x", "demo")]) == {"state": True,
                                                                         "result": ""}
    assert request(adapter, "Validate", [gowire.paren(gowire.literal(True)), x, x, x]) == {
        "state": False, "result": "Argument 1 (s) of typed() must be a string, got true."}
    assert request(adapter, "Validate", [gowire.literal(True)]) == {
        "state": False,  # the count first
        "result": "typed() takes exactly 4 arguments (s, n, x, flag) but got 1."}


def test_validate_checks_each_vararg_and_an_aggregates_window():
    @function
    def tagged(tag: str, *codes: int) -> list:
        return [tag, *codes]

    @function(aggregate=True)
    def total(values: list[float]) -> float:
        return sum(values)

    va = FunctionAdapter(spec(tagged))
    assert request(va, "Validate", [gowire.literal(v) for v in ("t", 1, 2, 3)])["state"] is True
    assert request(va, "Validate", [gowire.literal(v) for v in ("t", 1, 2, "x")]) == request(
        va, "Exec", ["t", 1, 2, "x", META]) == {
        "state": False,
        "result": "Argument 4 (codes) of tagged() must be an integer, got the string 'x'."}
    agg = FunctionAdapter(spec(total))
    assert request(agg, "Validate", [gowire.literal(3)])["state"] is True
    assert request(agg, "Validate", [gowire.literal("3")]) == {
        "state": False, "result": "Argument 1 (values) of total() must be a list of numbers, "
                                  "got a list (item 0 must be a number, got the string '3')."}
    assert request(agg, "Exec", [["3", "3"], META])["result"] == 6.0  # a column's strings


def test_a_time_unit_is_an_integer_to_validate():
    @function
    def maybe(flag: Optional[bool]) -> Optional[bool]:
        return flag

    @function
    def scaled(n: int) -> int:
        return n

    ss = {"Val": 83}  # maybe(ss): eKuiper sends the unit's token, like the integer 83
    assert request(FunctionAdapter(spec(maybe)), "Validate", [ss]) == {
        "state": False,
        "result": "Argument 1 (flag) of maybe() must be true or false, got the number 83."}
    assert request(FunctionAdapter(spec(scaled)), "Validate", [ss])["state"] is True


def test_exec_reads_values_never_shapes():
    @function
    def keys(d: dict) -> list:
        return sorted(d)

    adapter = FunctionAdapter(spec(keys))
    assert request(adapter, "Exec", [{"Val": "x"}, META]) == {"state": True, "result": ["Val"]}


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
