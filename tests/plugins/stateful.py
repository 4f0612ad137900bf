"""A plugin whose symbols keep state: a resuming source, a counting sink and function.

Used by tests/test_state_e2e.py under the embedded host.
"""

from collections.abc import Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, function, sink, source


@source
def numbers(ctx: Context, *, count: int = 0, interval: float = 0.0) -> Iterator[dict]:
    """Emit 0, 1, 2, ... resuming after the last number it emitted."""
    n = ctx.state.get("next", 0)
    while count == 0 or n < count:
        yield {"n": n}
        n += 1
        ctx.state.put("next", n)
        if interval and not ctx.sleep(interval):
            return


@sink
def tally(ctx: Context, data: Any) -> None:
    """Count the payloads, and each value of their ``key``."""
    ctx.state.incr("payloads")
    if isinstance(data, dict) and "key" in data:
        ctx.state.incr(f"key:{data['key']}")
    if isinstance(data, dict) and "keep" in data:
        ctx.state.put("kept", data["keep"])


@function
def count_calls(ctx: Context) -> int:
    """How often this call site of the rule ran."""
    return ctx.state.incr("calls")


@function
def kept(ctx: Context, key: str) -> Any:
    """What this call site keeps under ``key``."""
    return ctx.state.get(key)


if __name__ == "__main__":
    kuiperlite.run()
