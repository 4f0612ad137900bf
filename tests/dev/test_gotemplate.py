"""Go's text/template as the host plays it: parse, execute, print, with Go's texts."""

import pytest

from kuiperlite.dev.gotemplate import parse
from kuiperlite.dev.gotemplate_values import (
    MAP,
    ROWS,
    ExecError,
    ParseError,
    Unsupported,
    go_float_fixed,
    sprint,
)


def run(text, data, data_type=MAP):
    return parse(text).execute(data, data_type)


@pytest.mark.parametrize(("text", "data", "out"), [
    ("t/{{.a.b}}", {"a": {"b": "x"}}, "t/x"),
    ("{{.nope}}|{{.nope.deeper}}|{{.z}}", {"z": None}, "<no value>|<no value>|<no value>"),
    ("{{.f}} {{.g}} {{.h}} {{.i}}", {"f": 21.5, "g": 1e6, "h": 1e-5, "i": -0.0},
     "21.5 1e+06 1e-05 -0"),
    ("{{.}}", {"m": {"b": [1.0, "a", None], "a": True}}, "map[m:map[a:true b:[1 a <nil>]]]"),
    ("{{.}}", [{"a": 1.0}, {"a": 2.0}], "[map[a:1] map[a:2]]"),
    ("  {{- .a -}}  \n x", {"a": "v"}, "vx"),
    ("a{{/* a comment */}}b{{- /* trimmed */ -}} c", {}, "abc"),
    ("{{if .a}}a{{else if .b}}b{{else}}c{{end}}", {"a": 0.0, "b": "x"}, "b"),
    ("{{if .l}}full{{else}}empty{{end}}", {"l": []}, "empty"),
    ("{{.s | upper}}{{lower \"ÀB\"}}", {"s": "ab"}, "ABàb"),
    ("{{.nope | default \"d\"}} {{default \"d\" .s}}", {"s": "x"}, "d x"),
    ("{{toString .n}} {{toString .z}}", {"n": 1e6, "z": None}, "1e+06 <nil>"),
    ("{{json .}}", {"s": "<&>", "n": 1.0}, '{"n":1,"s":"\\u003c\\u0026\\u003e"}'),
    ("{{toJson .z}}", {"z": None}, "null"),
    ("{{base64 .s}} {{base64 .n}} {{base64 .b}} {{base64 .m}} {{base64 3}}",
     {"s": "hi", "n": 1e21, "b": True, "m": {"a": 1.0}},
     "aGk= MTAwMDAwMDAwMDAwMDAwMDAwMDAwMA== dHJ1ZQ== eyJhIjoxfQ== Mw=="),
    ("{{prop \"key\"}}", {}, "key"),
    ('{{printf "%v|%s|%d|%%" .n .s .n}}', {"n": 3.0, "s": "x"}, "3|x|%!d(float64=3)|%"),
    ('{{printf "%s %d" .m .z}}', {"m": {"k": 1.0}, "z": None},
     "map[k:%!s(float64=1)] %!d(<nil>)"),
    ('{{printf "%v %v"}}{{printf "x" 1 .z "s"}}', {"z": None},
     "%!v(MISSING) %!v(MISSING)x%!(EXTRA int=1, <nil>, string=s)"),
    ('{{index . "a b"}} {{index .l 1}} {{index .m "k"}}',
     {"a b": 1.0, "l": ["x", "y"], "m": {}}, "1 y <no value>"),
    ("{{(index . 1).a}} {{len .}} {{len (index . 0).s}}", [{"s": "héllo"}, {"a": 2.0}],
     "2 2 6"),
    ("{{3}} {{-2}} {{1.5}} {{1e3}} {{true}}", {}, "3 -2 1.5 1000 true"),
    ("{{.a | }}", {"a": 1.0}, "1"),  # Go takes a pipe with nothing after it
])
def test_execute_prints_as_go(text, data, out):
    data_type = ROWS if isinstance(data, list) else MAP
    assert run(text, data, data_type) == out


@pytest.mark.parametrize(("text", "data", "error"), [
    ("{{.a.b}}", {"a": "s"}, 'template: sink:1:4: executing "sink" at <.a.b>: '
                             "can't evaluate field b in type interface {}"),
    ("{{.a.b}}", {"a": None}, 'template: sink:1:4: executing "sink" at <.a.b>: '
                              "nil pointer evaluating interface {}.b"),
    ("x\n  {{.a}}", [{"a": 1.0}], 'template: sink:2:4: executing "sink" at <.a>: '
                                  "can't evaluate field a in type []map[string]interface {}"),
    ("{{base64 .z}}", {"z": None}, 'template: sink:1:2: executing "sink" at <base64 .z>: '
                                   "error calling base64: based64 error for nil"),
    ("{{base64 .l}}", {"l": []}, 'template: sink:1:2: executing "sink" at <base64 .l>: '
                                 "error calling base64: Unsupported data type slice for "
                                 "base64 function."),
    ("{{upper .n}}", {"n": 1.0}, 'template: sink:1:8: executing "sink" at <.n>: '
                                 "wrong type for value; expected string; got float64"),
    ("{{upper .z}}", {"z": None}, 'template: sink:1:8: executing "sink" at <.z>: '
                                  "wrong type for value; expected string; got interface {}"),
    ("{{.z | upper}}", {"z": None}, 'template: sink:1:7: executing "sink" at <upper>: '
                                    "invalid value; expected string"),
    ("{{upper 3}}", {}, 'template: sink:1:8: executing "sink" at <3>: '
                        "expected string; found 3"),
    ("{{upper}}", {}, 'template: sink:1:2: executing "sink" at <upper>: '
                      "wrong number of args for upper: want 1 got 0"),
    ("{{default}}", {}, 'template: sink:1:2: executing "sink" at <default>: '
                        "wrong number of args for default: want at least 1 got 0"),
    ("{{.a 1}}", {"a": 1.0}, 'template: sink:1:2: executing "sink" at <.a>: '
                             "a is not a method but has arguments"),
    ("{{nil}}", {}, 'template: sink:1:2: executing "sink" at <nil>: nil is not a command'),
    ("{{1 2}}", {}, 'template: sink:1:2: executing "sink" at <1>: '
                    "can't give argument to non-function 1"),
    ("{{index .l 2}}", {"l": [1.0, 2.0]}, 'template: sink:1:2: executing "sink" at '
                                          "<index .l 2>: error calling index: reflect: slice "
                                          "index out of range"),
    ("{{index .l 3}}", {"l": [1.0, 2.0]}, 'template: sink:1:2: executing "sink" at '
                                          "<index .l 3>: error calling index: index out of "
                                          "range: 3"),
    ("{{index .l .f}}", {"l": [1.0], "f": 0.0}, 'template: sink:1:2: executing "sink" at '
                                                "<index .l .f>: error calling index: cannot "
                                                "index slice/array with type float64"),
    ("{{index . 0}}", {}, 'template: sink:1:2: executing "sink" at <index . 0>: error '
                          "calling index: value has type int; should be string"),
    ('{{index .a "b"}}', {"a": None}, 'template: sink:1:2: executing "sink" at '
                                      '<index .a "b">: error calling index: index of untyped '
                                      "nil"),
    ("{{len .z}}", {"z": None}, 'template: sink:1:2: executing "sink" at <len .z>: error '
                                "calling len: len of nil pointer"),
    ("{{len .n}}", {"n": 1.0}, 'template: sink:1:2: executing "sink" at <len .n>: error '
                               "calling len: len of type float64"),
])
def test_execution_errors_are_gos(text, data, error):
    data_type = ROWS if isinstance(data, list) else MAP
    with pytest.raises(ExecError) as caught:
        run(text, data, data_type)
    assert str(caught.value) == error


def test_a_failed_execution_keeps_what_it_wrote():
    with pytest.raises(ExecError) as caught:
        run("pre-{{.a}}-{{.a.b}}-post", {"a": 1.0})
    assert caught.value.partial == "pre-1-"


@pytest.mark.parametrize(("text", "error"), [
    ("{{if .a}}x", "template: sink:1: unexpected EOF"),
    ("a\n{{if .a}}\nx\n", "template: sink:4: unexpected EOF"),
    ("{{.a", "template: sink:1: unclosed action"),
    ("{{.a\n", "template: sink:2: unclosed action started at sink:1"),
    ("{{end}}", "template: sink:1: unexpected {{end}}"),
    ("{{else}}", "template: sink:1: unexpected {{else}}"),
    ("{{}}", "template: sink:1: missing value for command"),
    ("{{if}}{{end}}", "template: sink:1: missing value for if"),
    ("{{nosuch .a}}", 'template: sink:1: function "nosuch" not defined'),
    ("{{.a | 1}}", "template: sink:1: non executable command in pipeline stage 2"),
    ('{{"a".x}}', 'template: sink:1: unexpected . after term "\\"a\\""'),
    ("{{.a..b}}", "template: sink:1: unexpected <.> in operand"),
    ("{{.a-b}}", "template: sink:1: bad character U+002D '-'"),
    ("{{(.a}}", "template: sink:1: unclosed left paren"),
    ("{{.a)}}", "template: sink:1: unexpected right paren"),
    ('{{"abc}}', "template: sink:1: unterminated quoted string"),
    ("{{/* x }}", "template: sink:1: unclosed comment"),
    ("{{/* x */ }}", "template: sink:1: comment ends before closing delimiter"),
    ("{{.a ~}}", 'template: sink:1: unexpected "~" in operand'),
])
def test_parse_errors_are_gos(text, error):
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert str(caught.value) == error


@pytest.mark.parametrize(("text", "names"), [
    ("{{range .l}}x{{end}}", "{{range}}"),
    ("{{with .a}}x{{end}}", "{{with}}"),
    ("{{define \"x\"}}{{end}}", "{{define}}"),
    ("{{$x := .a}}", "variables"),
    ("{{eq .a 1}}", "the function 'eq'"),
    ("{{'a'}}", "character constants"),
    ("{{0x10}}", "decimal numbers"),
])
def test_what_the_host_does_not_play_is_refused_at_parse(text, names):
    with pytest.raises(Unsupported, match="do not support|support decimal") as caught:
        parse(text)
    assert names in str(caught.value)


def test_a_printf_verb_the_host_does_not_play_is_refused():
    with pytest.raises(Unsupported, match="%v, %s and %d"):
        run('{{printf "%5.2f" .n}}', {"n": 1.0})


@pytest.mark.parametrize(("value", "shown"), [
    (1e6, "1000000"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"),
    (-0.0, "-0"), (123.25, "123.25"), (0.1, "0.1"), (5e-324, "0." + "0" * 323 + "5"),
])
def test_go_float_fixed(value, shown):
    assert go_float_fixed(value) == shown


def test_sprint_prints_as_fmt():
    assert sprint({"b": [1.0, None], "a": "s", "c": {}}) == "map[a:s b:[1 <nil>] c:map[]]"
    assert sprint([]) == "[]"
    assert sprint(None) == "<nil>"
