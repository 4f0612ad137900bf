"""What symbols and connections share: their parameters, names and styles.

A :class:`Param` is one parameter the runtime fills, typed by its hint
(:mod:`kuiperlite.declare.hints`): a config property of a source, a sink or a
connection, or an SQL argument of a function. :func:`where_of` names a
function in collection errors, and :func:`style_of` says how its code runs.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any, Callable, NamedTuple, Optional

from ..errors import DefinitionError
from . import hints
from .hints import Hint
from .values import a_or_an

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # \Z: no trailing newline
EMPTY = inspect.Parameter.empty

PLAIN = "plain"
GENERATOR = "generator"
ASYNC = "async"
ASYNC_GENERATOR = "async generator"

_INFERABLE = (str, int, float, bool, dict, list)


class Param(NamedTuple):
    """One parameter the runtime fills: a config property or an SQL argument."""

    name: str
    type: Hint
    default: Any = EMPTY

    @property
    def required(self) -> bool:
        return self.default is EMPTY



def read_param(param: inspect.Parameter, hint: Any, role: str,
               fail: Callable[[str], DefinitionError], tip: str = "") -> Param:
    """A parameter the runtime fills, typed by its hint (else by its default).

    Raises:
        DefinitionError: from ``fail``, when the hint has no JSON counterpart
            (``tip`` ends the message).
    """
    if hint is EMPTY:
        default = param.default
        inferable = default is not EMPTY and default is not None
        hint = type(default) if inferable and type(default) in _INFERABLE else Any
    try:
        info = hints.read(hint)
    except hints.UnsupportedHint as err:
        raise fail(f"{role} {param.name!r} has type {err}; use {err.supported}{tip}") \
            from None
    if info.dynamic and role != "config parameter":
        raise fail(f"{role} {param.name!r} is {hints.name_of(hint)}, but only a sink's config "
                   "can be dynamic")
    return Param(param.name, info, _checked_default(param, info, role, fail))


def _checked_default(param: inspect.Parameter, info: Hint, role: str,
                     fail: Callable[[str], DefinitionError]) -> Any:
    """A default its hint's converter takes as it is: converted, it stays equal.

    A default is Python, not a rule's text: ``"8080"`` for an ``int`` is refused
    although a rule's ``"8080"`` converts, while ``3.0`` for an ``int`` becomes
    ``3`` (the converter's lossless rule). A dynamic parameter's text default is
    rendered per record, so its converter sees it only then.

    Raises:
        DefinitionError: from ``fail``, naming the parameter, its default and its hint.
    """
    default = param.default
    if default is EMPTY or info.convert is None or (info.dynamic and isinstance(default, str)):
        return default
    try:
        converted = info.convert(default)
        fits = converted == default
    except Exception:  # a Mismatch, or an equality that cannot compare
        fits = False
    if not fits:
        raise fail(f"the default of {role} {param.name!r} is {hints.describe_value(default)}, "
                   f"which its hint {hints.name_of(info.hint)} does not take (it takes "
                   f"{info.phrase}); give a default of that type, or change the hint")
    return converted


def config_param(param: inspect.Parameter, hint: Any, fail: Callable[[str], DefinitionError],
                 tip: str = "") -> Param:
    """A keyword-only parameter a rule's config sets: a symbol's or a connection's.

    Raises:
        DefinitionError: from ``fail``, when a rule's config cannot carry its type.
    """
    read = read_param(param, hint, "config parameter", fail, tip)
    if read.type.ui_type is None:
        raise fail(f"config parameter {param.name!r} has type {hints.name_of(read.type.hint)}, "
                   f"which a rule's config cannot carry; use {hints.SUPPORTED}{tip}")
    return read


def where_of(func: Callable[..., Any], name: str, word: str) -> str:
    """How collection errors name a function: ``sink 'print' (plugin.py:4)``."""
    described = f"{word} {name!r}"
    target = inspect.unwrap(func)
    code = getattr(target, "__code__", None)
    fname = getattr(target, "__qualname__", None) or f"{a_or_an(type(target).__name__)} object"
    if code is None:
        return f"{described} ({fname})"
    place = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
    if fname == name:
        return f"{described} ({place})"
    return f"{described} ({fname} at {place})"


def not_a_function(func: Callable[..., Any], word: str) -> Optional[str]:
    """Why ``func`` cannot be marked ``@word``, if it is not a function: a
    ``functools.partial`` or a callable object has no hints to read."""
    if inspect.isroutine(inspect.unwrap(func)):
        return None
    return f"@{word} marks a function (def or async def); call this object from one"


def style_of(func: Callable[..., Any]) -> str:
    """Plain, generator, async or async generator."""
    target = inspect.unwrap(func)
    if inspect.isasyncgenfunction(target):
        return ASYNC_GENERATOR
    if inspect.isgeneratorfunction(target):
        return GENERATOR
    if inspect.iscoroutinefunction(target):
        return ASYNC
    return PLAIN
