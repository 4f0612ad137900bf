"""When an idle worker gives way to a fresh one, to give its memory back.

CPython returns an arena of its allocator (1 MB) to the system only once no
object at all lives in it, and a few objects that outlive a busy hour keep
most arenas it filled. So a plugin that ran a thousand rules and stopped
them holds far more memory than one that never ran them: a high-water
mark, not a leak, which nothing short of a new process gives back.

A supervised worker (see :mod:`kuiperlite.serve.supervisor`) therefore leaves
when it is idle and has grown: every source and sink it ran has stopped,
no function call came for ``idle`` seconds, and it holds more than
``grown`` MB over what it held when it began serving. The supervisor forks
a fresh worker at once, which imports the plugin again; eKuiper sends any
command or call that met the swap again to it (it takes a handshake for the
answer to a request still open, and asks again). What a symbol keeps in
``ctx.state`` lives on; what the plugin module keeps in its own globals
starts again as at import, as after a crash.

Only instances make a worker eligible: memory a plugin grows serving
functions alone (a cache, a model) is taken to be the plugin's own. And a
worker that took more than ``SLOW_START`` seconds from its fork to serving
(a plugin that loads a model at import) stays: a function call that met
the swap would wait that long for the fresh one, longer than eKuiper's 5 s.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from .. import settings

log = logging.getLogger("kuiperlite")

SLOW_START = 2.0


def resident_mb() -> float:
    """This process's resident memory in MB; 0.0 where ``/proc`` does not say (not Linux)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Recycler:
    """Decides, from the worker's watch loop, when the worker should give way.

    Made before the worker takes its first command: its memory then is the
    floor that growth is counted from.

    Args:
        grown: MB over the floor that make an idle worker give way; 0 never does.
        idle: seconds with no source or sink running and no function call
            before the worker counts as idle.
        startup: seconds the worker took from its fork to now; past
            ``SLOW_START`` it never gives way.
    """

    def __init__(self, grown: float = settings.RECYCLE_MB.default,
                 idle: float = settings.RECYCLE_IDLE.default,
                 startup: float = 0.0) -> None:
        if grown and startup > SLOW_START:
            log.info("the plugin took %.1f s to start; its worker is kept when idle, as a "
                     "fresh one would take as long", startup)
            grown = 0.0
        self.grown = grown
        self.idle = idle
        self.floor = resident_mb()
        self._ran = False  # an instance ran since the memory was last looked at
        self._seen = (0, 0)  # the starts and calls counted at the last look
        self._quiet_since = 0.0

    def due(self, running: int, started: int, calls: int, now: float) -> Optional[float]:
        """The MB the worker holds over its floor, when it should give way now; else None.

        Args:
            running: the source and sink instances running now.
            started: sources and sinks started so far, to see those that came
                and went between two looks.
            calls: function calls answered so far.
            now: ``time.monotonic()``.
        """
        if not self.grown:
            return None
        if running or (started, calls) != self._seen:
            self._ran = self._ran or running > 0 or started != self._seen[0]
            self._seen = (started, calls)
            self._quiet_since = now
            return None
        if not self._ran or now - self._quiet_since < self.idle:
            return None
        self._ran = False  # looked at once per idle spell
        over = resident_mb() - self.floor
        if over > self.grown:
            return over
        log.debug("idle, the worker holds %.1f MB more than when it began, within the "
                  "%g MB it may keep", over, self.grown)
        return None
