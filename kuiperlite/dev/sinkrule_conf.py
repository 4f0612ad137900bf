"""The sink properties eKuiper reads for a rule, decoded and checked as eKuiper does.

``ParseConf`` (``internal/topo/node/props.go``) decodes the common sink
properties with mapstructure, then the cache conf; a property it refuses is
a :class:`RuleError` with eKuiper's text, one the host cannot play is
:class:`~kuiperlite.dev.gotemplate_values.Unsupported`. :func:`find_templates`
finds the other properties eKuiper renders per message.
"""

from __future__ import annotations

import re
from typing import Any

from ..declare.hints import describe_value
from .gotemplate_values import Unsupported, sprint


class RuleError(ValueError):
    """eKuiper refuses a rule with these sink properties.

    Attributes:
        text: eKuiper's error text, verbatim.
    """

    def __init__(self, text: str) -> None:
        super().__init__(f"eKuiper refuses a rule with this sink's properties: {text}")
        self.text = text


_BOOL, _INT, _STR, _STRS, _MAP, _DURATION = "bool", "int", "string", "[]string", "map", "duration"
# ParseConf's struct (props.go's SinkConf) and the cache conf it decodes next
# (pkg/model's SinkConf): each property eKuiper reads, with its Go type.
_SINK_CONF = {
    "concurrency": _INT, "omitIfEmpty": _BOOL, "sendSingle": _BOOL, "dataTemplate": _STR,
    "format": _STR, "schemaId": _STR, "delimiter": _STR, "bufferLength": _INT,
    "fields": _STRS, "excludeFields": _STRS, "dataField": _STR, "batchSize": _INT,
    "lingerInterval": _DURATION, "compression": _STR, "compressionProps": _MAP,
    "encryption": _STR, "encProps": _MAP, "hasHeader": _BOOL,
}
_CACHE_CONF = {
    "memoryCacheThreshold": _INT, "maxDiskCache": _INT, "bufferPageSize": _INT,
    "enableCache": _BOOL, "resendInterval": _DURATION, "cleanCacheAtStop": _BOOL,
    "resendAlterQueue": _BOOL, "resendPriority": _INT, "resendIndicatorField": _STR,
    "resendDestination": _STR,
}
_GO_TYPES = {_BOOL: "bool", _INT: "int", _STR: "string", _DURATION: "cast.DurationConf"}


def _lookup(props: dict[str, Any], name: str) -> tuple[bool, Any]:
    """A property as mapstructure finds it: by its name, else by any key equal
    to it ignoring case."""
    if name in props:
        return True, props[name]
    for key, value in props.items():
        if key.lower() == name.lower():
            return True, value
    return False, None


def _decode(props: dict[str, Any], fields: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The fields mapstructure (v1, not weakly typed) decodes from ``props``,
    and its errors (``'batchSize' expected type 'int', got unconvertible
    type 'string', value: 'x'``)."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, kind in fields.items():
        found, value = _lookup(props, name)
        if not found or value is None:
            continue
        problems = _kind_errors(name, kind, value)
        if problems:
            errors.extend(problems)
        elif kind == _INT:
            values[name] = int(value)  # mapstructure truncates a float
        elif kind == _STRS:
            values[name] = ["" if v is None else v for v in value]
        else:
            values[name] = value
    return values, errors


def _kind_errors(name: str, kind: str, value: Any) -> list[str]:
    if kind == _STRS:
        if not isinstance(value, list):
            return [f"'{name}': source data must be an array or slice, got {_go_kind(value)}"]
        return [_unconvertible(f"{name}[{i}]", "string", item) for i, item in enumerate(value)
                if item is not None and not isinstance(item, str)]
    if kind == _MAP:
        return [] if isinstance(value, dict) else \
            [f"'{name}' expected a map, got '{_go_kind(value)}'"]
    if kind == _DURATION:
        return []  # any value: the host refuses a linger or resend interval as a whole
    fits = {_BOOL: isinstance(value, bool),
            _INT: isinstance(value, float) and not isinstance(value, bool),
            _STR: isinstance(value, str)}[kind]
    return [] if fits else [_unconvertible(name, _GO_TYPES[kind], value)]


def _unconvertible(name: str, go_type: str, value: Any) -> str:
    return (f"'{name}' expected type '{go_type}', got unconvertible type "
            f"'{_go_type_of(value)}', value: '{sprint(value)}'")


def _go_type_of(value: Any) -> str:
    return {bool: "bool", float: "float64", str: "string", dict: "map[string]interface {}",
            list: "[]interface {}"}[type(value)]


def _go_kind(value: Any) -> str:
    return {bool: "bool", float: "float64", str: "string", dict: "map",
            list: "slice"}[type(value)]


def _decoding_error(errors: list[str]) -> str:
    """mapstructure's error: every field's error, sorted."""
    points = sorted(f"* {e}" for e in errors)
    return f"{len(points)} error(s) decoding:\n\n" + "\n".join(points)


def find_templates(props: dict[str, Any]) -> list[str]:
    """The property values eKuiper renders per message (``findTemplateProps``):
    strings holding ``{{...}}`` on one line, in nested maps too, not in lists."""
    found: list[str] = []
    for value in props.values():
        if isinstance(value, str):
            if _TEMPLATE.search(value) and value not in found:
                found.append(value)
        elif isinstance(value, dict):
            found.extend(t for t in find_templates(value) if t not in found)
    return found


_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")  # . stops at a newline, as in Go's regexp



def require_ack(props: dict[str, Any]) -> bool:
    """The portable sink's own reading of its props (``requireAck``).

    Raises:
        RuleError: ``requireAck`` is not a bool.
    """
    values, errors = _decode(props, {"requireAck": _BOOL})
    if errors:
        raise RuleError(_decoding_error(errors))
    return bool(values.get("requireAck", False))


def parse_conf(props: dict[str, Any]) -> dict[str, Any]:
    """ParseConf: the common sink properties, decoded and checked.

    Raises:
        RuleError: eKuiper refuses these properties.
        Unsupported: eKuiper takes them, and the host cannot play them.
        ValueError: ``tableDataField`` is not a string.
    """
    conf, errors = _decode(props, _SINK_CONF)
    if errors:
        raise RuleError(f"fail to parse sink configuration: read properties {sprint(props)} "
                        f"fail with error: {_decoding_error(errors)}")
    _, errors = _decode(props, _CACHE_CONF)
    if errors:
        raise RuleError(f"fail to parse sink configuration: read properties {sprint(props)} "
                        f"to cache conf fail with error: {_decoding_error(errors)}")
    if not conf.get("dataField") and "tableDataField" in props:
        table = props["tableDataField"]
        if not isinstance(table, str):
            raise ValueError("tableDataField must be a string; eKuiper's planner panics on "
                             f"{describe_value(table)}.")
        conf["dataField"] = table
    if conf.get("batchSize", 0) < 0:
        raise RuleError(f"fail to parse sink configuration: invalid batchSize "
                        f"{conf['batchSize']}")
    for key, described in (("lingerInterval", "a batch's linger interval"),
                      ("resendInterval", "a resend interval")):
        found, value = _lookup(props, key)
        if found and value not in (None, 0.0, "", "0", "0s"):
            raise Unsupported(f"{key}: the host does not play {described}; it sends a batch "
                              "when batchSize outputs came, and never resends.")
    if conf.get("format", "json") not in ("", "json"):
        raise Unsupported(f"format {conf['format']!r}: the host plays eKuiper's json "
                          "format only.")
    for key in ("compression", "encryption"):
        if conf.get(key):
            raise Unsupported(f"{key} {conf[key]!r}: the host does not compress or "
                              "encrypt what it sends.")
    return conf
