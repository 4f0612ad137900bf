"""The source adapter: one running source's user code, driven to deliver its records."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from ..declare.context import Context, Record
from ..declare.hints import describe_value, is_record
from ..declare.params import ASYNC, ASYNC_GENERATOR, GENERATOR, PLAIN
from ..declare.state import State
from ..declare.symbols import SourceSpec
from ..errors import ConfigError, EncodeError, Stopped, error_text
from ..protocol import wire
from .usercode import Loop, arguments

Deliver = Callable[[Any, Any], None]


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
                 config: Optional[dict[str, Any]] = None, state: Optional[State] = None,
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
        self._loop = Loop()
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
        return arguments(spec.context_index, self.ctx, spec.datasource_index,
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
        message = wire.source_failure(self.spec.described, error_text(err), self.again)
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
        message = f"The {self.spec.described} dropped a record: {err}"
        self.ctx.logger.error("%s", message)
        self._report(message)

    def _report(self, message: str) -> None:
        if self.report is not None:
            self.report(message)

