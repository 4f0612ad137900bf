"""The store a plugin keeps its state in: SQLite or Redis, opened once, at first use."""

import os

from kuiperlite.declare.kinds import SINK
from kuiperlite.serve.stores import Stores, clear, memory_stores, open_store

from conftest import state


def test_a_second_handle_on_the_same_store_sees_the_state(state_place, state_plugin, stores):
    state(stores).put("offset", 5)
    stores.close()
    again = Stores(lambda: open_store(state_plugin, **state_place))
    try:
        assert state(again).get("offset") == 5
    finally:
        again.close()


def test_entries_and_clear_by_rule_and_symbol(state_place, state_plugin, stores):
    state(stores, rule="keep").put("a", 1)
    state(stores, rule="drop").put("a", 2)
    state(stores, rule="drop", kind=SINK, symbol="out").put("b", 3)
    store = stores.get()
    assert sorted((scope.kind, scope.rule, key, value)
                  for scope, key, value in store.entries(rule="drop")) == [
        ("sink", "drop", "b", "3"), ("source", "drop", "a", "2")]
    assert clear(state_plugin, rule="drop", symbol="out", **state_place) == 1
    assert clear(state_plugin, rule="drop", **state_place) == 1
    assert [(s.rule, k) for s, k, _ in store.entries()] == [("keep", "a")]
    assert clear(state_plugin, **state_place) == 1
    assert store.entries() == []


def test_the_store_opens_at_first_use_only(tmp_path):
    folder = tmp_path / "never"
    stores = Stores(lambda: open_store("p", directory=str(folder)))
    handle = state(stores)
    assert not folder.exists() and not handle.used
    handle.get("x")
    assert handle.used and os.path.exists(folder / "p.sqlite3")
    stores.close()


def test_memory_stores_are_private():
    a, b = memory_stores(), memory_stores()
    state(a).put("k", 1)
    assert state(b).get("k") is None
