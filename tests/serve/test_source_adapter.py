"""A source's user code of every style, driven to deliver its records."""

import asyncio
import math
import threading
import time

import pytest

from kuiperlite import Backoff, ConfigError, Context, Record, source, testing
from kuiperlite.declare.symbols import AnySpec, marks_of, read
from kuiperlite.protocol import wire
from kuiperlite.serve.source_adapter import SourceAdapter

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


def test_a_plain_source_that_returns_a_value_says_it_is_dropped(caplog):
    @source
    def s(ctx):
        return {"a": 1}  # meant: yield, or ctx.emit

    with caplog.at_level("WARNING"):
        out, _ = run_source(s)
    assert out.records == []
    assert "returned an object, which is dropped: a source sends records by yielding them " \
           "or with ctx.emit" in caplog.text
