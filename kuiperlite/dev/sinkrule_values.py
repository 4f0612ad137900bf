"""Go's values on eKuiper's sink side: rule outputs as ``encoding/json`` decodes them.

:func:`as_go` turns a JSON value into what Go's ``json.Unmarshal`` into
``interface {}`` makes of it; :func:`go_unmarshal` decodes bytes as Go does,
with Go's syntax errors (:class:`GoJSONError`).
"""

from __future__ import annotations

import json
from typing import Any

from ..declare.hints import describe_value
from .gojson_scan import check_valid


def as_go(value: Any, where: str = "the output") -> Any:
    """A JSON value as Go's ``encoding/json`` decodes it into ``interface {}``:
    numbers become floats (a huge integer rounds), a lone surrogate becomes
    U+FFFD.

    Raises:
        ValueError: the value is not JSON (a set, bytes, NaN, a non-string key...).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{where} holds the number {value}, beyond a float64.") from None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where} holds {value!r}, which JSON cannot carry.")
        return value
    if isinstance(value, str):
        return _fix_surrogates(value)
    if isinstance(value, (list, tuple)):
        return [as_go(item, where) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has the key {key!r}; JSON keys are strings.")
            out[_fix_surrogates(key)] = as_go(item, where)
        return out
    raise ValueError(f"{where} holds {describe_value(value)}, which JSON cannot carry.")


def _fix_surrogates(text: str) -> str:
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class GoJSONError(ValueError):
    """Bytes Go's ``json.Unmarshal`` refuses; ``str(err)`` is its text."""


def go_unmarshal(data: bytes) -> Any:
    """Decode JSON as Go's ``json.Unmarshal`` into ``interface {}`` does.

    Raises:
        GoJSONError: Go's error text (``invalid character 'a' looking for
            beginning of value``, ``unexpected end of JSON input``).
    """
    syntax = check_valid(data)
    if syntax is not None:
        raise GoJSONError(syntax)
    text = data.decode("utf-8", "replace")
    try:
        value = json.loads(text, parse_float=_go_number, parse_int=_go_number,
                           parse_constant=_no_constant)
    except _Overflow as err:
        raise GoJSONError(f"json: cannot unmarshal number {err} into Go value of type "
                          "float64") from None
    return as_go(value)


class _Overflow(Exception):
    pass


def _go_number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Overflow(text)
    return value


def _no_constant(text: str) -> Any:  # pragma: no cover - the scanner refuses them first
    raise _Overflow(text)
