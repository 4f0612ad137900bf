"""Example python plugin: a JSON source, a print sink and a string function."""

import kuiperlite
from kuiperlite import Context, function, sink, source

ABOUT = kuiperlite.About(version="v1.0.0", author="EMQ", email="contact@emqx.io",
                         company="EMQ Technologies Co., Ltd", website="https://www.emqx.io")


@source
def pyjson(ctx: Context, datasource: str, *, interval: float = 0.2, value: int = 2021):
    """The python source will send json data.

    Args:
        datasource: the stream's datasource; logged, not used.
        interval: seconds between two records.
        value: the value each record carries.
    """
    ctx.logger.info("opening with datasource %r", datasource)
    try:
        while ctx.sleep(interval):
            yield {"name": "pyjson", "value": value}
    finally:
        ctx.logger.info("closed")


@sink(name="print")
def print_sink(ctx: Context, data, *, prefix: str = "receive:"):
    """Example sink plugin to print with python logger.

    Args:
        data: a record (an object) or a batch (a list of objects).
        prefix: printed before each message.
    """
    print(prefix, data, flush=True)


@function
def revert(s: str) -> str:
    """Revert the input string.

    Args:
        s: the string to revert.

    Returns:
        The reverted string.
    """
    return s[::-1]


if __name__ == "__main__":
    kuiperlite.run()
