"""Sinks with dynamic config, each printing what it received for every message.

Used by tests/declare/test_dynamic.py, copied under a name of the test's own.
"""

from typing import Any

import kuiperlite
from kuiperlite import Context, Dynamic, sink


@sink
def publish(ctx: Context, data: Any, *, topic: Dynamic[str], qos: Dynamic[int] = 0,
            retain: bool = False) -> None:
    """Print the topic and qos rendered for each message; fail for a "bad" record."""
    if isinstance(data, dict) and data.get("bad"):
        raise ConnectionError("broker refused " + topic)
    print("PUBLISH", ctx.rule_id, topic, qos, retain, flush=True)


@sink
async def alerts(data: Any, *, subject: Dynamic[str] = "{{.sensor}} reads {{.value}}") -> None:
    """An async sink whose default is a template."""
    print("ALERT", subject, flush=True)


@sink
def lines(data: str, *, path: Dynamic[str]) -> None:
    """A sink that takes the raw text, yet renders its path from the record."""
    print("LINES", path, data, flush=True)


if __name__ == "__main__":
    kuiperlite.run()
