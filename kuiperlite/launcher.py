"""The executable eKuiper runs for a packaged plugin: it serves the module beside it.

``package`` copies this file into the plugin's zip as ``<module>_main.py``,
next to ``<module>.py``; eKuiper runs it as ``python -u <module>_main.py
'<config>'`` in that folder. The plugin's file then needs no ``run()``
line of its own, and whether it has one does not matter.

The zip's install.sh builds the plugin's own virtual environment in
:data:`ENVIRONMENT` beside this file. Before anything else is imported the
launcher re-executes itself with that environment's python (``os.execv``:
same arguments, same process id), so the python eKuiper starts it with needs
nothing installed. Without an environment (``--no-install``, a conda plugin)
it goes on in the python it was started with, saying so on stderr.
"""

import os
import sys

ENVIRONMENT = ".venv"  # the plugin's environment, in its folder; install.sh reads this name
# Set across the re-exec: a python that does not land inside the environment
# is not executed again.
REENTERED = "KUIPERLITE_REENTERED"


def environment_python(here: str) -> str:
    """The python of the plugin's environment in folder ``here``."""
    return os.path.join(here, ENVIRONMENT, "bin", "python")


def reenter(here: str) -> None:
    """Re-execute this process in the plugin's environment, unless it runs there already.

    Returns only when the process goes on in the python it has: it is the
    environment's, or there is none to go to (said on stderr).
    """
    target = os.path.join(here, ENVIRONMENT)
    if os.path.realpath(sys.prefix) == os.path.realpath(target):
        os.environ.pop(REENTERED, None)
        return
    python = environment_python(here)
    if os.environ.get(REENTERED) == target:
        os.environ.pop(REENTERED, None)
        print(f"kuiperlite: {python} did not start inside the environment {target}; "
              f"going on with {sys.prefix}: rerun install.sh.", file=sys.stderr, flush=True)
        return
    if not os.path.isdir(target):
        if not os.environ.get("CONDA_PREFIX"):
            print(f"kuiperlite: the plugin has no environment at {target} (install.sh has "
                  f"not built it); going on with {sys.executable}.", file=sys.stderr,
                  flush=True)
        return
    # The same options and arguments (eKuiper's -u among them); Python 3.9 keeps
    # no record of its options, and eKuiper gives only -u.
    args = getattr(sys, "orig_argv", [sys.executable, "-u", *sys.argv])[1:]
    os.environ[REENTERED] = target
    try:
        os.execv(python, [python, *args])
    except OSError as err:
        os.environ.pop(REENTERED, None)
        print(f"kuiperlite: the plugin's environment {target} is broken ({python}: "
              f"{err.strerror or err}); going on with {sys.executable}: rerun install.sh.",
              file=sys.stderr, flush=True)


def main() -> None:
    """Serve the plugin module this launcher was named after, as ``python -m kuiperlite run``."""
    here = os.path.dirname(os.path.abspath(__file__))
    reenter(here)
    from kuiperlite.cli import main as cli
    from kuiperlite.declare.kinds import LAUNCHER_SUFFIX

    module = os.path.basename(__file__)[: -len(LAUNCHER_SUFFIX)] + ".py"
    sys.exit(cli(["run", os.path.join(here, module), *sys.argv[1:2]]))


if __name__ == "__main__":
    main()
