"""``ctx.state``: scopes, values and atomic counters, on SQLite, on Redis and in memory."""

import threading

import pytest

from kuiperlite import Context, StateError
from kuiperlite.declare.kinds import FUNCTION, SINK, SOURCE
from kuiperlite.declare.state import Kept, MemoryStore, Scope

from conftest import state

VALUES = [None, True, False, 0, -7, 2**63 - 1, -(2**63), 1.5, "", "text ✓",
          [], [1, "a", None, [2.5]], {}, {"offset": 42, "nested": {"list": [True]}}]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_json_value_reads_back_as_it_was_put(stores, value):
    s = state(stores)
    s.put("k", value)
    got = s.get("k", "absent")
    assert got == value and type(got) is type(value)


def test_get_put_delete_incr(stores):
    s = state(stores)
    assert s.get("offset") is None and s.get("offset", 0) == 0
    s.put("offset", 10)
    assert s.get("offset") == 10
    s.delete("offset")
    s.delete("offset")  # deleting what is not there is no error
    assert s.get("offset", -1) == -1
    assert s.incr("count") == 1
    assert s.incr("count", 41) == 42
    assert s.incr("count", -2) == 40
    assert s.get("count") == 40
    s.put("count", 7)
    assert s.incr("count") == 8


def test_each_scope_keeps_its_own_keys(stores):
    scopes = [state(stores), state(stores, instance=1), state(stores, op="o2"),
              state(stores, rule="r2"), state(stores, symbol="other"),
              state(stores, kind=SINK), state(stores, kind=FUNCTION, instance=0),
              state(stores, kind=FUNCTION, instance=1)]
    for i, s in enumerate(scopes):
        s.put("k", i)
    assert [s.get("k") for s in scopes] == list(range(len(scopes)))


@pytest.mark.parametrize(("value", "noun"), [
    ({1, 2}, "set"), (object(), "object"), (float("nan"), "nan"),
    ({"a": [1, float("inf")]}, "a[1]"), (2**64, "64"), ({1: "x"}, "int"),
    (b"bytes", "bytes"),
])
def test_a_value_json_cannot_carry_is_an_error_naming_key_and_type(stores, value, noun):
    s = state(stores)
    s.put("offset", 1)
    with pytest.raises(StateError) as info:
        s.put("offset", value)
    assert "'offset'" in str(info.value) and noun in str(info.value)
    assert s.get("offset") == 1, "a refused value leaves the old one"


def test_incr_needs_an_integer_there_and_stays_in_64_bits(stores):
    s = state(stores, kind=FUNCTION, symbol="count", rule="r", instance=2)
    s.put("n", "seven")
    with pytest.raises(StateError, match='"seven"'):
        s.incr("n")
    s.put("n", 1.0)
    with pytest.raises(StateError, match="1.0"):
        s.incr("n")
    s.put("n", 2**63 - 1)
    with pytest.raises(StateError, match="'n'"):
        s.incr("n")
    assert s.get("n") == 2**63 - 1
    with pytest.raises(StateError, match="1.5"):
        s.incr("m", 1.5)  # type: ignore[arg-type]


def test_incr_is_atomic_across_threads(stores):
    s = state(stores)

    def add():
        for _ in range(50):
            s.incr("hits")

    threads = [threading.Thread(target=add) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert s.get("hits") == 1000


def test_100_instances_writing_at_once_keep_their_own_state(stores):
    handles = [state(stores, instance=i) for i in range(100)]

    def write(s, i):
        for n in range(20):
            s.put("offset", n + i)

    threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [s.get("offset") for s in handles] == [19 + i for i in range(100)]


def test_a_hand_made_context_keeps_its_state_in_memory():
    ctx = Context("counter", SOURCE, rule_id="r", op_id="o", instance_id=3)
    assert ctx.state.incr("n") == 1 and ctx.state.incr("n") == 2
    assert ctx.state.scope == Scope("source", "counter", "r", "o", 3)
    fn = Context("f", FUNCTION, rule_id="r", func_id=4)
    assert fn.state.scope == Scope("func", "f", "r", "", 4)
    assert Context("other", SOURCE).state.get("n") is None


def test_a_memory_store_keeps_values_and_counts_as_a_store_does():
    s = state(Kept(MemoryStore()))
    for value in VALUES:
        s.put("k", value)
        assert s.get("k", "absent") == value
    s.delete("k")
    s.delete("k")
    assert s.get("k", -1) == -1
    assert s.incr("n") == 1 and s.incr("n", 41) == 42
    s.put("n", "seven")
    with pytest.raises(StateError, match='"seven"'):
        s.incr("n")
    assert s.get("n") == "seven"


def test_a_memory_store_lists_and_clears_by_rule_and_symbol():
    store = MemoryStore()
    state(Kept(store), rule="keep").put("a", 1)
    state(Kept(store), rule="drop").put("a", 2)
    state(Kept(store), rule="drop", kind=SINK, symbol="out").put("b", 3)
    assert [(scope.kind, scope.rule, key, value)
            for scope, key, value in store.entries(rule="drop")] == [
        ("sink", "drop", "b", "3"), ("source", "drop", "a", "2")]
    assert store.clear(rule="drop", symbol="out") == 1
    assert store.clear(rule="drop") == 1
    assert [(s.rule, k) for s, k, _ in store.entries()] == [("keep", "a")]
    assert store.clear() == 1 and store.entries() == []


def test_a_memory_store_counts_atomically_across_threads():
    s = state(Kept(MemoryStore()))

    def add():
        for _ in range(200):
            s.incr("hits")

    threads = [threading.Thread(target=add) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert s.get("hits") == 2000
