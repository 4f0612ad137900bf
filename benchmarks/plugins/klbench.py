"""The benchmark symbols, written the kuiperlite way."""

import os

import kuiperlite
from kuiperlite import Context, function, sink, source

from records import make


@source
def emit(ctx: Context, *, count: int = 1000, size: str = "100"):
    """Emit ``count`` records as fast as eKuiper takes them, then idle."""
    record = make(size)
    for _ in range(count):
        yield record


@sink
def ack(ctx: Context, *, count: int = 0):
    """Take every record (acked automatically with requireAck); say DONE after ``count``."""
    seen = 0
    while True:
        yield
        seen += 1
        if seen == count:
            print("DONE", ctx.rule_id, flush=True)


@function(os.environ.get("BENCH_FUNCTION", "klrevert"))
def klrevert(s: str) -> str:
    """Reverse a string."""
    return s[::-1]


if __name__ == "__main__":
    kuiperlite.run()
