"""The Redis store: one hash per scope, and a clear sentence when Redis is not there."""

import shutil
import socket
import subprocess
import sys

import pytest

from kuiperlite import StateError
from kuiperlite.declare.kinds import SINK
from kuiperlite.declare.state import Scope, State
from kuiperlite.serve.stores import Stores
from kuiperlite.serve.stores.redis import RedisStore

from conftest import free_port, unique, wait_until


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


@pytest.fixture
def tcp_redis():
    """A real redis-server of the test's own on a TCP port of 127.0.0.1: its port."""
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening():
            assert proc.poll() is None, "redis-server exited at once"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, 30, message="redis-server to listen")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def redis_user(redis_url):
    """A user of the session's redis-server with a password: (name, password)."""
    import redis

    name, password = unique("u"), unique("pw")
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"],
                      commands=["+@all"])
    try:
        yield name, password
    finally:
        admin.acl_deluser(name)
        admin.close()


@pytest.mark.parametrize("given", [
    "redis://127.0.0.1:1/0?password=secret",
    "redis://127.0.0.1:1/0?username=alice&password=secret&client_name=secret",
    "redis://alice:secret@127.0.0.1:1/0?password=secret",
    "redis://secret@127.0.0.1:1/0",
])
def test_no_credential_of_the_url_is_shown(given):
    with pytest.raises(StateError) as info:
        RedisStore(given, "p")
    text = str(info.value)
    assert "secret" not in text and "alice" not in text
    shown = "redis://127.0.0.1:1/0" + given.partition("/0")[2].replace("secret", "***") \
        .replace("alice", "***")
    assert f" {shown} " in text


def test_a_store_reached_with_credentials_shows_none_of_them(redis_url, redis_user):
    name, password = redis_user
    path = redis_url[len("unix://"):]
    for url in (f"unix://{name}:{password}@{path}?db=3",
                f"unix://{path}?username={name}&password={password}&db=3"):
        store = RedisStore(url, unique("p"))
        try:
            assert store.where == f"unix://{path}?" + (
                "db=3" if "@" in url else "username=***&password=***&db=3")
            store.put(Scope.of_instance(SINK, "out", "r", "op", 0), "k", "1")
        finally:
            store.close()
    with pytest.raises(StateError) as info:
        RedisStore(f"unix://{path}?username={name}&password=wrong{password}", "p")
    assert f" unix://{path}?username=***&password=*** " in str(info.value)
    assert password not in str(info.value) and name not in str(info.value)


@pytest.mark.parametrize(("given", "noun"), [
    ("redis://[::1", "parsed"), ("redis://:secret@[::1/0", "parsed"),
    ("http://127.0.0.1:6379/0", "begin"), ("127.0.0.1:6379", "begin"),
    ("redis:127.0.0.1", "begin"), ("redis://127.0.0.1:70000/0", "port"),
    ("redis://127.0.0.1:0/0", "port"), ("redis://:secret@127.0.0.1:63x9/0", "port"),
    ("redis://user:pass#word@127.0.0.1/0", "'#'"), ("redis:///0", "host"),
    ("redis://127.0.0.1/notanint", "path"), ("redis://127.0.0.1/0/1", "path"),
    ("redis://127.0.0.1/0?db=one", "db"), ("unix://redis.sock", "socket"),
    ("unix:///tmp/redis.sock?db=-1", "db"),
])
def test_a_malformed_url_is_refused_naming_what_is_wrong_and_showing_none_of_it(given, noun):
    with pytest.raises(StateError, match="malformed") as info:
        RedisStore(given, "p")
    assert noun in str(info.value).split(";")[0] and "secret" not in str(info.value)


def test_a_db_path_that_is_no_number_is_refused_not_taken_as_db_0(tcp_redis):
    good = RedisStore(f"redis://127.0.0.1:{tcp_redis}/2", unique("p"))
    try:
        assert good.where == f"redis://127.0.0.1:{tcp_redis}/2"
    finally:
        good.close()
    with pytest.raises(StateError, match="path"):
        RedisStore(f"redis://127.0.0.1:{tcp_redis}/notanint", unique("p")).close()


def test_state_list_and_clear_show_no_credential(redis_url, redis_user):
    name, password = redis_user
    plugin = unique("p")
    url = f"{redis_url}?username={name}&password={password}"
    shown = f"{redis_url}?username=***&password=***"
    store = RedisStore(url, plugin)
    try:
        State(Stores(lambda: store), Scope.of_instance(SINK, "out", "r1", "op", 0)).put("k", 1)
    finally:
        store.close()
    said = []
    for action in (["list"], ["clear", "--all"], ["list"]):
        out = subprocess.run([sys.executable, "-m", "kuiperlite", "state", *action, plugin,
                              "--url", url], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        said.append(out.stdout)
    assert said == ["sink 'out' of rule r1/op/0: k = 1\n",
                    f"cleared 1 keys of plugin {plugin!r} in {shown}\n",
                    f"no state kept for plugin {plugin!r} in {shown}\n"]
