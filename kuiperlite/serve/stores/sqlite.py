"""The default state store: one SQLite file per plugin, in WAL mode.

Each write is its own transaction, so a crash of the plugin at any point
loses at most the write in flight, and never leaves a broken file: SQLite's
write-ahead log is rolled back or forward when the file is next opened.
``synchronous=NORMAL`` makes a committed write survive a killed process; on
a power cut the last writes before it may be rolled back, never torn. A
file that is not a store, or a folder that cannot be written, is an error
the first time the state is used, never a silent reset.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from typing import Any, Optional

import orjson

from ...declare.state import Scope, incremented
from ...errors import StateError

TABLE = "kuiperlite_state"
# A scope is one column, its JSON array: a two-column key keeps a write short.
_GET = f"SELECT value FROM {TABLE} WHERE scope = ? AND key = ?"
_PUT = f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?)"
_DELETE = f"DELETE FROM {TABLE} WHERE scope = ? AND key = ?"
_ALL = f"SELECT scope, key, value FROM {TABLE} ORDER BY scope, key"
_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (scope TEXT NOT NULL, key TEXT NOT NULL, "
           "value TEXT NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID")


@functools.lru_cache(maxsize=4096)
def _column(scope: Scope) -> str:
    return orjson.dumps(list(scope)).decode()


class SQLiteStore:
    """A plugin's state in one SQLite file (or ``:memory:``), shared by its threads."""

    def __init__(self, path: str) -> None:
        self.where = path
        self._lock = threading.Lock()
        try:
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            # One connection, used under a lock: writes from many instances
            # are serialised here rather than by SQLite's busy waits.
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None,
                                       check_same_thread=False)
        except (sqlite3.Error, OSError) as err:
            raise self._unusable(err) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.execute(f"SELECT scope, key, value FROM {TABLE} LIMIT 1").fetchall()
        except sqlite3.Error as err:
            self._db.close()
            raise self._unusable(err) from None

    def _unusable(self, err: BaseException) -> StateError:
        return StateError(
            f"The state store {self.where} cannot be used ({err}); kuiperlite never resets "
            "a store: fix the folder's permissions, or move the file away to start empty.")

    def _failed(self, err: sqlite3.Error) -> StateError:
        return StateError(f"The state store {self.where} failed: {err}.")

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise self._failed(err) from None

    def get(self, scope: Scope, key: str) -> Optional[str]:
        rows = self._run(_GET, (_column(scope), key))
        return rows[0][0] if rows else None

    def put(self, scope: Scope, key: str, value: str) -> None:
        with self._lock:
            try:
                self._db.execute(_PUT, (_column(scope), key, value))
            except sqlite3.Error as err:
                raise self._failed(err) from None

    def delete(self, scope: Scope, key: str) -> None:
        self._run(_DELETE, (_column(scope), key))

    def incr(self, scope: Scope, key: str, amount: int) -> int:
        column = _column(scope)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._db.execute(_GET, (column, key)).fetchall()
                    new = incremented(scope, key, rows[0][0] if rows else None, amount)
                    self._db.execute(_PUT, (column, key, str(new)))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                raise self._failed(err) from None
        return new

    def entries(self, rule: Optional[str] = None,
                symbol: Optional[str] = None) -> list[tuple[Scope, str, str]]:
        out = []
        for column, key, value in self._run(_ALL):
            scope = Scope(*orjson.loads(column))
            if (rule is None or scope.rule == rule) and (symbol is None or scope.symbol == symbol):
                out.append((scope, key, value))
        return out

    def clear(self, rule: Optional[str] = None, symbol: Optional[str] = None) -> int:
        gone = self.entries(rule, symbol)
        with self._lock:
            try:
                self._db.executemany(_DELETE, [(_column(s), k) for s, k, _ in gone])
            except sqlite3.Error as err:
                raise self._failed(err) from None
        return len(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()
