import subprocess
import sys

import pytest

import kuiperlite
from kuiperlite import About, DefinitionError, PluginError
from kuiperlite.declare.kinds import FUNCTION, SINK
from kuiperlite.declare.plugin import collect, load, summary


def test_load_collects_symbols_in_definition_order(write_plugin):
    path = write_plugin('''
        """A test plugin.

        More words.
        """
        from kuiperlite import function, sink, source

        @source
        def b_source(ctx):
            yield {}

        @sink("out")
        def a_sink(data):
            pass

        @function
        def f(x):
            return x

        alias = f  # the same function twice is one symbol
    ''')
    plugin = load(str(path))
    assert plugin.name == path.stem
    assert [s.name for s in plugin.symbols] == ["b_source", "out", "f"]
    assert list(plugin.sources) == ["b_source"]
    assert plugin.get(SINK, "out").func.__name__ == "a_sink"
    assert plugin.get(FUNCTION, "missing") is None
    assert plugin.about.description == "A test plugin."
    assert summary(plugin) == "sources: b_source; sinks: out; functions: f"


def test_about_declares_identity(write_plugin):
    path = write_plugin('''
        import kuiperlite
        ABOUT = kuiperlite.About(name="mine", version="v2.0.0", author="Ann",
                                 description="Explicit.")

        @kuiperlite.function
        def f(x):
            return x
    ''')
    plugin = load(str(path))
    assert plugin.name == "mine"
    assert plugin.about == About(name="mine", version="v2.0.0", author="Ann",
                                 description="Explicit.")
    assert load(str(path), name="override").name == "override"


def test_sibling_modules_import_as_under_ekuiper(write_plugin, tmp_path):
    (tmp_path / "helpers_mod.py").write_text("def twice(x):\n    return x * 2\n")
    path = write_plugin('''
        from helpers_mod import twice
        from kuiperlite import function

        @function
        def double(x: int) -> int:
            return twice(x)
    ''')
    plugin = load(str(path))
    assert plugin.functions["double"].func(4) == 8


def test_module_names_load_too(write_plugin, monkeypatch):
    path = write_plugin('''
        from kuiperlite import function

        @function
        def f(x):
            return x
    ''')
    monkeypatch.syspath_prepend(str(path.parent))
    assert load(path.stem).name == path.stem
    sys.modules.pop(path.stem, None)


def test_duplicate_names_name_both_definitions(write_plugin):
    path = write_plugin('''
        from kuiperlite import sink

        @sink("out")
        def one(data):
            pass

        @sink("out")
        def two(data):
            pass
    ''')
    with pytest.raises(DefinitionError) as info:
        load(str(path))
    assert info.value.where.startswith(f"sink 'out' (two at {path.name}:")
    assert f"one at {path.name}" in info.value.problem


def test_same_name_in_different_kinds_is_fine(write_plugin):
    path = write_plugin('''
        from kuiperlite import sink, source

        @source("io")
        def a(ctx):
            yield {}

        @sink("io")
        def b(data):
            pass
    ''')
    assert len(load(str(path)).symbols) == 2


@pytest.mark.parametrize(("code", "noun"), [
    ("x = 1\n", "symbols"),
    ("import kuiperlite\nA = kuiperlite.About()\nB = kuiperlite.About()\n", "About"),
    ("import kuiperlite\nA = kuiperlite.About(name='bad name')\n"
     "@kuiperlite.function\ndef f(x):\n    return x\n", "'bad name'"),
    ("import kuiperlite\nA = kuiperlite.About(name='trailing\\n')\n"
     "@kuiperlite.function\ndef f(x):\n    return x\n", "'trailing\\n'"),
    ("raise RuntimeError('boom')\n", "boom"),
    ("def broken(:\n", "SyntaxError"),
])
def test_plugin_errors(write_plugin, code, noun):
    path = write_plugin(code, main=False)
    with pytest.raises(PluginError) as info:
        load(str(path))
    assert noun in str(info.value)


def test_collect_takes_a_module_object():
    module = type(sys)("inline")
    module.f = kuiperlite.function(lambda x: x)  # lambdas are named "<lambda>"
    with pytest.raises(DefinitionError, match="'<lambda>'"):
        collect(module)


def test_importing_kuiperlite_loads_neither_sockets_nor_asyncio(tmp_path):
    code = ("import sys, kuiperlite\n"
            "from kuiperlite import source, sink, function, Context, Record, About\n"
            "heavy = [m for m in ('pynng', 'asyncio', 'attrs', 'kuiperlite.serve.runtime',\n"
            "                     'kuiperlite.dev') if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
