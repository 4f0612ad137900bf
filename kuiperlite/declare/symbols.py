"""The specs read from functions marked ``@source``, ``@sink`` and ``@function``.

The decorators (:mod:`kuiperlite.declare.marks`) only record a
:class:`Mark` on the function and return it unchanged. :func:`read`, called
when a plugin is collected, reads the signature once into the spec of the
mark's kind (:class:`SourceSpec`, :class:`SinkSpec`, :class:`FunctionSpec`),
or raises :class:`DefinitionError` naming the function, its file and line,
and the parameter at fault. A
source's or sink's keyword-only parameter named like one of the plugin's
connections (:mod:`kuiperlite.declare.connections`) receives that connection's
resource; the connection's own config joins the symbol's.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import typing
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Optional

from ..errors import DefinitionError
from . import config, dynamic, hints
from .connections import ConnectionSpec, Uses
from .context import Context
from .hints import Hint
from .kinds import FUNCTION, SINK, SOURCE, Kind
from .marks import Backoff as Backoff
from .marks import Mark as Mark
from .marks import function as function
from .marks import marks_of as marks_of
from .marks import sink as sink
from .marks import source as source
from .params import (
    ASYNC_GENERATOR,
    EMPTY,
    GENERATOR,
    NAME_PATTERN,
    Param,
    config_param,
    not_a_function,
    read_param,
    style_of,
    where_of,
)

CONTEXT_NAMES = ("ctx", "context")


class Spec:
    """What every symbol has: its name, function, style, context, config and connections.

    The subclass of each kind adds what only that kind has.
    """

    kind: ClassVar[Kind]

    def __init__(self, name: str, func: Callable[..., Any], where: str, style: str, *,
                 given_description: Optional[str] = None, label: Optional[str] = None,
                 context_index: Optional[int] = None, config: tuple[Param, ...] = (),
                 extra_config: bool = False, connections: tuple[Uses, ...] = ()) -> None:
        self.name = name
        self.func = func
        self.where = where
        self.style = style
        self.given_description = given_description
        self.label = label
        self.context_index = context_index
        self.config = config
        self.extra_config = extra_config
        self.connections = connections

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @property
    def described(self) -> str:
        """``source 'pyjson'``: how messages name this symbol."""
        return self.kind.described(self.name)

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
    def fields(self) -> tuple[Param, ...]:
        """Every key a rule's config may set: its own config, then its connections'."""
        return self.config + tuple(p for use in self.connections for p in use.connection.config)

    def bind_config(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the user function from a start command's config.

        A connection's parameter holds that connection's config (each of its
        parameters, defaults filled in), for the runtime to swap for the
        resource (:meth:`kuiperlite.declare.connections.Connections.acquire`). See
        :func:`kuiperlite.declare.config.bind`.

        Raises:
            ConfigError: a value does not fit its hint or a required key is missing.
        """
        kwargs = config.bind(self.described, self.fields, self.extra_config, raw)
        for use in self.connections:
            kwargs[use.param] = {p.name: kwargs.pop(p.name, p.default)
                                 for p in use.connection.config}
        return kwargs


class SourceSpec(Spec):
    """A source: positionally, its Context and the stream's datasource; and how it
    starts again after it raised (``retry``, None: it does not)."""

    kind = SOURCE

    def __init__(self, *args: Any, datasource_index: Optional[int] = None,
                 datasource_name: Optional[str] = None, retry: Optional[Backoff] = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.datasource_index = datasource_index
        self.datasource_name = datasource_name
        self.retry = retry


class SinkSpec(Spec):
    """A sink: positionally, its Context and the data (none for a generator sink)."""

    kind = SINK

    def __init__(self, *args: Any, data_index: Optional[int] = None, data: Hint = hints.ANY,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_index = data_index
        self.data = data


class FunctionSpec(Spec):
    """A function: its SQL arguments, positionally, and where the Context goes among them."""

    kind = FUNCTION

    def __init__(self, *args: Any, params: tuple[Param, ...] = (),
                 varargs: Optional[Param] = None, aggregate: bool = False,
                 returns: Hint = hints.ANY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = params
        self.varargs = varargs
        self.aggregate = aggregate
        self.returns = returns

    @property
    def arg_range(self) -> tuple[int, Optional[int]]:
        """Fewest and most SQL arguments (None: no upper bound)."""
        least = sum(1 for p in self.params if p.required)
        return least, None if self.varargs is not None else len(self.params)


AnySpec = typing.Union[SourceSpec, SinkSpec, FunctionSpec]


def read(func: Callable[..., Any], mark: Mark,
         connections: Optional[Mapping[str, ConnectionSpec]] = None) -> AnySpec:
    """Read one marked function into the spec of its kind, checking its signature.

    Args:
        func: the marked function.
        mark: one of its marks.
        connections: the plugin's connections by name, for the parameters
            named like one.

    Raises:
        DefinitionError: the signature cannot serve as this kind of symbol.
    """
    return _Reader(func, mark, connections or {}).read()


def _takes_anything(func: Callable[..., Any]) -> bool:
    try:
        kinds = {p.kind for p in inspect.signature(func).parameters.values()}
    except (TypeError, ValueError):
        return False
    return bool(kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD})


class _Reader:
    """Reads one signature; ``fail`` turns a problem into a DefinitionError."""

    def __init__(self, func: Callable[..., Any], mark: Mark,
                 connections: Mapping[str, ConnectionSpec]) -> None:
        self.func = func
        self.mark = mark
        self.connections = connections
        self.name = str(mark.name or getattr(func, "__name__", ""))
        self.where = where_of(func, self.name, mark.kind.word)
        self.style = style_of(func)

    def fail(self, problem: str) -> DefinitionError:
        return DefinitionError(self.where, problem + self._wrapper_hint())

    def _wrapper_hint(self) -> str:
        """A tip for a wrapper another decorator made: an inner ``(*args, **kwargs)``
        function that does not say what it wraps."""
        if "<locals>" in getattr(self.func, "__qualname__", "") and \
                not hasattr(self.func, "__wrapped__") and _takes_anything(self.func):
            return (f" (if this is another decorator's inner function, put "
                    f"@{self.mark.kind.word} outermost or give that decorator functools.wraps)")
        return ""

    def read(self) -> AnySpec:
        problem = not_a_function(self.func, self.mark.kind.word)
        if problem:
            raise self.fail(problem)
        if not NAME_PATTERN.match(self.name):
            raise self.fail("the name must start with a letter or _ and hold only letters, "
                            "digits and _")
        try:
            signature = inspect.signature(self.func)
        except (TypeError, ValueError) as err:
            raise self.fail(f"its signature cannot be read ({err})") from None
        try:
            found = typing.get_type_hints(self.func, include_extras=True)
        except Exception as err:
            raise self.fail(f"its type hints cannot be resolved ({err})") from None
        positional: list[tuple[inspect.Parameter, Any]] = []
        config: list[Param] = []
        uses: list[Uses] = []
        extra = False
        varargs: Optional[inspect.Parameter] = None
        for param in signature.parameters.values():
            hint = found.get(param.name, EMPTY)
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                positional.append((param, hint))
            elif param.kind == param.VAR_POSITIONAL:
                varargs = param
            elif param.kind == param.KEYWORD_ONLY and param.name in self.connections:
                uses.append(self.connection_param(param, hint))
            elif param.kind == param.KEYWORD_ONLY:
                config.append(self.config_param(param, hint))
            else:
                extra = True
        if self.mark.kind == FUNCTION:
            if uses:
                raise self.fail(f"keyword-only parameter {uses[0].param!r} is not allowed; a "
                                "function receives only its SQL arguments (connections are "
                                "for sources and sinks)")
            return self.function(positional, varargs, config, extra, found)
        if varargs is not None:
            raise self.fail(f"*{varargs.name} is not allowed; config goes in keyword-only "
                            "parameters")
        self.check_keys(config, uses)
        context_index, value_index = self.context(positional)
        common: dict[str, Any] = {
            "given_description": self.mark.description, "label": self.mark.label,
            "context_index": context_index, "config": tuple(config), "extra_config": extra,
            "connections": tuple(uses)}
        if self.mark.kind == SOURCE:
            return SourceSpec(self.name, self.func, self.where, self.style,
                              datasource_index=value_index, datasource_name=None if
                              value_index is None else positional[value_index][0].name,
                              retry=self.retry(), **common)
        return SinkSpec(self.name, self.func, self.where, self.style, data_index=value_index,
                        data=self.sink_data(positional, value_index, found), **common)

    def retry(self) -> Optional[Backoff]:
        """A source's ``retry`` option as the backoff it starts again with (None: never)."""
        retry = self.mark.retry
        if retry is True:
            return Backoff()
        if retry is False:
            return None
        if not isinstance(retry, Backoff):
            raise self.fail(f"retry must be True, False or kuiperlite.Backoff(first=..., "
                            f"most=...), got {hints.describe_value(retry)}")
        for field, value in zip(retry._fields, retry):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 < value < math.inf:
                raise self.fail(f"retry's {field} must be a number of seconds above 0, got "
                                f"{hints.describe_value(value)}")
        if retry.most < retry.first:
            raise self.fail(f"retry's most ({retry.most:g} s) is less than its first "
                            f"({retry.first:g} s); most is the longest wait")
        return retry

    def context(self, positional: list[tuple[inspect.Parameter, Any]]
                ) -> tuple[Optional[int], Optional[int]]:
        """The indexes of the Context and of the one other value (a source's
        datasource, a sink's data) among a source's or sink's positional parameters."""
        kind = self.mark.kind
        word = "datasource" if kind == SOURCE else "data"
        if len(positional) > 2:
            raise self.fail(
                f"parameter {positional[2][0].name!r} is one positional parameter too many; a "
                f"{kind.word} takes the Context and the {word} positionally and its config "
                "after a bare *")
        for param, _hint in positional:
            if param.default is not EMPTY:
                raise self.fail(f"parameter {param.name!r} has a default, so it looks like "
                                "config; put config parameters after a bare * to make them "
                                "keyword-only")
        roles = [_is_context(param, hint) for param, hint in positional]
        if roles.count(True) > 1:
            raise self.fail(f"parameter {positional[1][0].name!r} is a second Context parameter")
        if len(positional) == 2 and True not in roles:
            if roles[0] is False:
                raise self.fail(
                    f"parameter {positional[1][0].name!r} is one positional parameter too many; "
                    f"a {kind.word} takes the Context and the {word} positionally")
            roles[0] = True  # the first of two is the Context
        if len(positional) == 1 and roles[0] is None:
            param = positional[0][0]
            if kind == SINK and self.style in (GENERATOR, ASYNC_GENERATOR):
                roles[0] = True  # a generator sink takes its data by yield
            elif kind == SOURCE and param.name != "datasource":
                raise self.fail(
                    f"parameter {param.name!r} could be the Context or the datasource: "
                    "annotate it `Context` (or name it ctx) or `str` (or name it datasource)")
        context_index = roles.index(True) if True in roles else None
        others = [i for i in range(len(positional)) if i != context_index]
        return context_index, (others[0] if others else None)

    def sink_data(self, positional: list[tuple[inspect.Parameter, Any]],
                  value_index: Optional[int], found: dict[str, Any]) -> Hint:
        """How the sink's user code receives each payload, by its data hint."""
        if self.style in (GENERATOR, ASYNC_GENERATOR):
            if value_index is not None:
                raise self.fail("a generator sink receives data with `data = yield`; remove "
                                f"parameter {positional[value_index][0].name!r}")
            data_hint = _send_type(found.get("return", Any))
        else:
            if value_index is None:
                raise self.fail("a sink needs one positional parameter for the data (or must "
                                "be a generator that receives it with `data = yield`)")
            hint = positional[value_index][1]
            data_hint = Any if hint is EMPTY else hint
        try:
            return hints.read(hints.unwrap_optional(data_hint))
        except hints.UnsupportedHint as err:
            if hints.holds_records(data_hint):  # built from each payload: it must work
                raise self.fail(f"the data's type {hints.name_of(data_hint)} cannot be built: "
                                f"{err}") from None
            return hints.ANY  # the payload arrives decoded, whatever the hint says

    def function(self, positional: list[tuple[inspect.Parameter, Any]],
                 varargs: Optional[inspect.Parameter], config: list[Param], extra: bool,
                 found: dict[str, Any]) -> FunctionSpec:
        if config:
            raise self.fail(f"keyword-only parameter {config[0].name!r} is not allowed; a "
                            "function receives only its SQL arguments, positionally")
        if extra:
            raise self.fail("**parameters are not allowed; a function has no config")
        if self.style in (GENERATOR, ASYNC_GENERATOR):
            raise self.fail("a function must return its result; it cannot be a generator")
        if self.mark.aggregate is not True and self.mark.aggregate is not False:
            raise self.fail("aggregate must be True or False")
        context_index = None
        params = []
        for i, (param, hint) in enumerate(positional):
            if _is_context(param, hint):
                if context_index is not None:
                    raise self.fail(f"parameter {param.name!r} is a second Context parameter")
                context_index = i
            else:
                params.append(self.param(param, hint, "argument"))
        star = None if varargs is None else self.param(varargs, found.get(varargs.name, EMPTY),
                                                      "argument")
        try:
            returns = hints.read(found.get("return", Any))
        except hints.UnsupportedHint:
            returns = hints.ANY  # a result is sent as JSON, whatever its hint says
        return FunctionSpec(self.name, self.func, self.where, self.style,
                            given_description=self.mark.description, label=self.mark.label,
                            context_index=context_index, params=tuple(params), varargs=star,
                            aggregate=self.mark.aggregate, returns=returns)

    def config_param(self, param: inspect.Parameter, hint: Any) -> Param:
        read = config_param(param, hint, self.fail, self.connection_tip(hint))
        if read.type.dynamic:
            self.dynamic_param(read)
        return read

    def dynamic_param(self, read: Param) -> None:
        """Only a plain or async sink receives config per record; a default
        template must parse."""
        shown = f"config parameter {read.name!r} is {hints.name_of(read.type.hint)}"
        if self.mark.kind != SINK:
            raise self.fail(f"{shown}, but only a sink's config can be dynamic: eKuiper "
                            "renders templates against the records a sink receives")
        if self.style in (GENERATOR, ASYNC_GENERATOR):
            raise self.fail(f"{shown}, but a generator sink receives its config once, at "
                            "start; make it a plain or async function, called once per "
                            "message, to receive the value rendered for each record")
        if dynamic.is_template(read.default):
            try:
                dynamic.parse(read.name, read.default, read.type.convert,
                              self.mark.kind.described(self.name))
            except ValueError as err:
                raise self.fail(f"the default of config parameter {read.name!r}: {err}") \
                    from None

    def param(self, param: inspect.Parameter, hint: Any, role: str) -> Param:
        return read_param(param, hint, role, self.fail)

    def connection_tip(self, hint: Any) -> str:
        """For a config hint no rule can carry that looks like a resource: how to get one."""
        if getattr(hint, "__module__", "builtins") in ("builtins", "typing") \
                or hints.holds_records(hint):
            return ""
        if self.connections:
            return (f"; a parameter named like a connection receives its resource "
                    f"({', '.join(self.connections)})")
        return ("; a resource shared by instances is declared with @connection and received "
                "by a parameter of its name")

    def connection_param(self, param: inspect.Parameter, hint: Any) -> Uses:
        """A parameter named like a connection: it must not say it takes something else."""
        connection = self.connections[param.name]
        resource = connection.resource
        if param.default is not EMPTY:
            raise self.fail(f"parameter {param.name!r} receives {connection.where} and cannot "
                            "have a default")
        classes = all(isinstance(h, type) and h is not Any for h in (hint, resource))
        if classes and not issubclass(resource, hint):
            raise self.fail(f"parameter {param.name!r} is annotated {hints.name_of(hint)}, "
                            f"but {connection.where}, named like it, yields "
                            f"{hints.name_of(resource)}")
        return Uses(param.name, connection)

    def check_keys(self, config: list[Param], uses: list[Uses]) -> None:
        """A rule's config has one value per key: the symbol and its connections share none."""
        owners = {p.name: f"the {self.mark.kind.word}" for p in config}
        for use in uses:
            for p in use.connection.config:
                owner = owners.setdefault(p.name, use.connection.described)
                if owner != use.connection.described:
                    raise self.fail(f"config {p.name!r} belongs to both {owner} and "
                                    f"{use.connection.described} (parameter {use.param!r}); "
                                    "a rule's "
                                    f"config holds one {p.name!r}, so rename one of them")


def _is_context(param: inspect.Parameter, hint: Any) -> Optional[bool]:
    """True for the Context, False for another annotated value, None when unsure.

    The annotation decides (``Context``, or anything else); an unannotated
    parameter named ``ctx`` or ``context`` is the Context.
    """
    hint = _bare(hint)
    if hint is Context or hint == "Context":
        return True
    if hint is not EMPTY:
        return False
    return True if param.name in CONTEXT_NAMES else None


def _send_type(returns: Any) -> Any:
    returns = _bare(returns)
    origin = typing.get_origin(returns)
    if origin in (collections.abc.Generator, collections.abc.AsyncGenerator):
        args = typing.get_args(returns)
        if len(args) >= 2:
            return args[1]
    return Any


def _bare(hint: Any) -> Any:
    """A hint without its ``Annotated`` metadata, which only config hints read (``Dynamic``)."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
