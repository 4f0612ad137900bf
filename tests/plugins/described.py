"""A plugin with one source, one sink and one function.

Used by tests/dev/test_describe.py, copied under a name of the test's own.
"""

from collections.abc import Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, function, sink, source


@source
def counter(ctx: Context) -> Iterator[dict]:
    yield {"i": 1}


@sink
def keep(ctx: Context, data: Any) -> None:
    pass


@function
def shout(s: str) -> str:
    return s.upper()


if __name__ == "__main__":
    kuiperlite.run()
