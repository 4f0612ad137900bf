"""The supervisor's parts: the journal over a real pipe, the in-flight page, fork conditions.

The whole supervisor, killing and crashing real workers, is in test_hostile.py.
"""

import gc
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Callable

import pytest

from kuiperlite.errors import KuiperliteError
from kuiperlite.serve import supervisor
from kuiperlite.serve.supervisor import InFlight, Journal, Replay, shared_page

from conftest import SCRIPTS


def worker_writing(write: Callable[[Journal], None], read_end: int, write_end: int) -> int:
    """Fork a process that writes to a journal on the pipe, then exits; its pid.

    The test process may hold unreachable pynng sockets of earlier tests: they
    are collected before the fork, and the child collects nothing, because
    nng 1.9 and later abort a forked child that closes its parent's socket.
    """
    gc.collect()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        gc.disable()
        code = 1
        try:
            os.close(read_end)
            write(Journal(write_end))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid


def test_the_journal_carries_starts_stops_and_the_goodbye_over_a_pipe():
    def write(journal: Journal) -> None:
        journal.started("r1_op1_0_print", 70, b'{"cmd":"start","arg":"..."}')
        journal.started("r2_op1_0_pyjson", -1, b"x" * 100_000)  # larger than a pipe's buffer
        journal.stopped("r1_op1_0_print")
        journal.exiting(0)

    read_end, write_end = os.pipe()
    pid = worker_writing(write, read_end, write_end)
    starts: dict = {}
    codes = [supervisor._record(kind, data, starts)
             for kind, data in supervisor._frames(read_end, pid)]
    os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    assert codes == [None, None, None, 0]
    assert list(starts.values()) == [Replay("r2_op1_0_pyjson", -1, b"x" * 100_000)]


@pytest.mark.parametrize("watch", ["pidfd", "asking"])
def test_the_worker_is_watched_itself_not_the_pipe_another_process_still_holds(watch,
                                                                             monkeypatch):
    if watch == "asking":  # as where Linux has no pidfd
        monkeypatch.setattr(supervisor, "_pidfd", lambda pid: None)
    def write(journal: Journal) -> None:
        # A process of its own holds the pipe's write end on after the worker died.
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                  pass_fds=(journal.fd,))
        journal.named(str(holder.pid))
        journal.exiting(3)

    read_end, write_end = os.pipe()
    began = time.monotonic()
    pid = worker_writing(write, read_end, write_end)
    frames: list = []
    try:
        frames.extend(supervisor._frames(read_end, pid))
        assert time.monotonic() - began < 10
        assert [kind for kind, _ in frames] == [supervisor.NAME, supervisor.EXIT]
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
        for kind, data in frames:
            if kind == supervisor.NAME:
                os.kill(int(data), signal.SIGKILL)


def test_a_process_the_worker_forks_has_no_journal_to_write_to():
    def write(journal: Journal) -> None:
        # As supervise() has its worker do; this is that worker.
        os.register_at_fork(after_in_child=journal.forked)
        pid = os.fork()
        if pid == 0:
            try:
                os.fstat(journal.fd if journal.fd >= 0 else write_end)
                code = 1
            except OSError:
                code = 0
            os._exit(code)
        journal.exiting(os.waitpid(pid, 0)[1])

    read_end, write_end = os.pipe()
    pid = worker_writing(write, read_end, write_end)
    try:
        frames = list(supervisor._frames(read_end, pid))
    finally:
        os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    assert frames == [(supervisor.EXIT, struct.pack("<i", 0))]  # the forked one saw no pipe


def test_the_journal_survives_its_supervisor_going_away():
    read_end, write_end = os.pipe()
    os.close(read_end)
    journal = Journal(write_end)
    errors: list = []

    def write():
        try:
            journal.stopped("gone")  # EPIPE: the orphan check ends the worker instead
            journal.started("r1_op1_0_print", 70, b"x" * 100_000)  # more than a pipe holds
            journal.exiting(0)
        except BaseException as err:
            errors.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(5)
    alive = writer.is_alive()
    os.close(write_end)
    assert not alive and errors == []  # no write raised, none blocked


def test_in_flight_marks_functions_by_request_and_sinks_by_slot():
    page = InFlight(functions=2, page=shared_page())
    assert not page.calls_in_hand()
    page.function_begin(1, b'{"func":"Exec","arg":[1]}')
    assert page.function_pending(0) is None and page.calls_in_hand()
    crc = page.function_pending(1)
    assert crc is not None and crc != 0
    page.function_end(1)
    assert page.function_pending(1) is None and not page.calls_in_hand()
    first, second = page.take_slot(), page.take_slot()
    assert first != second and min(first, second) >= 2 * 8  # past the functions' area
    page.page[first] = 1
    page.release_slot(first)
    assert page.page[first] == 0 and page.take_slot() == first
    assert page.take_slot(second) == second  # a replayed sink keeps its slot


def test_a_replayed_sink_keeps_its_slot_and_the_others_stay_free():
    page = InFlight(functions=1, page=shared_page())
    top = len(page.page) - 1
    assert page.take_slot(top - 3) == top - 3
    assert sorted(page.take_slot() for _ in range(4)) == [top - 4, top - 2, top - 1, top]


def test_a_page_without_a_supervisor_has_its_own_slots_until_they_run_out():
    page = InFlight(functions=3)
    slots = {page.take_slot() for _ in range(supervisor.SLOTS)}
    assert len(slots) == supervisor.SLOTS and min(slots) >= 3 * 8
    assert page.take_slot() == -1  # that sink goes unmarked


def test_a_page_too_small_for_the_functions_is_refused_in_a_sentence():
    with pytest.raises(KuiperliteError, match="at most 7 functions; this one has 8"):
        InFlight(functions=8, page=bytearray(64))  # type: ignore[arg-type]


def supervised(case: str) -> subprocess.CompletedProcess:
    """tests/scripts/supervised.py: a fork in a process with no threads, as a plugin's is."""
    return subprocess.run([sys.executable, str(SCRIPTS / "supervised.py"), case],
                          capture_output=True, text=True, timeout=60)


def test_the_page_is_shared_with_a_forked_child():
    done = supervised("page")
    assert done.returncode == 0 and done.stdout == "marked\n", done.stderr


def test_threads_started_before_run_prevent_the_fork():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="mqtt-loop")
    thread.start()
    try:
        assert "mqtt-loop" in supervisor.can_fork()
    finally:
        stop.set()
        thread.join()


def test_a_worker_that_exits_with_a_message_ends_the_supervisor_with_its_code():
    done = supervised("message")
    assert done.returncode == 1 and done.stderr == "bad config\n"


def test_a_worker_that_dies_before_loading_the_plugin_is_not_forked_again():
    assert supervised("dies").returncode == 7
