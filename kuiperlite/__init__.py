"""kuiperlite: eKuiper portable plugins as plain decorated Python functions."""

from .context import Context, Record
from .errors import (
    ArgumentError,
    ConfigError,
    DefinitionError,
    KuiperliteError,
    PluginError,
    Stopped,
)
from .plugin import About, Plugin, collect, load
from .runtime import run
from .symbols import function, sink, source

__version__ = "0.1.0"

__all__ = [
    "About",
    "ArgumentError",
    "ConfigError",
    "Context",
    "DefinitionError",
    "KuiperliteError",
    "Plugin",
    "PluginError",
    "Record",
    "Stopped",
    "collect",
    "function",
    "load",
    "run",
    "sink",
    "source",
]
