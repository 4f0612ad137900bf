"""Benchmark symbols for state: the same source with and without saving its offset."""

import kuiperlite
from kuiperlite import Context, source

from records import make


@source
def plain(ctx: Context, *, count: int = 1000, size: str = "100"):
    """Emit ``count`` records as fast as eKuiper takes them, then idle."""
    record = make(size)
    for _ in range(count):
        yield record


@source
def saving(ctx: Context, *, count: int = 1000, size: str = "100"):
    """The same, saving its offset after every record, as a resuming source does."""
    record = make(size)
    offset = ctx.state.get("offset", 0)
    for i in range(offset, offset + count):
        yield record
        ctx.state.put("offset", i + 1)


if __name__ == "__main__":
    kuiperlite.run()
