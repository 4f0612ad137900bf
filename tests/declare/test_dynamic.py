"""Dynamic properties: templates parsed at start, rendered against each record.

The expected texts of the rendering tests are what Go's text/template prints
for the same template and record, as eKuiper renders its own sinks' dynamic
properties (internal/topo/node/transform_op.go, calculateProps).
"""

import logging
from typing import Any, Literal

import pytest

from kuiperlite import ConfigError, Dynamic, sink
from kuiperlite.declare.dynamic import NO_VALUE, RenderError, Template, go_float, render
from kuiperlite.declare.symbols import SinkSpec, marks_of, read
from kuiperlite.serve.adapters import SinkAdapter

from conftest import unique, wait_until


@sink
def publish(data: Any, *, topic: Dynamic[str] = "", qos: Dynamic[int] = 0,
            mode: Dynamic[Literal["a", "b"]] = "a", retain: Dynamic[bool] = False) -> None:
    pass


def spec(func=publish) -> SinkSpec:
    (mark,) = marks_of(func)
    symbol = read(func, mark)
    assert isinstance(symbol, SinkSpec)
    return symbol


def rendered(template: str, record: Any, name: str = "topic") -> Any:
    """The value the sink's parameter gets for one record."""
    value = spec().bind_config({name: template})[name]
    assert isinstance(value, Template)
    return render([value], record, "sink 'publish'")[name]


# ------------------------------------------------------------- rendering


@pytest.mark.parametrize(("template", "record", "expected"), [
    ("devices/{{.id}}", {"id": "d7"}, "devices/d7"),
    ("{{ .id }}", {"id": "d7"}, "d7"),
    ("{{\t.id\n}}", {"id": "d7"}, "d7"),
    ("{{.a.b.c}}", {"a": {"b": {"c": "deep"}}}, "deep"),
    ("{{.site}}/{{.id}}-{{.id}}", {"id": 1, "site": "b1"}, "b1/1-1"),
    ("x }} {{.id}} {", {"id": "d"}, "x }} d {"),
    ("{{.é_1}}", {"é_1": "u"}, "u"),
    ("{{.ok}}", {"ok": True}, "true"),
    ("{{.empty}}", {"empty": ""}, ""),
])
def test_field_paths_and_literal_text(template, record, expected):
    assert rendered(template, record) == expected


@pytest.mark.parametrize(("template", "record"), [
    ("{{.id}}", {}), ("{{.id}}", {"id": None}), ("{{.a.b}}", {}), ("{{.a.b}}", {"a": {}}),
    ("{{.ID}}", {"id": 1}),
])
def test_a_missing_or_null_field_renders_no_value_as_go_does(template, record):
    assert rendered(template, record) == NO_VALUE == "<no value>"


# Go's fmt.Sprint of each float64, as text/template prints it.
GO_FLOATS = [
    (0.0, "0"), (3.0, "3"), (-1.0, "-1"), (3.5, "3.5"), (0.1, "0.1"), (21.5, "21.5"),
    (0.0001, "0.0001"), (0.00012345, "0.00012345"), (0.00001, "1e-05"), (-2.5e-7, "-2.5e-07"),
    (999999.5, "999999.5"), (123456.789, "123456.789"), (1e6, "1e+06"),
    (1234567.5, "1.2345675e+06"), (1e20, "1e+20"), (1e21, "1e+21"), (1.5e300, "1.5e+300"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (0.30000000000000004, "0.30000000000000004"), (1714557600000.5, "1.7145576000005e+12"),
]


@pytest.mark.parametrize(("value", "expected"), GO_FLOATS)
def test_floats_render_as_go_prints_a_float64(value, expected):
    assert go_float(value) == expected
    assert rendered("{{.v}}", {"v": value}) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (3, "3"), (-42, "-42"), (1000000, "1000000"), (1714557600000, "1714557600000")])
def test_integers_render_as_their_digits(value, expected):
    # eKuiper holds the numbers of a stream without a schema as float64, so
    # its own sinks print 1000000 as 1e+06; an integer field prints as here.
    assert rendered("{{.v}}", {"v": value}) == expected


@pytest.mark.parametrize(("template", "record"), [
    ("{{.a.b}}", {"a": None}), ("{{.a.b}}", {"a": 3}), ("{{.a.b.c}}", {"a": {"b": "s"}}),
    ("{{.a}}", {"a": {"k": 1}}), ("{{.a}}", {"a": [1]}),
])
def test_a_path_below_a_non_object_or_to_an_object_is_an_error(template, record):
    with pytest.raises(RenderError) as caught:
        rendered(template, record)
    assert template in str(caught.value)


@pytest.mark.parametrize(("template", "part"), [
    ("{{.}}", "'{{.}}'"),
    ("{{ . }}", "'{{ . }}'"),
    ('t/{{index . 0 "id"}}', "'{{index . 0 \"id\"}}'"),
    ("{{.id | upper}}", "'{{.id | upper}}'"),
    ("{{- .id -}}", "'{{- .id -}}'"),
    ("{{if .id}}x{{end}}", "'{{if .id}}'"),
    ("{{range .ids}}", "'{{range .ids}}'"),
    ("{{/* note */}}", "'{{/* note */}}'"),
    ("{{$x := .id}}", "'{{$x := .id}}'"),
    ("{{.1a}}", "'{{.1a}}'"),
    ("{{.a-b}}", "'{{.a-b}}'"),
    ("{{}}", "'{{}}'"),
])
def test_other_template_syntax_fails_the_start_naming_parameter_and_part(template, part):
    with pytest.raises(ConfigError) as caught:
        spec().bind_config({"topic": template})
    assert part in str(caught.value)


# ------------------------------------------------------- values and hints


def test_a_value_without_braces_is_a_constant_converted_once_at_start():
    kwargs = spec().bind_config({"topic": "fixed", "qos": "2", "retain": "true", "mode": "b"})
    assert kwargs == {"topic": "fixed", "qos": 2, "retain": True, "mode": "b"}
    with pytest.raises(ConfigError, match="'qos'"):
        spec().bind_config({"qos": "high"})


def test_the_rendered_text_is_converted_by_the_hint():
    assert rendered("{{.q}}", {"q": 1}, "qos") == 1
    assert rendered("{{.q}}", {"q": "2"}, "qos") == 2
    assert rendered("{{.r}}", {"r": True}, "retain") is True
    assert rendered("{{.m}}", {"m": "b"}, "mode") == "b"
    with pytest.raises(RenderError, match="'1.5'"):
        rendered("{{.q}}", {"q": 1.5}, "qos")
    with pytest.raises(RenderError, match="'<no value>'"):
        rendered("{{.q}}", {}, "qos")
    with pytest.raises(RenderError, match="'c'"):
        rendered("{{.m}}", {"m": "c"}, "mode")


def test_a_batch_renders_against_its_last_record():
    # eKuiper's own sinks take a batch's dynamic properties from its last
    # row (internal/topo/node/batch_writer_op.go).
    assert rendered("t/{{.id}}", [{"id": 1}, {"id": 2}]) == "t/2"


@pytest.mark.parametrize(("payload", "noun"), [
    ([], "batch"), ("text", "'text'"), (b"a,b", "bytes"), ([{"id": 1}, 7], "7"),
])
def test_a_payload_without_a_record_is_an_error(payload, noun):
    with pytest.raises(RenderError, match=noun):
        rendered("t/{{.id}}", payload)


# ----------------------------------------------------------- the adapter


def adapter_of(func, config):
    symbol = spec(func)
    return SinkAdapter(symbol, symbol.bind_config(config), rule_id="r", op_id="o")


def test_the_sink_gets_each_record_s_values_and_the_ack_names_a_failure(caplog):
    got = []

    @sink
    def k(data: Any, *, topic: Dynamic[str], qos: Dynamic[int] = 0, tag: str = "") -> None:
        got.append((topic, qos, tag))

    adapter = adapter_of(k, {"topic": "d/{{.id}}", "qos": "{{.q}}", "tag": "{{.id}}"})
    assert adapter.collect(b'{"id":"a","q":1}') is None
    assert adapter.collect(b'[{"id":"a","q":1},{"id":"b","q":2}]') is None
    with caplog.at_level(logging.ERROR, logger="kuiperlite"):
        error = adapter.collect(b'{"id":"c","q":"x"}')
    assert error is not None and "'x'" in error
    assert error in caplog.text  # logged too, for a rule without requireAck
    assert "'<no value>'" in adapter.collect(b'{"id":"d"}')
    # A parameter that is not Dynamic keeps its text as it is.
    assert got == [("d/a", 1, "{{.id}}"), ("d/b", 2, "{{.id}}")]


def test_constants_leave_the_sink_s_keyword_arguments_as_they_are():
    got = []

    @sink
    def k(data: Any, *, topic: Dynamic[str], qos: Dynamic[int] = 0) -> None:
        got.append((topic, qos))

    adapter = adapter_of(k, {"topic": "fixed", "qos": 1})
    assert adapter.collect(b'"not a record"') is None  # nothing to render: any payload goes
    assert got == [("fixed", 1)]


def test_a_default_template_renders_per_record():
    got = []

    @sink
    async def k(data: Any, *, topic: Dynamic[str] = "alerts/{{.sensor}}") -> None:
        got.append(topic)

    adapter = adapter_of(k, {})
    assert adapter.collect(b'{"sensor":"lab"}') is None
    assert got == ["alerts/lab"]


@pytest.mark.parametrize("hint", [str, bytes])
def test_a_sink_taking_the_raw_payload_renders_from_its_json(hint):
    got = []

    def k(data, *, path: Dynamic[str]) -> None:
        got.append((path, data))

    k.__annotations__["data"] = hint
    adapter = adapter_of(sink(k), {"path": "out/{{.id}}"})
    assert adapter.collect(b'{"id":7}') is None
    assert "bytes" in adapter.collect(b"a,b")
    assert got == [("out/7", b'{"id":7}' if hint is bytes else '{"id":7}')]


# ---------------------------------------------- through the embedded host


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("dynamic")


def test_each_record_gets_its_values_and_its_ack(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    rule = unique("r")
    config = {"requireAck": True, "topic": "devices/{{.id}}/{{ .meta.site }}", "qos": "{{.q}}",
              "retain": "true"}
    with host.start_sink("publish", rule=rule, config=config) as snk:
        assert snk.send({"id": 7, "meta": {"site": "b1"}, "q": 1}) is None
        assert snk.send({"id": "x", "q": 2.0}) is None
        assert "'high'" in snk.send({"id": 8, "q": "high"})
        assert "{{.meta.site}}" in snk.send({"id": 9, "meta": None})
        assert snk.send({"id": 10, "q": 0, "bad": True}) == (
            "ConnectionError: broker refused devices/10/<no value>")
        assert "bytes" in snk.send(b"not json")
    wait_until(lambda: host.process.printed(f"PUBLISH {rule} devices/x/<no value> 2 True"),
               message="the second record")
    assert host.process.printed(f"PUBLISH {rule} devices/7/b1 1 True")
    assert host.process.poll() is None


def test_a_batch_is_one_call_with_its_last_record_s_values(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    rule = unique("r")
    with host.start_sink("publish", rule=rule, config={"requireAck": True,
                                                       "topic": "t/{{.id}}"}) as snk:
        assert snk.send([{"id": 1}, {"id": 2}, {"id": 3}]) is None
        assert "batch" in snk.send([])
    wait_until(lambda: host.process.printed(f"PUBLISH {rule} t/3 0 False"), message="the batch")
    assert not host.process.printed(f"PUBLISH {rule} t/1")


def test_without_require_ack_a_failed_render_is_logged_and_the_sink_goes_on(kuiperlite_host,
                                                                            plugin):
    host = kuiperlite_host(plugin)
    rule = unique("r")
    with host.start_sink("publish", rule=rule, config={"topic": "t/{{.a.b}}"}) as snk:
        assert snk.send({"a": 5}) is None  # no ack without requireAck
        assert snk.send({"a": {"b": "ok"}}) is None
        wait_until(lambda: host.process.printed(f"PUBLISH {rule} t/ok"), message="the good one")
    assert host.process.printed("{{.a.b}}")  # the render's error, in the plugin's log


def test_unsupported_syntax_fails_the_start_and_the_plugin_goes_on(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with pytest.raises(Exception, match=r"'\{\{\.id \| upper\}\}'"):
        host.start_sink("publish", config={"topic": "t/{{.id | upper}}"})
    with host.start_sink("publish", rule=unique("r"), config={"requireAck": True,
                                                              "topic": "fixed"}) as snk:
        assert snk.send({"id": 1}) is None


def test_async_and_raw_text_sinks_render_too(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.start_sink("alerts", rule=unique("r"), config={"requireAck": True}) as snk:
        assert snk.send({"sensor": "lab", "value": 26.5}) is None
    with host.start_sink("lines", rule=unique("r"), config={"requireAck": True,
                                                            "path": "out/{{.id}}.txt"}) as snk:
        assert snk.send({"id": 4}) is None
    wait_until(lambda: host.process.printed("ALERT lab reads 26.5"), message="the alert")
    wait_until(lambda: host.process.printed('LINES out/4.txt {"id":4}'), message="the line")
