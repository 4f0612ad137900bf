"""attrs classes and dataclasses as records: telling one (:func:`is_record`), the
fields its ``__init__`` takes (:func:`record_specs`), building one from a JSON
object field by field (:func:`record_converter`) and encoding it back
(:func:`record_fields`). attrs is imported only when a record is an attrs class.
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from .values import Converter, Mismatch

# A record's field: its name, its converter (None: it passes unchanged), and
# whether the JSON object must hold it.
Field = tuple[str, Optional[Converter], bool]


def is_record(cls: type) -> bool:
    """Whether ``cls`` is an attrs class or a dataclass (told without importing attrs)."""
    return hasattr(cls, "__attrs_attrs__") or hasattr(cls, "__dataclass_fields__")


def record_fields(value: Any) -> dict[str, Any]:
    """An attrs or dataclass instance's fields, as JSON encodes it (one level)."""
    cls = type(value)
    if hasattr(cls, "__attrs_attrs__"):
        return {a.alias or a.name: getattr(value, a.name) for a in cls.__attrs_attrs__}
    return {name: getattr(value, name) for name in cls.__dataclass_fields__}


def record_specs(cls: type) -> list[tuple[str, Any, bool]]:
    """(name, type, required) of each field ``__init__`` takes.

    Raises:
        Exception: whatever ``typing.get_type_hints`` raises for an annotation
            that does not resolve.
    """
    types = typing.get_type_hints(cls)
    if hasattr(cls, "__attrs_attrs__"):
        import attrs  # only plugins with attrs records pay for it

        return [(a.alias or a.name, types.get(a.name, a.type or Any),
                 a.default is attrs.NOTHING) for a in cls.__attrs_attrs__ if a.init]
    import dataclasses

    return [(f.name, types.get(f.name, f.type), f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls) if f.init]


def record_converter(cls: type, fields: tuple[Field, ...], phrase: str) -> Converter:
    """The converter that builds ``cls`` from a JSON object, naming the field that
    does not fit; ``phrase`` is what messages call the record."""

    def to_record(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise Mismatch(phrase, value)
        kwargs = {}
        for name, convert, required in fields:
            if name in value:
                try:
                    item = value[name]
                    kwargs[name] = item if convert is None else convert(item)
                except Mismatch as err:
                    raise Mismatch(phrase, value, where=f"field {name!r} {err}") from None
            elif required:
                raise Mismatch(phrase, value, where=f"field {name!r} is missing")
        return cls(**kwargs)

    return to_record
