"""Shared helpers: unique names, plugin files, polling, leak checks."""

from __future__ import annotations

import atexit
import collections
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from kuiperlite.declare.kinds import FUNCTION, SOURCE, Kind
from kuiperlite.declare.state import Scope, State
from kuiperlite.protocol import wire
from kuiperlite.serve.stores import Stores, open_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLUGINS = Path(__file__).resolve().parent / "plugins"
SCRIPTS = Path(__file__).resolve().parent / "scripts"

# How each plugin in tests/plugins ends, so that running the file serves it.
RUN_LINE = '\n\nif __name__ == "__main__":\n    kuiperlite.run()\n'


# Names unique() gave out during the running test: what the leak check looks for.
MADE: list[str] = []


def unique(prefix: str = "t") -> str:
    """A name no other test uses (plugins, rules and functions share /tmp)."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    MADE.append(name)
    return name


def threads_of(pid: int) -> int:
    """The threads a process has now, not counting nng's own (it starts them as it likes)."""
    count = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                count += not f.read().startswith("nng:")
        except OSError:  # a thread that just ended
            pass
    return count


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stacks_of(pid: int) -> str:
    """Every thread's Python stack in process ``pid``, as py-spy reads them."""
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if spy is None:
        return "(py-spy is not installed)"
    out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                         timeout=60)
    return out.stdout + out.stderr


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0,
               interval: float = 0.02, message: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def fresh_worker(host: Any, first: int, timeout: float = 30.0) -> int:
    """Wait for the worker that took ``first``'s place; its pid.

    While the supervisor has no child, ``host.process.worker`` is the
    supervisor's own pid, which is not the fresh worker either.
    """
    def fresh() -> Optional[int]:
        pid = host.process.worker
        return None if pid in (None, first, host.process.pid) else pid

    return wait_until(fresh, timeout, message="a fresh worker")


def assert_each_once(numbers: Any) -> None:
    """Every number from 0 to the last came, and only the one in flight at a crash may
    have come twice or not at all. Records the dead process had already handed to
    its socket still arrive after it died, so they may come between the first
    records of its successor: the order across a crash is not kept."""
    got = list(numbers)
    counts = collections.Counter(got)
    missing = sorted(set(range(max(got) + 1)) - set(counts))
    twice = sorted(n for n, c in counts.items() if c > 1)
    assert max(counts.values()) <= 2 and len(missing) + len(twice) <= 1, (missing, twice)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def write_plugin(tmp_path: Path) -> Callable[..., Path]:
    """Write a plugin file; its stem (the plugin name) is unique."""

    def write(code: str, name: Optional[str] = None, main: bool = True) -> Path:
        name = name or unique("p")
        source = textwrap.dedent(code)
        if main:
            source += ('\n\nif __name__ == "__main__":\n'
                       '    import kuiperlite\n    kuiperlite.run()\n')
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        return path

    return write


def plugin_source(name: str, *, main: bool = True) -> str:
    """The text of tests/plugins/NAME.py; without its guarded run() line unless ``main``."""
    text = (PLUGINS / f"{name}.py").read_text()
    if not main:
        if not text.endswith(RUN_LINE):
            raise ValueError(f"tests/plugins/{name}.py does not end with {RUN_LINE!r}")
        text = text[:-len(RUN_LINE)]
    return text


def place_plugin(name: str, folder: Path, *, main: bool = True,
                 stem: Optional[str] = None) -> Path:
    """Copy tests/plugins/NAME.py into ``folder`` as STEM.py (default: a unique stem).

    The stem is the plugin name: its control channel and, for a packaged
    plugin, its folder are named after it, so each test's copy must have its own.
    """
    path = folder / f"{stem or unique('p')}.py"
    path.write_text(plugin_source(name, main=main))
    return path


@pytest.fixture
def copy_plugin(tmp_path: Path) -> Callable[..., Path]:
    """Copy a plugin from tests/plugins into the test's folder; its stem (the
    plugin name) is unique. ``main=False`` leaves out its guarded run() line."""

    def copy(name: str, *, main: bool = True) -> Path:
        return place_plugin(name, tmp_path, main=main)

    return copy


# kuiperlite's own sockets go to this session's folder, never /tmp, where a
# running eKuiper or another test run may host plugins with the same names.
# The official SDK only knows /tmp: its tests give their plugins unique names.
SESSION_IPC = tempfile.mkdtemp(prefix="klt", dir="/tmp")
os.environ["KUIPERLITE_IPC_DIR"] = SESSION_IPC
wire.IPC_DIR = SESSION_IPC
atexit.register(shutil.rmtree, SESSION_IPC, ignore_errors=True)
# Nor does any plugin a test runs keep state outside the session.
SESSION_STATE = tempfile.mkdtemp(prefix="kls")
os.environ["KUIPERLITE_STATE_DIR"] = SESSION_STATE
os.environ.pop("KUIPERLITE_STATE_URL", None)
atexit.register(shutil.rmtree, SESSION_STATE, ignore_errors=True)
# Nor does check keep the environments it builds outside the session.
SESSION_CACHE = tempfile.mkdtemp(prefix="klc")
os.environ["KUIPERLITE_CACHE_DIR"] = SESSION_CACHE
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def runtime_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of kuiperlite's own requirements, fetched once a session (pip caches them):
    a zip holding them builds a plugin's environment offline."""
    from kuiperlite.bundle import package

    folder = tmp_path_factory.mktemp("runtime-wheels")
    package.download_wheels(package.runtime_requirements(), folder, None, None)
    return folder


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A python that plays eKuiper's: a virtual environment with pip and nothing else."""
    import venv

    folder = tmp_path_factory.mktemp("bare")
    venv.create(folder, with_pip=True)
    return str(folder / "bin" / "python")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server of this session's own, on a unix socket (no port to collide on)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; .ci/run installs Debian's redis-server")
    folder = tempfile.mkdtemp(prefix="klr", dir="/tmp")
    path = os.path.join(folder, "redis.sock")
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", path, "--save", "",
                             "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    SESSION_CHILDREN.add(proc.pid)
    try:
        wait_until(lambda: os.path.exists(path) or proc.poll() is not None, 30,
                   message="redis-server to listen")
        assert proc.poll() is None, "redis-server exited at once"
        yield f"unix://{path}"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "redis"])
def state_place(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where a test's state lives, once on each store: ``directory=`` or ``url=``."""
    if request.param == "redis":
        return {"url": request.getfixturevalue("redis_url")}
    return {"directory": str(tmp_path / "state")}


@pytest.fixture
def state_plugin() -> str:
    """The plugin :func:`stores` keeps state for: a name no other test uses."""
    return unique("p")


@pytest.fixture
def stores(state_place: dict[str, str], state_plugin: str) -> Iterator[Stores]:
    """A plugin's stores, once on each store (see :func:`state_place`)."""
    opened = Stores(lambda: open_store(state_plugin, **state_place))
    yield opened
    opened.close()


def state(stores: Any, kind: Kind = SOURCE, symbol: str = "src", rule: str = "r1",
          op: str = "o1", instance: int = 0) -> State:
    """The State of one instance (for a function, of one call site) in ``stores``."""
    if kind is FUNCTION:
        return State(stores, Scope.of_call(symbol, rule, instance))
    return State(stores, Scope.of_instance(kind, symbol, rule, op, instance))


def _ipc_files() -> set[str]:
    """The socket files this session made: all in its folder, and those in
    /tmp whose names hold a name unique() gave out."""
    made = set(glob.glob(os.path.join(SESSION_IPC, "*.ipc")))
    return made | {path for path in glob.glob("/tmp/*.ipc") if any(n in path for n in MADE)}


# Children that serve the whole session (redis-server), not one test.
SESSION_CHILDREN: set[int] = set()


def _children() -> set[int]:
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            return {int(p) for p in f.read().split()} - SESSION_CHILDREN
    except FileNotFoundError:  # pragma: no cover - not Linux
        return set()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test leaves no new ipc socket files and no child processes."""
    MADE.clear()
    files, children = _ipc_files(), _children()
    yield
    wait_until(lambda: not (_ipc_files() - files), 5,
               message=f"ipc files to be removed: {sorted(_ipc_files() - files)}")
    wait_until(lambda: not [p for p in _children() - children if pid_alive(p)], 5,
               message="child processes to end")


def python() -> str:
    return sys.executable


class LocalEkuiper:
    """``python -m kuiperlite serve`` with no plugin file: eKuiper's plugin management
    API, in a subprocess with a socket folder of its own."""

    def __init__(self, *args: str, ready: str = "eKuiper plugin API on") -> None:
        import threading

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.ipc_dir = tempfile.mkdtemp(prefix="kl", dir="/tmp")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kuiperlite", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, KUIPERLITE_IPC_DIR=self.ipc_dir))
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: any(ready in line for line in self.lines)
                   or self.proc.poll() is not None, 30, message="serve to listen")
        assert self.proc.poll() is None, "\n".join(self.lines)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def request(self, method: str, path: str, body: Any = None, *, data: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None) -> tuple[int, str]:
        """The status and text of the answer."""
        import json
        import urllib.error
        import urllib.request

        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def upload(self, path: Path, field: str = "uploadFile") -> tuple[int, str]:
        """POST the file as eKuiper's UI does: multipart form field ``uploadFile``."""
        boundary = uuid.uuid4().hex
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{path.name}\"\r\nContent-Type: application/zip\r\n\r\n").encode() \
            + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/config/uploads", data=data, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
            self.proc.wait(30)
            wait_until(lambda: not os.listdir(self.ipc_dir), 5,
                       message="serve to remove its socket files")
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.ipc_dir, ignore_errors=True)


@pytest.fixture
def local_ekuiper() -> Iterator[Callable[..., LocalEkuiper]]:
    """Start serve as a local eKuiper (with extra arguments); each is stopped after the test."""
    started: list[LocalEkuiper] = []

    def start(*args: str, **kwargs: str) -> LocalEkuiper:
        started.append(LocalEkuiper(*args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.stop()
