"""The layers hold: the plugin side never loads eKuiper's side or the build tools."""

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
TOOLING = ("kuiperlite.dev", "kuiperlite.bundle.metadata", "kuiperlite.bundle.package",
           "kuiperlite.testing", "kuiperlite.declare.docstrings", "http.server", "zipfile", "attrs",
           "sqlite3", "redis")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """The kuiperlite modules a module imports when it is imported (not in functions)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[:len(package) - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


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
