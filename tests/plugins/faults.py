"""A plugin with a symbol for each fault: sources and sinks that fail in setup,
midway or teardown, records that cannot be encoded, a slow sink, a slow function,
a source that grows the plugin's memory.

Used by tests/test_faults.py and tests/test_faults_generated.py, copied under a
name of the test's own.
"""

import os
import time
from collections.abc import Generator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, function, sink, source


@source
def tagged(ctx: Context, *, count: int = 0, interval: float = 0.0) -> Iterator[dict]:
    """Yield ``count`` records (forever for 0) naming the rule and the process."""
    i = 0
    while count == 0 or i < count:
        yield {"rule": ctx.rule_id, "i": i, "pid": os.getpid()}
        i += 1
        if interval and not ctx.sleep(interval):
            return


@source
def idle(ctx: Context) -> Iterator[dict]:
    """Sleep until stopped; say so when it ends."""
    try:
        while ctx.sleep(60):
            yield {}
    finally:
        print("IDLE-END", ctx.rule_id, flush=True)


@source
def bad_records(ctx: Context) -> Iterator[Any]:
    """Four records JSON cannot carry, then a good one."""
    yield {"set": {1, 2}}
    yield {"nan": float("nan")}
    yield {"object": object()}
    yield "text"
    yield {"ok": True}


@source(retry=False)
def fails_setup(ctx: Context) -> Iterator[dict]:
    raise RuntimeError("no device")
    yield


@source(retry=False)
def fails_midway(ctx: Context) -> Iterator[dict]:
    yield {"n": 1}
    raise RuntimeError("lost the device")


@source
def fails_teardown(ctx: Context) -> Iterator[dict]:
    try:
        while ctx.sleep(60):
            yield {}
    finally:
        raise RuntimeError("cannot close")


# What ``hoard`` keeps: module state, as a plugin's cache would be.
HOARD: list[bytearray] = []
# A plugin that loads a model at import takes this long to start.
time.sleep(float(os.environ.get("FAULTS_IMPORT_SECONDS", "0")))


@source
def hoard(ctx: Context, *, mb: int = 8) -> Iterator[dict]:
    """Keep ``mb`` MB more in a module global, then say how many hoards it holds."""
    HOARD.append(bytearray(b"\x01") * (mb << 20))  # written, so resident
    yield {"pid": os.getpid(), "hoards": len(HOARD)}


@source
def returns_at_once(ctx: Context) -> Iterator[dict]:
    return
    yield


@sink
def record(ctx: Context, data: Any, *, path: str = "") -> None:
    """A line per payload: its ``n``, or its length when it is not an object."""
    line = f"REC {ctx.rule_id} {data['n'] if isinstance(data, dict) else len(data)}\n"
    if path:  # one O_APPEND write per record: lines never interleave
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, line.encode())
        os.close(fd)
    else:
        print(line, end="", flush=True)


@sink
def slow(ctx: Context, data: Any) -> None:
    """Say it is inside its call, then take 2 s over each payload."""
    print("SLOW-IN", ctx.rule_id, flush=True)
    time.sleep(2)


@sink
def fails_open(ctx: Context) -> Generator[None, Any, None]:
    raise RuntimeError("no database")
    yield


@sink
def fails_record(ctx: Context, data: Any) -> None:
    if data.get("bad"):
        raise ValueError("bad record")


@sink
def fails_close(ctx: Context) -> Generator[None, Any, None]:
    try:
        while True:
            yield
    finally:
        raise RuntimeError("cannot flush")


@sink
def never_yields(ctx: Context) -> Generator[None, Any, None]:
    return
    yield


@function
def echo(x: Any) -> Any:
    return x


@function
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    print("SLEPT", seconds, flush=True)
    return seconds


@function
def raises(x: Any) -> Any:
    raise ValueError("bad value " + str(x))


if __name__ == "__main__":
    kuiperlite.run()
