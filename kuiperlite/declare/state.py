"""State that survives restarts: ``ctx.state``, its scopes, and what a store does.

Every Context a symbol receives carries a :class:`State`: ``get``, ``put``,
``delete`` and ``incr`` on the keys of one *scope*. A source's or sink's scope
is its rule instance (plugin, symbol, rule, op, instance); a function's is
its call site (plugin, symbol, rule, funcId), so one function called twice
in a rule keeps two states. The same rule started again, after a stop, a
crash, a reboot or a reinstall, sees its state again.

A State asks for its :class:`Store` when it is first used, so a plugin that
keeps no state opens nothing. Which store a running plugin opens (SQLite, or
Redis) is :mod:`kuiperlite.serve.stores`'s choice; a Context made by hand keeps its
state in a :class:`MemoryStore`.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, NamedTuple, Optional, Protocol

import orjson

from ..errors import StateError
from .kinds import FUNCTION, Kind

# What JSON carries, and what a value read back is again.
_SCALARS = (str, int, bool, type(None))
_INT64 = (-(2**63), 2**63 - 1)


class Scope(NamedTuple):
    """Whose state a key belongs to, within one plugin.

    Attributes:
        kind: the symbol's kind, as the wire names it.
        symbol: the symbol's name.
        rule: the rule's id.
        op: the operator's id; empty for a function.
        instance: the instance's id; for a function, its funcId.
    """

    kind: str
    symbol: str
    rule: str
    op: str
    instance: int

    @classmethod
    def of_instance(cls, kind: Kind, symbol: str, rule: str, op: str, instance: int) -> Scope:
        """A source's or sink's scope: its rule instance."""
        return cls(kind.wire, symbol, rule, op, instance)

    @classmethod
    def of_call(cls, symbol: str, rule: str, func_id: int) -> Scope:
        """A function's scope: its call site, the rule and funcId."""
        return cls(FUNCTION.wire, symbol, rule, "", func_id)

    @property
    def described(self) -> str:
        """How messages name it: ``source 'tail' of rule r1/op1/0``."""
        if self.kind == FUNCTION.wire:
            return f"function {self.symbol!r} at call #{self.instance} of rule {self.rule}"
        return f"{self.kind} {self.symbol!r} of rule {self.rule}/{self.op}/{self.instance}"


class Store(Protocol):
    """Where a plugin's state lives: JSON text per scope and key."""

    where: str  # for messages: the file or the server

    def get(self, scope: Scope, key: str) -> Optional[str]: ...
    def put(self, scope: Scope, key: str, value: str) -> None: ...
    def delete(self, scope: Scope, key: str) -> None: ...

    def incr(self, scope: Scope, key: str, amount: int) -> int:
        """Add to an integer atomically (absent is 0). Raises StateError when it is not one."""

    def entries(self, rule: Optional[str] = None,
                symbol: Optional[str] = None) -> list[tuple[Scope, str, str]]:
        """Every (scope, key, JSON value), optionally of one rule or symbol."""

    def clear(self, rule: Optional[str] = None, symbol: Optional[str] = None) -> int:
        """Delete every key, optionally of one rule or symbol; how many went."""

    def close(self) -> None: ...


class StoreSource(Protocol):
    """Where a :class:`State` gets its store, when it is first used
    (:class:`kuiperlite.serve.stores.Stores` opens the plugin's)."""

    def get(self) -> Store: ...


class Kept:
    """A :class:`StoreSource` whose store is open already: ``Kept(MemoryStore())``."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self) -> Store:
        return self.store


class MemoryStore:
    """A :class:`Store` in a dict: the state of a Context made by hand, and of
    the symbols :mod:`kuiperlite.testing` runs."""

    where = "memory"

    def __init__(self) -> None:
        self._values: dict[tuple[Scope, str], str] = {}
        self._lock = threading.Lock()

    def get(self, scope: Scope, key: str) -> Optional[str]:
        return self._values.get((scope, key))

    def put(self, scope: Scope, key: str, value: str) -> None:
        with self._lock:
            self._values[scope, key] = value

    def delete(self, scope: Scope, key: str) -> None:
        with self._lock:
            self._values.pop((scope, key), None)

    def incr(self, scope: Scope, key: str, amount: int) -> int:
        with self._lock:
            new = incremented(scope, key, self._values.get((scope, key)), amount)
            self._values[scope, key] = str(new)
        return new

    def entries(self, rule: Optional[str] = None,
                symbol: Optional[str] = None) -> list[tuple[Scope, str, str]]:
        with self._lock:
            return sorted((scope, key, value) for (scope, key), value in self._values.items()
                          if (rule is None or scope.rule == rule)
                          and (symbol is None or scope.symbol == symbol))

    def clear(self, rule: Optional[str] = None, symbol: Optional[str] = None) -> int:
        gone = self.entries(rule, symbol)
        with self._lock:
            for scope, key, _ in gone:
                self._values.pop((scope, key), None)
        return len(gone)

    def close(self) -> None:
        pass


class State:
    """``ctx.state``: the keys of one scope, kept across restarts.

    Values are what JSON carries: None, bool, int, float, str, and lists and
    dicts (with str keys) of those. Each call reads or writes the store at
    once: a crash loses at most the write in flight.
    """

    __slots__ = ("scope", "_stores", "used", "_on_first_use")

    def __init__(self, stores: StoreSource, scope: Scope,
                 on_first_use: Optional[Callable[[], None]] = None) -> None:
        self.scope = scope
        self._stores = stores
        self.used = False
        self._on_first_use = on_first_use

    def __repr__(self) -> str:
        return f"<State of {self.scope.described}>"

    def _store(self, key: Any) -> Store:
        if not self.used:
            self.used = True
            if self._on_first_use is not None:
                self._on_first_use()
        if type(key) is not str:
            raise StateError(f"State keys are strings; {self.scope.described} used "
                             f"{type(key).__name__} {key!r}.")
        return self._stores.get()

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it has none."""
        text = self._store(key).get(self.scope, key)
        return default if text is None else orjson.loads(text)

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``.

        Raises:
            StateError: JSON cannot carry the value; the message names the key
                and the type.
        """
        store = self._store(key)
        store.put(self.scope, key, self._encode(key, value))

    def delete(self, key: str) -> None:
        """Forget ``key`` (nothing happens when it has no value)."""
        self._store(key).delete(self.scope, key)

    def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` atomically (absent counts as 0).

        Returns:
            The new value.

        Raises:
            StateError: the value there is not an integer, or would pass 64 bits.
        """
        store = self._store(key)
        if type(amount) is not int:
            raise StateError(f"State {key!r} of {self.scope.described}: incr adds an integer, "
                             f"got {type(amount).__name__} {amount!r}.")
        return store.incr(self.scope, key, amount)

    def _encode(self, key: str, value: Any) -> str:
        if type(value) is int and _INT64[0] <= value <= _INT64[1]:
            return str(value)  # an offset or a count: JSON's text is Python's
        problem = _not_json(value, "")
        if problem is None:
            try:
                return orjson.dumps(value).decode()
            except orjson.JSONEncodeError as err:
                problem = str(err)
        raise StateError(f"State {key!r} of {self.scope.described} cannot hold {problem}; a value "
                         "is what JSON carries: None, bool, int, float, str, and lists and "
                         "dicts with str keys of those.")


def _not_json(value: Any, path: str) -> Optional[str]:
    """What in ``value`` JSON cannot carry (with where it is), or None."""
    kind = type(value)
    where = f" at {path}" if path else ""
    if kind in _SCALARS:
        if kind is int and not _INT64[0] <= value <= _INT64[1]:
            return f"an integer beyond 64 bits{where}"
        return None
    if kind is float:
        return None if math.isfinite(value) else f"the float {value!r}{where}"
    if kind in (list, tuple):
        for i, item in enumerate(value):
            found = _not_json(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if kind is dict:
        for name, item in value.items():
            if type(name) is not str:
                return f"a dict key of type {type(name).__name__}{where}"
            found = _not_json(item, f"{path}.{name}" if path else name)
            if found:
                return found
        return None
    return f"a value of type {kind.__name__}{where}"


def incremented(scope: Scope, key: str, text: Optional[str], amount: int) -> int:
    """What ``incr`` writes: the value ``text`` holds (absent is 0) plus ``amount``.

    Raises:
        StateError: ``text`` holds no integer, or the sum passes 64 bits.
    """
    value = 0 if text is None else orjson.loads(text)
    if type(value) is not int:
        raise StateError(f"State {key!r} of {scope.described} holds {text}; incr adds to an "
                         "integer.")
    new = value + amount
    if not _INT64[0] <= new <= _INT64[1]:
        raise StateError(f"State {key!r} of {scope.described}: incr would pass 64 bits.")
    return new


def describe(scope: Scope, key: str, value: str) -> str:
    """One line for a kept key: ``source 'numbers' of rule r1/op1/0: next = 20``."""
    return f"{scope.described}: {key} = {value}"
