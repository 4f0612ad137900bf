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

Its parts: :mod:`~kuiperlite.dev.sinkrule_conf` (the properties eKuiper
reads, decoded and checked), :mod:`~kuiperlite.dev.sinkrule_values` (rule
outputs as Go decodes them); this module holds the operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

import attrs

from ..declare.hints import describe_value
from . import gotemplate
from .gotemplate_values import MAP, ROWS, ExecError, ParseError, sprint
from .gowire import go_json
from .sinkrule_conf import RuleError as RuleError
from .sinkrule_conf import find_templates, parse_conf, require_ack
from .sinkrule_values import GoJSONError, as_go, go_unmarshal

DEFAULT_NAME = "mysink"  # the action name in eKuiper's op names, when none is given

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
        self.require_ack = require_ack(props)
        conf = parse_conf(props)
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
        rows: list[dict[str, Any]] = as_go(output, "the rule output")
        return rows
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
