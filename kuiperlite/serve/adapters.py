"""Symbol adapters: user functions driven as eKuiper sources, sinks and functions.

Adapters know how to call user code (plain, generator, async or async
generator) and what its results mean, but nothing about sockets: the runtime
hands them bytes and a ``deliver`` callable, and the test helpers hand them
lists. One adapter serves one running instance (or, for a function, every
rule that calls it).

User code may raise anything, ``SystemExit``, ``KeyboardInterrupt`` and
``GeneratorExit`` included: each is answered like any exception (an error
reply, an error ack, a reported source error), so that no user code ends a
channel. Only :class:`Stopped`, kuiperlite's own stop signal, ends one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

import orjson

from ..declare.context import Context, Record
from ..declare.dynamic import RenderError, Template, render
from ..declare.hints import (
    ANY,
    Converter,
    Hint,
    Mismatch,
    describe_value,
    holds_records,
    is_record,
    unwrap_optional,
)
from ..declare.hints import read as read_hint
from ..declare.kinds import FUNCTION
from ..declare.params import ASYNC, ASYNC_GENERATOR, GENERATOR, PLAIN, Param
from ..declare.state import Scope, State
from ..declare.symbols import FunctionSpec, SinkSpec, SourceSpec
from ..errors import ArgumentError, ConfigError, EncodeError, ProtocolError, Stopped, error_text
from ..protocol import wire
from .stores import Stores

log = logging.getLogger("kuiperlite")

Deliver = Callable[[Any, Any], None]


class _Loop:
    """A private event loop for one adapter's async user code.

    asyncio is imported on the first coroutine: plugins without async
    symbols never load it (it is the largest import a plugin would have).
    """

    def __init__(self) -> None:
        self.loop: Any = None
        self.task: Any = None
        self._lock = threading.Lock()
        self._cancelled = False

    def run(self, coro: Any, *, final: bool = False) -> Any:
        """Run a coroutine to its end; ``final`` runs it even after a cancel (teardown)."""
        import asyncio

        with self._lock:
            if self.loop is None:
                self.loop = asyncio.new_event_loop()
            if self._cancelled and not final:
                coro.close()
                raise Stopped()
            self.task = self.loop.create_task(coro)
        try:
            return self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            raise Stopped() from None
        finally:
            self.task = None

    def cancel(self) -> None:
        """Cancel the running coroutine from any thread (used by stop)."""
        with self._lock:
            self._cancelled = True
            if self.loop is not None and self.task is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)

    def close(self) -> None:
        if self.loop is not None and not self.loop.is_running():
            self.loop.close()


def _decoder(data: Hint) -> Callable[[bytes], Any]:
    """How a sink's payload reaches user code: decoded JSON (bytes when it is not
    JSON), text, or the bytes themselves; built into records for a record hint
    (raising :class:`Mismatch` for a payload that does not fit)."""
    mode = data.data
    if mode == "bytes":
        return lambda payload: payload
    if mode == "text":
        return lambda payload: payload.decode("utf-8", "replace")
    loads, not_json = orjson.loads, orjson.JSONDecodeError

    def json_or_bytes(payload: bytes) -> Any:
        try:
            return loads(payload)
        except not_json:
            return payload

    build = data.convert if holds_records(data.hint) else None
    if build is None:
        return json_or_bytes
    return lambda payload: build(json_or_bytes(payload))


def _arguments(context_index: Optional[int], ctx: Context, value_index: Optional[int],
               value: Any) -> list[Any]:
    """A source's or sink's positional arguments: the Context and the one other value."""
    args: list[Any] = [None] * ((context_index is not None) + (value_index is not None))
    if context_index is not None:
        args[context_index] = ctx
    if value_index is not None:
        args[value_index] = value
    return args


class SourceAdapter:
    """Runs one source instance and hands each record to ``deliver(data, meta)``.

    ``deliver`` may raise :class:`EncodeError` (the record is reported and the
    source goes on) or :class:`Stopped` (the source ends, its ``finally``
    blocks run).

    A source that raises is reported; with its spec's ``retry`` backoff, it
    is called again after ``again`` seconds, with the same context and
    state, at most ``restarts`` times (None: until it is stopped). One that
    raises :class:`~kuiperlite.errors.ConfigError` is not: its config will
    not get better.
    """

    def __init__(self, spec: SourceSpec, kwargs: dict[str, Any], deliver: Deliver,
                 report: Optional[Callable[[str], None]] = None, *, rule_id: str = "",
                 op_id: str = "", instance_id: int = 0, datasource: str = "",
                 config: Optional[dict] = None, state: Optional[State] = None,
                 restarts: Optional[int] = None) -> None:
        self.spec = spec
        self.kwargs = kwargs
        self.deliver = deliver
        self.report = report
        self.restarts = restarts
        self.stopping = threading.Event()
        self.ctx = Context(spec.name, spec.kind, rule_id=rule_id, op_id=op_id,
                           instance_id=instance_id, datasource=datasource, config=config,
                           stopping=self.stopping, emit=self._emit_or_drop,
                           emit_error=self.emit_error,
                           state=state)
        self.error: Optional[BaseException] = None  # what the user code raised, if anything
        # After a failure: seconds until the user code is called again (None: never).
        self.again: Optional[float] = None
        self._failures = 0  # failures in a row, for the backoff
        self._began = 0.0  # when the user function was last called
        self._loop = _Loop()
        self._gen: Any = None  # a generator source's generator, once pull() has called it
        self._ended = False

    def run(self) -> None:
        """Run the user code until it returns, fails for good or is stopped.

        Errors are logged with their traceback and reported on the channel;
        they never propagate. Between a failure and the next call it waits
        on the stop event, so a stop ends the wait at once.
        """
        try:
            while True:
                self._run_once()
                if self.again is None or self.stopping.wait(self.again):
                    return
        finally:
            self._loop.close()

    def _run_once(self) -> None:
        """Call the user function and drive it to its end."""
        spec = self.spec
        if spec.style == GENERATOR:
            while self.pull(1024):
                pass
            return
        args = self._begin()
        try:
            if spec.style == PLAIN:
                self._returned(spec.func(*args, **self.kwargs))
            elif spec.style == ASYNC_GENERATOR:
                self._loop.run(self._adrive(spec.func(*args, **self.kwargs)))
            else:
                self._returned(self._loop.run(spec.func(*args, **self.kwargs)))
        except Stopped:
            pass
        except BaseException as err:
            self._failed(err)

    def _begin(self) -> list[Any]:
        """A new call of the user function: its arguments; the last failure is over."""
        self.again = None
        self.error = None
        self._began = time.monotonic()
        spec = self.spec
        return _arguments(spec.context_index, self.ctx, spec.datasource_index,
                          self.ctx.datasource)

    def pull(self, limit: int) -> bool:
        """Drive a generator source for up to ``limit`` of its records.

        The first call calls the user function, and so does the first after
        a failure that ``again`` says it starts again from (the caller waits
        those seconds first). Encoding errors are reported and the generator
        goes on; other errors are reported and end it.

        Returns:
            False once the generator has ended (returned, failed or stopped),
            closed so that its ``finally`` blocks have run.
        """
        gen = self._gen
        if gen is None:
            if self._ended:
                return False
            args = self._begin()
            try:
                gen = self._gen = self.spec.func(*args, **self.kwargs)
            except BaseException as err:
                self._failed(err)
                return self._end()
        stop, deliver, emit = self.stopping, self.deliver, self.emit
        try:
            for _ in range(limit):
                # An encoding error happens out here, not inside the generator,
                # so the same generator simply goes on.
                try:
                    # Resumed, the generator runs what follows its last yield (a
                    # state write, say) even when a stop came meanwhile.
                    item = next(gen)
                    if stop.is_set():
                        return self._end()
                    if type(item) is dict:
                        deliver(item, None)
                    else:
                        emit(item)
                except EncodeError as err:
                    self._dropped(err)
            return True
        except (StopIteration, Stopped):
            return self._end()
        except BaseException as err:
            self._failed(err)
            return self._end()

    def end(self) -> None:
        """End a generator source that :meth:`pull` drove, for good: its ``finally``
        blocks run, and it is not called again."""
        self._close()
        self._ended = True

    def _end(self) -> bool:
        """Close the generator (its ``finally`` blocks run); it ends for good unless
        ``again`` says when it starts again. False, for :meth:`pull`."""
        self._close()
        self._ended = self.again is None
        return False

    def _close(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except BaseException as err:
                self._failed(err)

    def _failed(self, err: BaseException) -> None:
        """Log what the user code raised, with its traceback, and report it, saying
        when it starts again."""
        self.error = err
        # A ConfigError says the config is wrong: starting again would not mend it.
        self.again = None if isinstance(err, ConfigError) else self._next_start()
        message = wire.source_failure(self.spec.what, error_text(err), self.again)
        self.ctx.logger.error("%s", message, exc_info=err)
        self._report(message)

    def _next_start(self) -> Optional[float]:
        """Seconds until a source that just failed is called again; None: never."""
        backoff = self.spec.retry
        if backoff is None or self.stopping.is_set() or self.restarts == 0:
            return None
        if self.restarts is not None:
            self.restarts -= 1
        if time.monotonic() - self._began >= backoff.most:  # a healthy run
            self._failures = 0
        self._failures += 1
        return backoff.delay(self._failures)

    def _returned(self, value: Any) -> None:
        if value is not None:
            self.ctx.logger.warning(
                "returned %s, which is dropped: a source sends records by yielding them or "
                "with ctx.emit", describe_value(value))

    def stop(self) -> None:
        """Ask the user code to end: ``ctx.sleep`` returns False, ``emit`` raises."""
        self.stopping.set()
        if self.spec.style in (ASYNC, ASYNC_GENERATOR):
            self._loop.cancel()

    async def _adrive(self, agen: Any) -> None:
        stop = self.stopping
        try:
            while True:
                try:
                    async for item in agen:
                        if stop.is_set():
                            return
                        self.emit(item)
                    return
                except EncodeError as err:
                    self._dropped(err)
        finally:
            await agen.aclose()

    def emit(self, item: Any, meta: Any = None) -> None:
        """Deliver what user code produced: a dict, an attrs or dataclass instance, a
        list of those, or a Record.

        Each element of a list is a record of its own: one that cannot be sent
        is reported and dropped, and the others are sent.

        Raises:
            EncodeError: ``item``, not a list, cannot be sent.
        """
        if type(item) is dict:
            self.deliver(item, meta)
        elif isinstance(item, Record):
            self.deliver(item.data, item.meta if meta is None else meta)
        elif isinstance(item, (list, tuple)):
            for element in item:
                try:
                    if isinstance(element, (list, tuple)) and not isinstance(element, Record):
                        raise EncodeError("A list of records holds a list; expected objects.")
                    self.emit(element, meta)
                except EncodeError as err:
                    self._dropped(err)
        elif item is None:
            return
        elif isinstance(item, dict) or is_record(type(item)):
            self.deliver(item, meta)
        else:
            raise EncodeError(
                "A record must be a dict, an attrs or dataclass instance, a list of those or a "
                f"Record, got {describe_value(item)}.")

    def _emit_or_drop(self, item: Any, meta: Any = None) -> None:
        """``ctx.emit``: a record that cannot be sent is reported and dropped, as a
        yielded one is, and the source goes on."""
        try:
            self.emit(item, meta)
        except EncodeError as err:
            self._dropped(err)

    def emit_error(self, message: str) -> None:
        """``ctx.emit_error``: log the message and report it on the channel."""
        self.ctx.logger.error("%s", message)
        self._report(message)

    def _dropped(self, err: EncodeError) -> None:
        message = f"The {self.spec.what} dropped a record: {err}"
        self.ctx.logger.error("%s", message)
        self._report(message)

    def _report(self, message: str) -> None:
        if self.report is not None:
            self.report(message)


class SinkAdapter:
    """Calls one sink instance's user code once per message."""

    def __init__(self, spec: SinkSpec, kwargs: dict[str, Any], *, rule_id: str = "",
                 op_id: str = "", instance_id: int = 0, config: Optional[dict] = None,
                 state: Optional[State] = None) -> None:
        self.spec = spec
        self.kwargs = kwargs
        self.stopping = threading.Event()
        self.ctx = Context(spec.name, spec.kind, rule_id=rule_id, op_id=op_id,
                           instance_id=instance_id, config=config, stopping=self.stopping,
                           state=state)
        self._loop = _Loop()
        self._gen: Any = None
        self._open_error: Optional[str] = None
        self.decode = _decoder(spec.data)
        # Hand one message to the user code: None on success, else the error to ack with.
        self.collect: Callable[[bytes], Optional[str]] = self._collector()

    def open(self) -> Optional[str]:
        """Run a generator sink's setup (up to its first ``yield``).

        Returns:
            None when ready, else the error text every message will be acked with.
        """
        spec = self.spec
        if spec.style not in (GENERATOR, ASYNC_GENERATOR) or self._gen is not None:
            return None
        args = _arguments(spec.context_index, self.ctx, None, None)
        try:
            gen = spec.func(*args, **self.kwargs)
            if spec.style == GENERATOR:
                next(gen)
            else:
                self._loop.run(gen.__anext__())
        except (StopIteration, StopAsyncIteration):
            error = (f"The {spec.what} returned before its first yield; a generator "
                     "sink must receive data with `data = yield`.")
            return self._failed_open(error)
        except Stopped:
            return "The sink is stopping."
        except BaseException as err:
            self.ctx.logger.exception("setup failed")
            return self._failed_open(f"The {spec.what} failed to open: {error_text(err)}")
        self._gen = gen
        self._open_error = None
        return None

    def _failed_open(self, error: str) -> str:
        if error != self._open_error:
            self.ctx.logger.error("%s", error)
        self._open_error = error
        return error

    def _collector(self) -> Callable[[bytes], Optional[str]]:
        """The per-message call, specialised once for this sink's style and data."""
        spec, decode, func, kwargs = self.spec, self.decode, self.spec.func, self.kwargs
        if spec.style in (PLAIN, ASYNC):
            before = tuple(_arguments(spec.context_index, self.ctx, spec.data_index, None))
            index = spec.data_index
            assert index is not None  # a plain sink always has its data parameter
            # Dynamic config renders against the record's JSON, also when the sink takes
            # the payload raw or built into a record.
            templates = [value for value in kwargs.values() if isinstance(value, Template)]
            as_json = None if spec.data.data == "json" and not holds_records(spec.data.hint) \
                else _decoder(ANY)
            what = spec.what

            def call(payload: bytes) -> Optional[str]:
                args = list(before)
                try:
                    data = args[index] = decode(payload)
                except Mismatch as err:
                    return self._refused(err)
                kw = kwargs
                if templates:
                    try:
                        kw = {**kwargs, **render(templates, data if as_json is None
                                                 else as_json(payload), what)}
                    except RenderError as err:
                        self.ctx.logger.error("%s", err)
                        return str(err)
                try:
                    if spec.style == ASYNC:
                        self._loop.run(func(*args, **kw))
                    else:
                        func(*args, **kw)
                except Stopped:
                    return "The sink is stopping."
                except BaseException as err:
                    self.ctx.logger.exception("failed to collect a message")
                    return error_text(err)
                return None

            return call

        asynchronous = spec.style == ASYNC_GENERATOR

        def send(payload: bytes) -> Optional[str]:
            gen = self._gen
            if gen is None:
                error = self.open()
                if error is not None:
                    return error
                gen = self._gen
            try:
                value = decode(payload)
            except Mismatch as err:
                return self._refused(err)
            try:
                if asynchronous:
                    self._loop.run(gen.asend(value))
                else:
                    gen.send(value)
            except (StopIteration, StopAsyncIteration):
                self._gen = None  # it returned after taking this message; the next reopens it
            except Stopped:
                return "The sink is stopping."
            except BaseException as err:
                self._gen = None
                self.ctx.logger.exception("failed to collect a message; it opens again on the next")
                return error_text(err)
            return None

        return send

    def _refused(self, err: Mismatch) -> str:
        """A payload that does not fit the data's record hint: its ack, and a log line."""
        text = f"The payload {err}."
        self.ctx.logger.warning("%s", text)
        return text

    def stop(self) -> None:
        """Signal a stop from any thread; :meth:`close` then runs the teardown."""
        self.stopping.set()
        if self.spec.style in (ASYNC, ASYNC_GENERATOR):
            self._loop.cancel()

    def close(self) -> None:
        """Close a generator sink, so that its ``finally`` (teardown) runs."""
        gen, self._gen = self._gen, None
        try:
            if gen is not None and self.spec.style == GENERATOR:
                gen.close()
            elif gen is not None:
                self._loop.run(gen.aclose(), final=True)
        except BaseException:
            self.ctx.logger.exception("teardown failed")
        finally:
            self._loop.close()


# The SQL literals a parameter takes at Validate, by the looser type of its hint, as
# eKuiper's own functions take them (its ValidateOneStrArg, ValidateOneNumberArg,
# ValidateTwoIntArg, had_changed): a string parameter no number, time unit or
# boolean; a number parameter no string, time unit or boolean, but an integer; an
# integer parameter no number with a fraction either; a boolean parameter only true
# or false. Others take any literal their converter takes. Time units and whole
# numbers reach Validate as integers, which is what these rules see of them.
LITERALS = {"string": {"string"}, "int": {"integer"}, "float": {"integer", "number"},
            "bool": {"boolean"}}

# ast.Token of the operations that are true or false (eKuiper's ast.IsBooleanArg):
# AND, OR, the comparisons, IN, NOT IN, BETWEEN, NOT BETWEEN, LIKE, NOT LIKE.
CONDITIONS = frozenset({20, 21, 22, 23, 24, 25, 26, 27, 30, 32, 33, 34, 35, 36})


def is_condition(expr: Any) -> bool:
    """Whether a Validate argument is an operation that is true or false (in
    parentheses too), such as ``x > 1``."""
    while type(expr) is dict and len(expr) == 1 and "Expr" in expr:
        expr = expr["Expr"]
    return type(expr) is dict and expr.keys() == {"OP", "LHS", "RHS"} and \
        expr["OP"] in CONDITIONS


def _literal_kind(value: Any) -> str:
    """The kind of SQL literal a value Validate receives was: a whole number is an integer."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "integer" if isinstance(value, int) else "number"


class FunctionAdapter:
    """Answers eKuiper's Validate, Exec and IsAggregate requests for one function."""

    MAX_CONTEXTS = 4096

    def __init__(self, spec: FunctionSpec, stores: Optional[Stores] = None) -> None:
        self.spec = spec
        self.stores = stores
        self._contexts: dict[str, Context] = {}
        self._loop = _Loop()
        self._least, self._most = spec.arg_range
        params = [*spec.params, *([spec.varargs] if spec.varargs else [])]
        # Per position: the converter, and the type a value already has when it
        # needs none (a str for a str hint), so the converter is called only
        # for values that differ.
        self._slots = [(p.type.convert, p.type.exact, p) for p in params]
        self._convert_any = any(p.type.convert is not None for p in params)
        self.log = Context(spec.name, FUNCTION).logger

    def handle(self, raw: bytes) -> bytes:
        """One request in, one reply out; never raises."""
        try:
            name, args = wire.decode_function_call(raw)
        except ProtocolError as err:
            return wire.encode_reply(False, str(err))
        if name == "Exec":
            if not args or type(args[-1]) is not str:
                return wire.encode_reply(False, "Exec needs the function meta as its last "
                                         "argument, a JSON string, got "
                                         f"{describe_value(args[-1]) if args else 'nothing'}.")
            meta = args.pop()  # the list was just decoded: it is ours to change
            try:
                return wire.encode_reply(True, self.call(args, meta))
            except (ArgumentError, ProtocolError) as err:
                return wire.encode_reply(False, str(err))
            except Stopped:
                return wire.encode_reply(False, f"The {self.spec.what} is shutting down.")
            except BaseException as err:
                self._logger(meta).exception("failed")
                return wire.encode_reply(False, f"{self.spec.name}() raised {error_text(err)}")
        if name == "Validate":
            error = self.validate(args)
            return wire.encode_reply(error is None, error or "")
        if name == "IsAggregate":
            return wire.encode_reply(True, self.spec.aggregate)
        return wire.encode_reply(
            False, f"Unknown function request {name!r}; expected Validate, Exec or IsAggregate.")

    def validate(self, args: list) -> Optional[str]:
        """Validate's answer for these SQL argument expressions: None, or why not.

        It refuses a wrong count; a literal, or a condition, that a parameter
        of its type does not take by eKuiper's rules for its own functions
        (:data:`LITERALS`: ``revert(123)`` for a string, ``celsius('70')``
        for a number); and a literal its converter refuses (``'c'`` for
        ``Literal['C', 'F']``, ``3`` for a list), in the sentence Exec gives.
        It accepts whatever only the running rule knows, whose values Exec
        converts (:func:`kuiperlite.protocol.wire.literal_values` reads the literals).
        """
        error = self._count_error(len(args))
        if error is not None:
            return error
        for i, arg in enumerate(args):
            error = self._literal_error(i, arg)
            if error is not None:
                return error
        return None

    def _literal_error(self, i: int, arg: Any) -> Optional[str]:
        """Why argument ``i`` is refused, when it is a literal or a condition."""
        convert, _exact, param = self._slot(i)
        values = wire.literal_values(arg)
        condition = not values and is_condition(arg)
        if not values and not condition:
            return None
        # An aggregate receives the literal once per row of its window: its items.
        aggregate = self.spec.aggregate
        rule = (param.type.item if aggregate else param.type) or ANY
        kinds = LITERALS.get(rule.value_type)
        if condition:
            if kinds is None or "boolean" in kinds:
                return None
            got = "a condition, which is true or false"
        else:
            value = values[0]
            if convert is not None:
                try:
                    convert([value] if aggregate else value)
                except Mismatch as err:
                    return self._mismatch(i, param, err)
            if kinds is None or _literal_kind(value) in kinds:
                return None
            got = describe_value(value)
        expected = read_hint(unwrap_optional(rule.hint)).phrase  # a literal is never null
        if aggregate:
            got = f"a list (item 0 must be {expected}, got {got})"
            expected = param.type.phrase
        return f"Argument {i + 1} ({param.name}) of {self.spec.name}() must be {expected}, " \
               f"got {got}."

    def _count_error(self, count: int) -> Optional[str]:
        """The error text for a wrong argument count, else None."""
        if self._least <= count and (self._most is None or count <= self._most):
            return None
        names = [p.name for p in self.spec.params]
        if self.spec.varargs is not None:
            names.append("*" + self.spec.varargs.name)
            expected = f"at least {self._least}"
        elif self._least == self._most:
            expected = f"exactly {self._least}"
        else:
            expected = f"{self._least} to {self._most}"
        noun = "argument" if expected.endswith(" 1") else "arguments"
        listed = f" ({', '.join(names)})" if names else ""
        return f"{self.spec.name}() takes {expected} {noun}{listed} but got {count}."

    def call(self, values: list, meta: Any = None) -> Any:
        """Run the function on SQL values as Exec does.

        Args:
            values: the SQL arguments, decoded from JSON.
            meta: the FuncMeta JSON string eKuiper appends (or a Context).

        Raises:
            ArgumentError: the values do not fit the parameters.
        """
        error = self._count_error(len(values))
        if error is not None:
            raise ArgumentError(error)
        if self._convert_any:
            values = self._convert(values)
        spec = self.spec
        if spec.context_index is not None:
            values = list(values)
            values.insert(spec.context_index, self.context(meta))
        if spec.style == ASYNC:
            return self._loop.run(spec.func(*values))
        return spec.func(*values)

    def _convert(self, values: list) -> list:
        out = list(values)
        for i, value in enumerate(out):
            convert, exact, param = self._slot(i)
            if convert is None or type(value) is exact:
                continue
            try:
                out[i] = convert(value)
            except Mismatch as err:
                raise ArgumentError(self._mismatch(i, param, err)) from None
        return out

    def _slot(self, i: int) -> tuple[Optional[Converter], Optional[type], Param]:
        """The converter, exact type and parameter of SQL argument ``i`` (varargs last)."""
        slots = self._slots
        return slots[min(i, len(slots) - 1)]

    def _mismatch(self, i: int, param: Param, err: Mismatch) -> str:
        """The one sentence Validate and Exec give for an argument that does not convert."""
        return f"Argument {i + 1} ({param.name}) of {self.spec.name}() {err}."

    def context(self, meta: Any) -> Context:
        """The context of the calling function instance, one per FuncMeta."""
        if isinstance(meta, Context):
            return meta
        ctx = self._contexts.get(meta)
        if ctx is None:
            fm = wire.decode_func_meta(meta)
            state = None if self.stores is None else State(
                self.stores, Scope.of_call(self.spec.name, fm.rule_id, fm.func_id))
            ctx = Context(self.spec.name, FUNCTION, rule_id=fm.rule_id, op_id=fm.op_id,
                          instance_id=fm.instance_id, func_id=fm.func_id, state=state)
            if len(self._contexts) >= self.MAX_CONTEXTS:
                self._contexts.clear()
            self._contexts[meta] = ctx
        return ctx

    def _logger(self, meta: Any) -> logging.LoggerAdapter:
        """The calling rule's logger, so that the line names the rule."""
        try:
            return self.context(meta).logger
        except ProtocolError:
            return self.log

    def close(self) -> None:
        self._loop.cancel()
        self._loop.close()
