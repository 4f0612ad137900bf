"""The store a running plugin keeps its state in: which one, and opening it once.

A plugin's :class:`Stores` opens its store on first use, so a plugin that
keeps no state opens nothing: SQLite (one file per plugin, see
:func:`open_store`), or Redis when ``KUIPERLITE_STATE_URL`` names one.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Optional

from ... import settings
from ...declare.state import MemoryStore, Store


def open_store(plugin: str, *, directory: Optional[str] = None,
               url: Optional[str] = None) -> Store:
    """The plugin's store: Redis at ``url`` (or ``KUIPERLITE_STATE_URL``), else SQLite.

    The SQLite file is ``<plugin>.sqlite3`` in ``directory``, else in
    :func:`kuiperlite.serve.locations.state_dir`: ``KUIPERLITE_STATE_DIR``, eKuiper's
    data folder under eKuiper, or the user's state folder.

    Raises:
        StateError: the store cannot be opened or reached, in one sentence.
    """
    url = url or settings.STATE_URL.read()
    if url:
        from .redis import RedisStore

        return RedisStore(url, plugin)
    from .sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(plugin, directory))


def sqlite_path(plugin: str, directory: Optional[str] = None) -> str:
    """The plugin's SQLite file: ``<plugin>.sqlite3`` in ``directory`` or the state folder."""
    from ..locations import state_dir

    return os.path.join(directory or str(state_dir()), f"{plugin}.sqlite3")


class Stores:
    """A plugin's store, opened on first use and shared by its instances."""

    def __init__(self, opener: Callable[[], Store]) -> None:
        self._opener = opener
        self._store: Optional[Store] = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The store, opened now if it is not yet (a failed open is tried again next time)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._opener()
                store = self._store
        return store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def memory_stores() -> Stores:
    """Stores over a fresh :class:`~kuiperlite.declare.state.MemoryStore` (tests)."""
    return Stores(MemoryStore)


def clear(plugin: str, *, rule: Optional[str] = None, symbol: Optional[str] = None,
          directory: Optional[str] = None, url: Optional[str] = None) -> int:
    """Drop a plugin's state, or one rule's or symbol's, for good.

    eKuiper does not tell a plugin that a rule was deleted: call this (or
    ``python -m kuiperlite state clear PLUGIN --rule RULE``) when it is.

    Returns:
        How many keys went.
    """
    store = open_store(plugin, directory=directory, url=url)
    try:
        return store.clear(rule=rule, symbol=symbol)
    finally:
        store.close()
