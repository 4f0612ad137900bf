"""Simulated building sensors: readings in, alerts and files out, SQL helpers.

A richer kuiperlite example: two sources, two sinks and four functions with
Literal, list, enum and dynamic config, an aggregate function, a local module,
a data file and a third-party dependency (python-dateutil).
"""

import enum
import itertools
import json
import os
import random
from typing import Any, Literal, Optional

from dateutil import parser as dateparser

import kuiperlite
from kuiperlite import Context, Dynamic, Record, function, sink, source

from units import calibrate, to_celsius

ABOUT = kuiperlite.About(version="v0.2.0", author="kuiperlite", email="dev@kuiperlite.invalid",
                         website="https://example.invalid/sensors",
                         help_url="https://example.invalid/sensors/help")


class Level(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@source
def temperature(ctx: Context, building: str, *, sensors: list[str] = ["hall", "lab"],  # noqa: B006
                unit: Literal["C", "F", "K"] = "C", interval: float = 1.0, seed: int = 7):
    """Temperature readings, one record per sensor every interval.

    Args:
        building: the building the stream reads (its datasource).
        sensors: the sensors to read.
        unit: the unit the simulated sensors report in.
        interval: seconds between two rounds of readings.
        seed: seed of the simulation, for repeatable data.
    """
    rng = random.Random(seed)
    for round_no in itertools.count():
        yield [Record({"sensor": name, "value": round(rng.uniform(18, 26), 2), "unit": unit,
                       "round": round_no}, meta={"building": building or "main"})
               for name in sensors]
        if not ctx.sleep(interval):
            return


@source(label="Door events")
def doors(ctx: Context, *, doors: int = 3, interval: float = 2.0):
    """Door open/close events from a simulated access system.

    Args:
        doors: how many doors the building has.
        interval: seconds between two events.
    """
    rng = random.Random(1)
    while ctx.sleep(interval):
        ctx.emit({"door": rng.randrange(doors), "open": rng.random() < 0.5})


@sink
def alert(ctx: Context, data: Any, *, level: Level = Level.WARNING,
          threshold: float = 25.0, channels: list[str] = ["log"]):  # noqa: B006
    """Raise an alert for readings above a threshold.

    Args:
        data: one reading (an object) or a batch (a list of objects).
        level: how loud the alert is.
        threshold: alert when a value is above this (Celsius).
        channels: where alerts go; only "log" is built in.
    """
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        if float(row.get("value", 0)) > threshold:
            ctx.logger.warning("%s alert via %s: %s", level.value, ",".join(channels), row)


@sink(name="jsonl")
def jsonl_file(data: Any, *, path: Dynamic[str]) -> None:
    """Append each message as one JSON line to a file.

    Args:
        data: one reading, or a batch (one line, in the file of its last reading).
        path: the file to append to, such as readings/{{.sensor}}.jsonl for a file per sensor.
    """
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(data, ensure_ascii=False) + "\n")


@function
def celsius(value: float, unit: str = "C", sensor: Optional[str] = None) -> float:
    """Convert a reading to calibrated Celsius.

    Args:
        value: the reading.
        unit: its unit: C, F or K.
        sensor: the sensor, to apply its calibration offset.

    Returns:
        The temperature in Celsius.
    """
    result = to_celsius(value, unit)
    return calibrate(sensor, result) if sensor else round(result, 3)


@function(aggregate=True)
def spread(values: list[Optional[float]]) -> float:
    """The difference between the highest and the lowest value of a window.

    Args:
        values: the window's values; nulls are skipped.

    Returns:
        max - min, or 0 for an empty window.
    """
    numbers = [v for v in values if v is not None]
    return max(numbers) - min(numbers) if numbers else 0.0


@function
def epoch_ms(timestamp: str) -> int:
    """Parse a date-time text (ISO 8601 and more) into epoch milliseconds.

    Args:
        timestamp: the text to parse, e.g. 2024-05-01T10:00:00Z.

    Returns:
        Milliseconds since 1970-01-01 UTC.
    """
    return int(dateparser.parse(timestamp).timestamp() * 1000)


@function
def where(ctx: Context, value):
    """Which rule called: handy when one function serves many rules.

    Args:
        value: any value, returned with the rule's id.

    Returns:
        An object with the rule id and the value.
    """
    return {"rule": ctx.rule_id, "value": value}


if __name__ == "__main__":
    kuiperlite.run()
