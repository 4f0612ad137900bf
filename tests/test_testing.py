"""kuiperlite.testing: symbols run in-process, as the runtime would run them."""

import math
import time

import pytest

from kuiperlite import (
    ArgumentError,
    Backoff,
    ConfigError,
    Context,
    Dynamic,
    Record,
    function,
    sink,
    source,
)
from kuiperlite.errors import EncodeError
from kuiperlite.serve.adapters import FunctionAdapter
from kuiperlite.testing import call_function, run_sink, run_source


@source
def ticks(ctx: Context, topic: str, *, start: int = 0, every: float = 0.001):
    i = start
    while ctx.sleep(every):
        yield Record({"i": i, "topic": topic}, meta={"rule": ctx.rule_id})
        i += 1


@source
def three(ctx):
    yield [{"n": 1}, {"n": 2}]
    ctx.emit_error("sensor 3 is offline")
    yield {"n": 3}


def test_run_source_collects_and_stops():
    assert run_source(ticks, 3, config={"start": "5"}, datasource="t") == [
        {"i": 5, "topic": "t"}, {"i": 6, "topic": "t"}, {"i": 7, "topic": "t"}]
    first = run_source(ticks, meta=True, rule_id="r9")[0]
    assert first == Record({"i": 0, "topic": ""}, {"rule": "r9"})


def test_run_source_until_it_returns_keeps_reported_errors():
    records = run_source(three, None)
    assert records == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert records.errors == ["sensor 3 is offline"]


def test_run_source_raises_what_the_source_raised_without_waiting_for_a_restart():
    @source
    def broken(ctx):
        yield {"a": 1}
        raise ValueError("no device")

    started = time.monotonic()
    with pytest.raises(ValueError, match="no device"):
        run_source(broken, 2)
    assert time.monotonic() - started < 0.9  # the source's backoff is 1 s: no restart


@source(retry=Backoff(first=0.01, most=1))
def gateway(ctx):
    runs = ctx.state.incr("runs")
    if runs <= 2:
        raise OSError(f"gateway down ({runs})")
    yield {"runs": runs}


def test_run_source_starts_a_failing_source_again_when_the_test_allows_restarts():
    records = run_source(gateway, restarts=2)
    assert records == [{"runs": 3}]
    assert records.errors == [
        "The source 'gateway' failed: OSError: gateway down (1); it starts again in 0.01 s",
        "The source 'gateway' failed: OSError: gateway down (2); it starts again in 0.02 s"]
    with pytest.raises(OSError, match=r"gateway down \(2\)"):
        run_source(gateway, restarts=1)  # the second failure is the last: no restart left
    with pytest.raises(ValueError, match="-1"):
        run_source(gateway, restarts=-1)


def test_run_source_raises_for_unencodable_records_and_config_errors():
    @source
    def nan(ctx):
        yield {"x": math.nan}

    with pytest.raises(EncodeError, match="not finite at x"):
        run_source(nan, None)
    with pytest.raises(ConfigError, match="'start'"):
        run_source(ticks, config={"start": "first"})


def test_run_source_times_out_with_a_count():
    @source
    def slow(ctx):
        while ctx.sleep(0.05):
            pass
        yield {}

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        run_source(slow, 1, timeout=0.2)
    assert time.monotonic() - started < 5


def test_run_sink_acks_and_runs_teardown():
    events = []

    @sink
    def store(ctx, *, fail_on: str = ""):
        events.append("open")
        try:
            while True:
                data = yield
                if data == fail_on.encode():
                    raise OSError("disk full")
                events.append(data)
        finally:
            events.append("close")

    acks = run_sink(store, [{"a": 1}, [{"b": 2}], b"raw", {"c": 3}], config={"fail_on": "raw"})
    assert acks == [None, None, "OSError: disk full", None]
    assert events == ["open", {"a": 1}, [{"b": 2}], "close", "open", {"c": 3}, "close"]


def test_run_sink_renders_dynamic_config_per_record():
    got = []

    @sink
    def publish(data, *, topic: Dynamic[str], qos: Dynamic[int] = 0):
        got.append((topic, qos))

    acks = run_sink(publish, [{"id": 1, "q": 1.0}, [{"id": 2}, {"id": 3}], {"id": 4, "q": "x"}],
                    config={"topic": "t/{{.id}}", "qos": "{{.q}}"})
    assert acks[0] is None and "'<no value>'" in acks[1] and "'x'" in acks[2]
    assert got == [("t/1", 1)]
    with pytest.raises(ConfigError, match=r"'\{\{\.\}\}'"):
        run_sink(publish, [], config={"topic": "{{.}}"})


def test_call_function_validates_and_round_trips_json():
    @function
    def half(x: float) -> float:
        return x / 2

    @function(aggregate=True)
    def total(values: list[int]) -> int:
        return sum(values)

    @function
    def who(ctx: Context, _x):
        return [ctx.rule_id, ctx.func_id]

    assert call_function(half, 3) == 1.5
    assert call_function(total, [1, 2, 3.0]) == 6
    assert call_function(who, 1, rule_id="r2", func_id=4) == ["r2", 4]
    with pytest.raises(ArgumentError, match=r"half\(\) takes exactly 1 argument \(x\) but got 2"):
        call_function(half, 1, 2)
    with pytest.raises(ArgumentError, match="must be a number, got the string 'x'"):
        call_function(half, "x")


def test_call_function_validates_the_literals_a_rule_would_pass(monkeypatch):
    @function
    def keys(d: dict) -> list:
        return sorted(d)

    assert call_function(keys, {"Val": "x"}) == ["Val"]  # an object comes in a column
    monkeypatch.setattr(FunctionAdapter, "call", lambda *_: pytest.fail("Exec ran"))
    with pytest.raises(ArgumentError, match=r"^Argument 1 \(d\) of keys\(\) must be an object, "
                                            r"got the string 'x'\.$"):
        call_function(keys, "x")  # the literal 'x', refused when the rule is created


def test_call_function_raises_the_functions_error_and_encoding_errors():
    @function
    def boom(x):
        raise KeyError(x)

    @function
    def a_set(x):
        return {x}

    with pytest.raises(KeyError):
        call_function(boom, "k")
    with pytest.raises(EncodeError, match="cannot be encoded as JSON"):
        call_function(a_set, 1)
