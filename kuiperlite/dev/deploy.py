"""``deploy``: from a plugin file or zip to an installed plugin.

``deploy TARGET --into DIR`` installs into a folder laid out as eKuiper's
(:mod:`kuiperlite.dev.installer`). TARGET is a ``.zip``, or a plugin's
``.py`` file, packaged first as ``package`` does, into a temporary folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Callable

from .installer import INSTALL_TIMEOUT, Installed, install


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
    from .. import packaging
    from ..plugin import load

    with tempfile.TemporaryDirectory(prefix="kuiperlite-deploy-") as folder:
        yield packaging.build(load(target), folder, include=include, exclude=exclude)


def deploy_into(target: str, into: str, *, run_script: bool = True, force: bool = False,
                shell_paras: Sequence[str] = (), include: Iterable[str] = (),
                exclude: Iterable[str] = (), install_timeout: float = INSTALL_TIMEOUT,
                report: Callable[[str], None] = print) -> Installed:
    """Install ``target`` under the folder ``into`` as eKuiper's installer does.

    Raises:
        InstallFailed: the zip fails a check, the plugin exists without ``force``,
            or install.sh failed.
    """
    with plugin_zip(target, include=include, exclude=exclude) as zip_path:
        done = install(str(zip_path), into, shell_paras=shell_paras, run_script=run_script,
                       force=force, install_timeout=install_timeout)
    report(f"installed plugin {done.name} into {done.plugin_dir} "
           f"({len(done.files)} files; symbol metadata in {Path(into) / 'etc'})")
    if done.install_seconds is not None:
        report(f"install.sh finished in {done.install_seconds:.1f} s")
    elif not run_script and (done.plugin_dir / "install.sh").exists():
        report("install.sh not run (--no-install)")
    return done
