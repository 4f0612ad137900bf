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
    "About": "plugin", "Plugin": "plugin", "collect": "plugin", "load": "plugin",
    "Context": "context", "Record": "context", "Dynamic": "hints",
    "ArgumentError": "errors", "ConfigError": "errors", "DefinitionError": "errors",
    "KuiperliteError": "errors", "PluginError": "errors", "StateError": "errors",
    "Stopped": "errors", "State": "state",
    "source": "symbols", "sink": "symbols", "function": "symbols", "Backoff": "symbols",
    "connection": "connections",
    "run": "runtime",
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
    from .connections import connection as connection
    from .context import Context as Context
    from .context import Record as Record
    from .errors import ArgumentError as ArgumentError
    from .errors import ConfigError as ConfigError
    from .errors import DefinitionError as DefinitionError
    from .errors import KuiperliteError as KuiperliteError
    from .errors import PluginError as PluginError
    from .errors import StateError as StateError
    from .errors import Stopped as Stopped
    from .hints import Dynamic as Dynamic
    from .plugin import About as About
    from .plugin import Plugin as Plugin
    from .plugin import collect as collect
    from .plugin import load as load
    from .runtime import run as run
    from .state import State as State
    from .symbols import Backoff as Backoff
    from .symbols import function as function
    from .symbols import sink as sink
    from .symbols import source as source
