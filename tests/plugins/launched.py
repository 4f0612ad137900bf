"""A plugin that prints how it was launched and whose symbols name their process.

It prints its arguments and working folder when it loads; its source yields
the pid of the process that runs the user code. Used by tests/dev/test_host.py,
copied under a name of the test's own.
"""

import os
import sys
from collections.abc import Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, function, sink, source


@source
def pid(ctx: Context) -> Iterator[dict]:
    while ctx.sleep(0.05):
        yield {"pid": os.getpid()}


@sink
def show(ctx: Context, data: Any) -> None:
    print("SHOW", os.getpid(), data, flush=True)


@function
def first(x: Any) -> list:
    return ["first", x]


@function
def second(x: Any) -> list:
    return ["second", x]


print("ARGV", sys.argv[1:], "CWD", os.getcwd(), flush=True)


if __name__ == "__main__":
    kuiperlite.run()
