"""examples/tail: a file-tailing source that resumes after kill -9, with no line lost."""

import os
import signal
import sys
import threading
import time

import pytest

from kuiperlite.testing import memory_state, run_source

from conftest import EXAMPLES, assert_each_once, fresh_worker, pid_alive, unique, wait_until

TAIL = EXAMPLES / "tail" / "tail.py"
sys.path.insert(0, str(TAIL.parent))
import tail  # noqa: E402


def test_tail_in_process_resumes_from_its_state(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\nthree\npart")
    state = memory_state()
    assert run_source(tail.tail, 2, datasource=str(log), state=state) == [
        {"line": "one"}, {"line": "two"}]
    assert run_source(tail.tail, 1, datasource=str(log), config={"field": "text"},
                      state=state) == [{"text": "three"}]
    with open(log, "a") as f:
        f.write("ial\n")
    assert run_source(tail.tail, 1, datasource=str(log), state=state) == [{"line": "partial"}]


def write_lines(path, count, pause=0.002):
    """Append ``count`` lines at a steady pace, as a logging application does."""
    def write():
        with open(path, "a") as f:
            for i in range(count):
                f.write(f"line {i}\n")
                f.flush()
                time.sleep(pause)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("victim", ["worker", "plugin"])
def test_tail_killed_mid_stream_loses_no_line(kuiperlite_host, tmp_path, victim):
    log = tmp_path / "app.log"
    log.touch()
    host = kuiperlite_host(TAIL)
    rule = unique("r")
    writer = write_lines(log, 600)
    src = host.start_source("tail", rule=rule, datasource=str(log), config={"interval": 0.01})
    got = []
    while len(got) < 150:
        got.append(src.recv(timeout=30)[0]["line"])
    assert host.process is not None
    if victim == "worker":
        worker = host.process.worker
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        fresh_worker(host, worker)
    else:
        pid = host.process.pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 30, message="the plugin to die")
        host.restart()
    while not got or got[-1] != "line 599":
        got.append(src.recv(timeout=30)[0]["line"])
    writer.join(30)
    assert_each_once(int(line.split()[1]) for line in got)
    src.stop()
