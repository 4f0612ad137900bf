"""attrs classes and dataclasses as records: their fields, built and encoded."""

import dataclasses

import attrs
import pytest

from kuiperlite.declare.record_classes import (
    is_record,
    record_converter,
    record_fields,
    record_specs,
)
from kuiperlite.declare.values import Mismatch, to_int


@attrs.define
class Reading:
    _value: int
    unit: str = "C"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    label: str = dataclasses.field(default="", init=False)


def test_records_are_attrs_classes_and_dataclasses():
    assert is_record(Reading) and is_record(Point)
    assert not is_record(dict) and not is_record(int)


def test_the_fields_are_those_init_takes_by_the_name_it_takes():
    assert record_specs(Reading) == [("value", int, True), ("unit", str, False)]
    assert record_specs(Point) == [("x", int, True), ("y", int, False)]


def test_a_record_encodes_as_the_names_init_takes():
    assert record_fields(Reading(3)) == {"value": 3, "unit": "C"}
    assert record_fields(Point(1, 2)) == {"x": 1, "y": 2, "label": ""}


def test_a_record_builds_field_by_field_and_names_the_field_that_does_not_fit():
    build = record_converter(Point, (("x", to_int, True), ("y", None, False)), "a Point object")
    assert build({"x": "4", "z": 1}) == Point(4)
    point = Point(1)
    assert build(point) is point
    with pytest.raises(Mismatch, match=r"^must be a Point object, got an object \(field 'x' "
                                       r"must be an integer, got the string 'a'\)$"):
        build({"x": "a"})
    with pytest.raises(Mismatch, match=r"\(field 'x' is missing\)$"):
        build({"y": 1})
    with pytest.raises(Mismatch, match=r"^must be a Point object, got a list$"):
        build([1])
