"""The suite's own guard: a test that hangs anywhere fails the run, never holds it."""

import subprocess
import sys
import textwrap
import time

from conftest import ROOT

HANGS_IN_C = textwrap.dedent('''
    import ctypes


    def test_hangs_inside_c():
        # A mutex locked twice by one thread: no signal or exception breaks the wait.
        libc = ctypes.CDLL(None)
        mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
        libc.pthread_mutex_lock(mutex)
        libc.pthread_mutex_lock(mutex)
''')


def test_a_test_that_hangs_inside_c_fails_the_run_within_its_timeout(tmp_path):
    (tmp_path / "test_hang.py").write_text(HANGS_IN_C)
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
         str(tmp_path), "-o", "timeout=2", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert time.monotonic() - began < 60
    assert run.returncode != 0
    assert "Timeout" in run.stdout + run.stderr
