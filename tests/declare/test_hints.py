import dataclasses
import enum
from typing import Annotated, Any, Literal, Optional, Union

import pytest

from kuiperlite.declare import hints
from kuiperlite.declare.hints import Dynamic, Mismatch, UnsupportedHint


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@pytest.mark.parametrize(("hint", "value", "expected"), [
    (str, "abc", "abc"),
    (str, 12, "12"),
    (int, 12, 12),
    (int, 12.0, 12),
    (int, " 42 ", 42),
    (float, 3, 3.0),
    (float, "2.5", 2.5),
    (bool, True, True),
    (bool, "false", False),
    (dict, {"a": 1}, {"a": 1}),
    (list, [1, "x"], [1, "x"]),
    (list[int], [1, 2.0, "3"], [1, 2, 3]),
    (list[str], ["a"], ["a"]),
    (dict[str, float], {"a": 1}, {"a": 1.0}),
    (Optional[int], None, None),
    (Optional[int], "7", 7),
    (Literal["a", "b"], "b", "b"),
    (Literal[1, 2], "2", 2),
    (Color, "blue", Color.BLUE),
    (Color, "RED", Color.RED),
    (Any, {"x": [1]}, {"x": [1]}),
])
def test_lossless_conversions(hint, value, expected):
    result = hints.convert(hint, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("hint", "value", "phrase"), [
    (int, 3.5, "must be an integer, got the number 3.5"),
    (int, True, "must be an integer, got true"),
    (int, "ten", "must be an integer, got the string 'ten'"),
    (float, "nan", "must be a number"),
    (float, None, "must be a number, got null"),
    (str, [1], "must be a string, got a list"),
    (bool, 1, "must be true or false, got the number 1"),
    (dict, [], "must be an object, got a list"),
    (list[int], [1, "x"], "must be a list of integers, got a list (item 1 must be an integer"),
    (Literal["a", "b"], "c", "must be one of 'a', 'b', got the string 'c'"),
    (Color, "green", "must be one of 'red', 'blue'"),
    (dict[str, int], {"k": "v"}, "key 'k' must be an integer"),
])
def test_mismatches_say_what_was_expected(hint, value, phrase):
    with pytest.raises(Mismatch) as info:
        hints.convert(hint, value)
    assert phrase in str(info.value)


def test_literal_does_not_confuse_true_with_one():
    with pytest.raises(Mismatch):
        hints.convert(Literal[1], True)


@pytest.mark.parametrize("hint", [set, complex, dict[int, str], Union[tuple[int, str], int]])
def test_hints_without_json_counterpart_are_rejected(hint):
    with pytest.raises(UnsupportedHint):
        hints.read(hint)


def test_plain_values_need_no_converter():
    assert hints.read(Any).convert is None
    assert hints.read(Optional[Any]).convert is None
    assert hints.describe(list[float]) == "a list of numbers"
    assert hints.describe(Optional[str]) == "a string or null"


class Mode(enum.Enum):
    FAST = 1
    SLOW = 2


@pytest.mark.parametrize(("hint", "expected"), [
    (str, ("string", "text", None)),
    (int, ("int", "text", None)),
    (float, ("float", "text", None)),
    (bool, ("bool", "radio", None)),
    (dict, ("object", "textarea", None)),
    (dict[str, int], ("object", "textarea", None)),
    (list[str], ("list_string", "list", None)),
    (list[int], ("list_int", "list", None)),
    (list[dict], ("list_object", "list", None)),
    (Optional[int], ("int", "text", None)),
    (Literal["a", "b"], ("string", "select", ["a", "b"])),
    (Literal[1, 2], ("int", "select", [1, 2])),
    (Mode, ("int", "select", [1, 2])),
    (list[float], ("list_float", "list", None)),
    (list, ("list_string", "list", None)),
    (Any, ("string", "text", None)),
])
def test_what_eKuiper_s_ui_shows_for_a_config_hint(hint, expected):
    info = hints.read(hint)
    assert (info.ui_type, info.control, info.choices) == expected


def test_bytes_cannot_be_a_config_field():
    assert hints.read(bytes).ui_type is None


def test_records_build_from_objects_and_name_the_field_that_does_not_fit():
    import dataclasses

    import attrs

    @attrs.define
    class Inner:
        _secret: int = 0

    @dataclasses.dataclass
    class Outer:
        name: str
        inner: Inner = dataclasses.field(default_factory=Inner)
        tags: list[str] = dataclasses.field(default_factory=list)
        computed: int = dataclasses.field(default=0, init=False)

    info = hints.read(Outer)
    assert (info.ui_type, info.control, info.value_type) == ("object", "textarea", "object")
    assert hints.describe_fields(info) == (
        "name (a string), inner (an Inner object, optional), tags (a list of strings, optional)")
    assert info.convert({"name": "n", "inner": {"secret": "7"}, "other": 1}) == \
        Outer("n", Inner(7))
    with pytest.raises(hints.Mismatch, match=r"field 'tags' must be a list of strings, got "
                                             r"a list \(item 0 must be a string, got null\)"):
        info.convert({"name": "n", "tags": [None]})
    assert hints.read(list[Outer]).convert([{"name": "a"}]) == [Outer("a")]
    assert hints.holds_records(list[Outer]) and hints.holds_records(Optional[Outer])
    assert not hints.holds_records(dict)


@dataclasses.dataclass
class Node:
    next: Optional["Node"] = None


def test_records_that_json_cannot_carry_are_refused():
    with pytest.raises(hints.UnsupportedHint, match="^Node, "):
        hints.read(Node)

    @dataclasses.dataclass
    class Handle:
        sock: object
        when: complex = 0j

    with pytest.raises(hints.UnsupportedHint, match="'when'"):
        hints.read(Handle)


def test_dynamic_is_its_inner_hint_rendered_per_record():
    info = hints.read(Dynamic[int])
    assert info.dynamic and info._replace(hint=int, dynamic=False) == hints.read(int)
    assert hints.read(Optional[Dynamic[str]]).dynamic
    assert hints.read(Dynamic[Literal["a", "b"]]).choices == ["a", "b"]
    assert hints.name_of(Dynamic[Optional[int]]) == "Dynamic[Optional[int]]"
    assert hints.name_of(Optional[Dynamic[int]]) == "Optional[Dynamic[int]]"
    assert hints.name_of(list[Dynamic[Literal["a", "b"]]]) == "list[Dynamic[Literal['a', 'b']]]"
    assert not hints.read(int).dynamic


def test_other_annotated_metadata_means_the_inner_hint():
    assert hints.read(Annotated[int, "a note"]) == hints.read(int)
    assert hints.name_of(Annotated[int, "a note"]) == "int"


@pytest.mark.parametrize("hint", [Dynamic[list[str]], Dynamic[dict], Dynamic[bytes],
                                  list[Dynamic[str]], dict[str, Dynamic[int]]])
def test_dynamic_wraps_a_whole_hint_that_text_converts_to(hint):
    with pytest.raises(UnsupportedHint) as caught:
        hints.read(hint)
    assert caught.value.supported == hints.DYNAMIC_SUPPORTED
