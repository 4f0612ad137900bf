"""``deploy``: from a plugin file or zip to an installed plugin.

``deploy TARGET --into DIR`` installs into a folder laid out as eKuiper's
(:mod:`kuiperlite.dev.installer`). TARGET is a ``.zip``, or a plugin's
``.py`` file, packaged first as ``package`` does, into a temporary folder.

``deploy TARGET --url URL`` installs into a running eKuiper through its REST
API, as eKuiper's own UI does: the zip, once it passes the installer's
checks (it is not run), is uploaded with ``POST /config/uploads`` (eKuiper
saves it under ``data/uploads``, the one place it installs ``file://`` zips
from), then registered with ``POST /plugins/portables`` (``PUT
/plugins/portables/{name}`` when eKuiper holds it already) and ``file``
pointing at the uploaded path; deploy then polls
``GET /plugins/portables/{name}/status`` until it is ``running`` or
``error``. An upgrade is refused when a symbol of the installed plugin
disappears, or a function's number of arguments changes (read from
``GET /metadata/functions`` when eKuiper answers it), unless forced.

``status NAME --url URL`` and ``undeploy NAME --url URL`` read and delete
an installed plugin; undeploy refuses while rules use it (see
:func:`rules_using`), unless forced. With ``--into DIR`` instead, they read
the plugin json installed in that folder and remove the plugin as eKuiper's
delete does (a folder runs no process and no rules). eKuiper's REST API is spoken by
:class:`~kuiperlite.dev.deploy_client.EKuiper`.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

from ..declare.hints import describe_value
from ..declare.kinds import FUNCTION, KINDS, SINK
from ..protocol import layout
from .deploy_client import REQUEST_TIMEOUT, function_args, message
from .deploy_client import TOKEN_ENV as TOKEN_ENV
from .deploy_client import DeployFailed as DeployFailed
from .deploy_client import EKuiper as EKuiper
from .installer import (
    INSTALL_TIMEOUT,
    Installed,
    InstallFailed,
    PluginZip,
    check_plugin_name,
    install,
    installed_info,
    uninstall,
)


@contextlib.contextmanager
def plugin_zip(target: str, *, include: Iterable[str] = (),
               exclude: Iterable[str] = ()) -> Iterator[Path]:
    """The zip to deploy: ``target`` itself, or the zip ``package`` builds from it,
    in a temporary folder removed on exit.

    Raises:
        DefinitionError, PluginError: the plugin file cannot be loaded or packaged.
    """
    if target.endswith(".zip"):
        yield Path(target)
        return
    from ..bundle import package
    from ..declare.plugin import load

    with tempfile.TemporaryDirectory(prefix="kuiperlite-deploy-") as folder:
        yield package.build(load(target), folder, include=include, exclude=exclude)


def deploy_into(target: str, into: str, *, run_script: bool = True, force: bool = False,
                shell_paras: Sequence[str] = (), include: Iterable[str] = (),
                exclude: Iterable[str] = (), install_timeout: float = INSTALL_TIMEOUT,
                report: Callable[[str], None] = print) -> Installed:
    """Install ``target`` under the folder ``into`` as eKuiper's installer does.

    Raises:
        InstallFailed: the zip fails a check, the plugin exists without ``force``,
            or install.sh failed.
    """
    base = Path(into).resolve()
    with plugin_zip(target, include=include, exclude=exclude) as zip_path:
        done = install(str(zip_path), str(base), shell_paras=shell_paras,
                       run_script=run_script, force=force, install_timeout=install_timeout)
    report(f"installed plugin {done.name} into {done.plugin_dir} "
           f"({len(done.files)} files; symbol metadata in {base / 'etc'})")
    if done.install_seconds is not None:
        report(f"install.sh finished in {done.install_seconds:.1f} s")
    elif not run_script and (done.plugin_dir / "install.sh").exists():
        report("install.sh not run (--no-install)")
    return done


STATUS_WAIT = 30.0  # seconds deploy waits for the plugin to run


def _symbols(info: dict[str, Any]) -> dict[str, list[str]]:
    return {kind.folder: list(info.get(kind.folder) or []) for kind in KINDS}


def breaking_changes(installed: dict[str, Any], new: dict[str, Any],
                     old_args: Optional[dict[str, int]], new_args: dict[str, int]) -> list[str]:
    """What upgrading from ``installed`` to ``new`` would break for rules: symbols
    that disappear, functions whose number of arguments changes."""
    broken = []
    old_symbols, new_symbols = _symbols(installed), _symbols(new)
    for kind in KINDS:
        for symbol in old_symbols[kind.folder]:
            if symbol not in new_symbols[kind.folder]:
                broken.append(f"{kind.word} {symbol} disappears")
    for symbol in new_symbols[FUNCTION.folder]:
        if (old_args is not None and symbol in old_symbols[FUNCTION.folder] and symbol in old_args
                and symbol in new_args and old_args[symbol] != new_args[symbol]):
            broken.append(f"function {symbol} takes {new_args[symbol]} arguments instead of "
                          f"{old_args[symbol]}")
    return broken


def _checked(zip_path: Path) -> tuple[str, dict[str, Any], dict[str, int]]:
    """The plugin name, json and function argument counts of a zip passing eKuiper's
    installer checks (it is not run)."""
    try:
        with PluginZip.open(zip_path) as plugin:
            plugin.scan()
            info = plugin.plugin_json()
            plugin.required()
            groups = []
            for symbol in info.get(FUNCTION.folder) or []:
                entry = plugin.entries.files.get(layout.zip_metadata(FUNCTION, symbol))
                if entry is not None:
                    with contextlib.suppress(ValueError, InstallFailed):
                        groups.append(json.loads(plugin.read(entry)))
            return plugin.name, info, function_args(groups)
    except InstallFailed as err:
        raise DeployFailed(f"{zip_path.name} fails eKuiper's installer checks: {err}") from None


def deploy_url(target: str, url: str, *, token: Optional[str] = None,
               shell_paras: Sequence[str] = (), force: bool = False,
               include: Iterable[str] = (), exclude: Iterable[str] = (),
               wait: float = STATUS_WAIT, timeout: float = REQUEST_TIMEOUT,
               report: Callable[[str], None] = print) -> None:
    """Upload the plugin to the eKuiper at ``url``, install or upgrade it, and wait until
    it runs.

    Raises:
        DeployFailed: a step failed; the message says what state the plugin is in.
    """
    client = EKuiper(url, token, timeout)
    with plugin_zip(target, include=include, exclude=exclude) as zip_path:
        name, info, new_args = _checked(zip_path)
        installed = client.plugin(name)
        if installed is not None and not force:
            broken = breaking_changes(installed, info, client.function_args(), new_args)
            if broken:
                raise DeployFailed(f"upgrading plugin {name} on {client.url} would break rules "
                                   f"that use it: {'; '.join(broken)}; nothing was changed "
                                   "(pass --force to upgrade anyway)")
        path = client.upload(zip_path)
    report(f"uploaded {zip_path.name} to {path}")
    body = {"name": name, "file": f"file://{path}", "shellParas": list(shell_paras)}
    if installed is None:
        status, text = client.call("POST", "/plugins/portables", body=body)
    else:
        status, text = client.call("PUT", f"/plugins/portables/{quote(name)}", body=body)
    if status >= 300:
        left = ("; eKuiper's update removes the old version first, so plugin "
                f"{name} is not installed now" if installed is not None else "")
        raise DeployFailed(f"eKuiper refused to install plugin {name} ({status}): "
                           f"{message(text)}{left}")
    report(text.decode("utf-8", "replace").strip())
    deadline = time.monotonic() + wait
    while True:
        state = client.status(name) or {}
        if state.get("status") == "running":
            break
        if state.get("status") == "error" or time.monotonic() > deadline:
            why = state.get("errMsg") or f"status {state.get('status', 'unknown')!r} after " \
                                         f"{wait:g} s"
            raise DeployFailed(f"plugin {name} is installed on {client.url} but does not run: "
                               f"{why}; fix it and deploy again with --force, or undeploy it")
        time.sleep(0.2)
    symbols = ", ".join(f"{kind} {', '.join(names)}" for kind, names in _symbols(info).items()
                        if names)
    report(f"plugin {name} {'upgraded' if installed else 'installed'} and running on "
           f"{client.url}: {symbols}")


def rules_using(client: EKuiper, name: str, info: dict[str, Any],
                status: Optional[dict[str, Any]]) -> list[str]:
    """The rules that use plugin ``name``, as far as eKuiper's REST API tells.

    Two sources, joined: the rules eKuiper counts in the plugin's status
    (``refCount``: rules that started one of its symbols), and the rules of
    ``GET /rules`` whose ``GET /rules/{id}`` calls one of its functions in
    its ``sql`` or names one of its sinks in its ``actions``. A rule reading
    one of its sources through a stream shows in ``refCount`` while it runs.
    An eKuiper without ``/rules`` (serve) has no rules.
    """
    found = set((status or {}).get("refCount") or {})
    listed = client.json("/rules")
    if listed is not None and not isinstance(listed, list):
        raise client.unexpected("GET /rules", describe_value(listed), "a list of rules")
    symbols = _symbols(info)
    calls = [re.compile(rf"\b{re.escape(f)}\s*\(", re.IGNORECASE) for f in symbols[FUNCTION.folder]]
    for rule in listed or []:
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rule_id, str):
            described = (f"a rule whose 'id' is {describe_value(rule_id)}" if isinstance(rule, dict)
                    else f"the rule {describe_value(rule)}")
            raise client.unexpected("GET /rules", described, "rules as objects with a string 'id'")
        if rule_id in found:
            continue
        path = f"/rules/{quote(rule_id)}"
        detail = client.object(path)
        if detail is None:  # deleted meanwhile
            continue
        sql = client.field(detail, "sql", str, "a string", f"GET {path}") or ""
        actions = client.field(detail, "actions", list, "a list of objects", f"GET {path}")
        sinks: set[str] = set()
        for action in actions or []:
            if not isinstance(action, dict):
                raise client.unexpected(f"GET {path}", f"'actions' holding "
                                        f"{describe_value(action)}", "a list of objects")
            sinks.update(action)
        if any(call.search(sql) for call in calls) or sinks & set(symbols[SINK.folder]):
            found.add(rule_id)
    return sorted(found)


def _installed(client: EKuiper, name: str) -> dict[str, Any]:
    info = client.plugin(name)
    if info is None:
        raise DeployFailed(f"eKuiper at {client.url} holds no portable plugin {name}")
    return info


def show_status(name: str, url: str, *, token: Optional[str] = None,
                timeout: float = REQUEST_TIMEOUT, report: Callable[[str], None] = print) -> None:
    """Report plugin ``name``'s status, symbols and the rules using it.

    Raises:
        DeployFailed: eKuiper cannot be asked, or holds no such plugin.
    """
    client = EKuiper(url, token, timeout)
    info = _installed(client, name)
    status = client.status(name) or {}
    state = status.get("status", "unknown")
    error = f" ({status['errMsg']})" if status.get("errMsg") else ""
    report(f"plugin {name} {info.get('version') or ''}".rstrip() + f" on {client.url}: "
           f"{state}{error}")
    for kind, names in _symbols(info).items():
        report(f"  {kind}: {', '.join(names) if names else '-'}")
    rules = rules_using(client, name, info, status)
    report(f"  rules using it: {', '.join(rules) if rules else 'none'}")


def undeploy(name: str, url: str, *, token: Optional[str] = None, force: bool = False,
             timeout: float = REQUEST_TIMEOUT, report: Callable[[str], None] = print) -> None:
    """Delete plugin ``name`` from eKuiper; refused while rules use it, unless ``force``.

    Raises:
        DeployFailed: eKuiper cannot be asked, holds no such plugin, rules use
            it, or eKuiper refused the delete.
    """
    client = EKuiper(url, token, timeout)
    info = _installed(client, name)
    rules = rules_using(client, name, info, client.status(name))
    if rules and not force:
        raise DeployFailed(f"rules use plugin {name}: {', '.join(rules)}; stop or delete them "
                           "first (or pass --force to delete it anyway)")
    status, text = client.call("DELETE", f"/plugins/portables/{quote(name)}")
    if status >= 300:
        raise DeployFailed(f"eKuiper refused to delete plugin {name} ({status}): "
                           f"{message(text)}")
    report(text.decode("utf-8", "replace").strip())


def _installed_into(name: str, into: str) -> tuple[Path, dict[str, Any]]:
    """The folder standing for eKuiper's, and plugin ``name``'s json installed in it.

    Raises:
        DeployFailed: the name is not a plugin name, or no such plugin is installed there.
    """
    base = Path(into).resolve()
    try:
        check_plugin_name(name)
    except InstallFailed as err:
        raise DeployFailed(str(err)) from None
    info = installed_info(base, name)
    if info is None:
        raise DeployFailed(f"{base} holds no installed portable plugin {name} (no "
                           f"{layout.plugin_json(base, name)})")
    return base, info


def show_status_into(name: str, into: str, *,
                     report: Callable[[str], None] = print) -> None:
    """Report plugin ``name`` as installed in the folder ``into``: its version and symbols.

    Raises:
        DeployFailed: no such plugin is installed there.
    """
    base, info = _installed_into(name, into)
    report(f"plugin {name} {info.get('version') or ''}".rstrip() +
           f" in {layout.plugin_dir(base, name)}: installed")
    for kind, names in _symbols(info).items():
        report(f"  {kind}: {', '.join(names) if names else '-'}")


def undeploy_into(name: str, into: str, *, report: Callable[[str], None] = print) -> None:
    """Remove plugin ``name`` from the folder ``into`` as eKuiper's delete does.

    Raises:
        DeployFailed: no such plugin is installed there, or it cannot be removed.
    """
    base, _info = _installed_into(name, into)
    try:
        uninstall(base, name)
    except OSError as err:
        raise DeployFailed(f"cannot remove plugin {name} from {base}: "
                           f"{err.strerror or err}") from None
    report(f"portable plugin {name} is deleted from {base}")
