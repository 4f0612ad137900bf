"""Sources in trouble, in a real plugin process, seen through the embedded host.

The plugin is tests/plugins/resilient.py. Each test reads the source's data
channel in arrival order, records and errors alike, as eKuiper receives them.
"""

import time
from typing import Any

import pytest

from kuiperlite.dev import gowire
from kuiperlite.dev.handles import RETRYING, RUNNING
from kuiperlite.errors import HostError

from conftest import unique, wait_until


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


@pytest.mark.parametrize("symbol", ["gateway", "gateway_emit"])
def test_a_source_that_raises_is_reported_and_starts_again_with_its_state(host, symbol):
    started = time.monotonic()
    with host.start_source(symbol, rule=unique("r")) as src:
        assert messages(src, 4) == [
            ("error", f"The source '{symbol}' failed: ConnectionError: gateway down (try 1); "
                      "it starts again in 0.1 s"),
            ("error", f"The source '{symbol}' failed: ConnectionError: gateway down (try 2); "
                      "it starts again in 0.2 s"),
            ("record", {"try": 3, "n": 1}),  # the third try saw the tries the others counted
            ("record", {"try": 3, "n": 2})]
        assert time.monotonic() - started >= 0.3  # both waits were waited
    assert host.process.printed(f"The source '{symbol}' failed: ConnectionError: gateway down "
                                "(try 2); it starts again in 0.2 s")


def test_the_hosts_handle_shows_a_source_retrying_then_running(host):
    with host.start_source("gateway", rule=unique("r")) as src:
        assert src.status.state == RUNNING
        assert src.recv()[0] == {"try": 3, "n": 1}  # the two failures went by on the way
        assert len(src.errors) == 2 and src.status.state == RUNNING
    with host.start_source("down", rule=unique("r"), config={"tag": "x"}) as src:
        def failed() -> list[str]:
            with pytest.raises(HostError, match="No record"):
                src.recv(timeout=0.05)
            return src.errors

        wait_until(failed, message="the failure")
        assert src.status.state == RETRYING and src.status.error == "ConnectionError: gateway down"
        assert 50 < src.status.again_at - time.time() <= 60


def test_sources_waiting_to_start_again_hold_up_nothing_and_a_stop_ends_them_at_once(host):
    rules = [unique("r") for _ in range(20)]
    downs = [host.start_source("down", rule=rule, config={"tag": rule}) for rule in rules]
    for src in downs:
        assert messages(src, 1)[0][0] == "error"
    with host.start_source("gateway", rule=unique("r")) as src:
        assert [r["n"] for r in src.records(2)] == [1, 2]  # served while twenty rest
    started = time.monotonic()
    for src in downs:
        src.stop()
    wait_until(lambda: all(host.process.printed(f"LINK-CLOSED {rule}") for rule in rules),
               10, message="every resting source to end, and its connection to close")
    assert time.monotonic() - started < 10  # not the 60 s of their backoff
