"""A plugin whose sources and sinks share connections.

Each connection is a journal file: opening it appends ``OPEN <pid> <n>``,
closing it ``CLOSE <pid> <n>``, and the symbols write their rows through
it, so a test reads from the file how often it opened and when it closed.

Used by tests/test_connections_e2e.py, copied under a name of the test's own.
"""

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, connection, function, sink, source

_opened = 0


class Journal:
    """An open journal file, written by many instances' threads."""

    def __init__(self, path: str) -> None:
        global _opened
        _opened += 1
        self.id = f"{os.getpid()} {_opened}"
        self.file = open(path, "a")  # noqa: SIM115 - the connection closes it
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()


def _journal(path: str, fail: bool, broken_close: bool, hang: float = 0.0,
             hang_close: float = 0.0) -> Iterator[Journal]:
    if hang:
        print("OPENING", path, flush=True)
        time.sleep(hang)  # a server that takes the connection and never answers
    if fail:
        raise OSError("unable to open database file")
    journal = Journal(path)
    journal.write(f"OPEN {journal.id}")
    print("OPENED", path, flush=True)
    try:
        yield journal
    finally:
        if hang_close:
            print("CLOSING", path, flush=True)
            time.sleep(hang_close)
        journal.write(f"CLOSE {journal.id}")
        journal.file.close()
        if broken_close:
            raise RuntimeError("disk gone")


@connection
def db(*, path: str, fail: bool = False, broken_close: bool = False, hang: float = 0.0,
       hang_close: float = 0.0) -> Iterator[Journal]:
    """The journal the rows go to.

    Args:
        path: the journal file.
        fail: fail to open.
        broken_close: fail after closing.
        hang: seconds the open blocks first, deaf to any stop.
        hang_close: seconds the close blocks first.
    """
    yield from _journal(path, fail, broken_close, hang, hang_close)


@connection
def spare(*, spare_path: str, spare_fail: bool = False) -> Iterator[Journal]:
    """A second journal."""
    yield from _journal(spare_path, spare_fail, False)


@sink
def write(ctx: Context, data: Any, *, tag: str = "", db: Journal) -> None:
    """Write each payload to the journal as a row."""
    db.write(f"ROW {ctx.rule_id} {tag} {data}")


@sink
def both(ctx: Context, data: Any, *, db: Journal, spare: Journal) -> None:
    """Write each payload to both journals."""
    db.write(f"ROW {ctx.rule_id} {data}")
    spare.write(f"ROW {ctx.rule_id} {data}")


@source
def watch(ctx: Context, *, interval: float = 0.02, db: Journal) -> Iterator[dict]:
    """Emit, every ``interval`` seconds, which open journal it uses and a count."""
    n = 0
    while ctx.sleep(interval):
        yield {"journal": db.id, "n": n}
        n += 1


@source
def once(ctx: Context, *, db: Journal) -> Iterator[dict]:
    """Emit which journal it uses, once, and end."""
    yield {"journal": db.id}


@function
def alive() -> bool:
    return True


if __name__ == "__main__":
    kuiperlite.run()
