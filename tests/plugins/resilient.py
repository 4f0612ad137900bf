"""A plugin whose sources meet trouble: lists holding a record that cannot be
sent, and sources that fail before they deliver.

Used by tests/test_sources_e2e.py, copied under a name of the test's own.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, source


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


if __name__ == "__main__":
    kuiperlite.run()
