"""Plain JSON values: their names in messages and their lossless conversions."""

import math

import pytest

from kuiperlite.declare.values import (
    Mismatch,
    describe_value,
    to_bool,
    to_bytes,
    to_dict,
    to_float,
    to_int,
    to_list,
    to_str,
)


@pytest.mark.parametrize("value, described", [
    (None, "null"), (True, "true"), (3, "the number 3"), ("ab", "the string 'ab'"),
    ("x" * 50, f"the string {'x' * 37 + '...'!r}"), ([1], "a list"), ({}, "an object"),
    (b"", "bytes"), (object(), "an object"),
])
def test_a_value_is_named_as_messages_show_it(value, described):
    assert describe_value(value) == described


@pytest.mark.parametrize("convert, value, expected", [
    (to_str, 12, "12"), (to_int, "12", 12), (to_int, 3.0, 3), (to_float, " 1.5", 1.5),
    (to_bool, "TRUE", True), (to_list, (1, 2), [1, 2]), (to_dict, {"a": 1}, {"a": 1}),
    (to_bytes, "hi", b"hi"),
])
def test_conversions_take_what_they_can_take_without_loss(convert, value, expected):
    result = convert(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("convert, value, expected", [
    (to_str, True, "a string"), (to_int, 3.5, "an integer"), (to_int, True, "an integer"),
    (to_float, "nan", "a number"), (to_float, "inf", "a number"), (to_bool, 1, "true or false"),
    (to_list, "ab", "a list"), (to_dict, [], "an object"), (to_bytes, 1, "bytes"),
])
def test_a_value_that_would_lose_something_is_a_mismatch(convert, value, expected):
    with pytest.raises(Mismatch) as caught:
        convert(value)
    assert caught.value.expected == expected
    assert str(caught.value) == f"must be {expected}, got {describe_value(value)}"


def test_a_mismatch_says_where_inside_the_value():
    err = Mismatch("a list of numbers", [math.inf], where="item 0 must be a number")
    assert str(err) == "must be a list of numbers, got a list (item 0 must be a number)"
