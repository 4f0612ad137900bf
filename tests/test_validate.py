"""Validate in a real plugin process: the expressions eKuiper sends when a rule is
created, through the embedded host, and the rule SQL that makes them.

A literal is refused as eKuiper refuses it for its own functions: a number,
a boolean or a time unit for a string, a string or a boolean for a number, a
number with a fraction for an integer, anything but true or false for a
boolean; and a literal the parameter never converts, in the sentence Exec
gives. A column, a call, an operation, anything known only when the rule
runs, passes, and Exec converts its values.
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


def test_literals_of_each_parameters_type_pass(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        for values in (["abc", 3, 1.5, True], ["", -3, 2, False]):
            assert fn.validate(*map(gowire.literal, values)) is None
        assert fn.validate_sql("SELECT typed('abc', 3, 1.5, true) FROM demo") is None
        assert fn.validate_sql('SELECT typed("", -3, 2, FALSE) FROM demo') is None
        # values the running rule supplies are still converted
        assert fn.call(12, "12", "1.5", "TRUE") == ["12", 12, 1.5, True]


@pytest.mark.parametrize(("sql", "values", "sentence"), [
    ("typed(123, 3, 1.5, true)", [123, 3, 1.5, True],
     "Argument 1 (s) of typed() must be a string, got the number 123."),
    ("typed(true, 3, 1.5, true)", [True, 3, 1.5, True],
     "Argument 1 (s) of typed() must be a string, got true."),
    ("typed('abc', '12', 1.5, true)", ["abc", "12", 1.5, True],
     "Argument 2 (n) of typed() must be an integer, got the string '12'."),
    ("typed('abc', 3.5, 1.5, true)", ["abc", 3.5, 1.5, True],
     "Argument 2 (n) of typed() must be an integer, got the number 3.5."),
    ("typed('abc', false, 1.5, true)", ["abc", False, 1.5, True],
     "Argument 2 (n) of typed() must be an integer, got false."),
    ("typed('abc', 3, '1.5', true)", ["abc", 3, "1.5", True],
     "Argument 3 (x) of typed() must be a number, got the string '1.5'."),
    ("typed('abc', 3, 1.5, 'TRUE')", ["abc", 3, 1.5, "TRUE"],
     "Argument 4 (flag) of typed() must be true or false, got the string 'TRUE'."),
    ("typed('abc', 3, 1.5, 2)", ["abc", 3, 1.5, 2],
     "Argument 4 (flag) of typed() must be true or false, got the number 2."),
    ("tagged('t', 1, '2', 3)", ["t", 1, "2", 3],
     "Argument 3 (codes) of tagged() must be an integer, got the string '2'."),
])
def test_a_literal_ekuiper_would_refuse_is_refused(kuiperlite_host, plugin, sql, values,
                                                   sentence):
    host = kuiperlite_host(plugin)
    name = sql.split("(")[0]
    with host.function(name) as fn:
        assert fn.validate(*map(gowire.literal, values)) == sentence
        assert fn.validate_sql(f"SELECT {sql} FROM demo") == refused(name, sentence)
        try:
            fn.call(*values)  # Exec converts it: a column's value may be so
        except HostError as err:
            assert str(err) == sentence  # Exec refuses it too, in the same words


def test_the_sentence_names_the_argument(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        x = gowire.field("x")
        assert fn.validate(gowire.literal("abc"), gowire.literal(3.5), x, x) == (
            "Argument 2 (n) of typed() must be an integer, got the number 3.5.")
        assert fn.validate_sql("SELECT typed(x, y, z > 1, x) FROM demo") == refused(
            "typed", "Argument 3 (x) of typed() must be a number, got a condition, which is "
                     "true or false.")


@pytest.mark.parametrize("ekuiper", [2, 1])
def test_what_only_the_running_rule_knows_passes(kuiperlite_host, plugin, ekuiper):
    host = kuiperlite_host(plugin, ekuiper=ekuiper)
    x = gowire.field("x", ekuiper=ekuiper)
    demo_x = gowire.field("x", "demo", ekuiper=ekuiper)
    lower = gowire.call("lower", x, ekuiper=ekuiper)
    plus = gowire.binary(x, "+", gowire.literal(1))
    case = gowire.case(None, [gowire.when(gowire.binary(x, ">", gowire.literal(1)),
                                          gowire.literal("a"))], gowire.literal("b"))
    with host.function("typed") as fn:
        assert fn.validate(x, demo_x, lower, plus) is None
        assert fn.validate(plus, lower, gowire.wildcard(), case) is None
        assert fn.validate_sql("SELECT typed(demo.x, lower(y), x + 1, x > 1) FROM demo "
                               "WHERE typed(CASE WHEN x > 1 THEN 'a' ELSE 'b' END, a[0], "
                               "b->c, *) != x") is None
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
        assert fn.validate(gowire.literal("3")) == (
            "Argument 1 (values) of total() must be a list of numbers, got a list "
            "(item 0 must be a number, got the string '3').")
        assert fn.call(["3", "3"]) == 6  # a column's strings convert
        window = "FROM demo GROUP BY TumblingWindow(ss, 10)"
        assert fn.validate_sql(f"SELECT total(x) {window}") is None
        assert fn.validate_sql(f"SELECT total('3') {window}") == refused(
            "total", "Argument 1 (values) of total() must be a list of numbers, got a list "
                     "(item 0 must be a number, got the string '3').")
        # the plugin said total is an aggregate, so GROUP BY may not call it
        assert fn.validate_sql("SELECT x FROM demo GROUP BY total(x)") == (
            "Not allowed to call aggregate functions in GROUP BY clause: "
            "Call:{ name:total, args:[$$default.x] }.")


def test_a_time_unit_is_an_integer_to_validate(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("maybe") as fn:
        # maybe(ss): eKuiper sends the unit's token number, as it sends an integer
        sentence = "Argument 1 (flag) of maybe() must be true or false, got the number 83."
        assert fn.validate({"Val": 83}) == sentence
        assert fn.validate_sql("SELECT maybe(ss) FROM demo") == refused("maybe", sentence)
        assert fn.validate_sql("SELECT maybe(true) FROM demo") is None
        assert fn.validate(gowire.literal(-1)) == exec_error(fn, -1) == (
            "Argument 1 (flag) of maybe() must be true or false, got the number -1.")


def test_the_count_is_checked_first_and_a_value_is_no_expression(kuiperlite_host, plugin):
    host = kuiperlite_host(plugin)
    with host.function("typed") as fn:
        assert fn.validate(gowire.literal(True)) == (
            "typed() takes exactly 4 arguments (s, n, x, flag) but got 1.")
        assert fn.validate_sql("SELECT typed() FROM demo") == refused(
            "typed", "typed() takes exactly 4 arguments (s, n, x, flag) but got 0.")
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
