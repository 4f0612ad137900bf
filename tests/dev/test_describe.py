"""``python -m kuiperlite.dev.describe FILE``: how serve reads a plugin's symbols."""

import json
import subprocess
import sys


def describe(path, *more):
    return subprocess.run([sys.executable, "-m", "kuiperlite.dev.describe", str(path), *more],
                          cwd=str(path.parent), capture_output=True, text=True, timeout=60)


def test_it_prints_the_name_and_symbols_as_one_json_line(copy_plugin):
    path = copy_plugin("described")
    out = describe(path)
    assert out.returncode == 0, out.stderr
    described = json.loads(out.stdout)
    shout = described.pop("function_metadata")
    assert described == {"name": path.stem, "version": "v1.0.0", "sources": ["counter"],
                         "sinks": ["keep"], "functions": ["shout"]}
    assert [f["name"] for meta in shout for f in meta["functions"]] == ["shout"]


def test_a_file_that_does_not_load_is_its_error_and_exit_code_2(write_plugin):
    out = describe(write_plugin("import no_such_module_anywhere\n", main=False))
    assert out.returncode == 2 and out.stdout == ""
    assert "No module named 'no_such_module_anywhere'" in out.stderr


def test_it_takes_exactly_one_file(copy_plugin):
    out = describe(copy_plugin("described"), "extra")
    assert out.returncode == 2
    assert out.stderr.strip() == "usage: python -m kuiperlite.dev.describe FILE"
