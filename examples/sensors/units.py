"""Unit conversions shared by the sensors plugin (a local module the zip must carry)."""

import json
from pathlib import Path

OFFSETS = json.loads(Path(__file__).with_name("calibration.json").read_text())


def to_celsius(value: float, unit: str) -> float:
    """Convert a temperature in ``unit`` (C, F or K) to Celsius."""
    if unit == "F":
        return (value - 32) * 5 / 9
    if unit == "K":
        return value - 273.15
    return value


def calibrate(sensor: str, celsius: float) -> float:
    """Apply the sensor's calibration offset from calibration.json."""
    return round(celsius + OFFSETS.get(sensor, 0.0), 3)
