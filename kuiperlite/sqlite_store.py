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

import os
import sqlite3
import threading
from typing import Optional

from .errors import StateError
from .state import Scope, incremented

TABLE = "kuiperlite_state"
_COLUMNS = "kind, symbol, rule, op, instance"
_WHERE = "kind = ? AND symbol = ? AND rule = ? AND op = ? AND instance = ? AND key = ?"
_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (kind TEXT NOT NULL, symbol TEXT NOT NULL, "
           "rule TEXT NOT NULL, op TEXT NOT NULL, instance INTEGER NOT NULL, "
           "key TEXT NOT NULL, value TEXT NOT NULL, "
           f"PRIMARY KEY ({_COLUMNS}, key)) WITHOUT ROWID")


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
            self._db.execute(f"SELECT {_COLUMNS}, key, value FROM {TABLE} LIMIT 1").fetchall()
        except sqlite3.Error as err:
            self._db.close()
            raise self._unusable(err) from None

    def _unusable(self, err: BaseException) -> StateError:
        return StateError(
            f"The state store {self.where} cannot be used ({err}); kuiperlite never resets "
            "a store: fix the folder's permissions, or move the file away to start empty.")

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise StateError(f"The state store {self.where} failed: {err}.") from None

    def get(self, scope: Scope, key: str) -> Optional[str]:
        rows = self._run(f"SELECT value FROM {TABLE} WHERE {_WHERE}", (*scope, key))
        return rows[0][0] if rows else None

    def put(self, scope: Scope, key: str, value: str) -> None:
        self._run(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (*scope, key, value))

    def delete(self, scope: Scope, key: str) -> None:
        self._run(f"DELETE FROM {TABLE} WHERE {_WHERE}", (*scope, key))

    def incr(self, scope: Scope, key: str, amount: int) -> int:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._db.execute(f"SELECT value FROM {TABLE} WHERE {_WHERE}",
                                            (*scope, key)).fetchall()
                    new = incremented(scope, key, rows[0][0] if rows else None, amount)
                    self._db.execute(f"INSERT OR REPLACE INTO {TABLE} VALUES "
                                     "(?, ?, ?, ?, ?, ?, ?)", (*scope, key, str(new)))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                raise StateError(f"The state store {self.where} failed: {err}.") from None
        return new

    def entries(self, rule: Optional[str] = None,
                symbol: Optional[str] = None) -> list[tuple[Scope, str, str]]:
        where, args = _filter(rule, symbol)
        rows = self._run(f"SELECT {_COLUMNS}, key, value FROM {TABLE}{where} "
                         f"ORDER BY {_COLUMNS}, key", args)
        return [(Scope(*row[:5]), row[5], row[6]) for row in rows]

    def clear(self, rule: Optional[str] = None, symbol: Optional[str] = None) -> int:
        where, args = _filter(rule, symbol)
        with self._lock:
            try:
                return self._db.execute(f"DELETE FROM {TABLE}{where}", args).rowcount
            except sqlite3.Error as err:
                raise StateError(f"The state store {self.where} failed: {err}.") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _filter(rule: Optional[str], symbol: Optional[str]) -> tuple[str, tuple]:
    terms = [(name, value) for name, value in (("rule", rule), ("symbol", symbol))
             if value is not None]
    if not terms:
        return "", ()
    return " WHERE " + " AND ".join(f"{name} = ?" for name, _ in terms), \
        tuple(value for _, value in terms)

