"""tail: follow a file and emit each new line once, across any restart.

The source keeps its byte offset in ``ctx.state``: stopped, killed, its
plugin updated or the device rebooted, the rule goes on from the line after
the last one it emitted.
"""

import os
from collections.abc import Iterator

import kuiperlite
from kuiperlite import Context, source

ABOUT = kuiperlite.About(version="v1.0.0", author="kuiperlite", email="dev@kuiperlite.invalid")


@source
def tail(ctx: Context, datasource: str, *, interval: float = 0.5,
         field: str = "line") -> Iterator[dict]:
    """Each line appended to a file, once, in order.

    Args:
        datasource: the file to follow (the stream's DATASOURCE).
        interval: seconds between looks for new lines.
        field: the record field that holds the line.
    """
    # Read before the first record: kuiperlite then queues none, so a line
    # whose offset is saved has left the plugin.
    offset = ctx.state.get("offset", 0)
    while True:
        try:
            size = os.path.getsize(datasource)
        except FileNotFoundError:
            size = None
        if size is not None and size < offset:
            ctx.logger.warning("%s shrank below offset %d: reading it from the start",
                               datasource, offset)
            offset = 0
            ctx.state.put("offset", 0)
        if size is not None and size > offset:
            with open(datasource, "rb") as f:
                f.seek(offset)
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # a line still being written: take it whole next time
                    offset += len(raw)
                    yield {field: raw[:-1].decode("utf-8", "replace")}
                    ctx.state.put("offset", offset)
        if not ctx.sleep(interval):
            return


if __name__ == "__main__":
    kuiperlite.run()
