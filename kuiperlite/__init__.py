"""kuiperlite: eKuiper portable plugins as plain decorated Python functions.

Everything public is importable from here. Each name is loaded on first use
(PEP 562), so ``import kuiperlite`` costs nothing, and a plugin that only
declares its symbols never loads the runtime's sockets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "About": "declare.plugin", "Plugin": "declare.plugin", "collect": "declare.plugin",
    "load": "declare.plugin", "Context": "declare.context", "Record": "declare.context",
    "Dynamic": "declare.hints",
    "ArgumentError": "errors", "ConfigError": "errors", "DefinitionError": "errors",
    "KuiperliteError": "errors", "PluginError": "errors", "StateError": "errors",
    "Stopped": "errors", "State": "declare.state",
    "source": "declare.marks", "sink": "declare.marks", "function": "declare.marks",
    "Backoff": "declare.marks", "connection": "declare.connections",
    "run": "serve.start",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kuiperlite' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # the next lookup finds it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and editors see
    from .declare.connections import connection as connection
    from .declare.context import Context as Context
    from .declare.context import Record as Record
    from .declare.hints import Dynamic as Dynamic
    from .declare.marks import Backoff as Backoff
    from .declare.marks import function as function
    from .declare.marks import sink as sink
    from .declare.marks import source as source
    from .declare.plugin import About as About
    from .declare.plugin import Plugin as Plugin
    from .declare.plugin import collect as collect
    from .declare.plugin import load as load
    from .declare.state import State as State
    from .errors import ArgumentError as ArgumentError
    from .errors import ConfigError as ConfigError
    from .errors import DefinitionError as DefinitionError
    from .errors import KuiperliteError as KuiperliteError
    from .errors import PluginError as PluginError
    from .errors import StateError as StateError
    from .errors import Stopped as Stopped
    from .serve.start import run as run
