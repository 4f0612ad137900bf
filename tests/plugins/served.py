"""A plugin for serve: a counting source, two failing ones, a sink, two functions.

Used by tests/dev/test_server.py, copied under a name of the test's own; its
reload test edits the copy.
"""

import os
from collections.abc import Iterator
from typing import Any

import kuiperlite
from kuiperlite import Backoff, Context, function, sink, source


@source
def counter(ctx: Context, *, step: int = 1) -> Iterator[dict]:
    i = 0
    while ctx.sleep(0.05):
        yield {"i": i, "pid": os.getpid()}
        i += step


@source(retry=False)
def unplugged(ctx: Context) -> Iterator[dict]:
    raise OSError("sensor unplugged")


@source(retry=Backoff(first=0.2, most=0.2))
def flaky(ctx: Context, *, gate: str) -> Iterator[dict]:
    """Fail while the file ``gate`` does not exist, then yield one record."""
    if not os.path.exists(gate):
        raise OSError("sensor unplugged")
    yield {"up": True}


@sink
def keep(ctx: Context, data: Any) -> None:
    if data == {"fail": True}:
        raise OSError("disk full")
    print("KEEP", data, flush=True)


@function
def shout(s: str) -> str:
    return s.upper() + "!"


@function
def broken(x: Any) -> Any:
    raise RuntimeError("no luck")


if __name__ == "__main__":
    kuiperlite.run()
