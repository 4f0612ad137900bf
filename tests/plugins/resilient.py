"""A plugin whose sources meet trouble: lists holding a record that cannot be
sent, a gateway that is down for its first two tries, and one that stays down.

Used by tests/test_sources_e2e.py, copied under a name of the test's own.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Backoff, Context, connection, source


def mixed() -> list[Any]:
    """Records 3 and 4 with two that cannot be sent between them."""
    return [{"seq": 3}, 5, [{"nested": 1}], {"seq": 4}]


@source
def listed(ctx: Context) -> Iterator[Any]:
    """Yield a list with bad elements, then record 5."""
    yield mixed()
    yield {"seq": 5}


@source
def emitted(ctx: Context) -> None:
    """Emit a list with bad elements, then record 5."""
    ctx.emit(mixed())
    ctx.emit({"seq": 5})


@source
async def awaited(ctx: Context) -> AsyncIterator[Any]:
    """Yield a list with bad elements, then record 5, from an async generator."""
    yield mixed()
    yield {"seq": 5}


def connect(ctx: Context) -> dict:
    """Count a try in the state; the first two fail, as a gateway that is down would."""
    tries = ctx.state.incr("tries")
    if tries <= 2:
        raise ConnectionError(f"gateway down (try {tries})")
    return {"try": tries}


@source(retry=Backoff(first=0.1, most=1))
def gateway(ctx: Context) -> Iterator[dict]:
    """Two failed tries, then two records of the third (a generator, run as a task)."""
    first = connect(ctx)
    yield {**first, "n": 1}
    yield {**first, "n": 2}


@source(retry=Backoff(first=0.1, most=1))
def gateway_emit(ctx: Context) -> None:
    """Two failed tries, then two records of the third (run on a thread of its own)."""
    first = connect(ctx)
    ctx.emit([{**first, "n": 1}, {**first, "n": 2}])


@connection
def link(*, tag: str) -> Iterator[str]:
    """Say when it closes: the last instance using it has ended."""
    try:
        yield tag
    finally:
        print("LINK-CLOSED", tag, flush=True)


@source(retry=Backoff(first=60, most=60))
def down(ctx: Context, *, link: str) -> Iterator[dict]:
    """Fail at once, and start again a minute later."""
    raise ConnectionError("gateway down")
    yield


if __name__ == "__main__":
    kuiperlite.run()
