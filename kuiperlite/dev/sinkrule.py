"""eKuiper's sink pipeline, as the embedded host plays it: rule outputs in, the bytes out.

Between a rule's SQL and a portable sink, eKuiper runs each output through
operators driven by the sink action's properties, and sends the plugin only
the bytes they produce. :class:`SinkRule` does the same for the host, from
the properties a sink is started with:

- ``omitIfEmpty`` drops empty outputs (and, with ``sendSingle``, empty rows);
- every other property holding ``{{ }}`` (``topic``, a header in a map...) is
  rendered against each message, as eKuiper renders it; the plugin never
  receives the result, but a template that fails drops the message;
- ``sendSingle`` sends each row of a Collection alone; without it a Row goes
  as a one-element list, a Collection as its list;
- ``dataTemplate`` (Go's text/template with eKuiper's functions, see
  :mod:`kuiperlite.dev.gotemplate`), then ``dataField``, ``fields`` or
  ``excludeFields``; a template's text is sent as it is unless a field
  selection follows it;
- ``batchSize`` gathers that many outputs into one JSON array;
- the json encoding, as Go's ``encoding/json`` writes it.

A rule output is a dict (a Row) or a list of dicts (a Collection), with
values as Go's ``encoding/json`` decodes a stream without a schema: every
number is a float64 (``1000000`` prints ``1e+06`` in a template). A
property eKuiper refuses fails the rule with eKuiper's own text
(:class:`RuleError`); one the host cannot play (another format,
``lingerInterval``, compression, encryption, template syntax beyond
:mod:`~kuiperlite.dev.gotemplate`'s) is :class:`~kuiperlite.dev.gotemplate_values.Unsupported`.

Read from eKuiper 2.x: ``internal/topo/planner/planner_sink.go`` (which
operators, ``findTemplateProps``), ``internal/topo/node/props.go``
(``ParseConf``), ``transform_op.go``, ``batch_op.go``, ``batch_writer_op.go``,
``encode_op.go``, ``internal/topo/transform`` (``TransItem``, the function
map) and ``internal/converter/json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Optional

import attrs

from ..declare.hints import describe_value
from . import gotemplate
from .gotemplate_lex import go_quote
from .gotemplate_values import MAP, ROWS, ExecError, ParseError, Unsupported, sprint
from .gowire import go_json

DEFAULT_NAME = "mysink"  # the action name in eKuiper's op names, when none is given


class RuleError(ValueError):
    """eKuiper refuses a rule with these sink properties.

    Attributes:
        text: eKuiper's error text, verbatim.
    """

    def __init__(self, text: str) -> None:
        super().__init__(f"eKuiper refuses a rule with this sink's properties: {text}")
        self.text = text


@attrs.frozen
class Message:
    """One message eKuiper's sink pipeline made of rule outputs.

    Attributes:
        data: the bytes sent on the sink's data channel; None when dropped.
        error: why eKuiper dropped it, in its words; None when not dropped.
        op: the operator that dropped it (``mysink_0_0_transform``): eKuiper
            logs ``Operation <op> error <error>``.
        props: the templates in other properties, rendered for it (eKuiper
            keeps them; the plugin never receives them).
        sent: the host sent it to the plugin (False when dropped, or when the
            sink stopped first).
        ack: with ``requireAck``, the ack's error text, None for an ok ack
            (and always None without ``requireAck``).
    """

    data: Optional[bytes]
    error: Optional[str] = None
    op: str = ""
    props: dict[str, str] = attrs.field(factory=dict)
    sent: bool = False
    ack: Optional[str] = None

    @property
    def dropped(self) -> bool:
        return self.error is not None

    @property
    def logged(self) -> Optional[str]:
        """The line eKuiper logs for a dropped message."""
        return None if self.error is None else f"Operation {self.op} error {self.error}"


# -------------------------------------------------------------- Go's values

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
    _GoScanner(data).check()
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


class _GoScanner:
    """Go's JSON syntax check, with its error texts, over the bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def check(self) -> None:
        self.value()
        self.space()
        if self.pos < len(self.data):
            self.fail("after top-level value")

    def peek(self) -> Optional[int]:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self) -> int:
        c = self.peek()
        if c is None:
            raise GoJSONError("unexpected end of JSON input")
        self.pos += 1
        return c

    def fail(self, context: str) -> None:
        c = self.data[self.pos]
        raise GoJSONError(f"invalid character {_quote_char(c)} {context}")

    def space(self) -> None:
        while self.peek() in (0x20, 0x09, 0x0A, 0x0D):
            self.pos += 1

    def value(self) -> None:
        self.space()
        c = self.peek()
        if c is None:
            raise GoJSONError("unexpected end of JSON input")
        if c == 0x7B:
            self.pos += 1
            self.object()
        elif c == 0x5B:
            self.pos += 1
            self.array()
        elif c == 0x22:
            self.pos += 1
            self.string()
        elif c == 0x2D or 0x30 <= c <= 0x39:
            self.number()
        elif c in b"tfn":
            word = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c]
            self.pos += 1
            for expected in word[1:]:
                if self.peek() is None:
                    raise GoJSONError("unexpected end of JSON input")
                if self.peek() != expected:
                    self.fail(f"in literal {word.decode()} (expecting "
                              f"{_quote_char(expected)})")
                self.pos += 1
        else:
            self.fail("looking for beginning of value")

    def object(self) -> None:
        self.space()
        if self.peek() == 0x7D:
            self.pos += 1
            return
        while True:
            self.space()
            if self.peek() is None:
                raise GoJSONError("unexpected end of JSON input")
            if self.peek() != 0x22:
                self.fail("looking for beginning of object key string")
            self.pos += 1
            self.string()
            self.space()
            if self.take() != 0x3A:
                self.pos -= 1
                self.fail("after object key")
            self.value()
            self.space()
            c = self.take()
            if c == 0x7D:
                return
            if c != 0x2C:
                self.pos -= 1
                self.fail("after object key:value pair")

    def array(self) -> None:
        self.space()
        if self.peek() == 0x5D:
            self.pos += 1
            return
        while True:
            self.value()
            self.space()
            c = self.take()
            if c == 0x5D:
                return
            if c != 0x2C:
                self.pos -= 1
                self.fail("after array element")

    def string(self) -> None:
        while True:
            c = self.take()
            if c == 0x22:
                return
            if c == 0x5C:
                e = self.take()
                if e == 0x75:
                    for _ in range(4):
                        h = self.take()
                        if h not in b"0123456789abcdefABCDEF":
                            self.pos -= 1
                            self.fail("in \\u hexadecimal character escape")
                elif e not in b'"\\/bfnrt':
                    self.pos -= 1
                    self.fail("in string escape code")
            elif c < 0x20:
                self.pos -= 1
                self.fail("in string literal")

    def number(self) -> None:
        if self.peek() == 0x2D:
            self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("in numeric literal")
        if self.take() != 0x30:
            self.digits()
        if self.peek() == 0x2E:
            self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("after decimal point in numeric literal")
            self.digits()
        if self.peek() in (0x65, 0x45):
            self.pos += 1
            if self.peek() in (0x2B, 0x2D):
                self.pos += 1
            c = self.peek()
            if c is None:
                raise GoJSONError("unexpected end of JSON input")
            if not 0x30 <= c <= 0x39:
                self.fail("in exponent of numeric literal")
            self.digits()

    def digits(self) -> None:
        while (c := self.peek()) is not None and 0x30 <= c <= 0x39:
            self.pos += 1


def _quote_char(c: int) -> str:
    """Go's ``quoteChar`` for a byte of JSON input: ``'a'``, ``'\\''``, ``'\\n'``."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    return "'" + go_quote(chr(c))[1:-1] + "'"


# ------------------------------------------------------------- the sink conf

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


# ----------------------------------------------------------------- the rule

class SinkRule:
    """eKuiper's operators between a rule and one portable sink.

    Stateful as eKuiper's are: a batch gathers outputs across calls to
    :meth:`feed`, and a template that fails leaves its partial text in the
    buffer the next message's first template is written to (eKuiper's
    ``calculateProps`` does not reset it; the plugin never sees it).

    Args:
        props: the sink action's properties (the start control's config).
        name: the action (sink) name, as eKuiper's operator names show it.

    Raises:
        RuleError: eKuiper refuses these properties; ``err.text`` is its text.
        Unsupported: eKuiper takes them, and the host cannot play them.
        ValueError: a property is not JSON.
    """

    def __init__(self, props: dict[str, Any], name: str = DEFAULT_NAME) -> None:
        props = as_go(props, "the sink's properties")
        self.name = name
        self.require_ack = self._provision(props)
        conf = self._parse_conf(props)
        self.templates = find_templates(props)
        self.send_single: bool = conf.get("sendSingle", False)
        self.omit_if_empty: bool = conf.get("omitIfEmpty", False)
        self.batch_size: int = conf.get("batchSize", 0)
        self.data_field: str = conf.get("dataField", "")
        self.fields: list[str] = conf.get("fields", [])
        self.exclude_fields: list[str] = conf.get("excludeFields", [])
        index = 1 if self.batch_size else 0
        self.transform_op = f"{name}_0_{index}_transform"
        self.encode_op = f"{name}_0_{index + 1}_encode"
        self.writer_op = f"{name}_0_{index + 1}_batchWriter"
        if self.fields and self.exclude_fields:
            raise RuleError("field and excludeFields cannot both be set")
        text = conf.get("dataTemplate", "")
        self.data_template = self._parse(text) if text else None
        self.parsed = {t: self._parse(t) for t in self.templates}
        self._stale = ""  # calculateProps' buffer after a failed template
        self._outputs = 0  # outputs the batch counted
        self._rows: list[bytes] = []  # rows the batch writer holds
        self._last_props: dict[str, str] = {}

    @staticmethod
    def _provision(props: dict[str, Any]) -> bool:
        """The portable sink's own reading of its props (``requireAck``)."""
        values, errors = _decode(props, {"requireAck": _BOOL})
        if errors:
            raise RuleError(_decoding_error(errors))
        return bool(values.get("requireAck", False))

    @staticmethod
    def _parse_conf(props: dict[str, Any]) -> dict[str, Any]:
        """ParseConf: the common sink properties, decoded and checked."""
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
        for key, what in (("lingerInterval", "a batch's linger interval"),
                          ("resendInterval", "a resend interval")):
            found, value = _lookup(props, key)
            if found and value not in (None, 0.0, "", "0", "0s"):
                raise Unsupported(f"{key}: the host does not play {what}; it sends a batch "
                                  "when batchSize outputs came, and never resends.")
        if conf.get("format", "json") not in ("", "json"):
            raise Unsupported(f"format {conf['format']!r}: the host plays eKuiper's json "
                              "format only.")
        for key in ("compression", "encryption"):
            if conf.get(key):
                raise Unsupported(f"{key} {conf[key]!r}: the host does not compress or "
                                  "encrypt what it sends.")
        return conf

    @staticmethod
    def _parse(text: str) -> gotemplate.Template:
        try:
            return gotemplate.parse(text)
        except ParseError as err:
            raise RuleError(str(err)) from None

    @property
    def pending(self) -> int:
        """Rows the batch writer holds until the batch fills."""
        return len(self._rows)

    def messages(self, outputs: Iterable[Any]) -> list[Message]:
        """What eKuiper makes of these rule outputs, in order (see :meth:`feed`);
        all are checked before the first goes in."""
        return [m for rows in [_rows_of(o) for o in outputs] for m in self._feed(rows)]

    def feed(self, output: Any) -> list[Message]:
        """What eKuiper makes of one rule output: the messages it sends (none
        when the output is omitted, or waits in a batch) and the ones it drops.

        Args:
            output: a Row (a dict) or a Collection (a list of dicts).

        Raises:
            ValueError: the output is neither, or not JSON.
            Unsupported: a template uses a printf verb the host does not play.
        """
        return self._feed(_rows_of(output))

    def _feed(self, rows: list[dict[str, Any]]) -> list[Message]:
        if self.batch_size:
            self._outputs += 1
        out: list[Message] = []
        if not (self.omit_if_empty and not rows):
            for item in self._transform(rows):
                if isinstance(item, Message):
                    out.append(item)
                elif self.batch_size:
                    out.extend(self._write(item))
                else:
                    out.append(self._encode(item))
        if self.batch_size and self._outputs >= self.batch_size:
            self._outputs = 0
            if self._rows:
                data = b"[" + b",".join(self._rows) + b"]"
                out.append(Message(data, props=self._last_props))
                self._rows, self._last_props = [], {}
        return out

    # TransformOp
    def _transform(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Sink tuples (``_Tuple``) or the messages dropped on the way."""
        if not self.send_single:
            return [self._tuple(rows, ROWS)]
        return [self._tuple(row, MAP) for row in rows
                if not (self.omit_if_empty and not row)]

    def _tuple(self, data: Any, data_type: str) -> Any:
        try:
            props = self._props(data, data_type)
            result = self._do_transform(data, data_type)
        except _Drop as drop:
            return Message(None, drop.error, self.transform_op)
        if result is None or isinstance(result, (bytes, dict, list)):
            return _Tuple(result, props)
        return Message(None, f"invalid transform result type {sprint(result)}",
                       self.transform_op)

    def _props(self, data: Any, data_type: str) -> dict[str, str]:
        rendered: dict[str, str] = {}
        for text, template in self.parsed.items():
            try:
                rendered[text] = self._stale + template.execute(data, data_type)
            except ExecError as err:
                self._stale += err.partial
                raise _Drop(f"fail to calculate props {text} through data {sprint(data)} "
                            f"with dataTemplate for error {err}") from None
            self._stale = ""
        return rendered

    def _do_transform(self, data: Any, data_type: str) -> Any:
        transformed: Optional[bytes] = None
        if self.data_template is not None:
            try:
                text = self.data_template.execute(data, data_type)
            except ExecError as err:
                raise _Drop(f"fail to encode data {sprint(data)} with dataTemplate for error "
                            f"{err}") from None
            transformed = text.encode("utf-8")
        if not (self.data_field or self.fields or self.exclude_fields):
            return data if transformed is None else transformed
        try:
            selected = self._select(data if transformed is None else transformed)
        except _Drop as drop:
            raise _Drop(f"fail to TransItem data {sprint(data)} for error {drop.error}") from None
        # TransItem selects nothing from an empty list: a template's text goes as it is
        return transformed if selected is _NOTHING else selected

    def _select(self, value: Any) -> Any:
        """TransItem: dataField, then fields or excludeFields."""
        if isinstance(value, bytes):
            try:
                value = go_unmarshal(value)
            except GoJSONError as err:
                raise _Drop(f"fail to decode data {value.decode('utf-8', 'replace')} for "
                            f"error {err}") from None
        if self.data_field:
            if isinstance(value, dict):
                value = value.get(self.data_field)
            elif isinstance(value, list):
                if not value:
                    return _NOTHING
                first = value[0]
                if not isinstance(first, dict):
                    raise ValueError("eKuiper's transform panics on a list whose first item "
                                     f"is not an object: {sprint(value)}.")
                value = first.get(self.data_field)
            else:
                raise _Drop(f"fail to decode data {sprint(value)}")
        if isinstance(value, list):
            if not all(isinstance(v, dict) for v in value):
                raise _Drop(f"unsupported type {sprint(value)}")
            value = [dict(v) for v in value]
        if self.fields:
            if isinstance(value, dict):
                return {f: value.get(f) for f in self.fields}
            if isinstance(value, list):
                return [{f: v.get(f) for f in self.fields} for v in value]
            raise _Drop(f"fail to decode data {sprint(value)} for error unsupported type "
                        f"{sprint(value)}")
        if self.exclude_fields:
            rows = value if isinstance(value, list) else [value]
            if not all(isinstance(r, dict) for r in rows):
                raise _Drop(f"fail to decode data {sprint(value)} for error unsupported type "
                            f"{sprint(value)}")
            for row in rows:
                for f in self.exclude_fields:
                    row.pop(f, None)
        return value

    # EncodeOp
    def _encode(self, item: _Tuple) -> Message:
        if item.data is None:
            return Message(None, "receive unsupported data <nil>", self.encode_op)
        data = item.data if isinstance(item.data, bytes) else go_json(item.data)
        return Message(data, props=item.props)

    # BatchWriterOp with the json writer
    def _write(self, item: _Tuple) -> list[Message]:
        if item.data is None:
            return [Message(None, "unknown data type: <nil>", self.writer_op)]
        if isinstance(item.data, bytes):
            return [Message(None, "unknown data type: *xsql.RawTuple", self.writer_op)]
        self._rows.append(go_json(item.data))
        self._last_props = item.props
        return []


def _rows_of(output: Any) -> list[dict[str, Any]]:
    """A rule output's rows, as Go decodes them.

    Raises:
        ValueError: the output is not a Row or a Collection of JSON values.
    """
    if isinstance(output, dict):
        return [as_go(output, "the rule output")]
    if isinstance(output, (list, tuple)) and all(isinstance(r, dict) for r in output):
        return as_go(output, "the rule output")
    raise ValueError(f"A rule output is a row (an object) or a collection (a list of "
                     f"objects), got {describe_value(output)}.")


@attrs.frozen
class _Tuple:
    """A sink tuple between eKuiper's operators: a row, a list of rows, raw
    bytes (a dataTemplate's text), or None; and its rendered props."""

    data: Any
    props: dict[str, str]


class _Drop(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


_NOTHING = object()  # TransItem's "not selected"
