"""eKuiper's SQL parser beyond the corpus: the statements and errors its code gives
for what tests/golden does not cover, and how eKuiper reads a function's replies
(tests/golden/reply.jsonl, for Validate and IsAggregate).

tests/dev/test_golden_validate.py holds the parser to eKuiper's own answers.
"""

import pytest

from kuiperlite.dev import gojson_fmt, gowire, sql, sql_nodes, sql_tokens
from kuiperlite.serve import adapters

import golden_corpus

X = gowire.field("x")


def args_of(statement, functions=("f",), **options):
    """The arguments of each Validate the statement sends."""
    outcome = sql.requests(statement, functions, **options)
    assert outcome.error is None, outcome.error
    return [r.args for r in outcome.requests if r.func == "Validate"]


def error_of(statement, functions=("f",), **options):
    return sql.requests(statement, functions, **options).error


def test_the_token_numbers_are_the_ones_the_wire_uses():
    assert {op: getattr(sql_tokens, name) for op, name in [
        ("+", "ADD"), ("-", "SUB"), ("*", "MUL"), ("/", "DIV"), ("%", "MOD"), ("AND", "AND"),
        ("OR", "OR"), ("=", "EQ"), ("!=", "NEQ"), ("<", "LT"), ("<=", "LTE"), (">", "GT"),
        (">=", "GTE"), ("->", "ARROW")]} == gowire.OPERATORS
    assert (sql_tokens.ASTERISK, sql_tokens.SS) == (gowire.ASTERISK, 83)
    # what the plugin side takes for a condition
    assert sql_tokens.CONDITIONS == adapters.CONDITIONS


@pytest.mark.parametrize(("expr", "built"), [
    ("a OR b AND c", gowire.binary(gowire.field("a"), "OR",
                                   gowire.binary(gowire.field("b"), "AND", gowire.field("c")))),
    ("x - 1 - 2", gowire.binary(gowire.binary(X, "-", gowire.literal(1)), "-",
                                gowire.literal(2))),
    ("x -1", gowire.binary(X, "-", gowire.literal(1))),
    ("x = 1 + 2", gowire.binary(X, "=", gowire.binary(gowire.literal(1), "+",
                                                      gowire.literal(2)))),
    ("- 3", gowire.literal(-3)),
    ("-.5", gowire.literal(-0.5)),
    (".5", gowire.literal(0.5)),
    ("9223372036854775808", gowire.literal(2 ** 63 - 1)),
    ("-9223372036854775809", gowire.literal(-2 ** 63)),
    ("'a\\nb\\x41\\u00e9'", gowire.literal("a\nbA\u00e9")),
    ("`a.b`", gowire.field("a.b")),
    ("x /* a comment */ + 1", gowire.binary(X, "+", gowire.literal(1))),
    ("x != 1", gowire.binary(X, "!=", gowire.literal(1))),
    ("x ! 1", gowire.binary(X, "=", gowire.literal(1))),  # a lone ! is =
    ("a.b.c", gowire.operation(gowire.field("b", "a"), sql_tokens.ARROW, gowire.json_field("c"))),
    ("a[]", gowire.operation(gowire.field("a"), sql_tokens.SUBSET, gowire.colon(
        gowire.literal(0), gowire.literal(gowire.MIN_INT32)))),
    ("a[:2]", gowire.operation(gowire.field("a"), sql_tokens.SUBSET, gowire.colon(
        gowire.literal(0), gowire.literal(2)))),
    ("a[1:-1]", gowire.operation(gowire.field("a"), sql_tokens.SUBSET, gowire.colon(
        gowire.literal(1), gowire.literal(-1)))),
    ("a[x]", gowire.operation(gowire.field("a"), sql_tokens.SUBSET, gowire.index(X))),
    ("x NOT IN (1)", gowire.operation(X, sql_tokens.NOTIN, gowire.value_set([gowire.literal(1)]))),
    ("x IN y", gowire.operation(X, sql_tokens.IN, gowire.field("y"))),
    ("x NOT BETWEEN 1 AND 2", gowire.operation(X, sql_tokens.NOTBETWEEN, gowire.between(
        gowire.literal(1), gowire.literal(2)))),
    ("x NOT LIKE y", gowire.operation(X, sql_tokens.NOTLIKE,
                                      gowire.like_pattern(gowire.field("y")))),
    ("x LIKE 'a_\\\\%'", gowire.operation(X, sql_tokens.LIKE, gowire.Struct(
        Expr=gowire.literal("a_\\%"), Pattern="^a.\\\\%$"))),
    ("* EXCEPT (a, b)", gowire.wildcard(except_=["a", "b"])),
    ("* REPLACE (x + 1 AS y)", gowire.wildcard(replace=[gowire.select_field(
        gowire.binary(X, "+", gowire.literal(1)), alias="y")])),
    ("meta(*)", gowire.call("meta", gowire.meta("*"))),
    ("meta(a, lower(b), c)", gowire.call(  # a call inside meta() ends meta's names
        "meta", gowire.meta("a"), gowire.call("lower", gowire.field("b")), gowire.field("c"),
        func_id=1)),
    ("now()", gowire.call("now")),
    ("LOWER(x)", gowire.call("lower", X)),
    ("ss", gowire.time_literal(83)),
])
def test_expressions_are_built_as_ekuipers_parser_builds_them(expr, built):
    assert args_of(f"SELECT f({expr}) FROM demo")[-1] == [built]


@pytest.mark.parametrize(("statement", "error"), [
    ("SELECT f('it''s') FROM demo", 'found function call "f", expected ), but with "s".'),
    ("SELECT f(\"a\\'b\") FROM demo",
     'found "invalid string: \\"a\\\\\'b\\"", expected expression.'),
    ("SELECT f('abc) FROM demo", 'found "\\"abc) FROM demo", expected expression.'),
    ("SELECT f(1.2.3) FROM demo", 'found "1.2.3", invalid number value.'),
    ("SELECT f(1" + "0" * 400 + ".5) FROM demo", 'found "1' + "0" * 400 + '.5", invalid '
                                                 "number value."),
    ("SELECT f(\u00e9) FROM demo", 'found "", expected expression.'),
    ("SELECT f(x) FROM demo WHERE", 'found "EOF", expected expression.'),
    ("SELECT f(x NOT y) FROM demo", 'found "y", expected expression'),
    ("SELECT f(x BETWEEN 1 OR 2) FROM demo", "expect AND expression after between but found OR"),
    ("SELECT f((x FROM demo", 'found "FROM", expected right paren.'),
    ("SELECT f((x) FROM demo", 'found function call "f", expected ), but with "FROM".'),
    ("SELECT f(x IN (1, ) FROM demo",
     'expect elements for IN expression, but found ")", expected expression.'),
    ("SELECT f(x IN -) FROM demo",
     'expect expression after IN, but got error found "-", expected expression.'),
    ("SELECT f(a[99999999999999999999]) FROM demo",
     "The start index 99999999999999999999 is not an int value in bracket expression."),
    ("SELECT f(a[1:2) FROM demo", 'Found ")", expected right bracket.'),
    ("SELECT f(a[1 2]) FROM demo", 'Unexpected token "1". when parsing bracket expressions.'),
    ("SELECT f(CASE WHEN x THEN 1 END) FROM demo",
     "invalid CASE expression, WHEN expression must be a bool condition"),
    ("SELECT f(CASE x ELSE 1 END) FROM demo",
     "invalid CASE expression, WHEN expected before ELSE"),
    ("SELECT f(CASE x WHEN 1 2 END) FROM demo",
     "invalid CASE expression, THEN expected after WHEN"),
    ("SELECT f(CASE x WHEN 1 THEN 2) FROM demo", "invalid CASE expression, END expected"),
    ("SELECT f(x LIKE 'a(') FROM demo",
     "invalid LIKE pattern: error parsing regexp: missing closing ): `^a($`"),
    ("SELECT f(x LIKE '[z-a]') FROM demo",
     "invalid LIKE pattern: error parsing regexp: invalid character class range: `z-a`"),
    ("SELECT f(* EXCEPT a) FROM demo", 'Found "a" after EXCEPT, expect left parentheses.'),
    ("SELECT f(meta(* EXCEPT (a))) FROM demo", '"EXCEPT" is not supported in meta function'),
    ("SELECT * AS a FROM demo", "alias is not supported for *"),
    ("SELECT x AS 1 FROM demo", 'found "1", expected as alias.'),
    ("SELEC x FROM demo", 'Found "SELEC", Expected SELECT.\n'),
    ("", "SQL  is not a select statement."),
    ("SELECT x demo", 'found "demo", expected FROM.'),
    ("SELECT x FROM demo LIMIT 1.5", "limit should be integer"),
    ("SELECT x FROM demo GROUP x", 'found "x", expected BY statement.'),
    ("SELECT x FROM demo CROSS JOIN b ON x", "On expression is not required for cross join "
                                             "type.\n"),
    ("SELECT x FROM demo )", 'found ")", expected EOF.'),
    ("SELECT x FROM demo GROUP BY avg(x)",
     "Not allowed to call aggregate functions in GROUP BY clause: Call:{ name:avg, "
     "args:[$$default.x] }."),
    ("SELECT unnest(unnest(x)) FROM demo",
     "select clause shouldn't has nested set-returning-functions"),
    ("SELECT unnest(x), unnest(y) FROM demo",
     "select clause shouldn't has multi set-returning-functions"),
    ("SELECT x FROM demo WHERE row_number() > 1", "window functions can only be in select fields"),
    ("SELECT x FROM demo WHERE unnest(x) > 1", "select statement shouldn't has srf except fields"),
    ("SELECT x FROM demo WHERE changed_cols('a', true, x)",
     "function changed_cols can only be used inside the select clause"),
    ("SELECT lower(x) OVER (PARTITION BY y) FROM demo",
     "Found OVER after non analytic function lower"),
    ("SELECT lag(x) OVER () FROM demo", 'Found ")" after OVER (, expect partition by or when.'),
    ("SELECT x FROM demo GROUP BY TumblingWindow(10, ss)",
     "The 1st argument for tumblingwindow is expecting timer literal expression. One value of "
     "[dd|hh|mi|ss|ms].\n"),
    ("SELECT x FROM demo GROUP BY TumblingWindow(ss, x)",
     "The 1 argument for tumblingwindow is expecting interger literal expression. \n"),
    ("SELECT x FROM demo GROUP BY HoppingWindow(ss, 10)",
     "The arguments for hoppingwindow should be 3.\n"),
    ("SELECT x FROM demo GROUP BY CountWindow(0)", "Invalid parameter value 0."),
    ("SELECT x FROM demo GROUP BY CountWindow(2, 3)",
     "The second parameter value 3 should be less than the first parameter 2."),
    ("SELECT x FROM demo GROUP BY dedup_trigger(a, b, c, d)",
     "dedup_trigger function should have integer as the fourth argument"),
    ("SELECT nosuch(x) FROM demo", "function nosuch not found"),
    ("SELECT F(x) FROM demo", "function F not found"),  # a portable name is case-sensitive
])
def test_errors_are_ekuipers(statement, error):
    assert error_of(statement) == error


@pytest.mark.parametrize("statement", [
    "SELECT x FROM demo GROUP BY avg(x);",  # eKuiper checks no further after a ;
    "select f(x) from demo -- a comment",
    "SELECT lag(x) OVER (PARTITION BY y WHEN z > 1), row_number() OVER (ORDER BY x DESC) "
    "FROM demo",
    "SELECT f(x) FROM demo GROUP BY SlidingWindow(ss, 10, 1) FILTER (WHERE x > 1) "
    "OVER (WHEN x > 2)",
    "SELECT f(x) FROM demo GROUP BY StateWindow(x > 1, x < 2), y HAVING count(*) > 1 "
    "ORDER BY demo.x DESC, y LIMIT 10",
    "SELECT f(x) FROM demo GROUP BY dedup_trigger(a, b, c, 1)",
    "SELECT f(x) FROM demo INNER JOIN other ON demo.x = other.x",
    "SELECT f(x) FROM demo/#/+",  # an MQTT topic as the source
    "SELECT f(x) FROM demo x",  # the source is demox
    "SELECT f(x) FROM demo WHERE x LIKE '*'",  # Go repeats the ^ before the *
])
def test_statements_ekuiper_takes(statement):
    assert sql.requests(statement, ["f"]).error is None


def test_a_stream_that_is_not_in_from_makes_a_json_path_in_where_only():
    # In SELECT the sources are not known yet; from WHERE on, other.x is x's field other.
    select, where = args_of("SELECT f(other.x, demo.x) FROM demo AS d "
                            "WHERE f(other.x, d.x, meta(other.t), meta(demo.t))")
    assert select == [gowire.field("x", "other"), gowire.field("x", "demo")]
    assert where == [
        gowire.operation(gowire.field("other"), sql_tokens.ARROW, gowire.json_field("x")),
        gowire.field("x", "d"),
        gowire.call("meta", gowire.operation(gowire.meta("other"), sql_tokens.ARROW,
                                             gowire.json_field("t")), func_id=1),
        gowire.call("meta", gowire.meta("t", "demo"), func_id=2)]


def test_calls_are_numbered_inner_first_across_the_statement():
    outcome = sql.requests("SELECT f(f(x)), f(y) FROM demo WHERE f(z)", ["f"])
    assert [f["Expr"]["FuncId"] for f in outcome.statement.fields] == [1, 2]
    assert outcome.statement.condition["FuncId"] == 3
    deduplicate = sql.parse("SELECT deduplicate(x, false) FROM demo").fields[0]["Expr"]
    assert deduplicate["Args"][0] == gowire.wildcard()  # eKuiper puts * first


def test_is_aggregate_is_asked_once_an_answer_is_a_boolean():
    outcome = sql.requests("SELECT f(g(x)), g(y) FROM demo GROUP BY TumblingWindow(ss, 1)",
                           ["f", "g"], aggregate=["g"])
    assert [(r.function, r.func) for r in outcome.requests] == [
        ("f", "IsAggregate"), ("g", "IsAggregate"), ("g", "Validate"), ("f", "Validate"),
        ("g", "Validate")]
    assert outcome.requests[3].args == [gowire.call("g", X, aggregate=True)]
    assert error_of("SELECT x FROM demo GROUP BY g(x)", ["g"], aggregate=["g"]) == (
        "Not allowed to call aggregate functions in GROUP BY clause: "
        "Call:{ name:g, args:[$$default.x] }.")

    sent = []

    def unsure(func, args):
        sent.append(func)
        return b'{"state":true,"result":"yes"}' if func == "IsAggregate" else sql.ACCEPT

    sql.parse("SELECT f(1), f(2) FROM demo GROUP BY f(3)", {"f": unsure})
    # an answer that is no boolean is asked again, and GROUP BY asks once more
    assert sent == ["IsAggregate", "Validate"] * 3 + ["IsAggregate"]


def test_a_refusal_stops_the_parse():
    refusal = b'{"state":false,"result":"no"}'
    outcome = sql.requests("SELECT f(x), f(y) FROM demo", ["f"], validate_reply=refusal)
    assert [r.func for r in outcome.requests] == ["IsAggregate", "Validate"]
    assert outcome.error == ("validate function f error: validate return state is false, "
                             "got &{State:false Result:no}")


def test_the_first_generation_shapes():
    (args,) = args_of("SELECT f(x, lower(y), ss) FROM demo", ekuiper=1)
    assert args == [gowire.field("x", ekuiper=1),
                    gowire.call("lower", gowire.field("y", ekuiper=1), ekuiper=1),
                    gowire.time_literal(81)]
    assert b"HasIndex" not in gowire.go_json(args) and b"CacheIndex" not in gowire.go_json(args)


def test_text_is_gos():
    values = (5.0, 1.5, 1e6, 123456.0, 0.0001, 0.00001, -0.0, 1.5e300, 9007199254740993)
    assert [gojson_fmt.format_g(float(v)) for v in values] == [
        "5", "1.5", "1e+06", "123456", "0.0001", "1e-05", "-0", "1.5e+300",
        "9.007199254740992e+15"]
    assert gojson_fmt.sprint({"b": [1, None, "x"], "a": {"c": True}}) == \
        "map[a:map[c:true] b:[1 <nil> x]]"
    assert sql_tokens.go_string(b"a\xff\xe2\x82b") == "a\ufffd\ufffd\ufffdb"
    assert sql_nodes.text(sql.parse("SELECT f(a[1], x IN (1, 2)) FROM demo", {
        "f": lambda *_: sql.ACCEPT}).fields[0]["Expr"]) == (
        "Call:{ name:f, args:[binaryExpr:{ $$default.a[1] }, "
        "binaryExpr:{ $$default.x IN valueSetExpr:{ literalExprs:[1, 2] } }] }")


REPLIES = [param for param in golden_corpus.cases("reply.jsonl")
           if not golden_corpus.raw(param.values[0]["input"], "bytes").startswith(b"h")]


@pytest.mark.parametrize("case", REPLIES)
def test_replies_are_read_as_ekuiper_reads_them(case):
    """What Validate and IsAggregate conclude from a reply (the replies starting
    with h, which eKuiper takes for a late handshake, are the channel's)."""
    raw = golden_corpus.raw(case["input"], "bytes")
    validate, is_aggregate = case["go"]["validate"], case["go"]["is_aggregate"]
    assert error_of("SELECT f(1) FROM demo", validate_reply=raw) == (
        None if validate["ok"] else f"validate function f error: {validate['error']}")

    def answer(func, args):
        return raw if func == "IsAggregate" else sql.ACCEPT

    call = sql.parse("SELECT f(1) FROM demo", {"f": answer}).fields[0]["Expr"]
    kind = sql_tokens.AGGREGATE if is_aggregate["result"] else sql_tokens.SCALAR
    assert call["FuncType"] == kind


@pytest.mark.parametrize(("raw", "error"), [
    (b"", "unexpected end of JSON input"),
    (b"{", "unexpected end of JSON input"),
    (b"{1}", "invalid character '1' looking for beginning of object key string"),
    (b'{"state" true}', "invalid character 't' after object key"),
    (b'{"state":true "x"}', "invalid character '\"' after object key:value pair"),
    (b'{"result":[1 2]}', "invalid character '2' after array element"),
    (b'{"result":"\x01"}', "invalid character '\\x01' in string literal"),
    (b'{"result":"\\q"}', "invalid character 'q' in string escape code"),
    (b'{"result":"\\u12x4"}', "invalid character 'x' in \\u hexadecimal character escape"),
    (b'{"result":-x}', "invalid character 'x' in numeric literal"),
    (b'{"result":1.x}', "invalid character 'x' after decimal point in numeric literal"),
    (b'{"result":1ex}', "invalid character 'x' in exponent of numeric literal"),
    (b'{"result":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b"\xff", "invalid character '\u00ff' looking for beginning of value"),
    (b"01", "invalid character '1' after top-level value"),
])
def test_a_reply_go_cannot_read_is_gos_syntax_error(raw, error):
    assert gowire.decode_reply(raw).validate == error


def test_a_reply_s_strings_are_read_as_go_reads_them():
    reply = gowire.decode_reply(b'{"STATE":false,"result":"\\ud83d\\ude00 \\ud800 a\\"\\/"}')
    assert (reply.state, reply.result) == (False, "\U0001F600 \ufffd a\"/")
