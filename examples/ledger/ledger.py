"""ledger: rules append records to a SQLite table and a stream reads them back.

Every rule that names the same database file shares one open connection:
``db`` opens at the first start that needs it and closes after the last
rule using it stops. The ``entries`` source keeps the id of the last row
it emitted in ``ctx.state``, so a restarted rule goes on after it.
"""

import json
import sqlite3
from collections.abc import Generator, Iterator
from typing import Any

import kuiperlite
from kuiperlite import Context, connection, sink, source

ABOUT = kuiperlite.About(version="v1.0.0", author="kuiperlite", email="dev@kuiperlite.invalid")


@connection
def db(*, path: str, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A SQLite database, opened once for all the rules that name the same file.

    Args:
        path: the database file; created when missing.
        timeout: seconds to wait for a write lock that another process holds.
    """
    # Rules use it from threads of their own; SQLite serializes them.
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        yield conn
    finally:
        conn.close()


def _table(conn: sqlite3.Connection, name: str) -> str:
    """Create the table when it is missing; its name, quoted for SQL."""
    quoted = '"' + name.replace('"', '""') + '"'
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quoted} "
                 "(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return quoted


@sink
def record(ctx: Context, *, table: str = "ledger",
           db: sqlite3.Connection) -> Generator[None, Any, None]:
    """Append each record of a message to a table, as one row.

    Args:
        table: the table the rows go to; created when missing.
    """
    quoted = _table(db, table)
    while True:
        data = yield
        records = data if isinstance(data, list) else [data]
        db.executemany(f"INSERT INTO {quoted} (body) VALUES (?)",
                       [(json.dumps(r),) for r in records])


@source
def entries(ctx: Context, *, table: str = "ledger", interval: float = 0.5,
            db: sqlite3.Connection) -> Iterator[dict]:
    """Each row added to a table, once and in order, across restarts.

    Args:
        table: the table to read; created when missing.
        interval: seconds between looks for new rows.
    """
    quoted = _table(db, table)
    # Read before the first record: kuiperlite then queues none, so a row
    # whose id is saved has left the plugin.
    last = ctx.state.get("id", 0)
    while True:
        rows = db.execute(f"SELECT id, body FROM {quoted} WHERE id > ? ORDER BY id LIMIT 500",
                          (last,)).fetchall()
        for row_id, body in rows:
            yield {"id": row_id, "data": json.loads(body)}
            last = row_id
            ctx.state.put("id", last)
        if not rows and not ctx.sleep(interval):
            return


if __name__ == "__main__":
    kuiperlite.run()
