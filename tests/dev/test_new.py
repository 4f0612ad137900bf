"""``new``: a plugin folder whose tests pass as generated, written without overwriting."""

import re
import shlex
import subprocess
import sys

from conftest import unique


def kuiperlite(*args, cwd):
    return subprocess.run([sys.executable, "-m", "kuiperlite", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_new_plugin_passes_its_tests_and_the_linter(tmp_path):
    name = unique("n")  # the plugin name names its control channel
    out = kuiperlite("new", name, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{name}/{name}.py", f"{name}/test_{name}.py",
                                       f"{name}/README.md"]
    folder = tmp_path / name
    code = (folder / f"{name}.py").read_text()
    assert code.endswith('\n\nif __name__ == "__main__":\n    kuiperlite.run()\n')
    for symbol in ("@source", "@sink", "@function", f"def {name}_ticks("):
        assert symbol in code
    readme = (folder / "README.md").read_text()
    assert f"# {name}" in readme
    command = shlex.split(re.search(r"Test: `([^`]+)`", readme).group(1))
    assert command == [sys.executable, "-m", "pytest"]  # the python that has kuiperlite
    assert f"`{shlex.quote(sys.executable)} -m pip install pytest`" in readme
    tests = subprocess.run([*command, "-q", "-p", "no:cacheprovider"],
                           cwd=folder, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "."],
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout
    out = kuiperlite("meta", f"{name}.py", "-o", "meta", cwd=folder)
    assert out.returncode == 0, out.stderr


def test_new_never_overwrites(tmp_path):
    name = unique("n")
    (tmp_path / name).mkdir()
    (tmp_path / name / "notes.txt").write_text("mine")
    out = kuiperlite("new", name, cwd=tmp_path)
    assert (out.returncode, out.stderr) == (
        1, f"kuiperlite: {name} exists already; new never overwrites: choose another name or "
           "remove it\n")
    assert [p.name for p in (tmp_path / name).iterdir()] == ["notes.txt"]


def test_a_name_that_is_no_module_name_is_refused(tmp_path):
    out = kuiperlite("new", "my-plugin", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (
        1, "kuiperlite: 'my-plugin' cannot name a plugin: use a letter, then letters, digits "
           "and _ (it is the module's name and its symbols' prefix)\n")
    assert list(tmp_path.iterdir()) == []
