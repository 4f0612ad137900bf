"""Shared connections: ``@connection`` declares one, :class:`Connections` shares it.

eKuiper gives portable plugins no connection API, so twenty rules writing to
one database would open twenty clients. A connection is a generator
function, as for :func:`contextlib.contextmanager`: the code before its one
``yield`` opens the resource, the value it yields is the resource, and the
code after it closes it. Its keyword-only parameters are its config, typed
as a symbol's are (:mod:`kuiperlite.declare.hints`).

A source's or sink's keyword-only parameter named like a connection
receives its resource, and the connection's config keys join the symbol's
(:mod:`kuiperlite.declare.symbols`). In a running plugin, :class:`Connections`
opens a resource at the first start that needs it, hands the same one to
every instance whose connection config is equal, and closes it once the
last of them has stopped. Nothing opens before a start asks for it, so
nothing opens in the supervisor before it forks the worker.
"""

from __future__ import annotations

import collections.abc
import inspect
import logging
import threading
import time
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple, Optional, TypeVar, overload

from .. import settings
from ..errors import DefinitionError, KuiperliteError, error_text
from .params import (
    EMPTY,
    GENERATOR,
    NAME_PATTERN,
    Param,
    config_param,
    not_a_function,
    style_of,
    where_of,
)

log = logging.getLogger("kuiperlite")

F = TypeVar("F", bound=Callable[..., Any])

MARK_ATTR = "__kuiperlite_connection__"


class Mark(NamedTuple):
    """What ``@connection`` recorded: the name given to it."""

    name: Optional[str] = None


@overload
def connection(func: F, /) -> F: ...
@overload
def connection(target: Optional[str] = None, /, *,
               name: Optional[str] = None) -> Callable[[F], F]: ...
def connection(target: Any = None, /, *, name: Optional[str] = None) -> Any:
    """Mark a generator function as a connection that sources and sinks share.

    The code before its ``yield`` opens the resource, the value it yields is
    the resource, and the code after the ``yield`` (best in a ``finally``)
    closes it. Its keyword-only parameters are its config. A source's or
    sink's keyword-only parameter of the connection's name receives the
    resource; instances whose connection config is equal share one.

    Args:
        target: the function (bare ``@connection``) or the connection name.
        name: the connection name; defaults to the function's name.
    """
    if isinstance(target, str):  # @connection("db")
        name, target = target, None

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@connection decorates a function, got {func!r}")
        setattr(func, MARK_ATTR, Mark(name))
        return func

    return mark if target is None else mark(target)


class ConnectionSpec(NamedTuple):
    """A connection, read from its function.

    Attributes:
        name: the connection's name, which the parameters receiving it take.
        func: the generator function.
        where: how collection errors name it: ``connection 'db' (ledger.py:12)``.
        config: its keyword-only parameters.
        resource: the hint of what it yields (``Any`` when it does not say).
    """

    name: str
    func: Callable[..., Any]
    where: str
    config: tuple[Param, ...]
    resource: Any

    @property
    def described(self) -> str:
        """``connection 'db'``: how messages name it."""
        return f"connection {self.name!r}"


class Uses(NamedTuple):
    """A keyword-only parameter that receives a connection's resource."""

    param: str
    connection: ConnectionSpec


def read(func: Callable[..., Any], mark: Mark) -> ConnectionSpec:
    """Read one function marked ``@connection``, checking its signature.

    Raises:
        DefinitionError: it cannot serve as a connection.
    """
    name = str(mark.name or getattr(func, "__name__", ""))
    where = where_of(func, name, "connection")

    def fail(problem: str) -> DefinitionError:
        return DefinitionError(where, problem)

    if not NAME_PATTERN.match(name):
        raise fail("the name must start with a letter or _ and hold only letters, digits and _")
    problem = not_a_function(func, "connection")
    if problem:
        raise fail(problem)
    if style_of(func) != GENERATOR:
        raise fail("a connection must be a generator function (not async): it opens the "
                   "resource, yields it once, and closes it after the yield")
    try:
        signature = inspect.signature(func)
        found = typing.get_type_hints(func)
    except Exception as err:
        raise fail(f"its signature cannot be read ({err})") from None
    config = []
    for param in signature.parameters.values():
        if param.kind != param.KEYWORD_ONLY:
            raise fail(f"parameter {param.name!r} is not allowed; a connection takes only its "
                       "config, in keyword-only parameters (after a bare *)")
        config.append(config_param(param, found.get(param.name, EMPTY), fail))
    return ConnectionSpec(name, func, where, tuple(config), _yielded(found.get("return", Any)))


def _yielded(returns: Any) -> Any:
    """``Iterator[X]``, ``Iterable[X]`` or ``Generator[X, ...]`` -> ``X``; else Any."""
    origin = typing.get_origin(returns)
    args = typing.get_args(returns)
    if args and origin in (collections.abc.Iterator, collections.abc.Iterable,
                           collections.abc.Generator):
        return args[0]
    return Any


def declared(namespace: Mapping[str, Any]) -> dict[str, ConnectionSpec]:
    """The connections among a module's values, by name.

    Raises:
        DefinitionError: one cannot be a connection, or two have one name.
    """
    found: dict[str, ConnectionSpec] = {}
    for value in list(namespace.values()):
        mark = getattr(value, MARK_ATTR, None)
        if not isinstance(mark, Mark) or any(c.func is value for c in found.values()):
            continue
        spec = read(value, mark)
        other = found.get(spec.name)
        if other is not None:
            raise DefinitionError(spec.where, f"the name is already used by {other.where}")
        found[spec.name] = spec
    return found


# How long a start waits for its connections to open before it fails.
OPEN_TIMEOUT = settings.OPEN_TIMEOUT.default


class _Open:
    """One resource, opening or open: its connection, config, users, and how the open went.

    ``ready`` is set once the open returned: with ``resource``, or with ``error``.
    """

    __slots__ = ("spec", "config", "resource", "gen", "users", "ready", "error")

    def __init__(self, spec: ConnectionSpec, config: dict[str, Any]) -> None:
        self.spec = spec
        self.config = config
        self.resource: Any = None
        self.gen: Any = None
        self.users = 1
        self.ready = threading.Event()
        self.error = ""


class Lease:
    """The resources one instance holds; :meth:`release` gives them back, once."""

    def __init__(self, registry: Connections, user: str) -> None:
        self.registry = registry
        self.user = user
        self.held: list[_Open] = []

    def release(self) -> None:
        """Give the resources back; the last user of one closes it (any thread, idempotent)."""
        held, self.held = self.held, []
        for entry in reversed(held):
            self.registry._release(entry, self.user)


class Connections:
    """The resources open in one process, shared by equal config, counted by user.

    A connection's code (its open and its close) never runs on the thread
    that asks for it or gives it back: each open runs on a thread of its
    own, which a start waits for, at most ``timeout`` seconds, and each
    close too. So an open or a close that hangs holds up no command, no
    other connection and no exit; an open that returns after its start gave
    up is closed at once. Instances release their leases once their user
    code has ended, so a resource never closes under code that may still
    use it.

    Args:
        timeout: seconds :meth:`acquire` waits for its connections to open.
    """

    def __init__(self, timeout: float = OPEN_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()  # guards the resources and their users
        self._open: list[_Open] = []  # opening or open
        self._closing: set[threading.Thread] = set()

    def acquire(self, uses: Sequence[Uses], kwargs: dict[str, Any], user: str) -> Lease:
        """Swap each connection parameter's config in ``kwargs`` for its resource.

        A resource open (or opening) with an equal config is shared;
        otherwise the connection opens one now.

        Args:
            uses: the symbol's connection parameters.
            kwargs: its keyword arguments from ``Spec.bind_config``, changed in place.
            user: the instance, for messages: ``sink 'insert' of rule r1/op1/0``.

        Raises:
            KuiperliteError: a connection failed to open, or did not within
                ``timeout``: one sentence naming it, the user and the cause
                (the traceback goes to the log). Whatever this call took is
                given back.
        """
        lease = Lease(self, user)
        deadline = time.monotonic() + self.timeout
        try:
            for use in uses:
                entry = self._entry(use.connection, kwargs[use.param], user)
                lease.held.append(entry)
                if not entry.ready.wait(max(0.0, deadline - time.monotonic())):
                    raise KuiperliteError(
                        f"Cannot open {entry.spec.described} for {user}: it did not open within "
                        f"{self.timeout:g} s ({settings.OPEN_TIMEOUT.name}); it is closed as soon "
                        "as its open returns.")
                if entry.error:
                    raise KuiperliteError(entry.error)
                kwargs[use.param] = entry.resource
        except BaseException:
            lease.release()
            raise
        return lease

    def _entry(self, spec: ConnectionSpec, config: dict[str, Any], user: str) -> _Open:
        """The resource for ``config``: one open or opening shared, else one opening now."""
        with self._lock:
            for entry in self._open:
                if entry.spec.name == spec.name and entry.config == config and not entry.error:
                    entry.users += 1
                    return entry
            entry = _Open(spec, config)
            self._open.append(entry)
        threading.Thread(target=self._open_one, args=(entry, user), daemon=True,
                         name=f"open {spec.described} for {user}").start()
        return entry

    def _open_one(self, entry: _Open, user: str) -> None:
        """On a thread of its own: run the connection's open, then say how it went."""
        spec = entry.spec
        error = ""
        try:
            gen = spec.func(**entry.config)
            resource = next(gen)
        except StopIteration:
            error = (f"Cannot open {spec.described} for {user}: it returned without yielding its "
                     "resource.")
        except BaseException as err:
            log.error("cannot open %s for %s", spec.described, user, exc_info=True)
            error = f"Cannot open {spec.described} for {user}: {error_text(err).rstrip('.')}."
        with self._lock:
            if error:
                entry.error = error
            else:
                entry.gen, entry.resource = gen, resource
            unwanted = not error and entry.users == 0  # every start waiting for it gave up
            if error or unwanted:
                self._open.remove(entry)
            entry.ready.set()
        if unwanted:
            _close(entry, "no start waits for it any more")
        elif not error:
            log.info("opened %s for %s", spec.described, user)

    def _release(self, entry: _Open, user: str) -> None:
        with self._lock:
            entry.users -= 1
            # One still opening is closed by its opener, once no start wants it.
            if entry.users > 0 or not entry.ready.is_set() or entry not in self._open:
                return
            self._open.remove(entry)
            closer = threading.Thread(target=self._close_one, daemon=True,
                                      args=(entry, f"its last user stopped: {user}"),
                                      name=f"close {entry.spec.described}")
            self._closing.add(closer)
        closer.start()

    def _close_one(self, entry: _Open, why: str) -> None:
        try:
            _close(entry, why)
        finally:
            with self._lock:
                self._closing.discard(threading.current_thread())

    def settle(self, timeout: Optional[float] = None) -> bool:
        """Wait for the closes under way; False if one was still running after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            closing = list(self._closing)
        for closer in closing:
            closer.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(closer.is_alive() for closer in closing)

    def close(self) -> None:
        """Close every resource still open, whoever holds it (at exit; best effort).

        Closes already under way are waited for; opens still running are not.
        """
        with self._lock:
            entries = [entry for entry in self._open if entry.ready.is_set()]
            self._open = [entry for entry in self._open if not entry.ready.is_set()]
        for entry in entries:
            _close(entry, "at exit")
        self.settle()


def _close(entry: _Open, why: str) -> None:
    """Run a connection's teardown; what goes wrong is logged, never raised."""
    described = entry.spec.described
    try:
        next(entry.gen)
    except StopIteration:
        log.info("closed %s (%s)", described, why)
        return
    except BaseException:
        log.error("%s failed to close (%s)", described, why, exc_info=True)
        return
    log.error("%s yielded a second time while closing (%s); a connection yields its resource "
              "once", described, why)
    try:
        entry.gen.close()
    except BaseException:
        log.error("%s failed to close (%s)", described, why, exc_info=True)
