"""The plugin's output: whole lines from many threads, and the log file under conda."""

import io
import logging
import tempfile
import threading

import pytest

from kuiperlite.serve import logs


def test_lines_from_many_threads_are_written_whole():
    out = io.StringIO()
    writer = logs.LineWriter(out)

    def talk(name):
        for i in range(300):
            writer.write(f"{name} ")  # one line in three pieces, as print writes it
            writer.write(str(i))
            writer.write("\n")

    threads = [threading.Thread(target=talk, args=(n,)) for n in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{n} {i}" for n in "abcd" for i in range(300))


def test_flush_sends_an_unfinished_line():
    out = io.StringIO()
    writer = logs.LineWriter(out)
    writer.write("progress: 50%")
    assert out.getvalue() == ""
    writer.flush()
    assert out.getvalue() == "progress: 50%"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"KUIPERLITE_LOG_FILE": "/x/p.log"}, "/x/p.log"),
    ({"KUIPERLITE_LOG_FILE": "", "CONDA_PREFIX": "/opt/conda/envs/e"}, None),
    ({"CONDA_DEFAULT_ENV": "e"}, "TMP/plugin_demo.log"),
])
def test_the_log_file_is_named_or_follows_conda(monkeypatch, tmp_path, env, expected):
    for name in ("KUIPERLITE_LOG_FILE", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "KuiperBaseKey"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: "TMP")
    monkeypatch.chdir(tmp_path)
    assert logs.log_file("demo") == expected


def test_under_conda_the_file_goes_to_ekuipers_log_folder(monkeypatch, tmp_path):
    folder = tmp_path / "plugins" / "portable" / "demo"
    folder.mkdir(parents=True)
    (tmp_path / "log").mkdir()
    monkeypatch.delenv("KUIPERLITE_LOG_FILE", raising=False)
    monkeypatch.delenv("KuiperBaseKey", raising=False)
    monkeypatch.setenv("CONDA_PREFIX", "/opt/conda/envs/e")
    monkeypatch.chdir(folder)
    assert logs.log_file("demo") == str(tmp_path / "log" / "plugin_demo.log")


def test_a_bad_log_level_is_a_warning_not_a_crash(monkeypatch, caplog):
    monkeypatch.setenv("KUIPERLITE_LOG_LEVEL", "LOUD")
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stdout, stderr = logs.sys.stdout, logs.sys.stderr
    try:
        logs.configure("demo")
        assert root.level == logging.INFO
        assert "KUIPERLITE_LOG_LEVEL='LOUD'" in caplog.text
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        logs.sys.stdout, logs.sys.stderr = stdout, stderr
