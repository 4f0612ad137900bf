"""Symbol adapters: user functions driven as eKuiper sources, sinks and functions.

Adapters know how to call user code (plain, generator, async or async
generator) and what its results mean, but nothing about sockets: the runtime
hands them bytes and a ``deliver`` callable, and the test helpers hand them
lists. One adapter serves one running instance (or, for a function, every
rule that calls it).

User code may raise anything, ``SystemExit``, ``KeyboardInterrupt`` and
``GeneratorExit`` included: each is answered like any exception (an error
reply, an error ack, a reported source error), so that no user code ends a
channel. Only :class:`Stopped`, kuiperlite's own stop signal, ends one.

The adapters live one per module (``source_adapter``, ``sink_adapter``,
``function_adapter``), the event loop and arguments they share in
``usercode``; this module is the one place to import them from.
"""

from .function_adapter import CONDITIONS, LITERALS, FunctionAdapter, is_condition
from .sink_adapter import SinkAdapter
from .source_adapter import Deliver, SourceAdapter

__all__ = ["CONDITIONS", "LITERALS", "Deliver", "FunctionAdapter", "SinkAdapter",
           "SourceAdapter", "is_condition"]
