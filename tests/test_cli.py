"""``python -m kuiperlite``: run, and clear errors for bad input."""

import shutil
import subprocess
import sys
from pathlib import Path

from kuiperlite.dev import Host

from conftest import EXAMPLES, ROOT, unique


def kuiperlite(*args, cwd=ROOT, timeout=30):
    return subprocess.run([sys.executable, "-m", "kuiperlite", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def serve(args, name, cwd=ROOT):
    host = Host(name)
    proc = subprocess.Popen([sys.executable, "-m", "kuiperlite", "run", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return host, proc


def stop(host, proc):
    host.close()
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out


def test_run_serves_a_plugin_file():
    host, proc = serve(["examples/pysam/pysam.py"], "pysam")
    try:
        host.wait_handshake(30)
        with host.function("revert") as fn:
            assert fn.call("kuiper") == "repiuk"
    finally:
        out = stop(host, proc)
    assert "plugin pysam (pid" in out and "functions: revert" in out
    assert proc.returncode == 0


def test_run_takes_a_module_name_and_a_plugin_name():
    name = unique("cli")
    host, proc = serve(["pysam", "--name", name], name, cwd=EXAMPLES / "pysam")
    try:
        host.wait_handshake(30)
        with host.start_source("pyjson", rule=unique("r"), config={"interval": 0.01}) as src:
            assert src.recv()[0] == {"name": "pyjson", "value": 2021}
    finally:
        stop(host, proc)


def test_run_as_ekuiper_runs_it_loads_no_argparse_and_the_worker_imports_the_plugin(
        kuiperlite_host, tmp_path):
    path = tmp_path / f"{unique('loaded')}.py"
    shutil.copy(Path(__file__).parent / "plugins" / "loaded.py", path)
    host = kuiperlite_host(path)
    with host.function("loaded") as fn:
        assert fn.call("argparse") == []
    supervisor = host.process.pid
    with open(f"/proc/{supervisor}/maps") as maps:  # the supervisor never loaded pynng
        assert "_nng" not in maps.read()


def test_run_missing_file():
    out = kuiperlite("run", "nowhere/missing.py")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "nowhere/missing.py" in out.stderr


def test_run_unknown_module():
    out = kuiperlite("run", "no_such_plugin_module")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "'no_such_plugin_module'" in out.stderr


def test_run_import_error_shows_the_users_traceback(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import kuiperlite\n\n\ndef helper():\n    return 1 / 0\n\n\nhelper()\n")
    out = kuiperlite("run", str(path))
    assert out.returncode == 2
    first, *rest = out.stderr.splitlines()
    assert first.startswith(f"kuiperlite: {path} ")
    assert 'broken.py", line 5, in helper' in out.stderr


def test_run_definition_error(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from kuiperlite import function\n\n@function\ndef f(x, *, y):\n"
                    "    return x\n")
    out = kuiperlite("run", str(path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "(bad.py:3)" in out.stderr


def test_usage():
    out = kuiperlite()
    assert out.returncode == 2
    assert "usage: python -m kuiperlite" in out.stderr
    assert "run" in kuiperlite("--help").stdout


def test_state_lists_and_clears_what_a_plugin_keeps(state_place):
    from kuiperlite.declare.kinds import SINK, SOURCE
    from kuiperlite.declare.state import Scope, State
    from kuiperlite.serve.stores import Stores, open_store

    name = unique("p")
    where = ["--dir", state_place["directory"]] if "directory" in state_place else \
        ["--url", state_place["url"]]
    assert kuiperlite("state", "list", name, *where).stdout.startswith(
        f"no state kept for plugin {name!r}")
    stores = Stores(lambda: open_store(name, **state_place))
    State(stores, Scope.of_instance(SOURCE, "numbers", "r1", "op1", 0)).put("next", 20)
    State(stores, Scope.of_instance(SINK, "tally", "r2", "op1", 0)).put("kept", {"a": [1]})
    stores.close()
    listed = kuiperlite("state", "list", name, *where)
    assert listed.stdout.splitlines() == [
        "sink 'tally' of rule r2/op1/0: kept = {\"a\":[1]}",
        "source 'numbers' of rule r1/op1/0: next = 20"]
    assert kuiperlite("state", "list", name, "--rule", "r1", *where).stdout.splitlines() == [
        "source 'numbers' of rule r1/op1/0: next = 20"]
    refused = kuiperlite("state", "clear", name, *where)
    assert refused.returncode == 2 and "--all" in refused.stderr
    cleared = kuiperlite("state", "clear", name, "--rule", "r1", *where)
    assert cleared.returncode == 0 and cleared.stdout.startswith(
        f"cleared 1 keys of plugin {name!r} in ")
    assert kuiperlite("state", "list", name, *where).stdout.splitlines() == [
        "sink 'tally' of rule r2/op1/0: kept = {\"a\":[1]}"]
    assert kuiperlite("state", "clear", name, "--all", *where).stdout.startswith("cleared 1 ")


def test_state_of_an_unusable_store_is_one_sentence(tmp_path):
    name = unique("p")
    (tmp_path / f"{name}.sqlite3").write_text("not a database" * 100)
    out = kuiperlite("state", "list", name, "--dir", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"kuiperlite: The state store {tmp_path}/{name}.sqlite3 cannot "
                                 "be used (file is not a database)")
