"""A function's Validate, Exec and IsAggregate requests, answered by its user code."""

import asyncio
import enum
from typing import Any, Literal, Optional

import orjson
import pytest

from kuiperlite import Context, function
from kuiperlite.declare import hints
from kuiperlite.declare.symbols import AnySpec, marks_of, read
from kuiperlite.dev import gowire
from kuiperlite.protocol import wire
from kuiperlite.serve.function_adapter import FunctionAdapter


def spec(func) -> AnySpec:
    (mark,) = marks_of(func)
    return read(func, mark)


def request(adapter, func, args):
    return orjson.loads(adapter.handle(gowire.encode_function_call(func, args)))


META = gowire.encode_func_meta(wire.FuncMeta("rule1", "op1", 0, 1))


def test_function_requests():
    @function
    def revert(s: str) -> str:
        return s[::-1]

    adapter = FunctionAdapter(spec(revert))
    assert request(adapter, "Validate", ["col"]) == {"state": True, "result": ""}
    assert request(adapter, "Validate", None) == {
        "state": False, "result": "revert() takes exactly 1 argument (s) but got 0."}
    assert request(adapter, "IsAggregate", None) == {"state": True, "result": False}
    assert request(adapter, "Exec", ["abc", META]) == {"state": True, "result": "cba"}
    assert request(adapter, "Exec", [123, META]) == {"state": True, "result": "321"}
    assert request(adapter, "Exec", [None, META]) == {
        "state": False, "result": "Argument 1 (s) of revert() must be a string, got null."}
    assert request(adapter, "Exec", []) == {
        "state": False,
        "result": "Exec needs the function meta as its last argument, a JSON string, got nothing."}
    assert request(adapter, "Nope", None)["result"].startswith("Unknown function request 'Nope'")
    assert orjson.loads(adapter.handle(b"{oops"))["state"] is False


def test_function_exceptions_become_failed_replies():
    @function
    def div(a: float, b: float) -> float:
        return a / b

    adapter = FunctionAdapter(spec(div))
    assert request(adapter, "Exec", [1, 0, META]) == {
        "state": False, "result": "div() raised ZeroDivisionError: float division by zero"}
    assert request(adapter, "Exec", [1, 4, META]) == {"state": True, "result": 0.25}


def test_function_context_per_calling_instance():
    seen = []

    @function
    def who(ctx: Context, x):
        seen.append(ctx)
        return f"{ctx.rule_id}/{ctx.op_id}/{ctx.instance_id}#{ctx.func_id}"

    adapter = FunctionAdapter(spec(who))
    other = gowire.encode_func_meta(wire.FuncMeta("rule2", "op1", 0, 1))
    assert request(adapter, "Exec", [1, META])["result"] == "rule1/op1/0#1"
    assert request(adapter, "Exec", [1, META])["result"] == "rule1/op1/0#1"
    assert request(adapter, "Exec", [1, other])["result"] == "rule2/op1/0#1"
    assert seen[0] is seen[1] and seen[0] is not seen[2]
    assert request(adapter, "Exec", [1, "{}"])["result"].startswith(
        "The control for a function call needs meta.ruleId")


def test_aggregate_and_varargs_and_async():
    @function(aggregate=True)
    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    @function
    def joined(sep: str, *parts: str) -> str:
        return sep.join(parts)

    @function
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    agg = FunctionAdapter(spec(mean))
    assert request(agg, "IsAggregate", None)["result"] is True
    assert request(agg, "Exec", [[1, 2, "3"], META])["result"] == 2.0
    va = FunctionAdapter(spec(joined))
    assert request(va, "Exec", ["-", "a", 1, META])["result"] == "a-1"
    assert request(va, "Validate", None)["result"] == (
        "joined() takes at least 1 argument (sep, *parts) but got 0.")
    assert request(FunctionAdapter(spec(later)), "Exec", ["41", META])["result"] == 42


class Color(enum.Enum):
    RED = "red"
    ONE = 1


HINTS = [str, int, float, bool, list, dict, list[int], Literal["a", 2], Color, Optional[int],
         Optional[bool], Optional[list[str]], Any]
LITERALS = ["abc", "12", " 7 ", "1.5", "true", "FALSE", "red", "RED", "a", "", 12, 0, 2, -3,
            1.5, -0.5, 3.0, 1e21, True, False]
STRINGS = [value for value in LITERALS if isinstance(value, str)]
INTEGERS = [12, 0, 2, -3, 3.0]  # 3.0 reaches Validate as 3, like an integer
NUMBERS = [*INTEGERS, 1.5, -0.5, 1e21]
BOOLEANS = [True, False]
# The literals Validate takes for a parameter of each hint (for an aggregate, of a
# list of it): by eKuiper's rules for its own functions, a string takes strings, an
# integer integers, a number numbers, a boolean booleans; others take what converts.
TAKEN = {str: STRINGS, int: INTEGERS, float: NUMBERS, bool: BOOLEANS, list: [], dict: [],
         list[int]: [], Literal["a", 2]: ["a", 2], Color: ["red", "RED"],
         Optional[int]: INTEGERS, Optional[bool]: BOOLEANS, Optional[list[str]]: [],
         Any: LITERALS}


def typed_function(hint, aggregate):
    def f(x):
        return None  # the argument alone decides whether a call fails

    f.__annotations__ = {"x": list[hint] if aggregate else hint}
    return FunctionAdapter(spec(function(aggregate=aggregate)(f)))


@pytest.mark.parametrize("aggregate", [False, True])
@pytest.mark.parametrize("hint", HINTS, ids=str)
def test_validate_takes_the_literals_ekuipers_own_functions_take(hint, aggregate):
    """A literal of the parameter's type passes; any other is refused in Exec's
    sentence: the one Exec gives when it refuses the value too, and the same
    words when Exec would convert it."""
    adapter = typed_function(hint, aggregate)
    phrase = adapter.spec.params[0].type.phrase
    for value in LITERALS:
        validated = request(adapter, "Validate", [gowire.literal(value)])
        if value in TAKEN[hint] and type(value) in map(type, TAKEN[hint]):
            assert validated == {"state": True, "result": ""}, value
            continue
        executed = request(adapter, "Exec", [[value] * 3 if aggregate else value, META])
        if not executed["state"]:
            assert validated == executed, value
            continue
        got = hints.describe_value(orjson.loads(gowire.go_json(value)))  # 3.0 goes as 3
        expected = hints.describe(hints.unwrap_optional(hint))  # a literal is never null
        if aggregate:
            got = f"a list (item 0 must be {expected}, got {got})"
            expected = phrase
        assert validated == {"state": False, "result": f"Argument 1 (x) of f() must be "
                                                       f"{expected}, got {got}."}, value


def test_validate_refuses_what_ekuiper_refuses_and_exec_still_converts_columns():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    ok = {"state": True, "result": ""}

    def refused(text):
        return {"state": False, "result": text}

    assert request(adapter, "Validate", [gowire.literal(v) for v in ("a", 3, 1.5, True)]) == ok
    assert request(adapter, "Validate", [gowire.literal(v) for v in ("a", 3, 2, False)]) == ok
    assert request(adapter, "Validate", [gowire.literal(12), x, x, x]) == refused(
        "Argument 1 (s) of typed() must be a string, got the number 12.")
    assert request(adapter, "Validate", [x, gowire.literal("12"), x, x]) == refused(
        "Argument 2 (n) of typed() must be an integer, got the string '12'.")
    assert request(adapter, "Validate", [x, gowire.literal(3.5), x, x]) == refused(
        "Argument 2 (n) of typed() must be an integer, got the number 3.5.")
    assert request(adapter, "Validate", [x, x, gowire.literal("1.5"), x]) == refused(
        "Argument 3 (x) of typed() must be a number, got the string '1.5'.")
    assert request(adapter, "Validate", [x, x, x, gowire.literal("true")]) == refused(
        "Argument 4 (flag) of typed() must be true or false, got the string 'true'.")
    # a value the running rule supplies is converted at Exec, as before
    assert request(adapter, "Exec", [12, "12", "1.5", "TRUE", META]) == {
        "state": True, "result": ["12", 12, 1.5, True]}


def test_a_condition_is_true_or_false():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    above = gowire.binary(x, ">", gowire.literal(1))  # x > 1
    for condition in (above, gowire.binary(above, "AND", above), gowire.paren(above),
                      gowire.operation(x, 35, gowire.like_pattern(gowire.literal("a%")))):
        assert request(adapter, "Validate", [x, x, x, condition])["state"] is True
        assert request(adapter, "Validate", [condition, x, x, x]) == {
            "state": False, "result": "Argument 1 (s) of typed() must be a string, got a "
                                      "condition, which is true or false."}
    assert request(adapter, "Validate", [x, x, above, x])["result"] == (
        "Argument 3 (x) of typed() must be a number, got a condition, which is true or false.")
    plus = gowire.binary(x, "+", gowire.literal(1))  # x + 1: its value is the rule's
    assert request(adapter, "Validate", [plus, plus, plus, plus])["state"] is True


def test_validate_leaves_what_only_the_running_rule_knows():
    @function
    def typed(s: str, n: int, x: float, flag: bool) -> list:
        return [s, n, x, flag]

    adapter = FunctionAdapter(spec(typed))
    x = gowire.field("x")
    assert request(adapter, "Validate", [x, gowire.call("lower", x),
                                         gowire.binary(x, "+", gowire.literal(1)),
                                         gowire.field("x", "demo")]) == {"state": True,
                                                                         "result": ""}
    assert request(adapter, "Validate", [gowire.paren(gowire.literal(True)), x, x, x]) == {
        "state": False, "result": "Argument 1 (s) of typed() must be a string, got true."}
    assert request(adapter, "Validate", [gowire.literal(True)]) == {
        "state": False,  # the count first
        "result": "typed() takes exactly 4 arguments (s, n, x, flag) but got 1."}


def test_validate_checks_each_vararg_and_an_aggregates_window():
    @function
    def tagged(tag: str, *codes: int) -> list:
        return [tag, *codes]

    @function(aggregate=True)
    def total(values: list[float]) -> float:
        return sum(values)

    va = FunctionAdapter(spec(tagged))
    assert request(va, "Validate", [gowire.literal(v) for v in ("t", 1, 2, 3)])["state"] is True
    assert request(va, "Validate", [gowire.literal(v) for v in ("t", 1, 2, "x")]) == request(
        va, "Exec", ["t", 1, 2, "x", META]) == {
        "state": False,
        "result": "Argument 4 (codes) of tagged() must be an integer, got the string 'x'."}
    agg = FunctionAdapter(spec(total))
    assert request(agg, "Validate", [gowire.literal(3)])["state"] is True
    assert request(agg, "Validate", [gowire.literal("3")]) == {
        "state": False, "result": "Argument 1 (values) of total() must be a list of numbers, "
                                  "got a list (item 0 must be a number, got the string '3')."}
    assert request(agg, "Exec", [["3", "3"], META])["result"] == 6.0  # a column's strings


def test_a_time_unit_is_an_integer_to_validate():
    @function
    def maybe(flag: Optional[bool]) -> Optional[bool]:
        return flag

    @function
    def scaled(n: int) -> int:
        return n

    ss = {"Val": 83}  # maybe(ss): eKuiper sends the unit's token, like the integer 83
    assert request(FunctionAdapter(spec(maybe)), "Validate", [ss]) == {
        "state": False,
        "result": "Argument 1 (flag) of maybe() must be true or false, got the number 83."}
    assert request(FunctionAdapter(spec(scaled)), "Validate", [ss])["state"] is True


def test_exec_reads_values_never_shapes():
    @function
    def keys(d: dict) -> list:
        return sorted(d)

    adapter = FunctionAdapter(spec(keys))
    assert request(adapter, "Exec", [{"Val": "x"}, META]) == {"state": True, "result": ["Val"]}


def test_function_returning_unencodable_value():
    @function
    def bad(x):
        return {x}

    reply = request(FunctionAdapter(spec(bad)), "Exec", [1, META])
    assert reply["state"] is False and "cannot be encoded as JSON" in reply["result"]
