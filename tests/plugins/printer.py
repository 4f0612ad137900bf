"""A plugin whose source prints without flushing while the runtime logs.

Used by tests/serve/test_runtime.py, which runs the file itself without ``-u``:
its output must still arrive line by line.
"""

from collections.abc import Iterator

import kuiperlite
from kuiperlite import Context, source


@source
def printer(ctx: Context) -> Iterator[dict]:
    """Print 200 numbered lines, no flush, then sleep until stopped."""
    for i in range(200):
        print("PRINTED", ctx.rule_id, i)  # no flush, while the runtime logs
    ctx.sleep(3600)
    yield {}


if __name__ == "__main__":
    kuiperlite.run()
