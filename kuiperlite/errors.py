"""Exception classes. Each message is one sentence a plugin author can act on."""

from __future__ import annotations


def error_text(err: BaseException) -> str:
    """An exception as one line for eKuiper: ``ValueError: bad input``."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class KuiperliteError(Exception):
    """Base class of every error kuiperlite raises on purpose."""


class DefinitionError(KuiperliteError):
    """A decorated function cannot become an eKuiper symbol.

    Raised at collection time, naming the function, its file and line, and
    the offending parameter where there is one.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class PluginError(KuiperliteError):
    """A plugin file cannot be loaded or holds no usable symbols."""


class NoSymbols(PluginError):
    """A module defines no symbols: nothing in it is marked @source, @sink or @function."""


class ConfigError(KuiperliteError, ValueError):
    """A start command's config does not fit the symbol's keyword-only parameters."""


class ArgumentError(KuiperliteError, ValueError):
    """SQL arguments do not fit a function's positional parameters."""


class ProtocolError(KuiperliteError):
    """A message on the wire is not what the protocol allows."""


class EncodeError(KuiperliteError, ValueError):
    """A value produced by user code cannot be carried as JSON."""


class HostError(KuiperliteError):
    """The embedded host got an error answer or lost its plugin."""


class Stopped(BaseException):
    """Raised inside a source by ``ctx.emit`` once its rule is stopping.

    It derives from BaseException, like GeneratorExit, so that a broad
    ``except Exception`` in user code does not swallow the stop.
    """


class StateError(KuiperliteError, ValueError):
    """A state value or key is not what a store keeps, or the store cannot be used."""
