"""Test helpers for plugin authors: run symbols inside pytest, without sockets.

``run_source``, ``run_sink`` and ``call_function`` drive a decorated
function through the same adapters the runtime uses, with the same config
conversion and the same JSON encoding eKuiper applies, but in-process. For
end-to-end tests of the whole plugin in a real process, the pytest fixture
``kuiperlite_host`` (installed with kuiperlite) launches it under the
embedded host.

A source or sink that uses connections gets them as in a plugin: from the
connections its module declares, configured by ``config``, opened for the
run and closed after it.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

import orjson

from .declare import connections
from .declare.context import Record
from .declare.kinds import FUNCTION, SINK, SOURCE, Kind
from .declare.state import Scope, State
from .declare.symbols import AnySpec, FunctionSpec, SinkSpec, SourceSpec, marks_of, read
from .dev import gowire
from .dev.gojson import go_json
from .errors import ArgumentError, EncodeError
from .protocol import wire
from .protocol.wire import FuncMeta
from .serve.adapters import FunctionAdapter, SinkAdapter, SourceAdapter
from .serve.stores import Stores, memory_stores

__all__ = ["Records", "call_function", "memory_state", "run_sink", "run_source"]


def memory_state() -> Stores:
    """A state store in memory, for ``state=``: pass one to several runs to see
    a symbol resume from what an earlier run kept (``.get().entries()`` lists it).

    Each helper call without ``state=`` gets a fresh one of its own.
    """
    return memory_stores()


class Records(list[Any]):
    """The records a source produced; ``errors`` holds what it reported with
    ``ctx.emit_error`` (or a failure eKuiper would have been told about)."""

    errors: list[str]


def _state(stores: Optional[Stores], spec: AnySpec, rule_id: str) -> State:
    return State(stores or memory_stores(),
                 Scope.of_instance(spec.kind, spec.name, rule_id, "test", 0))


def _spec(func: Callable[..., Any], kind: Kind, helper: str) -> AnySpec:
    for mark in marks_of(func):
        if mark.kind == kind:
            module = getattr(inspect.unwrap(func), "__globals__", {})
            return read(func, mark, connections.declared(module))
    name = getattr(func, "__name__", repr(func))
    raise TypeError(f"{helper}() takes a function marked @{kind.word}; {name} is not one.")


@contextlib.contextmanager
def _connected(symbol: AnySpec, kwargs: dict[str, Any], rule_id: str) -> Iterator[None]:
    """The symbol's connections, opened into ``kwargs`` for one run and closed after it."""
    registry = connections.Connections()
    lease = registry.acquire(symbol.connections, kwargs,
                             f"{symbol.described} of rule {rule_id}/test/0")
    try:
        yield
    finally:
        lease.release()
        registry.close()


def run_source(func: Callable[..., Any], count: Optional[int] = 1, *,
               config: Optional[dict[str, Any]] = None, datasource: str = "", timeout: float = 5.0,
               meta: bool = False, rule_id: str = "test",
               state: Optional[Stores] = None, restarts: int = 0) -> Records:
    """Run a source until it produced ``count`` records, then stop it.

    A source that raises is not started again unless ``restarts`` allows it:
    then it is, after the waits its ``retry`` backoff gives (within
    ``timeout``), as in a plugin, and each failure is in ``.errors``.

    Args:
        func: a function marked ``@source``.
        count: records to collect; None collects until the source returns.
        config: the rule's config, converted and checked as at a start command
            (its connections' keys too).
        datasource: the stream's datasource.
        timeout: seconds to wait for the records.
        meta: return :class:`Record` objects (data and meta) instead of the data.
        rule_id: the rule id the context reports.
        state: the store ``ctx.state`` uses (default: a fresh one in memory).
        restarts: how many times a source that raised is started again (a
            source declared ``retry=False`` never is).

    Returns:
        The records, in order (with ``.errors``).

    Raises:
        ConfigError: the config does not fit the source's parameters.
        KuiperliteError: a connection it uses failed to open.
        EncodeError: a record cannot be carried as JSON.
        TimeoutError: fewer than ``count`` records came within ``timeout``.
        ValueError: ``restarts`` is not a whole number, 0 or more.
        Exception: whatever the source raised the last time it ran, when it
            was not started again.
    """
    symbol = _spec(func, SOURCE, "run_source")
    assert isinstance(symbol, SourceSpec)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
        raise ValueError(f"restarts must be a whole number, 0 or more, got {restarts!r}.")
    kwargs = symbol.bind_config(config or {})
    with _connected(symbol, kwargs, rule_id):
        return _run_source(symbol, kwargs, count, config, datasource, timeout, meta, rule_id,
                           state, restarts)


def _run_source(symbol: SourceSpec, kwargs: dict[str, Any], count: Optional[int],
                config: Optional[dict[str, Any]], datasource: str, timeout: float, meta: bool,
                rule_id: str, state: Optional[Stores], restarts: int) -> Records:
    records = Records()
    records.errors = []
    encode_errors: list[EncodeError] = []

    def deliver(data: Any, record_meta: Any) -> None:
        try:
            wire.encode_record(data, record_meta)
        except EncodeError as err:
            encode_errors.append(err)
            raise
        records.append(Record(data, record_meta) if meta else data)
        if count is not None and len(records) >= count:
            adapter.stop()

    adapter = SourceAdapter(symbol, kwargs, deliver, records.errors.append, rule_id=rule_id,
                            op_id="test", datasource=datasource, config=config,
                            state=_state(state, symbol, rule_id), restarts=restarts)
    thread = threading.Thread(target=adapter.run, name=f"test source {symbol.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        adapter.stop()
        thread.join(timeout)
        if count is not None:
            raise TimeoutError(f"The {symbol.described} produced {len(records)} of {count} "
                               f"records in {timeout:g} s.")
    if adapter.error is not None:
        raise adapter.error
    if encode_errors:
        raise encode_errors[0]
    return records


def run_sink(func: Callable[..., Any], payloads: list[Any], *,
             config: Optional[dict[str, Any]] = None, rule_id: str = "test",
             state: Optional[Stores] = None) -> list[Optional[str]]:
    """Send payloads into a sink, as eKuiper encodes them, and return the acks.

    Setup runs first and a generator sink's teardown runs at the end.

    Args:
        func: a function marked ``@sink``.
        payloads: values (encoded as eKuiper's JSON) or bytes (sent as they are).
        config: the rule's config, converted and checked as at a start command
            (its connections' keys too).
        rule_id: the rule id the context reports.
        state: the store ``ctx.state`` uses (default: a fresh one in memory).

    Returns:
        One ack per payload: None for success, else the error text eKuiper gets.

    Raises:
        ConfigError: the config does not fit the sink's parameters.
        KuiperliteError: a connection it uses failed to open.
    """
    symbol = _spec(func, SINK, "run_sink")
    assert isinstance(symbol, SinkSpec)
    kwargs = symbol.bind_config(config or {})
    with _connected(symbol, kwargs, rule_id):
        adapter = SinkAdapter(symbol, kwargs, rule_id=rule_id, op_id="test", config=config,
                              state=_state(state, symbol, rule_id))
        adapter.open()
        collect = adapter.collect
        try:
            return [collect(gowire.encode_payload(payload)) for payload in payloads]
        finally:
            adapter.stop()
            adapter.close()


def call_function(func: Callable[..., Any], *args: Any, rule_id: str = "test",
                  func_id: int = 0, state: Optional[Stores] = None) -> Any:
    """Call a function as eKuiper does: Validate, then Exec with JSON-encoded arguments.

    Validate sees the rule ``func(...)`` would pass these values in: each
    string, number or boolean as its literal, anything else as a column
    (:func:`kuiperlite.dev.gowire.arguments`).

    Args:
        func: a function marked ``@function``.
        args: the SQL argument values (for an aggregate, one list per argument).
        rule_id: the rule id the context reports.
        func_id: the function instance id the context reports (its call site).
        state: the store ``ctx.state`` uses (default: a fresh one in memory).

    Returns:
        The result as eKuiper receives it (after the JSON round trip).

    Raises:
        ArgumentError: the argument count or types do not fit.
        EncodeError: the result cannot be carried as JSON.
        Exception: whatever the function itself raised.
    """
    symbol = _spec(func, FUNCTION, "call_function")
    assert isinstance(symbol, FunctionSpec)
    adapter = FunctionAdapter(symbol, state or memory_stores())
    request = gowire.encode_function_call(
        "Validate", gowire.arguments(list(args), aggregate=symbol.aggregate))
    error = adapter.validate(wire.decode_function_call(request)[1])
    if error is not None:
        raise ArgumentError(error)
    values = orjson.loads(go_json(list(args)))
    ctx = adapter.context(gowire.encode_func_meta(FuncMeta(rule_id, "test", 0, func_id)))
    reply = wire.encode_reply(True, adapter.call(values, ctx))
    outcome = gowire.decode_reply(reply, python_ints=True).exec
    if not outcome.ok:
        raise EncodeError(str(outcome.error))
    return outcome.result
