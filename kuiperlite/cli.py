"""The command line: ``python -m kuiperlite run FILE``."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Optional

from .errors import DefinitionError, PluginError


def _load(target: str, name: Optional[str]):  # -> Plugin, imported lazily
    from .plugin import load

    try:
        return load(target, name)
    except PluginError as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        cause = err.__cause__
        if cause is not None and not isinstance(cause, ModuleNotFoundError):
            traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
        raise SystemExit(2) from None
    except DefinitionError as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_run(args: argparse.Namespace) -> int:
    from .runtime import serve_plugin

    serve_plugin(_load(args.target, args.name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kuiperlite",
        description="Write eKuiper portable plugins as plain decorated Python functions.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="serve a plugin's symbols to eKuiper",
                              description="Load a plugin file and serve it to eKuiper "
                                          "(or to kuiperlite's host) over its control channel.")
    run.add_argument("target", help="the plugin: a .py file or a module name")
    run.add_argument("--name", help="plugin name (default: About.name, else the file's stem)")
    run.add_argument("portable_config", nargs="?", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
