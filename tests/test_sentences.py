"""Every sentence kuiperlite says to a plugin's author, pinned once, word for word.

Each row: a case, what triggers it (a tiny plugin collected as ``plugin.py``, a config,
a state call, a URL, a variable, a packaging option, a helper's call, a command line)
and the exact sentence. Other tests check the behaviour; the words live here.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import kuiperlite
from kuiperlite import Context, Dynamic, Plugin, cli, sink, source
from kuiperlite.bundle import package
from kuiperlite.declare import kinds
from kuiperlite.declare.connections import Connections
from kuiperlite.declare.state import Kept, MemoryStore, Scope, State
from kuiperlite.protocol import wire
from kuiperlite.serve.stores.redis import RedisStore
from kuiperlite.settings import ALL
from kuiperlite.testing import run_sink, run_source

SUPPORTED = ("str, int, float, bool, dict, list, list[...], dict[str, ...], Literal[...], an "
             "Enum, an attrs class or a dataclass, or Optional[...] of those")
DYNAMIC = "Dynamic[X] with X one of str, int, float, bool, Literal[...], an Enum or Optional[...]"
DECLARE = ("; a resource shared by instances is declared with @connection and received by a "
           "parameter of its name")
JSON = "; a value is what JSON carries: None, bool, int, float, str, and lists and dicts with " \
       "str keys of those."
FORMS = ("; write redis://[[user]:password@]host[:port][/db], rediss://... for TLS, or "
         "unix:///path/to/redis.sock[?db=N].")
MALFORMED = "The state store URL is malformed: "
# How collection names the function f, defined on line 1 of plugin.py.
SOURCE, SINK, FUNCTION, CONNECTION = (f"{kind} 'f' (plugin.py:1): "
                                      for kind in ("source", "sink", "function", "connection"))
NAMES = {name: getattr(kuiperlite, name) for name in kuiperlite.__all__} | {
    name: getattr(typing, name) for name in ("Any", "Literal", "Optional", "Union")} | {
    "Iterator": Iterator, "dataclass": dataclasses.dataclass}


def rows(*table: tuple[Any, ...]) -> list[Any]:
    """A table whose rows begin with their case's id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


def plugin(code: str) -> Plugin:
    """``code`` collected as the plugin file ``plugin.py``, kuiperlite's names imported."""
    module = types.ModuleType("plugin")
    module.__file__ = "plugin.py"
    module.__dict__.update(NAMES)
    sys.modules["plugin"] = module  # where a dataclass looks up its string annotations
    try:
        exec(compile(code, "plugin.py", "exec"), module.__dict__)
        return kuiperlite.collect(module)
    finally:
        del sys.modules["plugin"]


def said(trigger: Callable[[], object]) -> str:
    """The sentence of the error ``trigger`` raises."""
    with pytest.raises(Exception) as info:
        trigger()
    return str(info.value)


# ----------------------------------------------------------- declaring a plugin

@pytest.mark.parametrize(("code", "sentence"), rows(
    ("name", '@source("a-b")\ndef f(ctx): yield {}', "source 'a-b' (f at plugin.py:1): the name "
     "must start with a letter or _ and hold only letters, digits and _"),
    ("unresolved", '@source\ndef f(ctx, *, x: "Nowhere"): yield {}', f"{SOURCE}its type hints "
     "cannot be resolved (name 'Nowhere' is not defined)"),
    ("varargs", "@source\ndef f(ctx, *rest): yield {}", f"{SOURCE}*rest is not allowed; config "
     "goes in keyword-only parameters"),
    ("third", "@source\ndef f(ctx, ds, x): yield {}", f"{SOURCE}parameter 'x' is one positional "
     "parameter too many; a source takes the Context and the datasource positionally and its "
     "config after a bare *"),
    ("no context", "@sink\ndef f(a: int, b: str): pass", f"{SINK}parameter 'b' is one positional "
     "parameter too many; a sink takes the Context and the data positionally"),
    ("default", "@source\ndef f(ctx, interval=1.0): yield {}", f"{SOURCE}parameter 'interval' "
     "has a default, so it looks like config; put config parameters after a bare * to make "
     "them keyword-only"),
    ("two contexts", "@function\ndef f(a: Context, b: Context): pass", f"{FUNCTION}parameter "
     "'b' is a second Context parameter"),
    ("ambiguous", "@source\ndef f(c): yield {}", f"{SOURCE}parameter 'c' could be the Context "
     "or the datasource: annotate it `Context` (or name it ctx) or `str` (or name it datasource)"),
    ("yield and data", "@sink\ndef f(ctx, data): yield", f"{SINK}a generator sink receives data "
     "with `data = yield`; remove parameter 'data'"),
    ("no data", "@sink\ndef f(ctx, *, path: str): pass", f"{SINK}a sink needs one positional "
     "parameter for the data (or must be a generator that receives it with `data = yield`)"),
    ("retry", '@source(retry="yes")\ndef f(ctx): yield {}', f"{SOURCE}retry must be True, False "
     "or kuiperlite.Backoff(first=..., most=...), got the string 'yes'"),
    ("retry first", "@source(retry=Backoff(first=0))\ndef f(ctx): yield {}", f"{SOURCE}retry's "
     "first must be a number of seconds above 0, got the number 0"),
    ("retry most", "@source(retry=Backoff(5, 2))\ndef f(ctx): yield {}", f"{SOURCE}retry's most "
     "(2 s) is less than its first (5 s); most is the longest wait"),
    ("function config", "@function\ndef f(x, *, y): pass", f"{FUNCTION}keyword-only parameter "
     "'y' is not allowed; a function receives only its SQL arguments, positionally"),
    ("function **", "@function\ndef f(x, **kw): pass", f"{FUNCTION}**parameters are not "
     "allowed; a function has no config"),
    ("function yields", "@function\ndef f(x): yield x", f"{FUNCTION}a function must return its "
     "result; it cannot be a generator"),
    ("aggregate", "@function(aggregate=1)\ndef f(x): pass", f"{FUNCTION}aggregate must be True "
     "or False"),
    ("default type", "@function\ndef f(b: str = 5): pass", f"{FUNCTION}the default of argument "
     "'b' is the number 5, which its hint str does not take (it takes a string); give a default "
     "of that type, or change the hint"),
    ("bytes config", "@sink\ndef f(data, *, m: bytes): pass", f"{SINK}config parameter 'm' has "
     f"type bytes, which a rule's config cannot carry; use {SUPPORTED}"),
    ("int keys", "@source\ndef f(ctx, *, m: dict[int, str]): yield {}", f"{SOURCE}config "
     f"parameter 'm' has type dict[int, str]: JSON objects only have string keys; use {SUPPORTED}"),
    ("no counterpart", "import sqlite3\n@sink\ndef f(data, *, db: sqlite3.Connection): pass",
     "sink 'f' (plugin.py:2): config parameter 'db' has type Connection, which has no JSON "
     f"counterpart; use {SUPPORTED}{DECLARE}"),
    ("connection named", "import sqlite3\n@connection\ndef db(): yield\n@sink\ndef f(data, *, "
     "d: sqlite3.Connection): pass", "sink 'f' (plugin.py:4): config parameter 'd' has type "
     f"Connection, which has no JSON counterpart; use {SUPPORTED}; a parameter named like a "
     "connection receives its resource (db)"),
    ("argument", "@function\ndef f(x: set): pass", f"{FUNCTION}argument 'x' has type set, which "
     f"has no JSON counterpart; use {SUPPORTED}"),
    ("union", "@function\ndef f(x: Union[int, str]): pass", f"{FUNCTION}argument 'x' has type "
     f"Union[int, str]: only Optional[X] unions are supported; use {SUPPORTED}"),
    ("record field", "@dataclass\nclass H:\n    at: complex\n@sink\ndef f(data, *, h: H): pass",
     "sink 'f' (plugin.py:4): config parameter 'h' has type H, whose field 'at' has type "
     f"complex, which has no JSON counterpart; use {SUPPORTED}"),
    ("record in itself", '@dataclass\nclass H:\n    h: Optional["H"]\n@sink\ndef f(data, *, h: '
     "H): pass", "sink 'f' (plugin.py:4): config parameter 'h' has type H, whose field 'h' has "
     f"type H, which holds itself; JSON has no such shape; use {SUPPORTED}"),
    ("data", "@dataclass\nclass H:\n    at: complex\n@sink\ndef f(data: list[H]): pass", "sink "
     "'f' (plugin.py:4): the data's type list[H] cannot be built: H, whose field 'at' has "
     "type complex, which has no JSON counterpart"),
    ("unresolved field", '@dataclass\nclass H:\n    h: "Nope"\n@sink\ndef f(data, *, m: H): '
     "pass", "sink 'f' (plugin.py:4): config parameter 'm' has type H: its field types do not "
     f"resolve (name 'Nope' is not defined); use {SUPPORTED}"),
    ("dynamic source", "@source\ndef f(ctx, *, t: Dynamic[str]): yield {}", f"{SOURCE}config "
     "parameter 't' is Dynamic[str], but only a sink's config can be dynamic: eKuiper renders "
     "templates against the records a sink receives"),
    ("dynamic argument", "@function\ndef f(t: Dynamic[str]): pass", f"{FUNCTION}argument 't' is "
     "Dynamic[str], but only a sink's config can be dynamic"),
    ("dynamic yield", "@sink\ndef f(ctx, *, t: Dynamic[str]):\n    yield", f"{SINK}config "
     "parameter 't' is Dynamic[str], but a generator sink receives its config once, at start; "
     "make it a plain or async function, called once per message, to receive the value "
     "rendered for each record"),
    ("dynamic list", "@sink\ndef f(data, *, t: Dynamic[list]): pass", f"{SINK}config parameter "
     "'t' has type Dynamic[list], but a rendered template is text, which converts only to a "
     f"string, a number or a boolean; use {DYNAMIC} of those"),
    ("dynamic inside", "@sink\ndef f(data, *, t: list[Dynamic[str]]): pass", f"{SINK}config "
     "parameter 't' has type list[Dynamic[str]], with Dynamic inside; Dynamic wraps the whole "
     f"hint of a config parameter; use {DYNAMIC} of those"),
    ("template", '@sink\ndef f(data, *, t: Dynamic[str] = "{{.id | upper}}"): pass', f"{SINK}the "
     "default of config parameter 't': '{{.id | upper}}' is not a field path; a dynamic "
     "property supports field paths such as {{.deviceId}} or {{.a.b}}, and no other template "
     "syntax"),
    ("connection default", "@connection\ndef db(): yield\n@sink\ndef f(data, *, db=None): pass",
     "sink 'f' (plugin.py:3): parameter 'db' receives connection 'db' (plugin.py:1) and cannot "
     "have a default"),
    ("connection hint", "@connection\ndef db() -> Iterator[dict]: yield {}\n@sink\ndef f(data, "
     "*, db: str): pass", "sink 'f' (plugin.py:3): parameter 'db' is annotated str, but "
     "connection 'db' (plugin.py:1), named like it, yields dict"),
    ("shared key", "@connection\ndef db(*, path: str): yield\n@sink\ndef f(data, *, db, path: "
     "str): pass", "sink 'f' (plugin.py:3): config 'path' belongs to both the sink and "
     "connection 'db' (parameter 'db'); a rule's config holds one 'path', so rename one of them"),
    ("shared by two", "@connection\ndef a(*, path: str): yield\n@connection\ndef b(*, path: "
     "str): yield\n@sink\ndef f(data, *, a, b): pass", "sink 'f' (plugin.py:5): config 'path' "
     "belongs to both connection 'a' and connection 'b' (parameter 'b'); a rule's config holds "
     "one 'path', so rename one of them"),
    ("function connection", "@connection\ndef db(): yield\n@function\ndef f(x, *, db): pass",
     "function 'f' (plugin.py:3): keyword-only parameter 'db' is not allowed; a function "
     "receives only its SQL arguments (connections are for sources and sinks)"),
    ("wrapper", "def logged(f):\n    def inner(*a, **k): yield from f(*a, **k)\n    return inner\n"
     "@source\n@logged\ndef f(ctx): yield {}", "source 'inner' (logged.<locals>.inner at "
     "plugin.py:2): *a is not allowed; config goes in keyword-only parameters (if this is another "
     "decorator's inner function, put @source outermost or give that decorator functools.wraps)"),
    ("made by a factory", "def make():\n    @source\n    def f(c): yield {}\n    return f\n"
     "f = make()", "source 'f' (make.<locals>.f at plugin.py:2): parameter 'c' could be the "
     "Context or the datasource: annotate it `Context` (or name it ctx) or `str` (or name it "
     "datasource)"),
    ("partial", "import functools\ndef g(ctx, *, n: int): yield {}\n"
     "f = source(name='f')(functools.partial(g, n=2))", "source 'f' (a partial object): @source "
     "marks a function (def or async def); call this object from one"),
    ("callable object", "class C:\n    def __call__(self, x: int) -> int: return x\n"
     "f = function(name='f')(C())", "function 'f' (a C object): @function marks a function (def "
     "or async def); call this object from one"),
    ("connection object", "import functools\ndef g(*, n: int): yield 1\n"
     "f = connection(name='f')(functools.partial(g, n=2))", "connection 'f' (a partial object): "
     "@connection marks a function (def or async def); call this object from one"),
    ("connection name", "@connection('a-b')\ndef f(): yield", "connection 'a-b' (f at "
     "plugin.py:1): the name must start with a letter or _ and hold only letters, digits and _"),
    ("connection returns", "@connection\ndef f(): return 1", f"{CONNECTION}a connection must be "
     "a generator function (not async): it opens the resource, yields it once, and closes it "
     "after the yield"),
    ("connection positional", "@connection\ndef f(path): yield", f"{CONNECTION}parameter 'path' "
     "is not allowed; a connection takes only its config, in keyword-only parameters (after a "
     "bare *)"),
    ("connection twice", "@connection('f')\ndef a(): yield\n@connection('f')\ndef b(): yield",
     "connection 'f' (b at plugin.py:3): the name is already used by connection 'f' (a at "
     "plugin.py:1)"),
    ("symbol twice", "@sink('f')\ndef a(data): pass\n@sink('f')\ndef b(data): pass", "sink 'f' "
     "(b at plugin.py:3): the name is already used by sink 'f' (a at plugin.py:1)"),
    ("not a function", "source(3)", "@source decorates a function, got 3"),
    ("not a generator", "connection('db')(3)", "@connection decorates a function, got 3"),
    ("about twice", "A, B = About(), About()", "plugin.py declares About 2 times; declare it "
     "once."),
    ("plugin name", "ABOUT = About(name='a b')", "The plugin name 'a b' (plugin.py) may hold "
     "only letters, digits, _ and -."),
    ("no symbols", "def f(ctx): pass", "plugin.py defines no symbols; mark functions with "
     "@source, @sink or @function."),
))
def test_declaring(code: str, sentence: str) -> None:
    assert said(lambda: plugin(code)) == sentence


# ----------------------------------------------------- a rule's config, at start

@dataclasses.dataclass
class Point:
    x: float


@sink
def out(data, *, port: int, mode: typing.Literal["a", "b"] = "a", ids: list[int] = [],  # noqa: B006
        at: typing.Optional[Point] = None, on: bool = False, topic: Dynamic[str] = ""):
    pass


@sink
def publish(data, *, topic: Dynamic[str], qos: Dynamic[int] = 0):
    pass


@pytest.mark.parametrize(("config", "sentence"), rows(
    ("missing", {}, "The sink 'out' needs config 'port' (an integer), but the rule did not set "
     "it."),
    ("integer", {"port": "eighty"}, "Config 'port' of the sink 'out' must be an integer, got the "
     "string 'eighty'."),
    ("choice", {"port": 1, "mode": "c"}, "Config 'mode' of the sink 'out' must be one of 'a', "
     "'b', got the string 'c'."),
    ("item", {"port": 1, "ids": [1, None]}, "Config 'ids' of the sink 'out' must be a list of "
     "integers, got a list (item 1 must be an integer, got null)."),
    ("field", {"port": 1, "at": {"y": 1}}, "Config 'at' of the sink 'out' must be a Point "
     "object, got an object (field 'x' is missing)."),
    ("boolean", {"port": 1, "on": 1}, "Config 'on' of the sink 'out' must be true or false, got "
     "the number 1."),
    ("path", {"port": 1, "topic": "{{.}}"}, "Config 'topic' of the sink 'out': '{{.}}' is not a "
     "field path; a dynamic property supports field paths such as {{.deviceId}} or {{.a.b}}, "
     "and no other template syntax."),
    ("unclosed", {"port": 1, "topic": "t/{{.id"}, "Config 'topic' of the sink 'out': the {{ at "
     "character 3 is never closed with }}."),
))
def test_config(config: dict[str, Any], sentence: str) -> None:
    assert said(lambda: run_sink(out, [], config=config)) == sentence


@pytest.mark.parametrize(("config", "payload", "sentence"), rows(
    ("converted", {"qos": "{{.q}}"}, {"q": "x"}, "Config 'qos' of the sink 'publish' must be "
     "an integer, got the string 'x', rendered from '{{.q}}' for this record."),
    ("below", {}, {"a": 1}, "Config 'topic' of the sink 'publish' cannot render {{.a.b}} for "
     "this record: field 'a' is the number 1, not an object."),
    ("object", {"topic": "{{.a}}"}, {"a": {}}, "Config 'topic' of the sink 'publish' cannot "
     "render {{.a}} for this record: it is an object, and only strings, numbers and booleans "
     "can be rendered."),
    ("empty batch", {}, [], "The sink 'publish' cannot render its dynamic config for an empty "
     "batch: there is no record to take fields from."),
    ("payload", {}, 3, "The sink 'publish' cannot render its dynamic config: the payload is the "
     "number 3, not an object."),
    ("batch", {}, [{}, 3], "The sink 'publish' cannot render its dynamic config: the last "
     "record of the batch is the number 3, not an object."),
))
def test_rendering(config: dict[str, Any], payload: Any, sentence: str) -> None:
    assert run_sink(publish, [payload], config={"topic": "{{.a.b}}", **config}) == [sentence]


# --------------------------------------------------------- a plugin running

@source
def idle(ctx):
    while ctx.sleep(1):
        pass
    yield {}


def started(code: str) -> None:
    """The sink ``f`` of ``code`` started by the test helpers."""
    run_sink(plugin(code).sinks["f"].func, [])


def opens_late() -> None:
    """A start whose connection is still opening when the start stops waiting for it."""
    late = plugin("import threading\nGATE = threading.Event()\n@connection\ndef db():\n"
                  "    GATE.wait(5)\n    yield\n@sink\ndef f(data, *, db): pass")
    try:
        Connections(timeout=0.01).acquire(late.sinks["f"].connections, {"db": {}},
                                          "sink 'f' of rule r/o/0")
    finally:
        late.module.GATE.set()


@pytest.mark.parametrize(("trigger", "sentence"), rows(
    ("open fails", lambda: started("@connection\ndef db():\n    raise OSError('disk gone')\n"
     "    yield\n@sink\ndef f(data, *, db): pass"), "Cannot open connection 'db' for sink 'f' "
     "of rule test/test/0: OSError: disk gone."),
    ("no yield", lambda: started("@connection\ndef db():\n    return\n    yield\n@sink\ndef "
     "f(data, *, db): pass"), "Cannot open connection 'db' for sink 'f' of rule test/test/0: it "
     "returned without yielding its resource."),
    ("open late", opens_late, "Cannot open connection 'db' for sink 'f' of rule r/o/0: it did "
     "not open within 0.01 s (KUIPERLITE_OPEN_TIMEOUT); it is closed as soon as its open "
     "returns."),
    ("emit", lambda: Context("f", kinds.SINK).emit({}), "Only a source can emit; sink 'f' cannot."),
    ("socket name", lambda: wire.check_ipc_name("a/b", "ruleId"), "The ruleId 'a/b' cannot be "
     "part of a socket file name: it must not hold '/', '..', NUL or control characters."),
    ("socket path", lambda: wire.check_ipc_path(f"/tmp/{'s' * 103}"), f"The socket path /tmp/"
     f"{'s' * 103} is 108 bytes long; a socket path holds at most 107 bytes."),
    ("wrong kind", lambda: run_sink(idle, []), "run_sink() takes a function marked @sink; idle "
     "is not one."),
    ("restarts", lambda: run_source(idle, restarts=-1), "restarts must be a whole number, 0 or "
     "more, got -1."),
    ("too few", lambda: run_source(idle, timeout=0.01), "The source 'idle' produced 0 of 1 "
     "records in 0.01 s."),
))
def test_running(trigger: Callable[[], object], sentence: str) -> None:
    assert said(trigger) == sentence


@pytest.mark.parametrize(("trigger", "sentence"), rows(
    ("did you mean", lambda: run_sink(out, [], config={"port": 1, "prot": 2}), "config 'prot' of "
     "the sink 'out' is not one of its parameters, and is ignored; did you mean 'port'?"),
    ("close fails", lambda: started("@connection\ndef db():\n    yield\n    raise OSError\n"
     "@sink\ndef f(data, *, db): pass"), "connection 'db' failed to close (its last user "
     "stopped: sink 'f' of rule test/test/0)"),
    ("yields twice", lambda: started("@connection\ndef db():\n    yield\n    yield\n@sink\n"
     "def f(data, *, db): pass"), "connection 'db' yielded a second time while closing (its last "
     "user stopped: sink 'f' of rule test/test/0); a connection yields its resource once"),
))
def test_logged(caplog: pytest.LogCaptureFixture, trigger: Callable[[], object],
                sentence: str) -> None:
    with caplog.at_level(logging.WARNING, "kuiperlite"):
        trigger()
    assert caplog.messages == [sentence]


# ------------------------------------------------------------------ ctx.state

def kept() -> State:
    """A source's ``ctx.state`` in memory, holding the largest integer and a string."""
    state = State(Kept(MemoryStore()), Scope.of_instance(kinds.SOURCE, "src", "r1", "op1", 0))
    state.put("n", 2**63 - 1)
    state.put("s", "seven")
    return state


@pytest.mark.parametrize(("action", "sentence"), rows(
    ("key", lambda s: s.get(1), "State keys are strings; source 'src' of rule r1/op1/0 used int "
     "1."),
    ("amount", lambda s: s.incr("n", 1.5), "State 'n' of source 'src' of rule r1/op1/0: incr "
     "adds an integer, got float 1.5."),
    ("not an integer", lambda s: s.incr("s"), "State 's' of source 'src' of rule r1/op1/0 holds "
     "\"seven\"; incr adds to an integer."),
    ("64 bits", lambda s: s.incr("n"), "State 'n' of source 'src' of rule r1/op1/0: incr would "
     "pass 64 bits."),
    ("big", lambda s: s.put("k", [2**64]), "State 'k' of source 'src' of rule r1/op1/0 cannot "
     f"hold an integer beyond 64 bits at [0]{JSON}"),
    ("nan", lambda s: s.put("k", {"a": float("nan")}), "State 'k' of source 'src' of rule "
     f"r1/op1/0 cannot hold the float nan at a{JSON}"),
    ("dict key", lambda s: s.put("k", {"a": {1: 2}}), "State 'k' of source 'src' of rule "
     f"r1/op1/0 cannot hold a dict key of type int at a{JSON}"),
    ("type", lambda s: s.put("k", {"a": [{1}]}), "State 'k' of source 'src' of rule r1/op1/0 "
     f"cannot hold a value of type set at a[0]{JSON}"),
    ("function", lambda _: State(Kept(MemoryStore()), Scope.of_call("f", "r1", 2)).put("k", {1}),
     f"State 'k' of function 'f' at call #2 of rule r1 cannot hold a value of type set{JSON}"),
))
def test_state(action: Callable[[State], object], sentence: str) -> None:
    assert said(lambda: action(kept())) == sentence


@pytest.mark.parametrize(("url", "sentence"), rows(
    ("scheme", "http://127.0.0.1/0", f"{MALFORMED}it does not begin with redis://, rediss:// or "
     f"unix://{FORMS}"),
    ("hash", "redis://u:pa#ss@127.0.0.1/0", f"{MALFORMED}it holds a '#', which a password must "
     f"write as %23{FORMS}"),
    ("parse", "redis://:secret@[::1/0", f"{MALFORMED}it cannot be parsed{FORMS}"),
    ("db", "redis://127.0.0.1/0?db=one", f"{MALFORMED}its db parameter is not a number{FORMS}"),
    ("socket", "unix://redis.sock", f"{MALFORMED}it names no socket file{FORMS}"),
    ("port", "redis://127.0.0.1:70000/0", f"{MALFORMED}its port is not a number from 1 to "
     f"65535{FORMS}"),
    ("host", "redis:///0", f"{MALFORMED}it names no host{FORMS}"),
    ("path", "redis://127.0.0.1/0/1", f"{MALFORMED}its path is not a db number such as /0"
     f"{FORMS}"),
    ("parameter", "redis://127.0.0.1:1/0?colour=x", "The state store redis://127.0.0.1:1/0?colour"
     "=*** cannot be opened: redis takes no query parameter 'colour'."),
    ("value", "redis://127.0.0.1:1/0?socket_timeout=x", "The state store redis://127.0.0.1:1/0?"
     "socket_timeout=*** cannot be opened: Invalid value for 'socket_timeout' in connection URL."),
    ("unreachable", "redis://:secret@127.0.0.1:1/0", "The state store redis://127.0.0.1:1/0 "
     "cannot be reached: Error 111 connecting to 127.0.0.1:1. Connection refused."),
))
def test_state_store(url: str, sentence: str) -> None:
    assert said(lambda: RedisStore(url, "p")) == sentence


# ------------------------------------------------------- environment variables

@pytest.mark.parametrize(("name", "value", "sentence"), rows(
    ("level", "KUIPERLITE_LOG_LEVEL", "LOUD", "KUIPERLITE_LOG_LEVEL='LOUD' is not a log level "
     "(DEBUG, INFO, WARNING or ERROR); using INFO"),
    ("seconds", "KUIPERLITE_KEEPALIVE", "0", "KUIPERLITE_KEEPALIVE='0' is not a positive number "
     "of seconds; using 5"),
    ("generation", "KUIPERLITE_EKUIPER", "3", "KUIPERLITE_EKUIPER='3' is not 1 or 2 (0: learned "
     "from the commands); using 0"),
    ("folder", "KUIPERLITE_IPC_DIR", "", "KUIPERLITE_IPC_DIR='' is not a folder; using /tmp"),
    ("no default", "KUIPERLITE_STATE_DIR", "", "KUIPERLITE_STATE_DIR='' is not a folder; it is "
     "ignored, as if unset"),
    ("flag", "KUIPERLITE_SUPERVISE", "no", "KUIPERLITE_SUPERVISE='no' is not 1 or 0; using 1"),
    ("megabytes", "KUIPERLITE_RECYCLE_MB", "-1", "KUIPERLITE_RECYCLE_MB='-1' is not a number of "
     "MB, 0 or more; using 0"),
))
def test_environment(caplog: pytest.LogCaptureFixture, name: str, value: str,
                     sentence: str) -> None:
    (setting,) = [s for s in ALL if s.name == name]
    with caplog.at_level(logging.WARNING, "kuiperlite"):
        setting.read({name: value})
    assert caplog.messages == [sentence]


# ------------------------------------------------------------------- packaging

@pytest.fixture
def packed(tmp_path: Path) -> Path:
    """The folder ``plug`` of the plugin ``packed.py``; its ``link.txt`` leads out of it."""
    folder = tmp_path / "plug"
    folder.mkdir()
    (folder / "packed.py").write_text("from kuiperlite import function\n\n@function\n"
                                      "def f(x):\n    return x\n")
    (folder / "reqs.txt").write_text("orjson\n\n-r more.txt\n")
    (tmp_path / "away.txt").write_text("")
    (folder / "link.txt").symlink_to(tmp_path / "away.txt")
    return folder


@pytest.mark.parametrize(("options", "sentence"), rows(
    ("outside", {"include": ["../*.txt"]}, "--include '../*.txt' must stay inside the plugin's "
     "folder {tmp}/plug: give a glob relative to it, without '..'."),
    ("no match", {"include": ["*.onnx"]}, "--include '*.onnx' matches no file under {tmp}/plug."),
    ("link", {"include": ["link.txt"]}, "link.txt leads outside the plugin's folder {tmp}/plug, "
     "to {tmp}/away.txt; package follows no link out of the folder: copy the file in, or "
     "leave it out with --exclude."),
    ("excluded", {"exclude": ["*.py"]}, "--exclude removed the plugin file packed.py itself."),
    ("no file", {"requirements": "nothing.txt"}, "The requirements file nothing.txt does not "
     "exist."),
    ("other file", {"requirements": "{tmp}/plug/reqs.txt"}, "{tmp}/plug/reqs.txt, line 3: '-r "
     "more.txt' names another file, which the zip would not hold; write its lines into this "
     "file instead."),
))
def test_packaging(packed: Path, options: dict[str, Any], sentence: str) -> None:
    tmp = packed.parent
    options = {k: v.format(tmp=tmp) if isinstance(v, str) else v for k, v in options.items()}
    plugin = kuiperlite.load(str(packed / "packed.py"))
    assert said(lambda: package.contents(plugin, **options)) == sentence.format(tmp=tmp)


# --------------------------------------------------------------- the command line

@pytest.mark.parametrize(("argv", "sentence"), rows(
    ("no file", "meta {tmp}/nowhere.py", "kuiperlite: {tmp}/nowhere.py: no such file."),
    ("no module", "meta no_such_plugin_module", "kuiperlite: 'no_such_plugin_module' is neither "
     "a .py file nor an importable module."),
    ("not python", "meta {tmp}/notes.txt", "kuiperlite: {tmp}/notes.txt cannot be imported as a "
     "Python module."),
    ("import fails", "meta {tmp}/broken.py", "kuiperlite: {tmp}/broken.py failed to import: "
     "ZeroDivisionError: division by zero"),
    ("definition", "meta {tmp}/bad.py", "kuiperlite: function 'f' (bad.py:2): keyword-only "
     "parameter 'y' is not allowed; a function receives only its SQL arguments, positionally"),
    ("clear all", "state clear p --url redis://127.0.0.1:1/0", "kuiperlite: state clear drops "
     "state for good: name --rule, --symbol, or --all."),
    ("state url", "state list p --url redis://127.0.0.1:1/0?db=x", "kuiperlite: The state store "
     f"URL is malformed: its db parameter is not a number{FORMS}"),
))
def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: str,
                      sentence: str) -> None:
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "broken.py").write_text("1 / 0\n")
    (tmp_path / "bad.py").write_text("from kuiperlite import function\n@function\n"
                                     "def f(x, *, y): pass\n")
    assert cli.main(argv.format(tmp=tmp_path).split()) == 2
    assert capsys.readouterr().err.splitlines()[0] == sentence.format(tmp=tmp_path)
