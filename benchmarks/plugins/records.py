"""The records every benchmark plugin emits: built once, identical for all three."""

import random


def small() -> dict:
    """About 100 bytes of JSON."""
    return {"id": 12345, "name": "sensor-0042", "temperature": 21.5, "ok": True,
            "tags": ["a", "b"], "note": "x" * 24}


def nested() -> dict:
    """About 4 KB of JSON: objects with lists, numbers and unicode strings."""
    rng = random.Random(4)
    return {
        "device": {"id": "dev-0042", "site": "Zürich Nord", "labels": ["边缘", "gateway", "β"]},
        "readings": [{"sensor": f"s{i}", "value": round(rng.uniform(-50, 50), 4),
                      "unit": "°C", "flags": [i % 2 == 0, i % 3 == 0],
                      "history": [rng.randint(0, 1000) for _ in range(8)]}
                     for i in range(24)],
        "comment": "温度传感器读数 / température / Temperatur " * 4,
    }


def make(size: str) -> dict:
    return nested() if size == "4k" else small()
