"""eKuiper's side, for development: the embedded host, ``serve`` and ``check``.

Nothing on the plugin side imports this package: a plugin running under
eKuiper never loads it. Its public API is :class:`Host` and the handles it
returns; they are imported on first use, so that importing one module of
the package (:mod:`kuiperlite.dev.gowire`, say) does not load the host.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .handles import FunctionHandle
    from .handles_sink import SinkHandle
    from .handles_source import SourceHandle
    from .host import Host

__all__ = ["FunctionHandle", "Host", "SinkHandle", "SourceHandle"]

_HOMES = {"Host": ".host", "SourceHandle": ".handles_source", "SinkHandle": ".handles_sink",
          "FunctionHandle": ".handles"}


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
