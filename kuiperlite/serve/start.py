"""How a plugin is served: in a worker under the supervisor, or alone, decided here only.

A plugin runs supervised (:mod:`kuiperlite.serve.supervisor`) unless
``KUIPERLITE_SUPERVISE=0``, the platform cannot fork, or threads already
run (a fork keeps none of them). Supervised, the worker is forked before
the runtime is imported, and before the plugin is when it is not loaded
yet (``python -m kuiperlite run``): the supervisor then holds little.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Callable, NoReturn, Optional

from .. import settings
from ..errors import DefinitionError, PluginError
from . import supervisor

if TYPE_CHECKING:
    import mmap

    from ..declare.plugin import Plugin
    from .supervisor import Journal, Replay


def why_alone() -> Optional[str]:
    """None when the plugin can run supervised, else why it runs alone."""
    if not settings.SUPERVISE.read():
        return f"{settings.SUPERVISE.name}=0"
    return supervisor.can_fork()


def serve_plugin(load: Callable[[], Plugin],
                 refused: Optional[Callable[[Exception], int]] = None) -> NoReturn:
    """Serve the plugin ``load`` gives, supervised where it can be, then exit the process.

    Args:
        load: the plugin; supervised, it is called in the worker.
        refused: says why ``load`` refused a plugin (a DefinitionError or a
            PluginError) and gives the exit code; without it, the error
            propagates.
    """
    why = why_alone()
    if why is not None:
        plugin = _load(load, refused)
        supervisor.exit_now(plugin if isinstance(plugin, int) else serve_alone(plugin, why))
    host = os.getppid()

    def work(journal: Journal, page: mmap.mmap, replay: list[Replay],
             serving: Callable[[], None]) -> int:
        plugin = _load(load, refused)
        if isinstance(plugin, int):
            return plugin
        return serve_worker(plugin, host, journal, page, replay, serving)

    supervisor.exit_now(supervisor.supervise(work))


def _load(load: Callable[[], Plugin],
          refused: Optional[Callable[[Exception], int]]) -> Plugin | int:
    """The plugin, or the exit code ``refused`` gives for it."""
    try:
        return load()
    except (DefinitionError, PluginError) as err:
        if refused is None:
            raise
        return refused(err)


def serve_worker(plugin: Plugin, host: int, journal: Journal, page: mmap.mmap,
                 replay: list[Replay], serving: Callable[[], None]) -> int:
    """Serve a plugin in a supervised worker (see :func:`supervisor.supervise`); the exit code.

    Args:
        host: the pid of the process that started the supervisor (eKuiper).
    """
    from ..errors import KuiperliteError
    from ..protocol import wire
    from . import logs
    from .runtime import Runtime, Tuning, Worker
    from .supervisor import InFlight

    logs.configure(plugin.name)
    journal.named(plugin.name)
    logs.log.debug("eKuiper portable config: %s", wire.parse_portable_config(sys.argv))
    try:
        inflight = InFlight(len(plugin.functions), page)
    except KuiperliteError as err:
        logs.log.error("%s", err)
        return 2
    return Runtime(plugin, Tuning.read(), Worker(journal, inflight, replay, serving, host)).serve()


def serve_alone(plugin: Plugin, why: str) -> int:
    """Serve a plugin in this process, unsupervised because of ``why``; the exit code."""
    from ..protocol import wire
    from . import logs
    from .runtime import Runtime, Tuning

    logs.configure(plugin.name)
    logs.log.debug("eKuiper portable config: %s", wire.parse_portable_config(sys.argv))
    logs.log.info("plugin %s runs unsupervised: %s", plugin.name, why)
    return Runtime(plugin, Tuning.read()).serve()


def run(plugin: Optional[Plugin] = None) -> None:
    """Serve the program's own symbols, as eKuiper's executable.

    Put ``if __name__ == "__main__": kuiperlite.run()`` at the end of the
    plugin file; eKuiper starts it with ``python -u file.py '<config>'``.
    Like ``unittest.main()``, it serves the ``__main__`` module: the file run
    as the program. A packaged plugin needs no such line (its launcher
    serves the file), nor does ``python -m kuiperlite run FILE``; there, a
    ``run()`` line met while the file is imported returns at once, and the
    file is served once imported. Otherwise it never returns.

    Args:
        plugin: serve this plugin instead of the ``__main__`` module.
    """
    from ..declare.plugin import collect, importing
    from ..errors import NoSymbols

    if plugin is None and importing():
        return
    if plugin is None:
        try:
            plugin = collect(sys.modules["__main__"])
        except (DefinitionError, PluginError) as err:
            hint = (" (kuiperlite.run() serves the file run as the program: call it under "
                    "`if __name__ == \"__main__\":`)") if isinstance(err, NoSymbols) else ""
            print(f"kuiperlite: {err}{hint}", file=sys.stderr, flush=True)
            os._exit(2)
    served = plugin
    serve_plugin(lambda: served)
