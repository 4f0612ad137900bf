"""Print a plugin file's name and symbol names as one line of JSON.

``python -m kuiperlite.dev.describe FILE`` is how ``serve`` reads a plugin:
in a process of its own, so that user code that hangs or crashes when it is
imported never runs inside serve. The line is
``{"name": ..., "version": ..., "sources": [...], "sinks": [...], "functions":
[...], "function_metadata": [...]}``, the version and each function's metadata
file as the plugin's zip holds them; a file that does not load prints its
error to stderr and exits with code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

from ..bundle import metadata
from ..cli import report
from ..declare.plugin import load
from ..declare.symbols import FunctionSpec
from ..errors import DefinitionError, PluginError


def main(argv: Optional[list[str]] = None) -> int:
    """Load the plugin file and print its name and symbols.

    Args:
        argv: the arguments after the module name: the plugin's file
            (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 when the symbols were printed, 2 when the file does
        not load or the arguments are wrong.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kuiperlite.dev.describe FILE", file=sys.stderr)
        return 2
    try:
        plugin = load(args[0])
        functions = [metadata.function_json(plugin, spec) for spec in plugin.symbols
                     if isinstance(spec, FunctionSpec)]
    except (DefinitionError, PluginError) as err:
        return report(err)
    print(json.dumps({"name": plugin.name, "version": plugin.about.version,
                      "sources": list(plugin.sources), "sinks": list(plugin.sinks),
                      "functions": list(plugin.functions), "function_metadata": functions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
