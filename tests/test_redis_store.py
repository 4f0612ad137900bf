"""The Redis store: one hash per scope, and a clear sentence when Redis is not there."""

import pytest

from kuiperlite import StateError
from kuiperlite.kinds import SINK
from kuiperlite.redis_store import RedisStore
from kuiperlite.state import Scope, State, Stores

from conftest import unique


def test_each_scope_is_one_hash_named_by_plugin(redis_url):
    import redis

    plugin = unique("p")
    store = RedisStore(redis_url, plugin)
    try:
        scope = Scope.of_instance(SINK, "out", "rule:1", "op", 2)
        State(Stores(lambda: store), scope).put("seen", 3)
        client = redis.Redis.from_url(redis_url)
        name = f'kuiperlite:{plugin}:["sink","out","rule:1","op",2]'
        assert client.hgetall(name) == {b"seen": b"3"}
        client.close()
    finally:
        store.close()


def test_an_unreachable_server_is_a_sentence_without_the_password():
    with pytest.raises(StateError) as info:
        RedisStore("redis://:secret@127.0.0.1:1/0", "p")
    text = str(info.value)
    assert text.startswith("The state store redis://127.0.0.1:1/0 cannot be reached: ")
    assert "secret" not in text
