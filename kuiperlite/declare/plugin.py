"""Plugin identity (:class:`About`) and collection of a file's symbols and connections
(:class:`Plugin`)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
from types import ModuleType
from typing import NamedTuple, Optional

from ..errors import DefinitionError, NoSymbols, PluginError
from .connections import ConnectionSpec, declared
from .kinds import FUNCTION, KINDS, SINK, SOURCE, Kind
from .symbols import AnySpec, marks_of, read

PLUGIN_NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]+\Z")  # \Z: no trailing newline


class About(NamedTuple):
    """A plugin's identity, declared once per file as a module-level value.

    ``ABOUT = kuiperlite.About(version="v1.0.0", author="EMQ")``. Every field
    is optional; the description defaults to the module docstring.

    Attributes:
        name: the plugin name; defaults to the file's stem.
        version: the plugin version, e.g. ``v1.0.0``.
        author: the author's name.
        email: the author's email.
        company: the author's company.
        website: the author's website.
        help_url: where users find documentation.
        description: what the plugin does.
        conda_env: run the plugin in this conda environment.
    """

    name: Optional[str] = None
    version: str = "v1.0.0"
    author: str = ""
    email: str = ""
    company: str = ""
    website: str = ""
    help_url: str = ""
    description: Optional[str] = None
    conda_env: Optional[str] = None


class Plugin(NamedTuple):
    """A plugin: its name, identity, symbols and connections, collected from one module."""

    name: str
    about: About
    symbols: tuple[AnySpec, ...]
    module: Optional[ModuleType] = None
    path: Optional[str] = None
    connections: tuple[ConnectionSpec, ...] = ()

    def of_kind(self, kind: Kind) -> dict[str, AnySpec]:
        """The symbols of one kind by name, in the order the module defines them."""
        return {s.name: s for s in self.symbols if s.kind == kind}

    @property
    def sources(self) -> dict[str, AnySpec]:
        return self.of_kind(SOURCE)

    @property
    def sinks(self) -> dict[str, AnySpec]:
        return self.of_kind(SINK)

    @property
    def functions(self) -> dict[str, AnySpec]:
        return self.of_kind(FUNCTION)

    def get(self, kind: Kind, name: str) -> Optional[AnySpec]:
        """The symbol of a kind and name, or None."""
        for symbol in self.symbols:
            if symbol.kind == kind and symbol.name == name:
                return symbol
        return None


def collect(module: ModuleType, name: Optional[str] = None) -> Plugin:
    """Collect and check the symbols, connections and identity a module defines.

    Args:
        module: the plugin's module.
        name: overrides the plugin name (else ``About.name``, else the file's stem).

    Raises:
        DefinitionError: a marked function cannot be a symbol or a connection.
        PluginError: the module has no symbols, two About values, or a bad name.
    """
    where = _module_where(module)
    abouts = [v for v in vars(module).values() if isinstance(v, About)]
    if len(abouts) > 1:
        raise PluginError(f"{where} declares About {len(abouts)} times; declare it once.")
    about = abouts[0] if abouts else About()
    if about.description is None:
        about = about._replace(description=(inspect.getdoc(module) or "").split("\n\n")[0])
    plugin_name = name or about.name or _default_name(module)
    if not PLUGIN_NAME_PATTERN.match(plugin_name):
        raise PluginError(
            f"The plugin name {plugin_name!r} ({where}) may hold only letters, digits, _ and -."
        )

    connections = declared(vars(module))
    symbols: list[AnySpec] = []
    seen: set[int] = set()
    for value in list(vars(module).values()):
        marks = marks_of(value)
        if not marks or id(value) in seen:
            continue
        seen.add(id(value))
        for mark in marks:
            symbol = read(value, mark, connections)
            for other in symbols:
                if other.kind == symbol.kind and other.name == symbol.name:
                    raise DefinitionError(symbol.where,
                                          f"the name is already used by {other.where}")
            symbols.append(symbol)
    if not symbols:
        raise NoSymbols(
            f"{where} defines no symbols; mark functions with @source, @sink or @function."
        )
    return Plugin(plugin_name, about, tuple(symbols), module, getattr(module, "__file__", None),
                  tuple(connections.values()))


def load(target: str, name: Optional[str] = None) -> Plugin:
    """Import a plugin from a ``.py`` path or a module name and collect it.

    The file's folder goes first on ``sys.path`` so that its sibling modules
    import as they do when eKuiper runs the file.

    Raises:
        PluginError: the file is missing or fails to import (the cause is chained).
    """
    return collect(import_target(target), name)


_importing: list[str] = []


def importing() -> bool:
    """Whether a plugin is being imported by :func:`load`, to be served after."""
    return bool(_importing)


def import_target(target: str) -> ModuleType:
    """Import a ``.py`` file or a dotted module name, as ``load`` does."""
    _importing.append(target)
    try:
        return _import_target(target)
    finally:
        _importing.pop()


def _import_target(target: str) -> ModuleType:
    if target.endswith(".py") or os.sep in target:
        return _import_file(target)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name == target.split(".")[0]:
            raise PluginError(
                f"{target!r} is neither a .py file nor an importable module.") from err
        raise PluginError(f"{target} failed to import: {type(err).__name__}: {err}") from err
    except Exception as err:
        raise PluginError(f"{target} failed to import: {type(err).__name__}: {err}") from err


def _import_file(target: str) -> ModuleType:
    path = os.path.abspath(target)
    if not os.path.isfile(path):
        raise PluginError(f"{target}: no such file.")
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{target} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(module_name, None)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise PluginError(f"{target} failed to import: {type(err).__name__}: {err}") from err
    return module


def _default_name(module: ModuleType) -> str:
    file: Optional[str] = getattr(module, "__file__", None)
    if file:
        return os.path.splitext(os.path.basename(file))[0]
    return module.__name__.rsplit(".", 1)[-1]


def _module_where(module: ModuleType) -> str:
    file = getattr(module, "__file__", None)
    return os.path.basename(file) if file else module.__name__


def summary(plugin: Plugin) -> str:
    """One line per symbol kind, for logs: ``sources: pyjson; sinks: print``."""
    parts = []
    for kind in KINDS:
        names = list(plugin.of_kind(kind))
        if names:
            parts.append(f"{kind.folder}: {', '.join(names)}")
    return "; ".join(parts)
