"""The command line: ``python -m kuiperlite run FILE``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional

from . import settings
from .errors import DefinitionError, PluginError

if TYPE_CHECKING:  # argparse is imported only for the commands a plugin process never runs
    import argparse

    from .declare.plugin import Plugin


class _Default:
    """A default that a tooling module keeps: imported only when help shows it, or
    when the command runs (:func:`parse_args`), never by a plugin's ``run``.

    Args:
        module: the module under kuiperlite, ``dev.deploy``.
        name: the constant, ``REQUEST_TIMEOUT``.
        show: the value as help says it.
    """

    def __init__(self, module: str, name: str,
                 show: Callable[[Any], str] = "{:g}".format) -> None:
        self.module, self.name, self.show = module, name, show

    def value(self) -> Any:
        import importlib

        return getattr(importlib.import_module(f"kuiperlite.{self.module}"), self.name)

    def __str__(self) -> str:
        return self.show(self.value())


def _size(value: int) -> str:
    """Bytes as help says them: ``1 MiB``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value >> shift} {unit}"
    return f"{value} bytes"


def _load(args: argparse.Namespace) -> Plugin:
    from .declare.plugin import load

    return load(args.target, args.name)


def _print_user_traceback(error: BaseException) -> None:
    """The traceback of an error in user code, without kuiperlite's or importlib's frames."""
    import traceback

    package = os.path.dirname(os.path.abspath(__file__))
    report = traceback.TracebackException.from_exception(error)
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack
         if not frame.filename.startswith((package, "<frozen"))])
    print("".join(report.format()), end="", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    run(args.target, args.name, args.portable_config)


def run(target: str, name: Optional[str], portable_config: Optional[str]) -> NoReturn:
    """Serve a plugin file or module, then exit the process.

    Supervised, the worker is forked before anything else is imported
    (:mod:`kuiperlite.serve.start`): the supervisor then holds only what it
    needs, and the worker imports the runtime and the plugin itself.
    """
    from .serve.start import serve_plugin

    # The plugin sees the argv eKuiper gives an executable: the file, then its config.
    sys.argv = [target, *([portable_config] if portable_config else [])]

    def load() -> Plugin:
        from .declare.plugin import load

        return load(target, name)

    serve_plugin(load, refused=report)


def cmd_state(args: argparse.Namespace) -> int:
    import os

    from .declare.state import describe
    from .errors import StateError
    from .serve.stores import open_store, sqlite_path

    url = args.url or settings.STATE_URL.read()
    if not url and not os.path.exists(sqlite_path(args.plugin, args.dir)):
        print(f"no state kept for plugin {args.plugin!r}: there is no "
              f"{sqlite_path(args.plugin, args.dir)}")
        return 0
    if args.action == "clear" and not (args.rule or args.symbol or args.all):
        print("kuiperlite: state clear drops state for good: name --rule, --symbol, or --all.",
              file=sys.stderr)
        return 2
    try:
        store = open_store(args.plugin, directory=args.dir, url=url)
        try:
            if args.action == "clear":
                gone = store.clear(rule=args.rule, symbol=args.symbol)
                print(f"cleared {gone} keys of plugin {args.plugin!r} in {store.where}")
                return 0
            entries = store.entries(rule=args.rule, symbol=args.symbol)
            for scope, key, value in entries:
                print(describe(scope, key, value))
            if not entries:
                print(f"no state kept for plugin {args.plugin!r} in {store.where}")
            return 0
        finally:
            store.close()
    except StateError as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 2


def cmd_meta(args: argparse.Namespace) -> int:
    from .bundle import metadata

    for path in metadata.write(_load(args), args.output):
        print(path)
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from .bundle import package

    print(package.build(
        _load(args), args.output, include=args.include, exclude=args.exclude,
        requirements=args.requirements, wheels=args.wheels, platform=args.platform,
        python_version=args.python_version))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .dev.check import check

    return 0 if check(args.zip, python=args.python, install=not args.no_install,
                      cache=not args.no_cache, ekuiper=args.ekuiper,
                      install_timeout=args.install_timeout) else 1


def cmd_deploy(args: argparse.Namespace) -> int:
    from .dev.deploy import deploy_into, deploy_url
    from .errors import KuiperliteError

    try:
        if args.url:
            deploy_url(args.target, args.url, token=args.token or settings.EKUIPER_TOKEN.read(),
                       shell_paras=args.shell_para, force=args.force, include=args.include,
                       exclude=args.exclude, wait=args.wait, timeout=args.request_timeout)
        else:
            deploy_into(args.target, args.into, run_script=not args.no_install,
                        force=args.force, shell_paras=args.shell_para, include=args.include,
                        exclude=args.exclude, install_timeout=args.install_timeout)
    except (DefinitionError, PluginError):
        raise
    except KuiperliteError as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .dev.deploy import DeployFailed, show_status, show_status_into

    try:
        if args.into:
            show_status_into(args.name, args.into)
        else:
            show_status(args.name, args.url, token=args.token or settings.EKUIPER_TOKEN.read(),
                        timeout=args.request_timeout)
    except DeployFailed as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_undeploy(args: argparse.Namespace) -> int:
    from .dev.deploy import DeployFailed, undeploy, undeploy_into

    try:
        if args.into:
            undeploy_into(args.name, args.into)
        else:
            undeploy(args.name, args.url, token=args.token or settings.EKUIPER_TOKEN.read(),
                     force=args.force, timeout=args.request_timeout)
    except DeployFailed as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from .dev.new import NewFailed, new

    try:
        for path in new(args.name, args.dir):
            print(path)
    except NewFailed as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .dev.server import load_mock, serve

    try:
        mock = load_mock(args.mock, args.sink_data, args.function_args, args.mock_interval)
    except ValueError as err:
        print(f"kuiperlite: {err}", file=sys.stderr)
        return 2
    return serve(args.target, host=args.host, port=args.port, attach=args.attach,
                 reload=args.reload, mock=mock, allow_remote=args.allow_remote,
                 max_body=args.max_body, request_timeout=args.request_timeout,
                 ekuiper=args.ekuiper, state_dir=args.state_dir, state_url=args.state_url,
                 token=args.token, max_upload=args.max_upload,
                 log=lambda line: print(line, flush=True))


def _ekuiper_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ekuiper", type=int, choices=(1, 2), default=2, metavar="{1,2}",
                        help="the eKuiper generation to behave like: 2 (default) sends a "
                             "source's datasource in its config, 1 as the top-level dataSource")


def _where_arguments(parser: argparse.ArgumentParser, into_help: str) -> None:
    """``--url`` (a running eKuiper) or ``--into`` (a folder laid out as eKuiper's), and
    ``--token`` for the first."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="eKuiper's REST address, e.g. http://127.0.0.1:9081")
    where.add_argument("--into", metavar="DIR", help=into_help)
    parser.add_argument("--token", help="with --url: eKuiper's token, when it asks for one "
                                        f"(default: {settings.EKUIPER_TOKEN.name})")


def _install_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--install-timeout", type=float, metavar="SECONDS",
                        default=_Default("dev.installer", "INSTALL_TIMEOUT"),
                        help="seconds install.sh may run before it is stopped "
                             "(default: %(default)s)")


def _request_timeout_argument(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    parser.add_argument("--request-timeout", type=float, metavar="SECONDS",
                        default=_Default("dev.deploy", "REQUEST_TIMEOUT"),
                        help=f"{prefix}seconds one request to eKuiper may take in all, from "
                             "connecting to the last byte of its answer (default: %(default)s)")


def _plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="the plugin: a .py file or a module name")
    parser.add_argument("--name", help="plugin name (default: About.name, else the file's stem)")


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m kuiperlite",
        description="Write eKuiper portable plugins as plain decorated Python functions.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="serve a plugin's symbols to eKuiper",
                              description="Load a plugin file and serve it to eKuiper "
                                          "(or to kuiperlite's host) over its control channel.")
    _plugin_arguments(run)
    run.add_argument("portable_config", nargs="?", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    meta = commands.add_parser("meta", help="write the plugin json and symbol metadata",
                               description="Write <name>.json and, for each symbol, "
                                           "sources/<s>.json and .yaml, sinks/<s>.json or "
                                           "functions/<f>.json, from the code.")
    _plugin_arguments(meta)
    meta.add_argument("-o", "--output", default=".", help="output folder (default: .)")
    meta.set_defaults(func=cmd_meta)

    package = commands.add_parser(
        "package", help="build the installable <name>.zip",
        description="Build <name>.zip for eKuiper's plugin install: metadata, the plugin's "
                    "code and local modules, kuiperlite itself, requirements and install.sh.")
    _plugin_arguments(package)
    package.add_argument("-o", "--output", default=".", help="output folder (default: .)")
    package.add_argument("--include", action="append", default=[], metavar="GLOB",
                         help="also ship files matching GLOB, relative to the plugin's folder "
                              "(repeatable)")
    package.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                         help="do not ship files matching GLOB (repeatable)")
    package.add_argument("--requirements", metavar="FILE",
                         help="the plugin's requirements (default: requirements.txt beside it)")
    package.add_argument("--wheels", action="store_true",
                         help="bundle the dependencies as wheels so install.sh works offline")
    package.add_argument("--platform", metavar="TAG",
                         help="pip platform tag of the target for --wheels, e.g. "
                              "manylinux2014_aarch64 (default: this machine)")
    package.add_argument("--python-version", metavar="X.Y",
                         help="Python version of the target for --wheels (default: this one)")
    package.set_defaults(func=cmd_package)

    check = commands.add_parser(
        "check", help="install a zip as eKuiper would and run each symbol once",
        description="Check a plugin zip: eKuiper's installer checks, unpack, install.sh "
                    "(which builds the plugin's environment from the zip alone, as on "
                    "eKuiper), start the plugin as eKuiper does, start and stop every symbol.")
    check.add_argument("zip", help="the <name>.zip to check")
    check.add_argument("--python", help="the interpreter eKuiper runs (default: this one)")
    check.add_argument("--no-install", action="store_true",
                       help="skip install.sh (for machines without network)")
    check.add_argument("--no-cache", action="store_true",
                       help="build the plugin's environment anew, even when an earlier check "
                            "built one from the same requirements and wheels")
    _install_timeout_argument(check)
    _ekuiper_argument(check)
    check.set_defaults(func=cmd_check)

    deploy = commands.add_parser(
        "deploy", help="install a plugin into eKuiper (--url) or a folder (--into)",
        description="Install a plugin (.py, packaged first as package does, or a .zip) into "
                    "a running eKuiper through its REST API (--url), or into a folder laid "
                    "out as eKuiper's: plugins/portable/<name>/ and etc/ (--into).")
    deploy.add_argument("target", help="the plugin's .py file or its <name>.zip")
    _where_arguments(deploy, "the folder standing for eKuiper's (plugins/ and etc/ go in it)")
    deploy.add_argument("--wait", type=float, metavar="SECONDS",
                        default=_Default("dev.deploy", "STATUS_WAIT"),
                        help="with --url: seconds to wait for the plugin to run "
                             "(default: %(default)s)")
    _request_timeout_argument(deploy, "with --url: ")
    deploy.add_argument("--no-install", action="store_true",
                        help="with --into: do not run install.sh")
    deploy.add_argument("--shell-para", action="append", default=[], metavar="ARG",
                        help="an argument for install.sh, as eKuiper's shellParas "
                             "(repeatable; e.g. the python to install for)")
    deploy.add_argument("--force", action="store_true",
                        help="replace a plugin of the same name already installed, even when "
                             "rules using it would break")
    _install_timeout_argument(deploy)
    deploy.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="for a .py: also ship files matching GLOB (repeatable)")
    deploy.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="for a .py: do not ship files matching GLOB (repeatable)")
    deploy.set_defaults(func=cmd_deploy)

    new = commands.add_parser(
        "new", help="start a plugin: NAME/NAME.py, its tests and a README",
        description="Write a new plugin folder NAME/: NAME.py with a source, a sink and a "
                    "function, test_NAME.py that passes as written, and README.md. Nothing "
                    "is overwritten.")
    new.add_argument("name", help="the plugin's name (a Python module name)")
    new.add_argument("--dir", default=".", help="where the folder goes (default: .)")
    new.set_defaults(func=cmd_new)

    status = commands.add_parser(
        "status", help="an installed plugin's status, symbols and the rules using it",
        description="Ask eKuiper (or serve) about an installed portable plugin: its process "
                    "status, its symbols, and the rules using it (--url); or read the plugin "
                    "installed in a folder by deploy --into (--into).")
    undeploy = commands.add_parser(
        "undeploy", help="delete an installed plugin from eKuiper",
        description="Delete a portable plugin from eKuiper (or serve); refused while rules "
                    "use it, unless --force (--url). Or remove the plugin deploy --into "
                    "installed in a folder, as eKuiper's delete does (--into).")
    for command in (status, undeploy):
        command.add_argument("name", help="the plugin's name")
        _where_arguments(command, "the folder deploy --into installed the plugin in")
        _request_timeout_argument(command)
    undeploy.add_argument("--force", action="store_true",
                          help="delete it even while rules use it")
    status.set_defaults(func=cmd_status)
    undeploy.set_defaults(func=cmd_undeploy)

    serve = commands.add_parser(
        "serve", help="run a plugin under a test server, or (no file) play eKuiper's plugin API",
        description="Launch the plugin under kuiperlite's host and serve eKuiper's plugin test "
                    "server API: POST /symbol/start and /symbol/stop, plus GET /symbols, "
                    "GET /symbol/output, POST /symbol/send and POST /function/call. Without "
                    "a plugin file, serve eKuiper's plugin management API instead "
                    "(/config/uploads, /plugins/portables), installing plugins into a "
                    "temporary folder, to rehearse deploy.")
    serve.add_argument("target", nargs="?",
                       help="the plugin's .py file; without it, serve is a local eKuiper "
                            "offering eKuiper's plugin management API (/config/uploads, "
                            "/plugins/portables)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default: 127.0.0.1; others need --allow-remote)")
    serve.add_argument("--port", type=int, default=_Default("dev.server", "PORT", str),
                       help="port (default: %(default)s)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow listening on an address other than loopback")
    serve.add_argument("--attach", action="store_true",
                       help="do not launch the plugin; wait for one started by hand")
    serve.add_argument("--reload", action="store_true",
                       help="restart the plugin when its file or local modules change")
    serve.add_argument("--mock", metavar="FILE",
                       help='mock data to feed running sinks and functions: {"sink": '
                            '[payloads], "function": [[args], ...]}, each a list or an object '
                            "of lists by symbol name (default: none; a start request can ask "
                            'with "mock": true or a list)')
    serve.add_argument("--sink-data", metavar="JSON",
                       help="mock payloads to feed every running sink (default: none)")
    serve.add_argument("--function-args", metavar="JSON",
                       help="mock argument lists to call every running function with "
                            "(default: none)")
    serve.add_argument("--mock-interval", type=float, default=1.0, metavar="SECONDS",
                       help="seconds between mock sends and calls (0: none; default 1)")
    serve.add_argument("--max-body", type=int, metavar="BYTES",
                       default=_Default("dev.server", "MAX_BODY", _size),
                       help="largest request body accepted (default: %(default)s)")
    serve.add_argument("--request-timeout", type=float, metavar="SECONDS",
                       default=_Default("dev.server", "REQUEST_TIMEOUT"),
                       help="seconds a request may take to arrive (default: %(default)s)")
    serve.add_argument("--state-dir", metavar="FOLDER",
                       help="keep the plugin's state in FOLDER, to see it again next time "
                            "(default: a fresh folder, removed at exit)")
    serve.add_argument("--state-url", metavar="URL",
                       help="keep the plugin's state in a Redis server, redis://host:port/db")
    serve.add_argument("--token", help="without a plugin file: answer only requests whose "
                                       "Authorization header is TOKEN")
    serve.add_argument("--max-upload", type=int, metavar="BYTES",
                       default=_Default("dev.server", "MAX_UPLOAD", _size),
                       help="without a plugin file: largest upload POST /config/uploads "
                            "accepts (default: %(default)s; it is written to disk as it "
                            "arrives)")
    _ekuiper_argument(serve)
    serve.set_defaults(func=cmd_serve)

    state = commands.add_parser(
        "state", help="list or clear the state a plugin keeps",
        description="List or clear a plugin's ctx.state: all of it, or one rule's or "
                    "symbol's. eKuiper does not tell a plugin that a rule was deleted: "
                    "clear its state with --rule.")
    state.add_argument("action", choices=["list", "clear"])
    state.add_argument("plugin", help="the plugin's name")
    state.add_argument("--rule", help="only this rule's state")
    state.add_argument("--symbol", help="only this symbol's state")
    state.add_argument("--all", action="store_true", help="with clear: every key of the plugin")
    where = state.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="FOLDER",
                       help=f"the SQLite stores' folder (default: {settings.STATE_DIR.name}, "
                            "or the user's state folder; under eKuiper, "
                            "<eKuiper>/data/kuiperlite)")
    where.add_argument("--url", metavar="URL",
                       help=f"a Redis store, redis://host:port/db (default: "
                            f"{settings.STATE_URL.name})")
    state.set_defaults(func=cmd_state)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if _plain_run(argv):  # what eKuiper runs, read without argparse's import
            run(argv[1], None, argv[2] if len(argv) == 3 else None)
        args = parse_args(argv)
        return int(args.func(args) or 0)
    except (DefinitionError, PluginError) as err:
        return report(err)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line read, each default a tooling module keeps read from it."""
    args = build_parser().parse_args(argv)
    for key, value in vars(args).items():
        if isinstance(value, _Default):
            setattr(args, key, value.value())
    return args


def _plain_run(argv: list[str]) -> bool:
    """Whether the command line is ``run TARGET [CONFIG]``, with no option."""
    return (len(argv) in (2, 3) and argv[0] == "run"
            and not any(arg.startswith("-") for arg in argv[1:]))


def report(err: Exception) -> int:
    """Print a plugin's error in one line (plus the user's traceback when an
    import failed) and return the exit code for it, 2."""
    print(f"kuiperlite: {err}", file=sys.stderr)
    cause = err.__cause__
    if cause is not None and not isinstance(cause, ModuleNotFoundError):
        _print_user_traceback(cause)
    return 2
