"""The ``@source``, ``@sink`` and ``@function`` decorators and the symbol specs.

A decorator only records a :class:`Mark` on the function and returns it
unchanged. :meth:`Symbol.from_function`, called when a plugin is collected,
reads the signature once and either builds the spec the runtime follows or
raises :class:`DefinitionError` naming the function, its line and parameter.
"""

from __future__ import annotations

import collections.abc
import inspect
import os
import re
import typing
from typing import Any, Callable, NamedTuple, Optional, TypeVar, overload

from . import hints
from .context import Context
from .errors import ConfigError, DefinitionError
from .wire import FUNC, SINK, SOURCE

F = TypeVar("F", bound=Callable[..., Any])

MARK_ATTR = "__kuiperlite__"
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: no trailing newline
EMPTY = inspect.Parameter.empty

PLAIN = "plain"
GENERATOR = "generator"
ASYNC = "async"
ASYNC_GENERATOR = "async generator"

_INFERABLE = (str, int, float, bool, dict, list)

KIND_WORDS = {SOURCE: "source", SINK: "sink", FUNC: "function"}


class Mark(NamedTuple):
    """What a decorator recorded: the kind and the options given to it."""

    kind: str
    name: Optional[str] = None
    description: Optional[str] = None
    label: Optional[str] = None
    aggregate: bool = False


def _marker(kind: str, target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, str):  # @sink("print")
        options["name"] = target
        target = None

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError(f"@{KIND_WORDS[kind]} decorates a function, got {func!r}")
        marks = getattr(func, MARK_ATTR, ())
        setattr(func, MARK_ATTR, (*marks, Mark(kind, **options)))
        return func

    return mark if target is None else mark(target)


@overload
def source(func: F, /) -> F: ...
@overload
def source(name: Optional[str] = None, /, *, description: Optional[str] = None,
           label: Optional[str] = None) -> Callable[[F], F]: ...
def source(target: Any = None, /, *, name: Optional[str] = None,
           description: Optional[str] = None, label: Optional[str] = None) -> Any:
    """Mark a function as a source symbol.

    The function is a generator (sync or async) that yields records, or a
    plain function that calls ``ctx.emit``. Positional parameters may take
    the :class:`Context` and the stream's datasource; keyword-only parameters
    are the config properties.

    Args:
        target: the function (bare ``@source``) or the symbol name.
        name: the symbol name; defaults to the function's name.
        description: overrides the docstring as the description.
        label: the name eKuiper's UI shows; defaults to a readable form of the name.
    """
    return _marker(SOURCE, target, {"name": name, "description": description, "label": label})


@overload
def sink(func: F, /) -> F: ...
@overload
def sink(name: Optional[str] = None, /, *, description: Optional[str] = None,
         label: Optional[str] = None) -> Callable[[F], F]: ...
def sink(target: Any = None, /, *, name: Optional[str] = None,
         description: Optional[str] = None, label: Optional[str] = None) -> Any:
    """Mark a function as a sink symbol.

    A plain (or async) function is called once per message with the decoded
    payload; returning acks it, raising acks the error. A generator receives
    each message through ``data = yield``: code before the first yield is
    setup, and its ``finally`` runs at stop.

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
def function(name: Optional[str] = None, /, *, description: Optional[str] = None,
             label: Optional[str] = None, aggregate: bool = False) -> Callable[[F], F]: ...
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
    return _marker(FUNC, target, {"name": name, "description": description, "label": label,
                                  "aggregate": aggregate})


def marks_of(obj: Any) -> tuple[Mark, ...]:
    """The marks a decorator left on an object (empty for anything else)."""
    marks = getattr(obj, MARK_ATTR, ())
    return marks if isinstance(marks, tuple) else ()


class Param(NamedTuple):
    """One parameter the runtime fills: a config property or an SQL argument."""

    name: str
    hint: Any
    default: Any = EMPTY
    convert: Optional[hints.Converter] = None

    @property
    def required(self) -> bool:
        return self.default is EMPTY


class Symbol(NamedTuple):
    """Everything the runtime needs to know about one decorated function."""

    kind: str
    name: str
    func: Callable[..., Any]
    where: str
    given_description: Optional[str] = None
    ui_label: Optional[str] = None
    style: str = PLAIN
    context_index: Optional[int] = None
    positional: tuple[str, ...] = ()
    data_mode: str = "json"
    args: tuple[Param, ...] = ()
    varargs: Optional[Param] = None
    config: tuple[Param, ...] = ()
    extra_config: bool = False
    aggregate: bool = False
    returns: Any = Any

    @property
    def description(self) -> str:
        """The decorator's description, else the docstring's first paragraph.

        Read on demand: serving a plugin never needs it, only its metadata does.
        """
        if self.given_description is not None:
            return self.given_description
        from . import docstrings

        return docstrings.parse(getattr(self.func, "__doc__", None)).summary

    @property
    def label(self) -> str:
        """``source 'pyjson'``: how messages name this symbol."""
        return f"{KIND_WORDS[self.kind]} {self.name!r}"

    @classmethod
    def from_function(cls, func: Callable[..., Any], mark: Mark) -> Symbol:
        """Build the spec of one marked function, checking its signature.

        Raises:
            DefinitionError: the signature cannot serve as this kind of symbol.
        """
        return _analyse(func, mark)

    def bind_config(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the user function from a start command's config.

        Declared keys are converted by their hints; undeclared keys go to a
        ``**config`` parameter when there is one and are otherwise ignored.

        Raises:
            ConfigError: a value does not fit its hint or a required key is missing.
        """
        kwargs: dict[str, Any] = {}
        for param in self.config:
            if param.name not in raw:
                if param.required:
                    raise ConfigError(
                        f"The {self.label} needs config {param.name!r} "
                        f"({hints.describe(param.hint)}), but the rule did not set it."
                    )
                continue
            value = raw[param.name]
            if param.convert is not None:
                try:
                    value = param.convert(value)
                except hints.Mismatch as err:
                    raise ConfigError(f"Config {param.name!r} of the {self.label} {err}.") from None
            kwargs[param.name] = value
        if self.extra_config:
            declared = {p.name for p in self.config}
            for key, value in raw.items():
                if key not in declared:
                    kwargs[key] = value
        return kwargs

    @property
    def arg_range(self) -> tuple[int, Optional[int]]:
        """Fewest and most SQL arguments (None: no upper bound)."""
        least = sum(1 for p in self.args if p.required)
        return least, None if self.varargs is not None else len(self.args)


def _where(func: Callable[..., Any], name: str, kind: str) -> str:
    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    fname = getattr(target, "__qualname__", repr(target))
    if code is None:
        return f"{KIND_WORDS[kind]} {name!r} ({fname})"
    place = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
    if fname == name:
        return f"{KIND_WORDS[kind]} {name!r} ({place})"
    return f"{KIND_WORDS[kind]} {name!r} ({fname} at {place})"


def _style(func: Callable[..., Any]) -> str:
    target = inspect.unwrap(func)
    if inspect.isasyncgenfunction(target):
        return ASYNC_GENERATOR
    if inspect.isgeneratorfunction(target):
        return GENERATOR
    if inspect.iscoroutinefunction(target):
        return ASYNC
    return PLAIN


def _is_context(param: inspect.Parameter, hint: Any) -> bool:
    if hint is Context or hint == "Context":
        return True
    return param.annotation is EMPTY and param.name in ("ctx", "context")


def _analyse(func: Callable[..., Any], mark: Mark) -> Symbol:
    name = str(mark.name or getattr(func, "__name__", ""))
    where = _where(func, name, mark.kind)

    def fail(problem: str) -> DefinitionError:
        return DefinitionError(where, problem)

    if not NAME_PATTERN.match(name):
        raise fail("the name must start with a letter or _ and hold only letters, digits and _")
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as err:
        raise fail(f"its signature cannot be read ({err})") from None
    try:
        hints = typing.get_type_hints(func)
    except Exception as err:
        raise fail(f"its type hints cannot be resolved ({err})") from None

    style = _style(func)
    context_index = None
    positional: list[str] = []
    args: list[Param] = []
    varargs = None
    config: list[Param] = []
    extra = False
    data_hint: Any = Any

    for param in signature.parameters.values():
        hint = hints.get(param.name, EMPTY)
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            if _is_context(param, hint):
                if context_index is not None:
                    raise fail(f"parameter {param.name!r} is a second Context parameter")
                context_index = len(positional)
                positional.append("ctx")
                continue
            positional.append(param.name)
            if mark.kind == FUNC:
                args.append(_param(param, hint, fail, "argument"))
            elif mark.kind == SINK:
                data_hint = Any if hint is EMPTY else hint
        elif param.kind == param.VAR_POSITIONAL:
            if mark.kind != FUNC:
                raise fail(f"*{param.name} is not allowed; config goes in keyword-only parameters")
            varargs = _param(param, hint, fail, "argument")
        elif param.kind == param.KEYWORD_ONLY:
            if mark.kind == FUNC:
                raise fail(f"keyword-only parameter {param.name!r} is not allowed; "
                           "a function receives only its SQL arguments, positionally")
            config.append(_param(param, hint, fail, "config parameter"))
        elif param.kind == param.VAR_KEYWORD:
            if mark.kind == FUNC:
                raise fail(f"**{param.name} is not allowed; a function has no config")
            extra = True

    data_mode = "json"
    if mark.kind == SOURCE:
        _check_source(positional, signature, fail)
    elif mark.kind == SINK:
        data_mode = _check_sink(positional, style, data_hint, hints.get("return", Any), fail)
    else:
        if style in (GENERATOR, ASYNC_GENERATOR):
            raise fail("a function must return its result; it cannot be a generator")
        if mark.aggregate is not True and mark.aggregate is not False:
            raise fail("aggregate must be True or False")

    return Symbol(
        kind=mark.kind, name=name, func=func, where=where,
        given_description=mark.description, ui_label=mark.label, style=style,
        context_index=context_index,
        positional=tuple(positional), data_mode=data_mode, args=tuple(args),
        varargs=varargs, config=tuple(config), extra_config=extra,
        aggregate=mark.aggregate, returns=hints.get("return", Any),
    )


def _param(param: inspect.Parameter, hint: Any, fail: Callable[[str], DefinitionError],
           role: str) -> Param:
    if hint is EMPTY:
        default = param.default
        inferable = default is not EMPTY and default is not None
        hint = type(default) if inferable and type(default) in _INFERABLE else Any
    try:
        conv = hints.converter(hint)
    except hints.UnsupportedHint as err:
        raise fail(
            f"{role} {param.name!r} has type {err}; use str, int, float, bool, dict, "
            "list[...], Literal[...], an Enum or Optional[...] of those"
        ) from None
    return Param(param.name, hint, param.default, conv)


def _check_source(positional: list[str], signature: inspect.Signature,
                  fail: Callable[[str], DefinitionError]) -> None:
    others = [p for p in positional if p != "ctx"]
    if len(others) > 1:
        raise fail(
            f"parameter {others[1]!r} is one positional parameter too many; a source takes "
            "the Context and the datasource positionally and its config after a bare *"
        )
    for name in others:
        if signature.parameters[name].default is not EMPTY:
            raise fail(
                f"parameter {name!r} has a default, so it looks like config; "
                "put config parameters after a bare * to make them keyword-only"
            )


def _check_sink(positional: list[str], style: str, data_hint: Any, returns: Any,
                fail: Callable[[str], DefinitionError]) -> str:
    data = [p for p in positional if p != "ctx"]
    if style in (GENERATOR, ASYNC_GENERATOR):
        if data:
            raise fail(f"a generator sink receives data with `data = yield`; "
                       f"remove parameter {data[0]!r}")
        return _data_mode(_send_type(returns))
    if not data:
        raise fail("a sink needs one positional parameter for the data "
                   "(or must be a generator that receives it with `data = yield`)")
    if len(data) > 1:
        raise fail(f"parameter {data[1]!r} is one positional parameter too many; a sink takes "
                   "the Context and the data positionally and its config after a bare *")
    return _data_mode(data_hint)


def _send_type(returns: Any) -> Any:
    origin = typing.get_origin(returns)
    if origin in (collections.abc.Generator, collections.abc.AsyncGenerator):
        args = typing.get_args(returns)
        if len(args) >= 2:
            return args[1]
    return Any


def _data_mode(hint: Any) -> str:
    hint = hints.unwrap_optional(hint)
    if hint is bytes:
        return "bytes"
    if hint is str:
        return "text"
    return "json"

