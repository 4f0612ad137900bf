"""Validate in a real plugin process: the expressions eKuiper sends when a rule
is created, through the embedded host.

A literal no value Exec may receive for it converts is refused with the
sentence Exec gives; a column, a call, an operation, anything known only
when the rule runs, passes.
"""

import pytest

from kuiperlite.dev import gowire
from kuiperlite.errors import HostError


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("validated")


def exec_error(fn, *values):
    with pytest.raises(HostError) as info:
        fn.call(*values)
    return str(info.value)


def refused(function, sentence):
    """What eKuiper's parser says when a function's Validate refuses."""
    return (f"validate function {function} error: validate return state is false, "
            f"got &{{State:false Result:{sentence}}}")


def test_literals_exec_converts_pass(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        # typed('abc', 3, 1.5, true), and typed(12, '12', '1.5', 'TRUE'): lossless conversions
        for values in (["abc", 3, 1.5, True], [12, "12", "1.5", "TRUE"]):
            assert fn.validate(*map(gowire.literal, values)) is None
        assert fn.call(12, "12", "1.5", "TRUE") == ["12", 12, 1.5, True]


@pytest.mark.parametrize(("sql", "values"), [
    ("typed(true, 3, 1.5, true)", [True, 3, 1.5, True]),
    ("typed('abc', 3.5, 1.5, true)", ["abc", 3.5, 1.5, True]),
    ("typed('abc', 'twelve', 1.5, true)", ["abc", "twelve", 1.5, True]),
    ("typed('abc', false, 1.5, true)", ["abc", False, 1.5, True]),
    ("typed('abc', 3, 'x', true)", ["abc", 3, "x", True]),
    ("typed('abc', 3, 1.5, 'yes')", ["abc", 3, 1.5, "yes"]),
    ("typed('abc', 3, 1.5, 2)", ["abc", 3, 1.5, 2]),
    ("tagged('t', 1, '2', 'x')", ["t", 1, "2", "x"]),
])
def test_a_literal_that_never_converts_is_refused_with_execs_sentence(kuiperlite_host, plugin,
                                                                      sql, values):
    host = kuiperlite_host(plugin)
    with host.function(sql.split("(")[0]) as fn:
        refused = fn.validate(*map(gowire.literal, values))
        assert refused is not None and refused.startswith("Argument ")
        assert refused == exec_error(fn, *values)


def test_the_sentence_names_the_argument(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        x = gowire.field("x")
        assert fn.validate(gowire.literal("abc"), gowire.literal(3.5), x, x) == (
            "Argument 2 (n) of typed() must be an integer, got the number 3.5.")


@pytest.mark.parametrize("ekuiper", [2, 1])
def test_what_only_the_running_rule_knows_passes(kuiperlite_host, plugin, ekuiper):
    host = kuiperlite_host(plugin, ekuiper=ekuiper)
    x = gowire.field("x", ekuiper=ekuiper)
    demo_x = gowire.field("x", "demo", ekuiper=ekuiper)
    lower = gowire.call("lower", x, ekuiper=ekuiper)
    plus = gowire.binary(x, "+", gowire.literal(1))
    wildcard = gowire.Struct(Token=40, Replace=None, Except=None)  # *
    case = gowire.Struct(  # CASE WHEN x > 1 THEN 'a' ELSE 'b' END
        Value=None, WhenClauses=[gowire.Struct(Expr=gowire.binary(x, ">", gowire.literal(1)),
                                               Result=gowire.literal("a"))],
        ElseClause=gowire.literal("b"))
    with host.function("typed") as fn:
        assert fn.validate(x, demo_x, lower, plus) is None
        assert fn.validate(plus, lower, wildcard, case) is None
    with host.function("total") as fn:
        assert fn.validate(gowire.call("total", x, aggregate=True, ekuiper=ekuiper)) is None


def test_an_aggregate_checks_the_window_a_literal_makes(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("total") as fn:
        assert fn.validate(gowire.literal(3)) is None  # total(3): a window of threes
        assert fn.call([3, 3]) == 6
        assert fn.validate(gowire.literal("abc")) == exec_error(fn, ["abc", "abc"]) == (
            "Argument 1 (values) of total() must be a list of numbers, got a list "
            "(item 0 must be a number, got the string 'abc').")


def test_a_time_literal_is_null_at_exec(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("maybe") as fn:
        # maybe(ss): eKuiper sends the time literal as its token, 83 in 2.2 to 2.4,
        # which an integer literal could be too, and Exec receives null for it.
        assert fn.validate({"Val": 83}) is None
        assert fn.call(None) is None
        assert fn.validate(gowire.literal(-1)) == exec_error(fn, -1) == (
            "Argument 1 (flag) of maybe() must be true or false, got the number -1.")


def test_the_count_is_checked_first_and_a_value_is_no_expression(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        assert fn.validate(gowire.literal(True)) == (
            "typed() takes exactly 4 arguments (s, n, x, flag) but got 1.")
        with pytest.raises(ValueError, match="Validate's arguments are SQL expressions, got "
                                             "the string 'abc'"):
            fn.validate("abc")


def test_the_sql_reaches_each_function_it_calls(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    nested = "SELECT tagged('t', maybe(x > 1)) FROM demo"
    with host.function("tagged") as fn:
        assert fn.validate_sql(nested) == "function maybe not found"
        assert fn.validate_sql(nested, functions=["maybe"]) is None
        assert fn.validate_sql("SELECT tagged('t', maybe('yes')) FROM demo",
                               functions=["maybe"]) == refused(
            "maybe", "Argument 1 (flag) of maybe() must be true or false, got the string 'yes'.")
        assert fn.validate_sql("SELECT x FROM demo WHERE tagged(true) = lower(x)") == refused(
            "tagged", "Argument 1 (tag) of tagged() must be a string, got true.")


def test_the_parsers_own_errors_come_before_any_validate(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        assert fn.validate_sql("SELECT typed(x, 1e21) FROM demo") == (
            'found function call "typed", expected ), but with "e21".')
        assert fn.validate_sql("SELECT Typed(x) FROM demo") == "function Typed not found"
        assert fn.validate_sql("SELECT typed(-x) FROM demo") == (
            'found "-", expected expression.')
        assert fn.validate_sql("SELEC x FROM demo") == 'Found "SELEC", Expected SELECT.\n'
