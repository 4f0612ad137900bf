"""Dynamic properties: a sink's config values that name fields of each record.

eKuiper's own sinks take properties such as ``topic: "devices/{{.deviceId}}"``,
Go templates rendered against each record. A portable sink receives the text
as the rule wrote it; a parameter hinted ``Dynamic[X]`` receives it rendered
against each record, then converted by ``X``.

:func:`parse` reads a value once, when the rule starts: literal text and field
paths (``{{.a}}``, ``{{ .a.b }}``), and nothing else of Go's template syntax.
:func:`render` fills the paths from each record as eKuiper's Go templates do:

- a missing or null field renders ``<no value>``; so does a path below a
  missing field (``{{.a.b}}`` without ``a``);
- a path below a field that is null or not an object is an error, as in Go;
- a string renders as it is, a boolean as ``true`` or ``false``, a float as
  Go prints a float64 (``3.5``, ``1e-05``, ``1.2345675e+06``), an integer as
  its digits;
- an object or a list is an error (Go would print ``map[a:1]``);
- a batch (a list of records) renders against its last record, as eKuiper's
  own sinks do for a batch (``internal/topo/node/batch_writer_op.go``).
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

from .hints import Converter, Mismatch, describe_value

NO_VALUE = "<no value>"  # what Go's text/template prints for a missing map key

# A field path between {{ and }}, with the spaces Go's lexer skips around it.
_PATH = re.compile(r"[ \t\r\n]*((?:\.[^\W\d]\w*)+)[ \t\r\n]*\Z")
_MISSING = object()

Part = Union[str, tuple[str, ...]]  # literal text, or a field path


class RenderError(ValueError):
    """A dynamic property cannot be rendered for one record; the message is one sentence."""


class Template:
    """One dynamic config value, parsed: rendered per record, then converted.

    Attributes:
        name: the config parameter.
        text: the value as the rule wrote it.
        parts: literal text and field paths, in order.
        convert: the parameter's converter, or None when text passes unchanged.
        described: the symbol, for messages: ``sink 'mqtt'``.
    """

    __slots__ = ("name", "text", "parts", "convert", "described")

    def __init__(self, name: str, text: str, parts: tuple[Part, ...],
                 convert: Optional[Converter], described: str) -> None:
        self.name = name
        self.text = text
        self.parts = parts
        self.convert = convert
        self.described = described

    def __repr__(self) -> str:
        return f"<Template {self.name}={self.text!r}>"

    def render(self, record: dict[str, Any]) -> str:
        """The text for one record.

        Raises:
            RenderError: a path goes below a value that is not an object, or
                ends at an object or a list.
        """
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else self._field(part, record))
        return "".join(out)

    def value(self, record: dict[str, Any]) -> Any:
        """The rendered text converted by the parameter's hint.

        Raises:
            RenderError: it cannot be rendered, or the text does not convert.
        """
        text = self.render(record)
        if self.convert is None:
            return text
        try:
            return self.convert(text)
        except Mismatch as err:
            raise RenderError(f"Config {self.name!r} of the {self.described} {err}, rendered from "
                              f"{self.text!r} for this record.") from None

    def _field(self, path: tuple[str, ...], record: dict[str, Any]) -> str:
        """One path's text: ``<no value>`` when it or a field on the way is missing."""
        value: Any = record
        for depth, key in enumerate(path):
            if not isinstance(value, dict):
                raise self._error(path, f"field {'.'.join(path[:depth])!r} is "
                                        f"{describe_value(value)}, not an object")
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return NO_VALUE
        if value is None:
            return NO_VALUE
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return go_float(value)
        raise self._error(path, f"it is {describe_value(value)}, and only strings, numbers "
                                "and booleans can be rendered")

    def _error(self, path: tuple[str, ...], problem: str) -> RenderError:
        return RenderError(f"Config {self.name!r} of the {self.described} cannot render "
                           f"{{{{.{'.'.join(path)}}}}} for this record: {problem}.")


def is_template(value: Any) -> bool:
    """A config value is rendered per record when it is text holding ``{{``;
    any other value of a dynamic parameter is a constant."""
    return isinstance(value, str) and "{{" in value


def parse(name: str, text: str, convert: Optional[Converter], described: str) -> Template:
    """Read a dynamic config value when the rule starts.

    Args:
        name: the config parameter.
        text: its value, holding ``{{``.
        convert: the parameter's converter.
        described: the symbol, for messages.

    Raises:
        ValueError: the text holds something other than field paths in
            ``{{ }}``; the message names that part.
    """
    parts: list[Part] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        end = text.find("}}", start + 2)
        if end < 0:
            raise ValueError(f"the {{{{ at character {start + 1} is never closed with }}}}")
        found = _PATH.match(text, start + 2, end)
        if found is None:
            raise ValueError(f"{text[start:end + 2]!r} is not a field path; a dynamic property "
                             "supports field paths such as {{.deviceId}} or {{.a.b}}, and no "
                             "other template syntax")
        parts.append(text[pos:start])
        parts.append(tuple(found.group(1)[1:].split(".")))
        pos = end + 2
    return Template(name, text, tuple(p for p in parts if p != ""), convert, described)


def record_of(payload: Any, described: str) -> dict[str, Any]:
    """The record a payload's dynamic properties render against: the payload
    itself, or a batch's last record.

    Raises:
        RenderError: there is no such record, or it is not an object.
    """
    record = payload
    if isinstance(payload, list):
        if not payload:
            raise RenderError(f"The {described} cannot render its dynamic config for an empty "
                              "batch: there is no record to take fields from.")
        record = payload[-1]
    if not isinstance(record, dict):
        where = "the last record of the batch" if record is not payload else "the payload"
        raise RenderError(f"The {described} cannot render its dynamic config: {where} is "
                          f"{describe_value(record)}, not an object.")
    return record


def render(templates: list[Template], payload: Any, described: str) -> dict[str, Any]:
    """Each dynamic parameter's value for one payload, by parameter name.

    Raises:
        RenderError: a value cannot be rendered or converted.
    """
    record = record_of(payload, described)
    return {t.name: t.value(record) for t in templates}


def go_float(value: float) -> str:
    """A float as Go prints a float64 (``%v``): shortest digits, in exponent
    form below 1e-4 and from 1e6 on (``1e-05``, ``1.2345675e+06``)."""
    text = repr(value)  # the shortest digits that read back, as Go finds them
    if text in ("inf", "-inf", "nan"):
        return {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}[text]
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits.rstrip("0"):
        return sign + "0"
    # the exponent of the first significant digit
    exponent = int(exp or 0) + len(whole) - 1 - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    if exponent < -4 or exponent >= 6:
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole_digits = digits[:exponent + 1].ljust(exponent + 1, "0")
    rest = digits[exponent + 1:]
    return f"{sign}{whole_digits}{'.' + rest if rest else ''}"
