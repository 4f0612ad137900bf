"""mirror: the official Go SDK's example plugin, re-done the kuiperlite way.

A random source, a file sink and an echo function.
"""

import random as rand
import time
from collections.abc import Generator
from typing import Any

import orjson

import kuiperlite
from kuiperlite import Context, function, sink, source

ABOUT = kuiperlite.About(version="v1.0.0", author="EMQ", email="contact@emqx.io",
                         company="EMQ Technologies Co., Ltd", website="https://www.emqx.io")


@source
def random(ctx: Context, *, pattern: dict, interval: int = 1000, seed: int = 1,
           deduplicate: int = 0):
    """The source will generate random inputs with a specified pattern.

    Args:
        pattern: the record to generate, e.g. {"count": 50}; each number gets a
            random integer between 0 and seed - 1 added.
        interval: milliseconds between two records.
        seed: the random integers stay below this.
        deduplicate: skip a record equal to one of the last N (0: keep all,
            negative: any earlier one).
    """
    if interval <= 0 or seed <= 0:
        # A ConfigError is reported once: the source is not started again with it.
        raise kuiperlite.ConfigError(f"interval and seed must be positive, got {interval} "
                                     f"and {seed}")
    seen: list[bytes] = []
    while ctx.sleep(interval / 1000):
        record = {key: value + rand.randrange(seed) if isinstance(value, (int, float))
                  else value for key, value in pattern.items()}
        if deduplicate:
            encoded = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
            if encoded in seen:
                continue
            seen.append(encoded)
            if 0 < deduplicate < len(seen):
                seen.pop(0)
        yield record


@sink
def file(ctx: Context, *, path: str = "cache", interval: int = 1000
         ) -> Generator[None, bytes, None]:
    """Save each message as one line of a file.

    Args:
        path: the file to append to.
        interval: milliseconds between two flushes to disk.
    """
    with open(path, "ab") as out:
        ctx.logger.info("writing to %s", path)
        flushed = time.monotonic()
        while True:
            data = yield
            out.write(data + b"\n")
            if time.monotonic() - flushed >= interval / 1000:
                out.flush()
                flushed = time.monotonic()


@function
def echo(value: Any) -> Any:
    """The parameter value is output as it is.

    Args:
        value: the field to echo.

    Returns:
        The value, unchanged.
    """
    return value


if __name__ == "__main__":
    kuiperlite.run()
