"""The SQLite store: a crash loses at most the write in flight; a bad file is an error."""

import signal
import sqlite3
import subprocess
import sys

import pytest

from kuiperlite import StateError
from kuiperlite.declare.kinds import SOURCE
from kuiperlite.declare.state import Scope, State
from kuiperlite.serve.stores import Stores
from kuiperlite.serve.stores.sqlite import SQLiteStore

SCOPE = Scope.of_instance(SOURCE, "tail", "r1", "o1", 0)

WRITER = """
import sys
from kuiperlite.serve.stores.sqlite import SQLiteStore
from kuiperlite.declare.state import Scope, State
from kuiperlite.serve.stores import Stores
from kuiperlite.declare.kinds import SOURCE

store = SQLiteStore(sys.argv[1])
state = State(Stores(lambda: store), Scope.of_instance(SOURCE, "tail", "r1", "o1", 0))
i = 0
while True:
    state.put("offset", i)
    if i == 200:
        print("writing", flush=True)
    i += 1
"""


def test_a_process_killed_while_writing_loses_at_most_the_write_in_flight(tmp_path):
    path = tmp_path / "p.sqlite3"
    for _ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        assert writer.stdout.readline() == "writing\n"
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
        store = SQLiteStore(str(path))
        try:
            assert store._run("PRAGMA integrity_check") == [("ok",)]
            offset = int(store.get(SCOPE, "offset") or -1)
            assert offset >= 200, "every committed write is there"
        finally:
            store.close()


def test_a_file_that_is_not_a_store_is_an_error_never_a_reset(tmp_path):
    path = tmp_path / "p.sqlite3"
    path.write_bytes(b"this is no database, but someone's notes" * 100)
    with pytest.raises(StateError) as info:
        SQLiteStore(str(path))
    assert str(info.value) == (
        f"The state store {path} cannot be used (file is not a database); kuiperlite never "
        "resets a store: fix the folder's permissions, or move the file away to start empty.")
    assert path.read_bytes().startswith(b"this is no database")


def test_a_database_of_something_else_is_an_error(tmp_path):
    path = tmp_path / "p.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE kuiperlite_state (other TEXT)")
    with pytest.raises(StateError, match="cannot be used .*no such column"):
        SQLiteStore(str(path))


def test_a_folder_that_cannot_be_made_is_an_error_at_first_use(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    stores = Stores(lambda: SQLiteStore(str(blocker / "state" / "p.sqlite3")))
    state = State(stores, SCOPE)
    with pytest.raises(StateError, match=r"The state store .*/file/state/p\.sqlite3 cannot "
                                         r"be used \(.*Not a directory"):
        state.get("offset")
    blocker.unlink()  # fixed: the next use opens it
    state.put("offset", 1)
    assert state.get("offset") == 1
    stores.close()


def test_the_store_is_in_wal_mode(tmp_path):
    store = SQLiteStore(str(tmp_path / "p.sqlite3"))
    try:
        assert store._run("PRAGMA journal_mode") == [("wal",)]
    finally:
        store.close()
