"""examples/sensors, in-process through kuiperlite.testing."""

import json
import sys

import pytest

from kuiperlite import ConfigError, Record
from kuiperlite.testing import call_function, run_sink, run_source

from conftest import EXAMPLES, unique

sys.path.insert(0, str(EXAMPLES / "sensors"))
import sensors  # noqa: E402


def test_temperature_emits_one_record_per_sensor_with_meta():
    records = run_source(sensors.temperature, 4, datasource="hq", meta=True,
                         config={"sensors": ["roof", "lab"], "unit": "F", "interval": 0.001})
    assert [r.data["sensor"] for r in records] == ["roof", "lab", "roof", "lab"]
    assert {r.data["unit"] for r in records} == {"F"}
    assert all(isinstance(r, Record) and r.meta == {"building": "hq"} for r in records)
    with pytest.raises(ConfigError, match="'X'"):
        run_source(sensors.temperature, config={"unit": "X"})


def test_alert_and_jsonl_sinks(tmp_path, caplog):
    acks = run_sink(sensors.alert, [{"sensor": "lab", "value": 30}, [{"value": 1}]],
                    config={"level": "critical", "threshold": 25})
    assert acks == [None, None]
    assert "critical alert via log" in caplog.text
    out = tmp_path / "out.jsonl"
    assert run_sink(sensors.jsonl_file, [{"a": "é"}, {"b": 2}], config={"path": str(out)}) == [
        None, None]
    assert [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] == [
        {"a": "é"}, {"b": 2}]


def test_jsonl_writes_a_file_per_sensor_with_a_dynamic_path(tmp_path):
    readings = [{"sensor": "lab", "value": 21.5}, {"sensor": "hall", "value": 19},
                [{"sensor": "lab", "value": 22}, {"sensor": "roof", "value": 3}]]
    path = str(tmp_path / "readings" / "{{.sensor}}.jsonl")
    assert run_sink(sensors.jsonl_file, readings, config={"path": path}) == [None, None, None]

    def lines(name):
        text = (tmp_path / "readings" / f"{name}.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    assert lines("lab") == [{"sensor": "lab", "value": 21.5}]
    assert lines("hall") == [{"sensor": "hall", "value": 19}]
    assert lines("roof") == [readings[2]]  # a batch goes to its last reading's file


def test_functions():
    assert call_function(sensors.celsius, 212, "F") == 100.0
    assert call_function(sensors.celsius, 300, "K", "roof") == 27.85
    assert call_function(sensors.spread, [1, 5, None, 2.5]) == 4.0
    assert call_function(sensors.epoch_ms, "1970-01-01T00:00:01Z") == 1000
    assert call_function(sensors.where, [1], rule_id="r7") == {"rule": "r7", "value": [1]}


@pytest.mark.parametrize("ekuiper", [2, 1])
def test_temperature_reads_its_building_from_the_stream_under_either_ekuiper(kuiperlite_host,
                                                                            ekuiper):
    host = kuiperlite_host(EXAMPLES / "sensors" / "sensors.py", ekuiper=ekuiper)
    with host.start_source("temperature", rule=unique("r"), datasource="building-7",
                           config={"interval": 0.01}) as src:
        rows = [src.recv() for _ in range(4)]
    assert {meta["building"] for _, meta in rows} == {"building-7"}
    assert {row["sensor"] for row, _ in rows} == {"hall", "lab"}
