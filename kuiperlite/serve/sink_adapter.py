"""The sink adapter: one running sink's user code, handed each message."""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import orjson

from ..declare.context import Context
from ..declare.dynamic import RenderError, Template, render
from ..declare.hints import ANY, Hint, Mismatch, holds_records, name_of
from ..declare.params import ASYNC, ASYNC_GENERATOR, GENERATOR, PLAIN
from ..declare.state import State
from ..declare.symbols import SinkSpec
from ..errors import Stopped, error_text
from .usercode import Loop, arguments


class NotOne(ValueError):
    """A batch (a JSON list) for a sink whose data hint takes one record."""


def decoder(data: Hint, described: str = "") -> Callable[[bytes], Any]:
    """How a sink's payload reaches user code: decoded JSON (bytes when it is not
    JSON), text, or the bytes themselves; built into records for a record hint
    (raising :class:`Mismatch` for a payload that does not fit).

    With ``described`` (the sink, as messages name it), a batch for a hint that
    takes one object (``dict``, ``dict[str, X]``, a record class) raises
    :class:`NotOne`, saying what to do.
    """
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
    one = described if described and data.value_type == "object" else ""
    if build is None and not one:
        return json_or_bytes
    shown = name_of(data.hint)

    def decode(payload: bytes) -> Any:
        value = json_or_bytes(payload)
        if one and isinstance(value, list):
            raise NotOne(f"The {one} takes one record (its data is annotated {shown}) and "
                         f"received a list of {len(value)}; annotate the data list[{shown}] "
                         "or Any to take a batch, or set sendSingle to true in the rule's "
                         "sink properties to get each record alone.")
        return value if build is None else build(value)

    return decode


class SinkAdapter:
    """Calls one sink instance's user code once per message."""

    def __init__(self, spec: SinkSpec, kwargs: dict[str, Any], *, rule_id: str = "",
                 op_id: str = "", instance_id: int = 0, config: Optional[dict[str, Any]] = None,
                 state: Optional[State] = None) -> None:
        self.spec = spec
        self.kwargs = kwargs
        self.stopping = threading.Event()
        self.ctx = Context(spec.name, spec.kind, rule_id=rule_id, op_id=op_id,
                           instance_id=instance_id, config=config, stopping=self.stopping,
                           state=state)
        self._loop = Loop()
        self._gen: Any = None
        self._open_error: Optional[str] = None
        self.decode = decoder(spec.data, spec.described)
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
        args = arguments(spec.context_index, self.ctx, None, None)
        try:
            gen = spec.func(*args, **self.kwargs)
            if spec.style == GENERATOR:
                next(gen)
            else:
                self._loop.run(gen.__anext__())
        except (StopIteration, StopAsyncIteration):
            error = (f"The {spec.described} returned before its first yield; a generator "
                     "sink must receive data with `data = yield`.")
            return self._failed_open(error)
        except Stopped:
            return "The sink is stopping."
        except BaseException as err:
            self.ctx.logger.exception("setup failed")
            return self._failed_open(f"The {spec.described} failed to open: {error_text(err)}")
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
            before = tuple(arguments(spec.context_index, self.ctx, spec.data_index, None))
            index = spec.data_index
            assert index is not None  # a plain sink always has its data parameter
            # Dynamic config renders against the record's JSON, also when the sink takes
            # the payload raw or built into a record.
            templates = [value for value in kwargs.values() if isinstance(value, Template)]
            as_json = None if spec.data.data == "json" and not holds_records(spec.data.hint) \
                else decoder(ANY)
            described = spec.described

            def call(payload: bytes) -> Optional[str]:
                args = list(before)
                try:
                    data = args[index] = decode(payload)
                except (Mismatch, NotOne) as err:
                    return self._refused(err)
                kw = kwargs
                if templates:
                    try:
                        kw = {**kwargs, **render(templates, data if as_json is None
                                                 else as_json(payload), described)}
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
            except (Mismatch, NotOne) as err:
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

    def _refused(self, err: ValueError) -> str:
        """A payload that does not fit the data's hint: its ack, and a log line."""
        text = str(err) if isinstance(err, NotOne) else f"The payload {err}."
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

