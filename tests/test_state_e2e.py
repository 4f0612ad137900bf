"""State in a real plugin process: it survives stops, kill -9, restarts and reinstalls.

Each test runs once on SQLite and once on a real redis-server.
"""

import os
import shutil
import signal

import pytest

from kuiperlite.errors import HostError
from kuiperlite.protocol.wire import FuncMeta
from kuiperlite.serve.stores import open_store

from conftest import assert_each_once, fresh_worker, pid_alive, unique, wait_until

PLUGIN = os.path.join(os.path.dirname(__file__), "plugins", "stateful.py")


@pytest.fixture
def plugin(tmp_path):
    """A copy of the stateful plugin under a name of its own, and how to launch it."""
    name = unique("st")
    path = tmp_path / "v1" / f"{name}.py"
    path.parent.mkdir()
    shutil.copy(PLUGIN, path)
    return path


@pytest.fixture
def launch(kuiperlite_host, state_place, tmp_path):
    def start(path):
        return kuiperlite_host(path, state_dir=state_place.get("directory"),
                               state_url=state_place.get("url"))
    return start


def stored(name, state_place):
    store = open_store(name, **state_place)
    try:
        return {(scope.kind, scope.rule, scope.instance, key): value
                for scope, key, value in store.entries()}
    finally:
        store.close()


def numbers(src, until):
    """Receive records until number ``until``; every ``n`` received, in order."""
    got = []
    while not got or got[-1] < until:
        got.append(src.recv(timeout=30)[0]["n"])
    return got


def test_a_source_resumes_after_a_stop_and_a_reinstall(plugin, launch, state_place, tmp_path):
    rule = unique("r")
    host = launch(plugin)
    with host.start_source("numbers", rule=rule, config={"count": 20}) as src:
        assert numbers(src, 19) == list(range(20))
    with host.start_source("numbers", rule=rule, config={"count": 40}) as src:
        assert numbers(src, 39) == list(range(20, 40))
    with host.start_source("numbers", rule=unique("r"), config={"count": 3}) as src:
        assert numbers(src, 2) == [0, 1, 2], "another rule has a state of its own"
    host.close()
    # eKuiper deletes the plugin's folder on an update: a new copy, the same name.
    again = tmp_path / "v2" / plugin.name
    again.parent.mkdir()
    shutil.copy(plugin, again)
    host = launch(again)
    with host.start_source("numbers", rule=rule, config={"count": 45}) as src:
        assert numbers(src, 44) == list(range(40, 45))


@pytest.mark.parametrize("victim", ["worker", "plugin"])
def test_a_source_killed_mid_stream_resumes_where_it_was(plugin, launch, victim):
    host = launch(plugin)
    rule = unique("r")
    src = host.start_source("numbers", rule=rule, config={"count": 400, "interval": 0.002})
    got = numbers(src, 100)
    assert host.process is not None
    if victim == "worker":  # user code died: the plugin's supervisor forks a new worker
        worker = host.process.worker
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        fresh_worker(host, worker)
    else:  # the whole plugin died: eKuiper restarts it at the next rule start
        pid = host.process.pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 30, message="the plugin to die")
        host.restart()
    got += numbers(src, 399)
    assert_each_once(got)
    src.stop()


def test_a_sink_counts_across_restarts(plugin, launch, state_place):
    host = launch(plugin)
    rule = unique("r")
    for batch in ([{"key": "a"}, {"key": "b"}], [{"key": "a"}, {"keep": [1, {"x": None}]}]):
        with host.start_sink("tally", rule=rule, config={"requireAck": True}) as snk:
            for payload in batch:
                assert snk.send(payload) is None
        host.restart()
    state = stored(plugin.stem, state_place)
    assert state == {("sink", rule, 0, "payloads"): "4", ("sink", rule, 0, "key:a"): "2",
                     ("sink", rule, 0, "key:b"): "1",
                     ("sink", rule, 0, "kept"): '[1,{"x":null}]'}


def test_a_function_keeps_one_state_per_call_site(plugin, launch, state_place):
    host = launch(plugin)
    rule = unique("r")
    first, second = FuncMeta(rule, "op1", 0, 0), FuncMeta(rule, "op1", 0, 1)
    with host.function("count_calls") as fn:
        assert [fn.call(meta=first), fn.call(meta=first), fn.call(meta=second)] == [1, 2, 1]
    host.restart()
    with host.function("count_calls") as fn:
        assert fn.call(meta=first) == 3
        assert fn.call(meta=FuncMeta(unique("r"), "op1", 0, 0)) == 1
    assert stored(plugin.stem, state_place)[("func", rule, 1, "calls")] == "1"


def test_100_sources_saving_state_at_once(plugin, launch, state_place):
    host = launch(plugin)
    rule = unique("r")
    sources = [host.start_source("numbers", rule=rule, instance=i, config={"count": 10})
               for i in range(100)]
    for src in sources:
        assert numbers(src, 9) == list(range(10))
    for src in sources:
        src.stop()
    state = stored(plugin.stem, state_place)
    assert {key: value for key, value in state.items() if key[1] == rule} == {
        ("source", rule, i, "next"): "10" for i in range(100)}


def test_a_store_that_cannot_be_used_is_the_sources_error(kuiperlite_host, plugin, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / f"{plugin.stem}.sqlite3").write_bytes(b"not a database" * 100)
    host = kuiperlite_host(plugin, state_dir=str(folder))
    with host.start_source("numbers", rule=unique("r")) as src:
        with pytest.raises(HostError, match="No record"):  # reading takes in its errors
            src.recv(timeout=3)
        errors = src.errors
    assert f"The state store {folder}/{plugin.stem}.sqlite3 cannot be used (file is not a " \
           "database); kuiperlite never resets a store" in errors[0]


def test_no_credential_of_the_state_url_shows_in_a_plugins_errors_logs_or_serve(
        kuiperlite_host, local_ekuiper, plugin, redis_url):
    """The session's redis-server has no password: one given is refused, and the sentence
    that says so, in the source's errors, the plugin's log and serve's view, hides it."""
    url = f"{redis_url}?username=alice&password=s3cret&db=1"
    shown = f"{redis_url}?username=***&password=***&db=1"
    host = kuiperlite_host(plugin, state_url=url)
    with host.start_source("numbers", rule=unique("r")) as src:
        with pytest.raises(HostError, match="No record"):
            src.recv(timeout=3)
        errors = src.errors
    assert f"StateError: The state store {shown} cannot be reached: " in errors[0]
    assert host.process is not None
    logged = "\n".join(host.process.output)
    assert shown in logged
    served = local_ekuiper(str(plugin), "--state-url", url, ready=f"state: The state store "
                           f"{shown} cannot be reached: ")
    for text in (*errors, logged, *served.lines):
        assert "s3cret" not in text and "alice" not in text
