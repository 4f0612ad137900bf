import asyncio
import logging
import threading
import time

import pytest

from kuiperlite import Context, Stopped
from kuiperlite.declare.kinds import FUNCTION, SINK


def test_sleep_is_interrupted_by_stop():
    stop = threading.Event()
    ctx = Context("s", rule_id="r", op_id="o", stopping=stop)
    assert ctx.sleep(0.01) is True
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert ctx.sleep(30) is False
    assert time.monotonic() - started < 5
    assert ctx.stopping
    assert ctx.sleep(1) is False


def test_asleep_returns_false_once_stopping():
    stop = threading.Event()
    ctx = Context("s", stopping=stop)
    assert asyncio.run(ctx.asleep(0.01)) is True
    stop.set()
    assert asyncio.run(ctx.asleep(10)) is False


def test_emit_goes_to_the_emitter_and_raises_once_stopping():
    got = []
    stop = threading.Event()
    ctx = Context("s", stopping=stop, emit=lambda data, meta: got.append((data, meta)))
    ctx.emit({"a": 1}, {"m": 1})
    assert got == [({"a": 1}, {"m": 1})]
    stop.set()
    with pytest.raises(Stopped):
        ctx.emit({"a": 2})
    assert not isinstance(Stopped(), Exception)


def test_only_sources_emit():
    with pytest.raises(RuntimeError):
        Context("k", SINK).emit({})
    with pytest.raises(RuntimeError):
        Context("k", SINK).emit_error("x")


def test_logger_prefixes_symbol_and_rule(caplog):
    ctx = Context("pyjson", rule_id="rule1", op_id="op1", instance_id=2)
    fctx = Context("revert", FUNCTION, rule_id="rule1", op_id="op1", func_id=3)
    with caplog.at_level(logging.INFO):
        ctx.logger.info("hello %s", "world")
        fctx.logger.info("called")
    assert caplog.messages == ["[pyjson rule1/op1/2] hello world", "[revert rule1/op1/0#3] called"]
    assert caplog.records[0].name == "kuiperlite.source.pyjson"


def test_config_is_a_copy_and_repr_is_readable():
    raw = {"a": 1}
    ctx = Context("s", config=raw, rule_id="r", op_id="o", datasource="t")
    ctx.config["b"] = 2
    assert raw == {"a": 1}
    assert repr(ctx) == "<Context source 's' rule='r' op='o' instance=0>"
    assert ctx.datasource == "t"
