"""Sources in trouble, in a real plugin process, seen through the embedded host.

The plugin is tests/plugins/resilient.py. Each test reads the source's data
channel in arrival order, records and errors alike, as eKuiper receives them.
"""

from typing import Any

import pytest

from kuiperlite.dev import gowire

from conftest import unique


@pytest.fixture
def host(kuiperlite_host, copy_plugin):
    return kuiperlite_host(copy_plugin("resilient"))


def messages(src: Any, count: int, timeout: float = 10.0) -> list[tuple[str, Any]]:
    """The next ``count`` messages in order: ``("record", message)`` or ``("error", text)``."""
    got: list[tuple[str, Any]] = []
    for _ in range(count):
        try:
            got.append(("record", gowire.decode_source_message(src.recv_raw(timeout)).message))
        except gowire.SourceError as err:
            got.append(("error", err.text))
    return got


@pytest.mark.parametrize("symbol", ["listed", "emitted", "awaited"])
def test_a_bad_element_of_a_list_is_reported_and_the_rest_arrive(host, symbol):
    with host.start_source(symbol, rule=unique("r")) as src:
        assert messages(src, 5) == [
            ("record", {"seq": 3}),
            ("error", f"The source '{symbol}' dropped a record: A record must be a dict, an "
                      "attrs or dataclass instance, a list of those or a Record, got the "
                      "number 5."),
            ("error", f"The source '{symbol}' dropped a record: A list of records holds a "
                      "list; expected objects."),
            ("record", {"seq": 4}),
            ("record", {"seq": 5})]
