"""A few threads run every source and sink instance, round robin.

A thread per instance costs some 16 KB and a wake-up of its own, which
thousands of rules make the plugin's largest cost. Instead each running
source or sink is a :class:`Task`: its ``step`` does a bounded piece of
work (a batch of messages) and says whether it has more to do or waits for
its socket. A waiting task costs no thread: nng completes its pending
receive or send (:class:`kuiperlite.channels.Pending`) and the completion
makes it ready again.

Workers are threads that take ready tasks oldest first and run one step
each. One worker serves a plugin best on one core; but user code may block
(a sink writing to a slow database, a source reading a device), so a
monitor thread adds a worker whenever every worker has been inside one step
for ``blocked`` seconds while other tasks are ready. A worker idle for
``idle`` seconds ends, and the monitor with the last of them, so a plugin
whose rules all stopped is back to the threads it started with.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from typing import Callable, Literal, Optional, Protocol

log = logging.getLogger("kuiperlite")

Outcome = Literal["again", "wait", "done"]
AGAIN: Outcome = "again"  # more to do: run again after the other ready tasks
WAIT: Outcome = "wait"  # waits for its socket: a completion calls ready() again
DONE: Outcome = "done"  # finished: forget it

# What the scheduler knows of a task between its steps.
_READY, _RUNNING, _RERUN, _WAITING = range(4)


class Task(Protocol):
    """A source or sink instance, as the scheduler runs it."""

    what: str

    def step(self) -> Outcome: ...


class Scheduler:
    """Runs tasks' steps on as few threads as keep every task moving.

    Args:
        blocked: seconds every worker may spend in one step, while other
            tasks wait, before another worker starts.
        idle: seconds a worker waits for a task before it ends.
        most: the most workers there may be.
        on_idle: called by the last worker as it ends.
    """

    def __init__(self, *, blocked: float = 0.05, idle: float = 5.0, most: int = 1024,
                 on_idle: Optional[Callable[[], None]] = None) -> None:
        self.blocked = blocked
        self.idle = idle
        self.most = most
        self.on_idle = on_idle
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._tick = threading.Condition(self._lock)
        self._ready: deque[Task] = deque()
        self._states: dict[Task, int] = {}
        self._workers = 0
        self._idle = 0
        self._busy: dict[int, float] = {}  # worker number -> when its current step began
        self._numbers = itertools.count(1)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._monitor = False

    def ready(self, task: Task) -> None:
        """Run ``task``'s next step soon: a new task, or one whose wait is over.

        Safe from any thread, nng's completion callbacks included; a task
        readied while its step runs runs again right after it.
        """
        with self._lock:
            state = self._states.get(task)
            if state == _RUNNING:
                self._states[task] = _RERUN
                return
            if state in (_READY, _RERUN):
                return
            self._states[task] = _READY
            self._ready.append(task)
            if self._idle:
                self._has_work.notify()
            elif not self._workers:
                try:
                    self._start_worker()
                except RuntimeError:  # no thread to be had: the task never runs
                    self._ready.remove(task)
                    del self._states[task]
                    raise

    def later(self, seconds: float, call: Callable[[], None]) -> None:
        """Call ``call`` (briefly: it runs on the monitor thread) in ``seconds``."""
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._numbers), call))
            self._start_monitor()
            self._tick.notify()

    def quiet(self) -> bool:
        """Whether no task waits for a worker now (a hint: it may change at once)."""
        return not self._ready

    def threads(self) -> int:
        """The scheduler's threads now: its workers, and the monitor while it runs."""
        with self._lock:
            return self._workers + self._monitor

    def _start_worker(self) -> None:
        """Start a worker (the lock is held)."""
        number = next(self._numbers)
        self._workers += 1
        try:
            threading.Thread(target=self._work, args=(number,), name=f"kuiperlite-worker-{number}",
                             daemon=True).start()
        except RuntimeError:  # no thread to be had: the workers there are go on
            self._workers -= 1
            if not self._workers:
                raise
            log.warning("cannot start another worker thread; %d serve every rule", self._workers)
            return
        self._start_monitor()

    def _start_monitor(self) -> None:
        if not self._monitor:
            self._monitor = True
            threading.Thread(target=self._watch, name="kuiperlite-monitor", daemon=True).start()

    def _work(self, number: int) -> None:
        lock, ready, states, busy = self._lock, self._ready, self._states, self._busy
        while True:
            task = self._next(number)
            if task is None:
                return
            try:
                outcome = task.step()
            except BaseException:  # a bug of kuiperlite's: the task ends, the worker goes on
                log.exception("%s ended on an unexpected error", task.what)
                outcome = DONE
            with lock:
                del busy[number]
                if outcome == DONE:
                    del states[task]
                elif outcome == AGAIN or states[task] == _RERUN:
                    states[task] = _READY
                    ready.append(task)
                else:
                    states[task] = _WAITING

    def _next(self, number: int) -> Optional[Task]:
        """The oldest ready task, or None once none came for ``idle`` seconds."""
        with self._lock:
            while not self._ready:
                self._idle += 1
                woken = self._has_work.wait(self.idle)
                self._idle -= 1
                if not woken and not self._ready:
                    self._workers -= 1
                    last = not self._workers
                    break
            else:
                task = self._ready.popleft()
                self._states[task] = _RUNNING
                self._busy[number] = time.monotonic()
                return task
        if last and self.on_idle is not None:
            self.on_idle()
        return None

    def _watch(self) -> None:
        """Add a worker when every worker is stuck in a step; run timers that are due."""
        due: list[Callable[[], None]] = []
        while True:
            for call in due:
                try:
                    call()
                except Exception:
                    log.exception("a timer failed")
            due = []
            with self._lock:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[2])
                if due:
                    continue
                if not self._workers and not self._timers:
                    self._monitor = False
                    return
                busy = self._busy.values()
                if (self._ready and len(busy) == self._workers < self.most
                        and all(now - began >= self.blocked for began in busy)):
                    self._start_worker()
                # A worker may take a task at any moment: look every ``blocked``
                # seconds while there are workers, rather than be told each time.
                wait = self.blocked if self._workers else self._timers[0][0] - now
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
                self._tick.wait(wait)
