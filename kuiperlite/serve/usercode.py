"""How an adapter calls user code: async user code on a private event loop
(:class:`Loop`), and a source's or sink's positional arguments (:func:`arguments`)."""

from __future__ import annotations

import threading
from typing import Any, Optional

from ..declare.context import Context
from ..errors import Stopped


class Loop:
    """A private event loop for one adapter's async user code.

    asyncio is imported on the first coroutine: plugins without async
    symbols never load it (it is the largest import a plugin would have).
    """

    def __init__(self) -> None:
        self.loop: Any = None
        self.task: Any = None
        self._lock = threading.Lock()
        self._cancelled = False

    def run(self, coro: Any, *, final: bool = False) -> Any:
        """Run a coroutine to its end; ``final`` runs it even after a cancel (teardown)."""
        import asyncio

        with self._lock:
            if self.loop is None:
                self.loop = asyncio.new_event_loop()
            if self._cancelled and not final:
                coro.close()
                raise Stopped()
            self.task = self.loop.create_task(coro)
        try:
            return self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            raise Stopped() from None
        finally:
            self.task = None

    def cancel(self) -> None:
        """Cancel the running coroutine from any thread (used by stop)."""
        with self._lock:
            self._cancelled = True
            if self.loop is not None and self.task is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)

    def close(self) -> None:
        if self.loop is not None and not self.loop.is_running():
            self.loop.close()



def arguments(context_index: Optional[int], ctx: Context, value_index: Optional[int],
              value: Any) -> list[Any]:
    """A source's or sink's positional arguments: the Context and the one other value."""
    args: list[Any] = [None] * ((context_index is not None) + (value_index is not None))
    if context_index is not None:
        args[context_index] = ctx
    if value_index is not None:
        args[value_index] = value
    return args

