"""Typed records: attrs classes and dataclasses built from JSON objects and encoded back.

A record hint (:func:`read_record`, reached through :func:`kuiperlite.hints.read`)
converts each field by its own hint and names the field that does not fit.
attrs is imported only when a plugin's hints hold an attrs class.
"""

from __future__ import annotations

import typing
from typing import Any

from .hints import ANY, Hint, Mismatch, UnsupportedHint, read, unwrap_optional


def is_record(cls: type) -> bool:
    """Whether ``cls`` is an attrs class or a dataclass (told without importing attrs)."""
    return hasattr(cls, "__attrs_attrs__") or hasattr(cls, "__dataclass_fields__")


def holds_records(hint: Any) -> bool:
    """Whether values of ``hint`` are built as records: a record class, or a
    list or Optional of one (a sink's data is converted only then)."""
    hint = unwrap_optional(hint)
    if typing.get_origin(hint) is list:
        hint = (typing.get_args(hint) or (Any,))[0]
    return isinstance(hint, type) and is_record(hint)


def record_fields(value: Any) -> dict[str, Any]:
    """An attrs or dataclass instance's fields, as JSON encodes it (one level)."""
    cls = type(value)
    if hasattr(cls, "__attrs_attrs__"):
        return {a.alias or a.name: getattr(value, a.name) for a in cls.__attrs_attrs__}
    return {name: getattr(value, name) for name in cls.__dataclass_fields__}


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
        raise UnsupportedHint(f"{cls.__name__} holds itself; JSON has no such shape")
    _READING.add(cls)
    try:
        fields = tuple(_record_field(cls, *spec) for spec in _record_specs(cls))
    finally:
        _READING.discard(cls)
    phrase = f"a {cls.__name__} object"

    def to_record(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise Mismatch(phrase, value)
        kwargs = {}
        for name, field, required in fields:
            if name in value:
                try:
                    item = value[name]
                    kwargs[name] = item if field.convert is None else field.convert(item)
                except Mismatch as err:
                    raise Mismatch(phrase, value, where=f"field {name!r} {err}") from None
            elif required:
                raise Mismatch(phrase, value, where=f"field {name!r} is missing")
        return cls(**kwargs)

    return Hint(cls, to_record, phrase, None, "object", "textarea", None, "object", "json", {},
                fields)


def _record_specs(cls: type) -> list[tuple[str, Any, bool]]:
    """(name, type, required) of each field ``__init__`` takes."""
    try:
        types = typing.get_type_hints(cls)
    except Exception as err:  # an annotation that does not resolve
        raise UnsupportedHint(f"{cls.__name__}: its field types do not resolve ({err})") from None
    if hasattr(cls, "__attrs_attrs__"):
        import attrs  # only plugins with attrs records pay for it

        return [(a.alias or a.name, types.get(a.name, a.type or Any),
                 a.default is attrs.NOTHING) for a in cls.__attrs_attrs__ if a.init]
    import dataclasses

    return [(f.name, types.get(f.name, f.type), f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls) if f.init]


def _record_field(cls: type, name: str, hint: Any, required: bool) -> tuple[str, Hint, bool]:
    try:
        return name, read(ANY.hint if hint is None else hint), required
    except UnsupportedHint as err:
        raise UnsupportedHint(f"field {name!r} of {cls.__name__}: {err}") from None
