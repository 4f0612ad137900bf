"""What user code receives: the :class:`Context` of a running symbol and :class:`Record`."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from ..errors import Stopped
from .kinds import FUNCTION, SOURCE, Kind

if TYPE_CHECKING:
    from .state import State

    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # not subscriptable at run time before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter

Emit = Callable[[Any, Any], None]


class Record(NamedTuple):
    """A source record with eKuiper meta: ``yield Record(data, meta={...})``.

    Attributes:
        data: the record, a JSON object (a dict or a dataclass).
        meta: metadata eKuiper attaches to the record (its ``meta()`` in SQL).
    """

    data: Any
    meta: Optional[dict[str, Any]] = None


class _SymbolLogger(_LoggerAdapter):
    """Prefixes every line with the symbol and the rule it runs for."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['prefix']}] {msg}", kwargs  # type: ignore[index]


class Context:
    """The running instance a symbol's code belongs to.

    Sources and sinks get one per rule instance; functions get one per
    calling function instance (rule, op, instance and func id).
    """

    __slots__ = ("symbol", "kind", "rule_id", "op_id", "instance_id", "func_id",
                 "datasource", "config", "logger", "_stopping", "_emit", "_emit_error",
                 "_state")

    def __init__(self, symbol: str, kind: Kind = SOURCE, *, rule_id: str = "",
                 op_id: str = "", instance_id: int = 0, func_id: Optional[int] = None,
                 datasource: str = "", config: Optional[dict[str, Any]] = None,
                 stopping: Optional[threading.Event] = None, emit: Optional[Emit] = None,
                 emit_error: Optional[Callable[[str], None]] = None,
                 state: Optional[State] = None) -> None:
        self.symbol = symbol
        self.kind = kind
        self.rule_id = rule_id
        self.op_id = op_id
        self.instance_id = instance_id
        self.func_id = func_id
        self.datasource = datasource
        self.config: dict[str, Any] = dict(config or {})
        self._stopping = stopping if stopping is not None else threading.Event()
        self._emit = emit
        self._emit_error = emit_error
        self._state = state
        prefix = symbol
        if rule_id:
            prefix += f" {rule_id}/{op_id}/{instance_id}"
            if func_id is not None:
                prefix += f"#{func_id}"
        self.logger: logging.LoggerAdapter[logging.Logger] = _SymbolLogger(
            logging.getLogger(f"kuiperlite.{kind.word}.{symbol}"), {"prefix": prefix})

    def __repr__(self) -> str:
        rule = f" rule={self.rule_id!r} op={self.op_id!r} instance={self.instance_id}"
        return f"<Context {self.kind.word} {self.symbol!r}{rule if self.rule_id else ''}>"

    @property
    def state(self) -> State:
        """This instance's :class:`~kuiperlite.State`, kept across restarts.

        A source's or sink's belongs to its rule instance, a function's to its
        call site in the rule. A Context made by hand keeps it in memory.
        """
        if self._state is None:
            from .state import Kept, MemoryStore, Scope, State

            scope = Scope.of_call(self.symbol, self.rule_id, self.func_id or 0) \
                if self.kind is FUNCTION else Scope.of_instance(
                    self.kind, self.symbol, self.rule_id, self.op_id, self.instance_id)
            self._state = State(Kept(MemoryStore()), scope)
        return self._state

    @property
    def stopping(self) -> bool:
        """True once the rule asked this instance to stop."""
        return self._stopping.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait, waking at once when the instance stops.

        Returns:
            True after a full sleep, False once the instance is stopping, so
            ``while ctx.sleep(interval):`` loops until the rule stops.
        """
        return not self._stopping.wait(seconds)

    async def asleep(self, seconds: float) -> bool:
        """The ``await``-able :meth:`sleep` for async symbols.

        A stop cancels the running task, so the wait ends at once.
        """
        import asyncio  # only async symbols pay for it

        if self._stopping.is_set():
            return False
        await asyncio.sleep(seconds)
        return not self._stopping.is_set()

    def emit(self, data: Any, meta: Optional[dict[str, Any]] = None) -> None:
        """Send a record (a dict), several (a list), or a :class:`Record` to eKuiper.

        Blocks while eKuiper is not reading (back-pressure).

        Raises:
            Stopped: the instance is stopping; let it propagate.
        """
        if self._stopping.is_set():
            raise Stopped()
        if self._emit is None:
            raise RuntimeError(
                f"Only a source can emit; {self.kind.described(self.symbol)} cannot.")
        self._emit(data, meta)

    def emit_error(self, message: str) -> None:
        """Report an error on the source channel (and in the log)."""
        if self._emit_error is None:
            raise RuntimeError(
                f"Only a source can emit; {self.kind.described(self.symbol)} cannot.")
        self._emit_error(str(message))
