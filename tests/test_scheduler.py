"""The scheduler: tasks' steps on few threads, round robin, with company for a stuck worker."""

import threading
import time

from kuiperlite.scheduler import AGAIN, DONE, WAIT, Outcome, Scheduler

from conftest import wait_until


class Counter:
    """A task that takes ``steps`` steps, noting each in ``log``, then is done."""

    def __init__(self, name: str, steps: int, log: list[str], wait: bool = False) -> None:
        self.what = name
        self.left = steps
        self.log = log
        self.wait = wait

    def step(self) -> Outcome:
        self.log.append(self.what)
        self.left -= 1
        if not self.left:
            return DONE
        return WAIT if self.wait else AGAIN


def test_tasks_take_turns_and_one_worker_serves_them():
    log: list[str] = []
    scheduler = Scheduler(blocked=5.0)
    both = threading.Event()

    class First(Counter):
        def step(self) -> Outcome:
            both.wait(10)  # b is ready before a's first step ends
            return super().step()

    a, b = First("a", 3, log), Counter("b", 3, log)
    scheduler.ready(a)
    scheduler.ready(b)
    both.set()
    wait_until(lambda: len(log) == 6, message="six steps")
    assert log == ["a", "b", "a", "b", "a", "b"]
    assert scheduler.threads() == 2  # one worker and the monitor


def test_a_waiting_task_runs_again_only_when_readied():
    log: list[str] = []
    scheduler = Scheduler()
    task = Counter("w", 3, log, wait=True)
    scheduler.ready(task)
    wait_until(lambda: log == ["w"], message="the first step")
    time.sleep(0.2)
    assert log == ["w"]  # waiting: no step until its completion comes
    scheduler.ready(task)
    wait_until(lambda: log == ["w", "w"], message="the second step")


def test_a_task_readied_during_its_step_runs_again_after_it():
    entered, release = threading.Event(), threading.Event()
    steps: list[int] = []

    class Slow:
        what = "slow"

        def step(self) -> Outcome:
            steps.append(len(steps))
            if len(steps) == 1:
                entered.set()
                release.wait(10)
                return WAIT
            return DONE

    scheduler = Scheduler()
    task = Slow()
    scheduler.ready(task)
    assert entered.wait(10)
    scheduler.ready(task)  # its completion came while it stepped
    release.set()
    wait_until(lambda: steps == [0, 1], message="the step again")


def test_a_worker_stuck_in_user_code_gets_company():
    stuck = threading.Event()
    log: list[str] = []

    class Stuck:
        what = "stuck"

        def step(self) -> Outcome:
            stuck.wait(30)
            return DONE

    scheduler = Scheduler(blocked=0.05)
    scheduler.ready(Stuck())
    time.sleep(0.01)
    scheduler.ready(Counter("free", 2, log))
    wait_until(lambda: log == ["free", "free"], 10, message="the other task to run")
    assert scheduler.threads() >= 3  # two workers and the monitor
    stuck.set()


def test_idle_workers_end_and_the_last_one_says_so():
    idle = threading.Event()
    log: list[str] = []
    scheduler = Scheduler(idle=0.2, on_idle=idle.set)
    baseline = threading.active_count()
    scheduler.ready(Counter("once", 1, log))
    assert idle.wait(10)
    wait_until(lambda: scheduler.threads() == 0, message="the workers and monitor to end")
    wait_until(lambda: threading.active_count() == baseline, message="their threads to end")
    scheduler.ready(Counter("again", 1, log))  # a new task finds a worker again
    wait_until(lambda: log == ["once", "again"], message="the second task")


def test_later_calls_once_the_time_has_come():
    called: list[float] = []
    scheduler = Scheduler()
    t0 = time.monotonic()
    scheduler.later(0.2, lambda: called.append(time.monotonic() - t0))
    wait_until(lambda: called, message="the timer")
    assert called[0] >= 0.2


def test_a_step_that_raises_ends_its_task_not_the_worker(caplog):
    log: list[str] = []

    class Broken:
        what = "broken task"

        def step(self) -> Outcome:
            raise RuntimeError("bug")

    scheduler = Scheduler()
    scheduler.ready(Broken())
    scheduler.ready(Counter("after", 1, log))
    wait_until(lambda: log == ["after"], message="the next task")
    assert "broken task ended on an unexpected error" in caplog.text
