"""Type hints as the schema: the one place that says what a hint means.

:func:`read` turns a hint, once, at collection time, into a :class:`Hint`:
its converter (a function that takes a decoded JSON value and returns the
value the user code expects, or raises :class:`Mismatch`), the phrase error
messages use for it, the type and control eKuiper's UI shows for it, the type
a function's metadata gives it, how a sink receives its payload under it, and
whether a sink's config parameter is dynamic (``Dynamic[X]``: rendered per
record, then converted by ``X``). Conversions are lossless only: ``"12"``
becomes ``12`` for an ``int``, ``3.0`` becomes ``3``, but ``3.5`` never
becomes ``3``.

An attrs class or a dataclass is a record (:func:`read_record`): built from
a JSON object, each field converted by its own hint and the field that does
not fit named, and encoded back (:func:`record_fields`); the records
themselves are :mod:`kuiperlite.declare.record_classes`, the plain conversions
:mod:`kuiperlite.declare.values`.
"""

from __future__ import annotations

import enum
import sys
import typing
from typing import Annotated, Any, NamedTuple, Optional, TypeVar, Union

from .record_classes import is_record as is_record
from .record_classes import record_converter, record_specs
from .record_classes import record_fields as record_fields
from .values import Converter as Converter
from .values import Mismatch as Mismatch
from .values import a_or_an, to_bool, to_bytes, to_dict, to_float, to_int, to_list, to_str
from .values import describe_value as describe_value

if sys.version_info >= (3, 10):
    from types import UnionType

    _UNION_TYPES: tuple[Any, ...] = (Union, UnionType)
else:  # pragma: no cover - Python 3.9
    _UNION_TYPES = (Union,)



class _DynamicMark:
    """The metadata ``Dynamic[X]`` carries: ``Annotated[X, DYNAMIC]``."""

    def __repr__(self) -> str:
        return "kuiperlite.Dynamic"


DYNAMIC = _DynamicMark()
T = TypeVar("T")
# A sink's config parameter whose value may name the record's fields, as in
# ``topic: Dynamic[str] = "devices/{{.deviceId}}"``: the sink receives it
# rendered against each record, then converted by X. To a type checker,
# ``Dynamic[str]`` is ``str``.
Dynamic = Annotated[T, DYNAMIC]


class Hint(NamedTuple):
    """Everything kuiperlite does with one type hint.

    Attributes:
        hint: the hint itself.
        convert: the converter, or None when values pass through unchanged.
        phrase: what the hint accepts, for messages: "a list of integers".
        exact: a value of exactly this type needs no conversion.
        ui_type: the type eKuiper's UI shows for a config field of this hint
            ("int", "list_string", ...), or None when it cannot show one.
        control: the UI control: "text", "radio", "select", "list", "textarea".
        choices: the values a select offers.
        value_type: the looser type a function's metadata gives an argument
            or result: "string", "int", "float", "bool", "object", "array", "any".
        data: how a sink receives a payload under this hint: "json" (decoded),
            "text" or "bytes".
        zero: the default eKuiper's UI shows for a required field.
        fields: for an attrs class or a dataclass, its fields: (name, hint,
            required) each.
        dynamic: a sink's config parameter rendered per record (``Dynamic[X]``).
        item: for a list, its items' hint: an aggregate function's window holds
            one value of its SQL argument per row.
        plural: how "a list of ..." names several values of a plain hint
            ("integers"), when it has a plural.
    """

    hint: Any
    convert: Optional[Converter]
    phrase: str
    exact: Optional[type] = None
    ui_type: Optional[str] = None
    control: str = "text"
    choices: Optional[list[Any]] = None
    value_type: str = "any"
    data: str = "json"
    zero: Any = ""
    fields: Optional[tuple[tuple[str, Hint, bool], ...]] = None
    dynamic: bool = False
    item: Optional[Hint] = None
    plural: Optional[str] = None


_SIMPLE: dict[Any, Hint] = {
    str: Hint(hint=str, convert=to_str, phrase="a string", exact=str, ui_type="string",
              value_type="string", data="text", plural="strings"),
    int: Hint(hint=int, convert=to_int, phrase="an integer", exact=int, ui_type="int",
              value_type="int", zero=0, plural="integers"),
    float: Hint(hint=float, convert=to_float, phrase="a number", exact=float, ui_type="float",
                value_type="float", zero=0, plural="numbers"),
    bool: Hint(hint=bool, convert=to_bool, phrase="true or false", exact=bool, ui_type="bool",
               control="radio", value_type="bool", zero=False, plural="booleans"),
    dict: Hint(hint=dict, convert=to_dict, phrase="an object", exact=dict, ui_type="object",
               control="textarea", value_type="object", zero={}, plural="objects"),
    list: Hint(hint=list, convert=to_list, phrase="a list", exact=list, ui_type="list_string",
               control="list", value_type="array", zero=[], plural="lists"),
    bytes: Hint(hint=bytes, convert=to_bytes, phrase="bytes", exact=bytes, data="bytes"),
}
# also what an untyped config shows
ANY = Hint(hint=Any, convert=None, phrase="any value", ui_type="string")

# The UI's list types by item type; a list of anything else is a list of strings there.
_LIST_UI = {"string": "list_string", "int": "list_int", "float": "list_float",
            "bool": "list_bool", "object": "list_object"}

# How "a list of ..." names the items of each plain hint that has a plural.
_PLURALS = {info.phrase: info.plural for info in _SIMPLE.values() if info.plural}

_TEXT_UI_TYPES = ("string", "int", "float", "bool")  # what a rendered template converts to
_CONFIG_TYPES = ", ".join(cls.__name__ for cls, info in _SIMPLE.items() if info.ui_type)
_TEXT_TYPES = ", ".join(cls.__name__ for cls, info in _SIMPLE.items()
                        if info.ui_type in _TEXT_UI_TYPES)
SUPPORTED = (f"{_CONFIG_TYPES}, list[...], dict[str, ...], Literal[...], an Enum, an attrs "
             "class or a dataclass, or Optional[...] of those")
DYNAMIC_SUPPORTED = (f"Dynamic[X] with X one of {_TEXT_TYPES}, Literal[...], an Enum or "
                     "Optional[...] of those")


class UnsupportedHint(TypeError):
    """A hint has no JSON counterpart, so kuiperlite cannot convert to it.

    Attributes:
        supported: what may be used instead, for the message.
    """

    def __init__(self, message: str, supported: str = SUPPORTED) -> None:
        super().__init__(message)
        self.supported = supported


def read(hint: Any) -> Hint:
    """What kuiperlite does with a hint.

    Raises:
        UnsupportedHint: the hint has no JSON counterpart.
    """
    if hint is Any or hint is typing.Any or hint is object:
        return ANY
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _read_annotated(hint, args[0], args[1:])
    if origin in _UNION_TYPES:
        return _read_optional(hint, args)
    if origin is typing.Literal:
        return _read_choices(hint, list(args), _literal(args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _read_choices(hint, [m.value for m in hint], _enum(hint))
    if origin in (list, tuple) and (len(args) == 1 or origin is tuple):
        return _read_list(hint, args[0] if args else Any)
    if origin is dict:
        key, val = args if args else (str, Any)
        if key is not str:
            raise UnsupportedHint(f"{name_of(hint)}: JSON objects only have string keys")
        return _read_dict(hint, val)
    if isinstance(hint, type) and is_record(hint):
        return read_record(hint)
    raise UnsupportedHint(f"{name_of(hint)}, which has no JSON counterpart")


def describe(hint: Any) -> str:
    """A phrase for what a hint accepts, e.g. "a list of integers"."""
    return read(hint).phrase


def convert(hint: Any, value: Any) -> Any:
    """Convert one value by a hint (a convenience over :func:`read`)."""
    conv = read(hint).convert
    return value if conv is None else conv(value)


def unwrap_optional(hint: Any) -> Any:
    """``Optional[X]`` -> ``X``; other hints unchanged."""
    if typing.get_origin(hint) in _UNION_TYPES:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
        return Union[tuple(rest)]
    return hint


def name_of(hint: Any) -> str:
    """A hint as messages show it: ``float``, ``list[float]``, ``Dynamic[str]``."""
    if typing.get_origin(hint) is Annotated:
        inner, *metadata = typing.get_args(hint)
        dynamic = any(m is DYNAMIC for m in metadata)
        return f"Dynamic[{name_of(inner)}]" if dynamic else name_of(inner)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNION_TYPES:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 < len(args):
            return f"Optional[{name_of(rest[0])}]"
        return f"Union[{', '.join(name_of(arg) for arg in args)}]"
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if args:
        return f"{name_of(origin)}[{', '.join(name_of(arg) for arg in args)}]"
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", None) or repr(hint)


def _read_annotated(hint: Any, inner_hint: Any, metadata: tuple[Any, ...]) -> Hint:
    """``Dynamic[X]`` is X, rendered per record; other metadata means nothing here."""
    inner = read(inner_hint)
    if not any(m is DYNAMIC for m in metadata):
        return inner
    if inner.ui_type not in _TEXT_UI_TYPES:
        raise UnsupportedHint(f"{name_of(hint)}, but a rendered template is text, which "
                              f"converts only to a string, a number or a boolean",
                              DYNAMIC_SUPPORTED)
    return inner._replace(hint=hint, dynamic=True)


def _whole(hint: Any, part: Hint) -> None:
    """Refuse ``Dynamic`` inside a list or dict: it wraps a parameter's whole hint."""
    if part.dynamic:
        raise UnsupportedHint(f"{name_of(hint)}, with Dynamic inside; Dynamic wraps the whole "
                              "hint of a config parameter", DYNAMIC_SUPPORTED)


def _read_optional(hint: Any, args: tuple[Any, ...]) -> Hint:
    rest = [a for a in args if a is not type(None)]
    if len(rest) != 1:
        raise UnsupportedHint(f"{name_of(hint)}: only Optional[X] unions are supported")
    inner = read(rest[0])
    phrase = f"{inner.phrase} or null"
    if inner.convert is None:
        return inner._replace(hint=hint, phrase=phrase)
    inner_conv = inner.convert

    def optional(value: Any) -> Any:
        return None if value is None else inner_conv(value)

    return inner._replace(hint=hint, convert=optional, phrase=phrase)


def _read_choices(hint: Any, choices: list[Any], conv: tuple[Converter, str]) -> Hint:
    kinds = {type(c) for c in choices}
    base = _SIMPLE.get(kinds.pop()) if len(kinds) == 1 else None
    convert, phrase = conv
    return Hint(hint=hint, convert=convert, phrase=phrase,
                ui_type=base.ui_type if base is not None and base.ui_type else "string",
                control="select", choices=choices,
                value_type=base.value_type if base is not None else "any",
                zero=base.zero if base is not None else "")


def _literal(choices: tuple[Any, ...]) -> tuple[Converter, str]:
    shown = ", ".join(repr(c) for c in choices)
    phrase = f"one of {shown}"
    convs = [(c, _SIMPLE[type(c)].convert if type(c) in _SIMPLE else None) for c in choices]

    def literal(value: Any) -> Any:
        for choice, conv in convs:
            candidate = value
            if conv is not None and type(value) is not type(choice):
                try:
                    candidate = conv(value)
                except Mismatch:
                    continue
            if type(candidate) is type(choice) and candidate == choice:
                return choice
        raise Mismatch(phrase, value)

    return literal, phrase


def _enum(cls: type[enum.Enum]) -> tuple[Converter, str]:
    members = list(cls)
    shown = ", ".join(repr(m.value) for m in members)
    phrase = f"one of {shown}"

    def to_enum(value: Any) -> enum.Enum:
        if isinstance(value, cls):
            return value
        for member in members:
            if type(member.value) is type(value) and member.value == value:
                return member
        if isinstance(value, str) and value in cls.__members__:
            return cls.__members__[value]
        raise Mismatch(phrase, value)

    return to_enum, phrase


def _read_list(hint: Any, item_hint: Any) -> Hint:
    item = read(item_hint)
    _whole(hint, item)
    ui_type = _LIST_UI.get(item.ui_type or "", "list_string")
    if item.convert is None:
        return _SIMPLE[list]._replace(hint=hint, ui_type=ui_type, item=item)
    phrase = f"a list of {_PLURALS.get(item.phrase, item.phrase)}"
    item_conv = item.convert

    def to_list(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise Mismatch(phrase, value)
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item_conv(element))
            except Mismatch as err:
                raise Mismatch(phrase, value, where=f"item {i} {err}") from None
        return out

    return _SIMPLE[list]._replace(hint=hint, convert=to_list, phrase=phrase, exact=None,
                                  ui_type=ui_type, item=item)


def _read_dict(hint: Any, value_hint: Any) -> Hint:
    val = read(value_hint)
    _whole(hint, val)
    if val.convert is None:
        return _SIMPLE[dict]._replace(hint=hint)
    phrase = f"an object of {_PLURALS.get(val.phrase, val.phrase)}"
    val_conv = val.convert

    def to_dict(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Mismatch(phrase, value)
        out = {}
        for key, element in value.items():
            try:
                out[key] = val_conv(element)
            except Mismatch as err:
                raise Mismatch(phrase, value, where=f"key {key!r} {err}") from None
        return out

    return _SIMPLE[dict]._replace(hint=hint, convert=to_dict, phrase=phrase, exact=None)
# Records: attrs classes and dataclasses.


def holds_records(hint: Any) -> bool:
    """Whether values of ``hint`` are built as records: a record class, or a
    list or Optional of one (a sink's data is converted only then)."""
    hint = unwrap_optional(hint)
    if typing.get_origin(hint) is list:
        hint = (typing.get_args(hint) or (Any,))[0]
    return isinstance(hint, type) and is_record(hint)


def describe_fields(info: Hint) -> str:
    """The fields of a record hint, for metadata: ``temp (a number), unit (a string,
    optional)``; empty for other hints."""
    if not info.fields:
        return ""
    return ", ".join(f"{name} ({field.phrase}{'' if required else ', optional'})"
                     for name, field, required in info.fields)


_READING: set[type] = set()  # record classes being read: a class that holds itself


def read_record(cls: type) -> Hint:
    """The hint of an attrs class or a dataclass: built from a JSON object, field by field."""
    if cls in _READING:
        raise UnsupportedHint(f"{cls.__name__}, which holds itself; JSON has no such shape")
    try:
        specs = record_specs(cls)
    except Exception as err:  # an annotation that does not resolve
        raise UnsupportedHint(f"{cls.__name__}: its field types do not resolve ({err})") from None
    _READING.add(cls)
    try:
        fields = tuple(_record_field(cls, *spec) for spec in specs)
    finally:
        _READING.discard(cls)
    phrase = f"{a_or_an(cls.__name__)} object"
    convert = record_converter(cls, tuple((name, field.convert, required)
                                          for name, field, required in fields), phrase)
    return Hint(hint=cls, convert=convert, phrase=phrase, ui_type="object", control="textarea",
                value_type="object", zero={}, fields=fields)


def _record_field(cls: type, name: str, hint: Any, required: bool) -> tuple[str, Hint, bool]:
    try:
        return name, read(ANY.hint if hint is None else hint), required
    except UnsupportedHint as err:
        raise UnsupportedHint(f"{cls.__name__}, whose field {name!r} has type {err}",
                              err.supported) from None
