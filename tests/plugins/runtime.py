"""A plugin with one symbol for each runtime behaviour: config conversion, prompt
stops, user code failures, raw and large sink payloads, back pressure.

Used by tests/serve/test_runtime.py, copied under a name of the test's own.
"""

import os
from collections.abc import Generator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, function, sink, source


@source
def counter(ctx: Context, datasource: str, *, count: int = 0, interval: float = 0.0,
            tag: str = "", size: int = 0) -> Generator[dict, None, None]:
    """Yield ``count`` numbered records (forever for 0), ``interval`` seconds apart."""
    pad = "x" * size
    i = 0
    try:
        while count == 0 or i < count:
            yield {"i": i, "rule": ctx.rule_id, "tag": tag, "ds": datasource, "pad": pad}
            i += 1
            if interval and not ctx.sleep(interval):
                break
    finally:
        print("FINALLY", ctx.rule_id, flush=True)


@source
def sleeper(ctx: Context) -> Iterator[dict]:
    """Sleep until stopped; say so in its finally block."""
    try:
        while ctx.sleep(60):
            yield {}
    finally:
        print("SLEEPER-CLOSED", ctx.rule_id, flush=True)


@source
def reader(ctx: Context) -> Iterator[dict]:
    """Block in a read that never returns, as a source reading a quiet device does."""
    quiet, _ = os.pipe()
    while True:
        yield {"read": os.read(quiet, 1)}


@source(retry=False)
def broken(ctx: Context) -> Iterator[dict]:
    """Yield one record, then fail for good."""
    yield {"ok": 1}
    raise ValueError("sensor unplugged")


@sink
def collect(ctx: Context, data: Any, *, fail_on: str = "", quiet: bool = False) -> None:
    """Print each payload; fail on a record whose name is ``fail_on``."""
    if isinstance(data, dict) and data.get("name") == fail_on:
        raise OSError("cannot write " + fail_on)
    if not quiet:
        print("GOT", ctx.rule_id, repr(data), flush=True)


@sink
def last(ctx: Context, data: bytes) -> None:
    """Print the size and the end of each raw payload."""
    print("LAST", ctx.rule_id, len(data), data[-20:].decode(), flush=True)


@function
def revert(s: str) -> str:
    return s[::-1]


@function
def boom(x: Any) -> Any:
    raise RuntimeError("nope")


if __name__ == "__main__":
    kuiperlite.run()
