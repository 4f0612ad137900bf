"""Typed records: attrs classes and dataclasses in and out of every kind of symbol."""

import sys

import pytest

from kuiperlite.bundle import metadata
from kuiperlite.declare.plugin import load
from kuiperlite.errors import HostError
from kuiperlite.testing import call_function, run_sink, run_source

from conftest import ROOT, unique, wait_until

sys.path.insert(0, str(ROOT / "tests" / "plugins"))
import typed as records  # noqa: E402


def test_in_process_records_round_trip():
    assert run_source(records.readings, 3, config={"count": 2}) == [
        records.Reading("s0", 20.0, place=records.Place("b7", 0)),
        records.Reading("s1", 21.0, place=records.Place("b7", 1)),
        records.Window(1.0, 2.0)]
    assert run_sink(records.store, [{"sensor": "a", "temp": "21.5"},
                                    {"sensor": "a", "temp": 500},
                                    {"sensor": "a"},
                                    {"sensor": "a", "temp": 1, "place": {"floor": 2}}]) == [
        None,
        "ValueError: 500.0 is outside 0.0..100.0",
        "The payload must be a Reading object, got an object (field 'temp' is missing).",
        "The payload must be a Reading object, got an object (field 'place' must be a Place "
        "object, got an object (field 'building' is missing))."]
    assert call_function(records.fahrenheit, {"sensor": "x", "temp": 100}) == {
        "sensor": "x", "temp": 212.0, "unit": "F", "place": None}


def test_records_through_a_plugin_process(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("typed"))
    with host.start_source("readings", rule=unique("r"), config={"count": 1}) as src:
        assert src.records(2) == [
            {"sensor": "s0", "temp": 20, "unit": "C", "place": {"building": "b7", "floor": 0}},
            {"low": 1, "high": 2}]
    with host.start_sink("store", rule=unique("r"), config={
            "requireAck": True, "window": {"low": "10", "high": 30}}) as snk:
        assert snk.send({"sensor": "a", "temp": 25, "unit": "F", "extra": "ignored"}) is None
        assert snk.send({"sensor": "a", "temp": 5}) == "ValueError: 5.0 is outside 10.0..30.0"
        assert snk.send({"sensor": "a", "temp": 5, "unit": "K"}) == (
            "The payload must be a Reading object, got an object (field 'unit' must be one of "
            "'C', 'F', got the string 'K').")
    wait_until(lambda: host.process.printed(
        "STORED Reading(sensor='a', temp=25.0, unit='F', place=None)"))
    with pytest.raises(HostError, match="'high'"):
        host.start_sink("store", rule=unique("r"), config={"window": {"low": 1}})
    with host.function("fahrenheit") as fn:
        assert fn.call({"sensor": "x", "temp": 0, "place": {"building": "b1"}}) == {
            "sensor": "x", "temp": 32, "unit": "F", "place": {"building": "b1", "floor": 0}}
        with pytest.raises(HostError, match=r"Argument 1 \(r\) of fahrenheit\(\) must be a "
                                            r"Reading object, got the string 'hot'"):
            fn.call("hot")


def test_metadata_describes_record_fields():
    plugin = load(str(ROOT / "tests" / "plugins" / "typed.py"))
    (window,) = metadata.sink_json(plugin, plugin.sinks["store"])["properties"]
    assert window["type"] == "object" and window["control"] == "textarea"
    assert window["default"] == {"low": 0.0, "high": 100.0}
    assert window["hint"]["en_US"] == "Fields: low (a number), high (a number)."
    (entry,) = metadata.function_json(plugin, plugin.functions["fahrenheit"])["functions"]
    assert entry["args"][0]["type"] == "object"
    assert entry["args"][0]["hint"]["en_US"] == (
        "Fields: sensor (a string), temp (a number), unit (one of 'C', 'F', optional), "
        "place (a Place object or null, optional).")
    assert metadata.source_yaml(plugin.sinks["store"]) == \
        'default:\n  window: {"low":0.0,"high":100.0}\n'
