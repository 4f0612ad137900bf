"""The layers hold: each package imports only the ones below it, no import goes in a
circle, and the plugin side never loads eKuiper's side or the build tools."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import kuiperlite

from conftest import unique

PACKAGE = Path(kuiperlite.__file__).parent
PLUGINS = Path(__file__).parent / "plugins"
ARCHITECTURE = Path(__file__).parents[1] / "docs" / "architecture.md"
# What serving a plugin never loads: the tooling, and what only plugins that
# keep state or take records pay for (the plugin used here does neither).
TOOLING = ("kuiperlite.dev", "kuiperlite.bundle", "kuiperlite.testing",
           "kuiperlite.pytest_plugin", "kuiperlite.declare.docstrings", "http.server", "zipfile",
           "attrs", "sqlite3", "redis")

# The layers of docs/architecture.md: each part of kuiperlite, and the parts
# it may import besides its own.
TOP = ("kuiperlite.errors", "kuiperlite.settings")
LAYERS: dict[str, tuple[str, ...]] = {
    "kuiperlite.errors": (),
    "kuiperlite.settings": (),
    "kuiperlite.declare": TOP,
    "kuiperlite.protocol": (*TOP, "kuiperlite.declare"),
    "kuiperlite.serve": (*TOP, "kuiperlite.declare", "kuiperlite.protocol"),
    "kuiperlite.bundle": (*TOP, "kuiperlite.declare", "kuiperlite.protocol"),
}
# The parts that may import every other: eKuiper's side and the entry points
# ("kuiperlite" is its __init__ alone).
ANYTHING = ("kuiperlite.dev", "kuiperlite", "kuiperlite.__main__", "kuiperlite.cli",
            "kuiperlite.launcher", "kuiperlite.testing", "kuiperlite.pytest_plugin")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, nodes: list[ast.stmt]) -> set[str]:
    """The kuiperlite modules ``nodes`` of the module at ``path`` import.

    ``from package import name`` imports the module ``package.name`` when
    there is one, else ``package`` itself.
    """
    own = module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            subs = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= subs if len(subs) == len(node.names) else subs | {module}
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES} - {module_name(path)}


def top_level_imports(path: Path) -> set[str]:
    """What a module imports when it is imported (not in functions, not for type checkers)."""
    return imported(path, ast.parse(path.read_text()).body)


def every_import(path: Path) -> set[str]:
    """What a module imports anywhere: at the top, in functions, and for type checkers.

    A package's ``__init__``, which Python runs before a module of the
    package, is not counted unless the module imports it by name.
    """
    return imported(path, [n for n in ast.walk(ast.parse(path.read_text()))
                           if isinstance(n, (ast.Import, ast.ImportFrom))])


def part_of(name: str) -> str:
    """The part a module belongs to: its own name, or the longest package holding
    it ("" when it has none)."""
    return max((part for part in (*LAYERS, *ANYTHING) if name == part
                or part != "kuiperlite" and name.startswith(part + ".")), key=len, default="")


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in MODULES:
            todo.extend(top_level_imports(MODULES[name]))
    return seen


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (``[a, b, a]``), or ``[]`` when it has none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str]:
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return []
        path.append(name)
        for other in sorted(graph[name]):
            found = visit(other)
            if found:
                return found
        path.pop()
        done.add(name)
        return []

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return []


def test_every_module_belongs_to_a_part():
    lost = [name for name in MODULES if not part_of(name)]
    assert not lost, f"give these a place in LAYERS or ANYTHING (and the docs): {lost}"


def test_each_part_imports_only_the_layers_below_it():
    wrong = []
    for name, path in MODULES.items():
        part = part_of(name)
        if part in ANYTHING:
            continue
        allowed = (part, *LAYERS[part])
        wrong += [f"{name} imports {other} ({part} may import only {', '.join(allowed)})"
                  for other in sorted(every_import(path)) if part_of(other) not in allowed]
    assert not wrong, "\n".join(wrong)


def test_no_import_goes_in_a_circle():
    graph = {name: every_import(path) for name, path in MODULES.items()}
    assert circle(graph) == []


def test_a_circle_is_found_however_it_is_imported():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from .declare import kinds\n"
              "def f():\n    from .serve.stores import open_store\n")
    tree = ast.parse(source)
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imported(PACKAGE / "cli.py", nodes) == {"kuiperlite.declare.kinds",
                                                  "kuiperlite.serve.stores"}


def private_uses(tree: ast.AST) -> list[str]:
    """pynng's private names (``_x``, and its C library ``lib`` and ``ffi``) and
    ``sys.meta_path``, wherever ``tree`` reaches them."""
    def private(name: str) -> bool:
        dunder = name.startswith("__") and name.endswith("__")
        return (name.startswith("_") and not dunder) or name in ("lib", "ffi")

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                "pynng", "sys"):
            parts = node.module.split(".")
            names = [*parts[1:], *(alias.name for alias in node.names)]
            if parts[0] == "pynng" and any(private(n) for n in names) or \
                    parts[0] == "sys" and "meta_path" in names:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.startswith("pynng.")
                      and any(private(n) for n in alias.name.split(".")[1:])]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id == "pynng" and private(node.attr)
                or node.value.id == "sys" and node.attr == "meta_path"):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_reaches_into_pynng_or_the_import_system():
    found = [f"{name}, {use}" for name, path in MODULES.items()
             for use in private_uses(ast.parse(path.read_text()))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    "from pynng import _nng", "from pynng._nng import lib", "import pynng._aio",
    "from pynng import lib", "x = pynng._nng.lib", "pynng.ffi.new('int *')",
    "import sys\nsys.meta_path.insert(0, finder)", "from sys import meta_path"])
def test_a_reach_into_pynng_or_the_import_system_is_found(source):
    assert private_uses(ast.parse(source))


def test_pynng_s_public_names_are_not_a_reach():
    assert private_uses(ast.parse("import pynng\nfrom pynng import Push0, Timeout\n"
                                  "pynng.__version__\npynng.Pull0()\nimport sys\nsys.path")) == []


@pytest.mark.parametrize("start", ["kuiperlite", "kuiperlite.serve.runtime", "kuiperlite.cli",
                                   "kuiperlite.launcher"])
def test_the_plugin_side_imports_no_tooling(start):
    loaded = closure(start)
    assert not [name for name in loaded if name.startswith(TOOLING)]


def test_a_served_plugin_loads_no_tooling(kuiperlite_host, tmp_path):
    path = tmp_path / f"{unique('loaded')}.py"
    shutil.copy(PLUGINS / "loaded.py", path)
    host = kuiperlite_host(path)
    with host.function("loaded") as fn:
        assert "kuiperlite.serve.runtime" in fn.call("kuiperlite")
        for prefix in TOOLING:
            assert fn.call(prefix) == [], prefix
        # pynng through its public API: its own import brings asyncio and ssl,
        # which kuiperlite never uses itself (docs/architecture.md says the cost).
        assert "pynng" in fn.call("pynng")


def test_the_architecture_page_names_every_module():
    text = ARCHITECTURE.read_text()
    missing = [name for name, path in MODULES.items()
               if path.name != "__init__.py" and f"`{path.relative_to(PACKAGE)}`" not in text]
    assert not missing, f"docs/architecture.md does not say what these hold: {missing}"
