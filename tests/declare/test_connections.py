"""Connections: declaring one, the parameters that receive it, and the registry sharing it."""

import inspect
import json
import logging
import sqlite3
import threading
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import kuiperlite
from kuiperlite import ConfigError, Context, DefinitionError, connection, function, sink, source
from kuiperlite.bundle.metadata import files as metadata_files
from kuiperlite.declare.connections import MARK_ATTR, Connections, Uses, declared
from kuiperlite.declare.plugin import load
from kuiperlite.declare.symbols import marks_of, read
from kuiperlite.errors import KuiperliteError
from kuiperlite.testing import run_sink, run_source

EVENTS: list[str] = []


@pytest.fixture(autouse=True)
def events():
    EVENTS.clear()
    yield EVENTS


@connection
def store(*, path: str, timeout: float = 5.0) -> Iterator[dict]:
    """A stand-in for a client: a dict whose opening and closing are recorded.

    Args:
        path: where its rows go.
        timeout: seconds to wait for it.
    """
    EVENTS.append(f"open {path}")
    try:
        yield {"path": path, "timeout": timeout, "rows": []}
    finally:
        EVENTS.append(f"close {path}")


@connection("other")
def other_store(*, name: str = "o") -> Generator[list, None, None]:
    EVENTS.append(f"open {name}")
    yield []
    EVENTS.append(f"close {name}")


@sink
def insert(ctx: Context, data: Any, *, table: str = "t", store: dict) -> None:
    """Append each payload to a table of the store."""
    store["rows"].append((table, data))


@source
def rows(ctx: Context, *, store: dict) -> Iterator[dict]:
    """Emit where the store lives, then its rows."""
    yield {"path": store["path"]}
    yield from ({"table": t, "data": d} for t, d in store["rows"])


@sink
def copy(ctx: Context, data: Any, *, store: dict, other: list) -> None:
    store["rows"].append(data)
    other.append(data)


CONNECTIONS = declared(globals())


def spec(func: Any) -> Any:
    (mark,) = marks_of(func)
    return read(func, mark, CONNECTIONS)


def started(registry: Connections, func: Any, config: dict,
            user: str = "sink 'insert' of rule r1/op1/0") -> tuple[dict, Any]:
    """A start's keyword arguments with its connections in them, and its lease."""
    symbol = spec(func)
    kwargs = symbol.bind_config(config)
    return kwargs, registry.acquire(symbol.connections, kwargs, user)


# ------------------------------------------------------------------ declaring


def test_the_decorator_marks_and_returns_the_function_unchanged():
    def a(*, x: int = 1):
        yield x

    def b(*, x: int = 1):
        yield x

    assert connection(a) is a
    assert connection("named")(b) is b
    assert connection(name="again")(b) is b
    assert kuiperlite.connection is connection and "connection" in kuiperlite.__all__
    with pytest.raises(TypeError, match="42"):
        connection(name="x")(42)


def test_a_connection_is_read_into_its_spec():
    assert list(CONNECTIONS) == ["store", "other"]
    db = CONNECTIONS["store"]
    assert (db.name, db.func, db.resource, db.described) == (
        "store", store, dict, "connection 'store'")
    assert [(p.name, p.type.hint, p.required) for p in db.config] == [
        ("path", str, True), ("timeout", float, False)]
    assert f"connection 'store' (test_connections.py:{inspect.getsourcelines(store)[1]})" == \
        db.where
    assert CONNECTIONS["other"].resource is list
    assert CONNECTIONS["other"].where.startswith("connection 'other' (other_store at ")

    @connection
    def untyped(*, n=3):
        yield n

    assert declared({"u": untyped})["untyped"].resource is Any
    assert declared({"u": untyped, "alias": untyped}).keys() == {"untyped"}


def plain(*, path: str):
    return path


async def asynchronous(*, path: str):
    yield path


def positional(path: str):
    yield path


def keywords(**options):
    yield options


def unsupported(*, mode: set):
    yield mode


@pytest.mark.parametrize(("func", "noun"), [
    (plain, "generator"), (asynchronous, "generator"), (positional, "'path'"),
    (keywords, "'options'"), (unsupported, "'mode'"),
])
def test_a_function_that_cannot_be_a_connection_is_refused(func, noun):
    with pytest.raises(DefinitionError) as info:
        declared({"f": connection(func)})
    delattr(func, MARK_ATTR)
    assert str(info.value).startswith(
        f"connection {func.__name__!r} (test_connections.py:{inspect.getsourcelines(func)[1]}): ")
    assert noun in info.value.problem


def test_names_must_be_identifiers_and_unique():
    def a(*, x: int = 1):
        yield x

    def b(*, y: int = 1):
        yield y

    with pytest.raises(DefinitionError, match="'my-db'"):
        declared({"a": connection("my-db")(a)})
    with pytest.raises(DefinitionError, match="'same'"):
        declared({"a": connection("same")(a), "b": connection("same")(b)})


# ------------------------------------------------------------------ receiving


def test_a_parameter_named_like_a_connection_receives_it_and_its_config_joins_the_symbols():
    symbol = spec(insert)
    assert symbol.connections == (Uses("store", CONNECTIONS["store"]),)
    assert [p.name for p in symbol.config] == ["table"]
    assert [p.name for p in symbol.fields] == ["table", "path", "timeout"]
    assert spec(copy).connections == (Uses("store", CONNECTIONS["store"]),
                                      Uses("other", CONNECTIONS["other"]))


def test_bind_config_gives_each_connection_parameter_its_config():
    symbol = spec(insert)
    assert symbol.bind_config({"path": "/a", "timeout": "2", "requireAck": True}) == {
        "store": {"path": "/a", "timeout": 2.0}}
    assert symbol.bind_config({"path": "/a", "table": "x"}) == {
        "table": "x", "store": {"path": "/a", "timeout": 5.0}}  # the default, filled in
    with pytest.raises(ConfigError, match="'path'"):
        symbol.bind_config({})
    with pytest.raises(ConfigError, match="'timeout'"):
        symbol.bind_config({"path": "/a", "timeout": "soon"})

    @sink
    def rest(data, *, store: dict, **extra):
        pass

    assert spec(rest).bind_config({"path": "/a", "more": 1}) == {
        "more": 1, "store": {"path": "/a", "timeout": 5.0}}  # the connection's keys stay its own


def annotated_otherwise(data, *, store: str):
    pass


def with_default(data, *, store: dict = {}):  # noqa: B006
    pass


def clash(data, *, path: str, store: dict):
    pass


@connection
def twin(*, path: str):
    yield path


def clash_between(data, *, store: dict, twin: str):
    pass


def misspelt(data, *, stor: sqlite3.Connection):
    pass


def in_a_function(x, *, store: dict):
    return x


@pytest.mark.parametrize(("decorator", "func", "noun"), [
    (sink, annotated_otherwise, "'store'"), (sink, with_default, "'store'"),
    (sink, clash, "'path'"), (sink, clash_between, "'twin'"), (sink, misspelt, "'stor'"),
    (function, in_a_function, "'store'"),
])
def test_a_parameter_that_cannot_receive_its_connection_is_refused(decorator, func, noun):
    marked = decorator(func)
    found = {**CONNECTIONS, **declared({"twin": twin})}
    with pytest.raises(DefinitionError) as info:
        read(marked, marks_of(marked)[0], found)
    delattr(func, "__kuiperlite__")
    assert info.value.where == (f"{decorator.__name__} {func.__name__!r} (test_connections.py:"
                                f"{inspect.getsourcelines(func)[1]})")
    assert noun in info.value.problem


def test_a_plugin_collects_its_connections(write_plugin):
    path = write_plugin('''
        from collections.abc import Iterator
        from kuiperlite import Context, connection, sink

        @connection
        def db(*, path: str) -> Iterator[str]:
            yield path

        @connection
        def unused(*, n: int = 0) -> Iterator[int]:
            yield n

        @sink
        def k(ctx: Context, data, *, db: str):
            pass
    ''')
    plugin = load(str(path))
    assert [c.name for c in plugin.connections] == ["db", "unused"]
    assert plugin.sinks["k"].connections[0].connection is plugin.connections[0]


# ------------------------------------------------------------------- sharing


def test_equal_configs_share_one_resource_until_the_last_user_releases_it(events):
    registry = Connections()
    first, a = started(registry, insert, {"path": "/a"})
    second, b = started(registry, insert, {"path": "/a", "timeout": 5, "table": "x"})
    third, c = started(registry, rows, {"path": "/a"}, "source 'rows' of rule r2/op1/0")
    assert first["store"] is second["store"] is third["store"]
    assert events == ["open /a"]
    a.release()
    b.release()
    registry.settle()
    assert events == ["open /a"]
    c.release()
    registry.settle()
    assert events == ["open /a", "close /a"]
    again, d = started(registry, insert, {"path": "/a"})
    assert again["store"] is not first["store"] and events[-1] == "open /a"
    d.release()


def test_distinct_configs_get_distinct_resources(events):
    registry = Connections()
    a, first = started(registry, insert, {"path": "/a"})
    b, second = started(registry, insert, {"path": "/a", "timeout": 1})
    c, third = started(registry, insert, {"path": "/b"})
    assert len({id(a["store"]), id(b["store"]), id(c["store"])}) == 3
    for lease in (first, second, third):
        lease.release()
    registry.settle()
    assert sorted(events) == ["close /a", "close /a", "close /b", "open /a", "open /a", "open /b"]


def test_a_failed_open_is_refused_and_gives_back_what_the_start_took(events, caplog):
    @connection
    def flaky(*, fail: bool = True):
        if fail:
            raise sqlite3.OperationalError("unable to open database file")
        yield "ok"

    @connection
    def empty(*, n: int = 0):
        return
        yield n

    @sink
    def k(data, *, store: dict, flaky: str):
        pass

    @sink
    def e(data, *, empty: str):
        pass

    found = {**CONNECTIONS, **declared({"flaky": flaky, "empty": empty})}
    registry = Connections()
    _, running = started(registry, insert, {"path": "/shared"})
    symbol = read(k, marks_of(k)[0], found)
    for path in ("/shared", "/own"):
        kwargs = symbol.bind_config({"path": path})
        with pytest.raises(KuiperliteError, match="'flaky'"):
            registry.acquire(symbol.connections, kwargs, "sink 'k' of rule r1/op1/0")
    registry.settle()
    assert events == ["open /shared", "open /own", "close /own"]  # the shared one stays open
    assert "unable to open database file" in caplog.text  # with its traceback
    symbol = read(e, marks_of(e)[0], found)
    with pytest.raises(KuiperliteError, match="'empty'"):
        registry.acquire(symbol.connections, symbol.bind_config({}), "sink 'e' of rule r/o/0")
    running.release()
    registry.settle()
    assert events[-1] == "close /shared"


def test_teardown_errors_are_logged_never_raised(caplog):
    @connection
    def breaks(*, n: int = 0):
        yield n
        raise OSError("disk gone")

    @connection
    def twice(*, m: int = 0):
        yield m
        yield m

    @sink
    def k(data, *, breaks: int, twice: int):
        pass

    found = declared({"breaks": breaks, "twice": twice})
    symbol = read(k, marks_of(k)[0], found)
    registry = Connections()
    caplog.set_level(logging.INFO, "kuiperlite")
    lease = registry.acquire(symbol.connections, symbol.bind_config({}), "sink 'k' of rule r/o/0")
    lease.release()
    lease.release()  # once only
    registry.settle()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sorted(message.split()[1] for message in errors) == ["'breaks'", "'twice'"]
    assert "OSError: disk gone" in caplog.text  # with its traceback


def test_releases_from_many_threads_close_it_once_and_exit_closes_the_rest(events):
    registry = Connections()
    leases = [started(registry, insert, {"path": "/a"})[1] for _ in range(20)]
    _, held = started(registry, insert, {"path": "/b"})
    barrier = threading.Barrier(20)

    def release(lease: Any) -> None:
        barrier.wait()
        lease.release()

    threads = [threading.Thread(target=release, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    registry.settle()
    assert events == ["open /a", "open /b", "close /a"]
    registry.close()  # the plugin exits while /b is still in use
    held.release()  # its user ends after: nothing closes twice
    assert events == ["open /a", "open /b", "close /a", "close /b"]


# -------------------------------------------------------------------- testing


def test_the_test_helpers_open_connections_for_the_run_and_close_them_after(events):
    assert run_sink(insert, [{"a": 1}, {"a": 2}], config={"path": "/t"}) == [None, None]
    assert events == ["open /t", "close /t"]
    assert run_source(rows, 1, config={"path": "/s"}) == [{"path": "/s"}]
    assert events[2:] == ["open /s", "close /s"]
    with pytest.raises(ConfigError, match="'path'"):
        run_sink(insert, [{}])


# ------------------------------------------------------------------- metadata


def test_metadata_shows_a_connections_config_among_the_symbols(write_plugin):
    path = write_plugin('''
        from collections.abc import Iterator
        from kuiperlite import Context, connection, sink, source

        @connection
        def db(*, path: str, timeout: float = 5.0) -> Iterator[str]:
            """A database.

            Args:
                path: the database file.
                timeout: seconds to wait for a lock.
            """
            yield path

        @sink
        def insert(ctx: Context, data, *, table: str = "t", db: str):
            """Insert rows.

            Args:
                table: the table.
            """

        @source
        def read_rows(ctx: Context, *, db: str, interval: float = 1.0):
            yield {}
    ''')
    files = metadata_files(load(str(path)))
    fields = json.loads(files["sinks/insert.json"])["properties"]
    assert [(f["name"], f["type"], f["optional"], f["default"], f["hint"]["en_US"])
            for f in fields] == [
        ("table", "string", True, "t", "the table."),
        ("path", "string", False, "", "the database file."),
        ("timeout", "float", True, 5.0, "seconds to wait for a lock.")]
    source_fields = json.loads(files["sources/read_rows.json"])["properties"]["default"]
    assert [f["name"] for f in source_fields] == ["interval", "path", "timeout"]
    assert files["sources/read_rows.yaml"] == b"default:\n  interval: 1.0\n  timeout: 5.0\n"
