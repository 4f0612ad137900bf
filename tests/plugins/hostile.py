"""A plugin whose user code does what careless or hostile code does to a channel.

Used by tests/test_hostile.py under the embedded host.
"""

import os
import sys
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, Stopped, connection, function, sink, source

ESCAPES: dict[str, type[BaseException]] = {
    "exit": SystemExit, "interrupt": KeyboardInterrupt, "genexit": GeneratorExit}

# Limits a starved machine imposes, set by the tests through the environment.
if os.environ.get("HOSTILE_NOFILE"):
    import resource

    limit = int(os.environ["HOSTILE_NOFILE"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
if os.environ.get("HOSTILE_NO_INSTANCE_THREADS"):
    # The thread limit is reached once the plugin serves: no thread that would
    # run a source or sink instance (a worker, or one named after it) starts.
    _start = threading.Thread.start

    def _limited_start(self: threading.Thread) -> None:
        if self.name.startswith(("source '", "sink '", "kuiperlite-worker")):
            raise RuntimeError("can't start new thread")
        _start(self)

    threading.Thread.start = _limited_start  # type: ignore[method-assign]


@source
def callbacks(ctx: Context, *, threads: int = 4, size: int = 2000) -> None:
    """Emit from threads of its own, as a callback library (MQTT, serial) does."""
    def pump() -> None:
        try:
            while True:
                ctx.emit({"pad": "x" * size})
        except Stopped:
            print("PUMP-STOPPED", ctx.rule_id, flush=True)
        except BaseException as err:
            print("PUMP-ERROR", ctx.rule_id, type(err).__name__, err, flush=True)

    for _ in range(threads):
        threading.Thread(target=pump, daemon=True).start()
    ctx.sleep(3600)


@source(retry=False)
def escapes(ctx: Context, *, how: str = "exit") -> Generator[dict, None, None]:
    """Yield one record, then raise what ``how`` names."""
    yield {"before": how}
    raise ESCAPES[how]("from the source")


@sink
def collect(ctx: Context, data: Any) -> None:
    """Raise what a record's ``raise`` names; print the others."""
    if isinstance(data, dict) and data.get("raise"):
        raise ESCAPES[data["raise"]]("from the sink")
    print("COLLECT", ctx.rule_id, data, flush=True)


@sink
def slow_teardown(ctx: Context) -> Generator[None, Any, None]:
    """A sink whose teardown takes two seconds."""
    try:
        while True:
            data = yield
            print("SLOW-TEARDOWN", ctx.rule_id, data, flush=True)
    finally:
        time.sleep(2)
        print("TORN-DOWN", ctx.rule_id, flush=True)


@sink
def stuck(ctx: Context, data: Any) -> None:
    """A sink that never returns from user code."""
    print("STUCK", ctx.rule_id, flush=True)
    threading.Event().wait()


@function
def escape(how: str) -> str:
    """Raise what ``how`` names, or return it."""
    if how in ESCAPES:
        raise ESCAPES[how]("from the function")
    return how


@sink
def dies(ctx: Context, data: Any) -> None:
    """End the process, the way no exception handler sees, on a record that says so."""
    if isinstance(data, dict) and data.get("die"):
        sys.stdout.flush()
        os._exit(5)
    print("DIES-GOT", ctx.rule_id, data, flush=True)


@function
def hard_exit(code: int) -> int:
    """End the process the way no exception handler sees."""
    sys.stdout.flush()
    os._exit(code)


@function
def segfault(address: int) -> bytes:
    """Crash in C code, as a faulty extension does."""
    import ctypes

    return ctypes.string_at(address)


@connection
def stubborn() -> Iterator[str]:
    """A connection whose teardown never returns."""
    yield "open"
    print("STUBBORN-CLOSING", flush=True)
    time.sleep(3600)


@source
def holds(ctx: Context, *, stubborn: str) -> Iterator[dict]:
    """Emit a record and end, holding the stubborn connection until the rule stops."""
    yield {"n": 1}


@function
def spawn_helper(seconds: float) -> int:
    """Fork a helper process, as multiprocessing does, that lives ``seconds``; its pid."""
    import multiprocessing

    helper = multiprocessing.get_context("fork").Process(target=time.sleep, args=(seconds,))
    helper.start()
    return int(helper.pid or 0)


@function
def pid() -> int:
    """The process that runs the user code."""
    return os.getpid()


if __name__ == "__main__":
    kuiperlite.run()
