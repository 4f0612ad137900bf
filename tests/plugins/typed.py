"""A plugin whose symbols take and give typed records: attrs classes and dataclasses.

Used by tests/test_records.py under the embedded host.
"""

import dataclasses
from collections.abc import Iterator
from typing import Literal, Optional

import attrs

import kuiperlite
from kuiperlite import Context, function, sink, source


@attrs.define
class Place:
    building: str
    floor: int = 0


@attrs.define
class Reading:
    sensor: str
    temp: float
    unit: Literal["C", "F"] = "C"
    place: Optional[Place] = None


@dataclasses.dataclass
class Window:
    low: float
    high: float


@source
def readings(ctx: Context, *, count: int = 2) -> Iterator[Reading]:
    """Readings as attrs instances, and one dataclass."""
    for i in range(count):
        yield Reading(f"s{i}", 20.0 + i, place=Place("b7", i))
    yield Window(1.0, 2.0)  # type: ignore[misc]


@sink
def store(ctx: Context, data: Reading, *, window: Window = Window(0.0, 100.0)) -> None:  # noqa: B008
    """Print each reading, refusing one outside the window."""
    if not window.low <= data.temp <= window.high:
        raise ValueError(f"{data.temp} is outside {window.low}..{window.high}")
    print("STORED", repr(data), flush=True)


@function
def fahrenheit(r: Reading) -> Reading:
    """The reading in Fahrenheit."""
    if r.unit == "F":
        return r
    return Reading(r.sensor, r.temp * 9 / 5 + 32, "F", r.place)


if __name__ == "__main__":
    kuiperlite.run()
