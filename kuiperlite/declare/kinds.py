"""What a source, a sink and a function are, and what eKuiper runs for a plugin:
the one place that says so.

Each :class:`Kind` holds its name on the wire (a Control's ``pluginType``),
the word messages use, the folder its metadata goes to in a plugin zip (also
the key listing its symbols in the plugin json), and how eKuiper runs it:
sources and sinks once per rule instance, started and stopped by command;
a function on one channel shared by every rule, never stopped.

What eKuiper runs for a packaged plugin is its executable: kuiperlite's
launcher, named after the plugin's module (``<module>_main.py``) and shipped
beside it; the launcher serves the module its name names.
"""

from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    """A kind of symbol.

    Attributes:
        wire: its ``pluginType`` in eKuiper's commands.
        word: how messages name it: "source", "sink", "function".
        folder: its metadata folder and its key in the plugin json.
        per_rule: started for each rule instance and stopped by command.
    """

    wire: str
    word: str
    folder: str
    per_rule: bool

    def described(self, name: str) -> str:
        """How messages name one symbol: ``source 'pyjson'``."""
        return f"{self.word} {name!r}"


SOURCE = Kind("source", "source", "sources", per_rule=True)
SINK = Kind("sink", "sink", "sinks", per_rule=True)
FUNCTION = Kind("func", "function", "functions", per_rule=False)
KINDS = (SOURCE, SINK, FUNCTION)
BY_WIRE = {kind.wire: kind for kind in KINDS}

# The packaged plugin's executable is ``<module>`` + this (see the module's docstring).
LAUNCHER_SUFFIX = "_main.py"
