"""The executable eKuiper runs for a packaged plugin: it serves the module beside it.

``package`` copies this file into the plugin's zip as ``<module>_main.py``,
next to ``<module>.py``; eKuiper runs it as ``python -u <module>_main.py
'<config>'`` in that folder. The plugin's file then needs no ``run()``
line of its own, and whether it has one does not matter.
"""

from __future__ import annotations

import os
import sys

from kuiperlite.declare.kinds import LAUNCHER_SUFFIX as SUFFIX


def main() -> None:
    """Serve the plugin module this launcher was named after, as ``python -m kuiperlite run``."""
    here = os.path.dirname(os.path.abspath(__file__))
    module = os.path.basename(__file__)[: -len(SUFFIX)] + ".py"
    from kuiperlite.cli import main as cli

    sys.exit(cli(["run", os.path.join(here, module), *sys.argv[1:2]]))


if __name__ == "__main__":
    main()
