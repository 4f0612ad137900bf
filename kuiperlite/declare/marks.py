"""The ``@source``, ``@sink`` and ``@function`` decorators.

A decorator only records a :class:`Mark` on the function and returns it
unchanged; :mod:`kuiperlite.declare.symbols` reads the marked function into
its spec when the plugin is collected.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, TypeVar, Union, overload

from .kinds import FUNCTION, SINK, SOURCE, Kind

F = TypeVar("F", bound=Callable[..., Any])

MARK_ATTR = "__kuiperlite__"


class Backoff(NamedTuple):
    """How a source that raised starts again: ``@source(retry=Backoff(first=0.5, most=10))``.

    The first wait is ``first`` seconds, each wait after is twice the one
    before, up to ``most``; a run that lasted ``most`` seconds or more counts
    as healthy, and the wait after it is ``first`` again.

    Attributes:
        first: seconds before the first restart.
        most: the longest wait, in seconds.
    """

    first: float = 1.0
    most: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait before the next start, after ``failures`` (1 or more) failures in a row."""
        return min(self.most, self.first * 2.0 ** min(failures - 1, 64))


class Mark(NamedTuple):
    """What a decorator recorded: the kind and the options given to it."""

    kind: Kind
    name: Optional[str] = None
    description: Optional[str] = None
    label: Optional[str] = None
    aggregate: bool = False
    retry: Any = True


def _marker(kind: Kind, target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, str):  # @sink("print")
        options["name"] = target
        target = None

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@{kind.word} decorates a function, got {func!r}")
        marks = getattr(func, MARK_ATTR, ())
        setattr(func, MARK_ATTR, (*marks, Mark(kind, **options)))
        return func

    return mark if target is None else mark(target)


@overload
def source(func: F, /) -> F: ...
@overload
def source(target: Optional[str] = None, /, *, name: Optional[str] = None,
           description: Optional[str] = None, label: Optional[str] = None,
           retry: Union[bool, Backoff] = True) -> Callable[[F], F]: ...
def source(target: Any = None, /, *, name: Optional[str] = None,
           description: Optional[str] = None, label: Optional[str] = None,
           retry: Union[bool, Backoff] = True) -> Any:
    """Mark a function as a source symbol.

    The function is a generator (sync or async) that yields records, or a
    plain function that calls ``ctx.emit``. Positional parameters may take
    the :class:`Context` and the stream's datasource; keyword-only parameters
    are the config properties.

    A source that raises is reported (eKuiper counts it as the rule's
    exception) and, by default, called again after a wait: 1 s, doubling up
    to 30 s, back to 1 s after a run of 30 s or more, until its rule stops.
    Its ``ctx.state`` is the same in every run. A source that returns is not
    called again.

    Args:
        target: the function (bare ``@source``) or the symbol name.
        name: the symbol name; defaults to the function's name.
        description: overrides the docstring as the description.
        label: the name eKuiper's UI shows; defaults to a readable form of the name.
        retry: True to start a source that raised again with the default
            :class:`Backoff`, a ``Backoff`` of its own for other waits, or
            False to leave it failed until its rule restarts.
    """
    return _marker(SOURCE, target, {"name": name, "description": description, "label": label,
                                    "retry": retry})


@overload
def sink(func: F, /) -> F: ...
@overload
def sink(target: Optional[str] = None, /, *, name: Optional[str] = None,
         description: Optional[str] = None,
         label: Optional[str] = None) -> Callable[[F], F]: ...
def sink(target: Any = None, /, *, name: Optional[str] = None,
         description: Optional[str] = None, label: Optional[str] = None) -> Any:
    """Mark a function as a sink symbol.

    A plain (or async) function is called once per message with the decoded
    payload; returning acks it, raising acks the error. A generator receives
    each message through ``data = yield``: code before the first yield is
    setup, and its ``finally`` runs at stop. A plain or async sink's config
    hinted ``Dynamic[X]`` is rendered against each record.

    Args:
        target: the function (bare ``@sink``) or the symbol name.
        name: the symbol name; defaults to the function's name.
        description: overrides the docstring as the description.
        label: the name eKuiper's UI shows; defaults to a readable form of the name.
    """
    return _marker(SINK, target, {"name": name, "description": description, "label": label})


@overload
def function(func: F, /) -> F: ...
@overload
def function(target: Optional[str] = None, /, *, name: Optional[str] = None,
             description: Optional[str] = None, label: Optional[str] = None,
             aggregate: bool = False) -> Callable[[F], F]: ...
def function(target: Any = None, /, *, name: Optional[str] = None,
             description: Optional[str] = None, label: Optional[str] = None,
             aggregate: bool = False) -> Any:
    """Mark a function as an SQL function symbol.

    Positional parameters are the SQL arguments, converted by their hints; a
    parameter annotated :class:`Context` receives the calling rule's context.

    Args:
        target: the function (bare ``@function``) or the symbol name.
        name: the symbol name; defaults to the function's name.
        description: overrides the docstring as the description.
        label: the name eKuiper's UI shows; defaults to a readable form of the name.
        aggregate: each argument arrives as the list of a window's values.
    """
    return _marker(FUNCTION, target, {"name": name, "description": description, "label": label,
                                      "aggregate": aggregate})


def marks_of(obj: Any) -> tuple[Mark, ...]:
    """The marks a decorator left on an object (empty for anything else)."""
    marks = getattr(obj, MARK_ATTR, ())
    return marks if isinstance(marks, tuple) else ()
