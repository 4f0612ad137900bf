"""eKuiper's sink pipeline in the host: the sink conf, rule outputs, Go's JSON decoding.

The corpus lines (tests/dev/test_golden_sink.py) hold the pipeline to
eKuiper's answers; these cover what they do not: the conf's errors, state
across calls, and what the host refuses.
"""

import pytest

from kuiperlite.dev.gotemplate_values import Unsupported
from kuiperlite.dev.sinkrule import RuleError, SinkRule
from kuiperlite.dev.sinkrule_conf import find_templates
from kuiperlite.dev.sinkrule_values import GoJSONError, as_go, go_unmarshal


def sent(rule, *outputs):
    return [m.data for output in outputs for m in rule.feed(output) if not m.dropped]


@pytest.mark.parametrize(("props", "error"), [
    ({"requireAck": "yes"}, "1 error(s) decoding:\n\n* 'requireAck' expected type 'bool', got "
                            "unconvertible type 'string', value: 'yes'"),
    ({"sendSingle": 1, "batchSize": "2"},
     "fail to parse sink configuration: read properties map[batchSize:2 sendSingle:1] fail "
     "with error: 2 error(s) decoding:\n\n* 'batchSize' expected type 'int', got unconvertible "
     "type 'string', value: '2'\n* 'sendSingle' expected type 'bool', got unconvertible type "
     "'float64', value: '1'"),
    ({"fields": "a"}, "fail to parse sink configuration: read properties map[fields:a] fail "
                      "with error: 1 error(s) decoding:\n\n* 'fields': source data must be an "
                      "array or slice, got string"),
    ({"fields": ["a", 2]}, "fail to parse sink configuration: read properties map[fields:[a 2]] "
                           "fail with error: 1 error(s) decoding:\n\n* 'fields[1]' expected "
                           "type 'string', got unconvertible type 'float64', value: '2'"),
    ({"enableCache": "no"}, "fail to parse sink configuration: read properties "
                            "map[enableCache:no] to cache conf fail with error: 1 error(s) "
                            "decoding:\n\n* 'enableCache' expected type 'bool', got "
                            "unconvertible type 'string', value: 'no'"),
    ({"batchSize": -3}, "fail to parse sink configuration: invalid batchSize -3"),
    ({"fields": ["a"], "excludeFields": ["b"]}, "field and excludeFields cannot both be set"),
    ({"topic": "{{.a}", "key": "{{if .a}}"}, "template: sink:1: unexpected EOF"),
])
def test_properties_ekuiper_refuses_fail_the_rule_with_its_text(props, error):
    with pytest.raises(RuleError) as caught:
        SinkRule(props)
    assert caught.value.text == error
    assert str(caught.value).startswith("eKuiper refuses a rule with this sink's properties: ")


def test_properties_are_read_as_mapstructure_reads_them():
    rule = SinkRule({"SendSingle": True, "BATCHSIZE": 2.7, "requireack": True, "fields": None})
    assert (rule.send_single, rule.batch_size, rule.require_ack) == (True, 2, True)
    assert rule.transform_op == "mysink_0_1_transform"
    assert SinkRule({"tableDataField": "d", "sendSingle": True}).feed({"d": {"x": 1}})[0].data \
        == b'{"x":1}'


@pytest.mark.parametrize(("props", "words"), [
    ({"format": "protobuf"}, "json format only"),
    ({"batchSize": 2, "lingerInterval": "1s"}, "lingerInterval"),
    ({"enableCache": True, "resendInterval": 100}, "resendInterval"),
    ({"compression": "gzip"}, "compress"),
    ({"encryption": "aes"}, "encrypt"),
    ({"dataTemplate": "{{range .}}{{end}}"}, "{{range}}"),
])
def test_what_the_host_does_not_play_is_refused(props, words):
    with pytest.raises(Unsupported) as caught:
        SinkRule(props)
    assert words in str(caught.value)


def test_templates_are_found_as_ekuiper_finds_them():
    props = {"a": "t/{{.x}}", "b": {"c": "{{.y}}", "d": {"e": "{{.x}}"}}, "l": ["{{.z}}"],
             "multi": "{{.a\n}}", "plain": "{{", "n": 1}
    assert find_templates(props) == ["t/{{.x}}", "{{.y}}", "{{.x}}"]


def test_a_batch_fills_across_calls_and_counts_outputs_not_rows():
    rule = SinkRule({"batchSize": 3, "sendSingle": True, "omitIfEmpty": True})
    assert sent(rule, [{"n": 1}, {"n": 2}], {}) == []
    assert rule.pending == 2
    assert sent(rule, {"n": 3}) == [b'[{"n":1},{"n":2},{"n":3}]']
    assert rule.pending == 0
    assert sent(rule, {}, {}, {}) == []  # the batch ends with nothing in it: nothing is sent


def test_a_failed_template_leaves_its_text_for_the_next_message():
    rule = SinkRule({"sendSingle": True, "topic": "[{{.a}}{{.a.b}}]"})
    dropped = rule.feed({"a": "s"})[0]
    assert dropped.dropped and dropped.op == "mysink_0_0_transform"
    assert rule.feed({"a": {"b": 1}})[0].props == {"[{{.a}}{{.a.b}}]": "[s[map[b:1]1]"}
    assert rule.feed({"a": {"b": 2}})[0].props == {"[{{.a}}{{.a.b}}]": "[map[b:2]2]"}


def test_fields_and_data_field_select_from_a_template_and_a_collection():
    rule = SinkRule({"dataTemplate": '{"rows": [{"a": 1, "b": 2}], "n": {{len .}}}',
                     "dataField": "rows", "excludeFields": ["b"]})
    assert sent(rule, [{"x": 1}, {"x": 2}]) == [b'[{"a":1}]']
    empty = SinkRule({"dataTemplate": "[]", "dataField": "d"})
    assert sent(empty, {"a": 1}) == [b"[]"]  # nothing to select: the text goes as it is
    missing = SinkRule({"sendSingle": True, "dataField": "nope"})
    assert [(m.error, m.op) for m in missing.feed({"a": 1})] == [
        ("receive unsupported data <nil>", "mysink_0_1_encode")]
    batched = SinkRule({"sendSingle": True, "dataField": "nope", "batchSize": 1})
    assert [(m.error, m.op) for m in batched.feed({"a": 1})] == [
        ("unknown data type: <nil>", "mysink_0_2_batchWriter")]
    selected = SinkRule({"fields": ["a"], "dataField": "d", "sendSingle": True})
    assert [m.error for m in selected.feed({"d": 5})] == [
        "fail to TransItem data map[d:5] for error fail to decode data 5 for error unsupported "
        "type 5"]


def test_outputs_are_taken_as_go_decodes_json():
    rule = SinkRule({"sendSingle": True, "topic": "{{.n}}/{{.s}}"})
    message = rule.feed({"n": 1000000, "s": "a\ud800b"})[0]
    assert message.props == {"{{.n}}/{{.s}}": "1e+06/a\ufffdb"}
    assert message.data == '{"n":1000000,"s":"a\ufffdb"}'.encode()
    assert as_go({"a": (1, True, None)}) == {"a": [1.0, True, None]}


@pytest.mark.parametrize("output", [1, "text", None, [1, 2], [{"a": 1}, 2], {"a": {1, 2}},
                                    {1: "a"}, {"a": float("nan")}, {"a": 10 ** 400}])
def test_an_output_that_is_no_row_is_refused(output):
    with pytest.raises(ValueError) as caught:
        SinkRule({}).feed(output)
    assert "row" in str(caught.value) or "JSON" in str(caught.value) \
        or "float64" in str(caught.value)


@pytest.mark.parametrize(("data", "error"), [
    (b"", "unexpected end of JSON input"),
    (b'{"a": 1', "unexpected end of JSON input"),
    (b"a=1", "invalid character 'a' looking for beginning of value"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
    (b"{1: 2}", "invalid character '1' looking for beginning of object key string"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b"1 2", "invalid character '2' after top-level value"),
    (b"-x", "invalid character 'x' in numeric literal"),
    (b"1.e3", "invalid character 'e' after decimal point in numeric literal"),
    # At the end Go's scanner reads a space: a number or literal cut short fails on it.
    (b"1e+", "invalid character ' ' in exponent of numeric literal"),
    (b"1ex", "invalid character 'x' in exponent of numeric literal"),
    (b"tru", "invalid character ' ' in literal true (expecting 'e')"),
    (b'"\\u12', "invalid character ' ' in \\u hexadecimal character escape"),
    (b'"abc', "unexpected end of JSON input"),
    (b"trux", "invalid character 'x' in literal true (expecting 'e')"),
    (b"nul1", "invalid character '1' in literal null (expecting 'l')"),
    (b'"a\tb"', "invalid character '\\t' in string literal"),
    (b'"\\x"', "invalid character 'x' in string escape code"),
    (b'"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b"1e999", "json: cannot unmarshal number 1e999 into Go value of type float64"),
])
def test_go_unmarshal_fails_with_gos_text(data, error):
    with pytest.raises(GoJSONError) as caught:
        go_unmarshal(data)
    assert str(caught.value) == error


def test_go_unmarshal_decodes_as_go():
    assert go_unmarshal(b' {"a": [1, 2.5e1, "\\ud800", null], "a": true} ') == {"a": True}
    assert go_unmarshal(b'[{"n": 9007199254740993}]') == [{"n": 9007199254740992.0}]
