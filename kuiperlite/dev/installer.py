"""eKuiper's portable plugin installer, in Python.

:class:`PluginZip` reads a plugin zip with the checks eKuiper's installer
applies (``internal/plugin/portable/manager.go``), plus the safety checks
eKuiper leaves to the file system (no absolute paths, no ``..``, no links,
bounded sizes). :func:`install` writes what eKuiper's installer writes
under a base folder, as eKuiper's own folders would hold it:

- every file but the symbol metadata into ``plugins/portable/<name>/``;
- ``sources/``, ``sinks/`` and ``functions/`` entries into ``etc/``, the
  folder eKuiper reads configuration from (``etc/sources/<s>.yaml``,
  ``etc/sources/<s>.json``, ``etc/sinks/<s>.json``,
  ``etc/functions/<f>.json``);

then runs ``/bin/sh install.sh [shell paras...]`` in the plugin's folder
when the zip has one. A failed install removes what it wrote, as eKuiper
reverts one.

eKuiper refuses a name it already holds; so does :func:`install`, unless
``force``. eKuiper's ``PUT /plugins/portables/{name}`` then deletes the old
plugin before it installs again, so a failed upgrade leaves none. Here the
old plugin (its folder, with its environment, and the metadata its json
lists) is set aside instead, put back when the upgrade fails and removed
once it is in place (:class:`SetAside`), so a failed upgrade leaves the old
version as it was.

Nothing is written through a link: a link in place of the plugin folder is
removed, not what it points to (as eKuiper's ``os.RemoveAll`` removes it),
and the folder is made anew; a link or a file in place of a metadata file
is replaced, never written into.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import orjson

from ..declare.hints import describe_value
from ..declare.kinds import KINDS, SOURCE
from ..errors import KuiperliteError
from ..protocol import layout
from ..protocol.layout import PLUGIN_NAME_RULE
from . import proc

MAX_METADATA = 64 << 20  # bytes of one json or yaml file read into memory
MAX_UNPACKED = 1 << 30  # bytes unpacked in all
INSTALL_TIMEOUT = 600.0
# What a zip entry's data may fail with: corrupt, encrypted, or an unknown method.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
               ValueError)


class InstallFailed(KuiperliteError):
    """The zip cannot be installed; the message says which step failed and why."""


class Entries:
    """A zip's files by name, and the folders it holds or implies."""

    def __init__(self) -> None:
        self.files: dict[str, zipfile.ZipInfo] = {}
        self.folders: set[str] = set()

    def file(self, name: str, described: str = "") -> zipfile.ZipInfo:
        """The entry of a file eKuiper needs.

        Raises:
            InstallFailed: there is none, or only a folder of that name.
        """
        if name in self.files:
            return self.files[name]
        if name in self.folders:
            raise InstallFailed(f"{name} is a folder in the zip; eKuiper needs a file{described}")
        raise InstallFailed(f"missing {name}{described}")


def check_plugin_name(name: str) -> str:
    """``name``, once it is a plugin name eKuiper takes: one or more letters, digits,
    ``_`` and ``-`` (eKuiper's rule for the names it keeps, rules and streams too).

    The name becomes the plugin's folder and the names of its zip and json, so
    a name that passes stays in the folders meant for it. It is stricter than
    :func:`kuiperlite.protocol.wire.check_ipc_name`, the plugin's rule for any name the
    host sends, which refuses only what cannot be part of a socket file name.

    Raises:
        InstallFailed: naming the value and the rule.
    """
    if layout.name_fault(name, kept=True):
        raise InstallFailed(f"invalid name {name!r}: {PLUGIN_NAME_RULE}")
    return name


def zip_name(zip_path: Path) -> str:
    """The plugin name a zip's file name gives.

    Raises:
        InstallFailed: the file is not named ``<plugin name>.zip``.
    """
    try:
        return check_plugin_name(zip_path.name[:-4] if zip_path.name.endswith(".zip") else "")
    except InstallFailed:
        raise InstallFailed(f"the zip must be named <plugin name>.zip, and {PLUGIN_NAME_RULE}; "
                            f"got {zip_path.name!r}") from None


class PluginZip:
    """An open plugin zip, read step by step; each step raises :class:`InstallFailed`.

    Use :meth:`open`, then :meth:`scan`, :meth:`plugin_json` and
    :meth:`required` in this order, then :meth:`unpack`.

    Args:
        max_metadata: bytes of one metadata file read into memory.
        max_unpacked: bytes unpacked in all.
    """

    def __init__(self, zip_path: Path, archive: zipfile.ZipFile, *,
                 max_metadata: int = MAX_METADATA, max_unpacked: int = MAX_UNPACKED) -> None:
        self.path = zip_path
        self.name = zip_name(zip_path)
        self.archive = archive
        self.max_metadata = max_metadata
        self.max_unpacked = max_unpacked
        self.entries = Entries()
        self.info: dict[str, Any] = {}

    @classmethod
    def open(cls, zip_path: Path, **bounds: int) -> PluginZip:
        """Open ``zip_path``; close it with :meth:`close` (or use it in ``with``).

        Raises:
            InstallFailed: the name is wrong, the file is missing or not a zip.
        """
        zip_name(zip_path)
        if not zip_path.is_file():
            raise InstallFailed(f"{zip_path} does not exist")
        try:
            archive = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise InstallFailed(f"{zip_path.name} is not a zip file ({err})") from None
        return cls(zip_path, archive, **bounds)

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> PluginZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scan(self) -> Entries:
        """Read the entry list: plain relative names, no links, no name twice, bounded size."""
        entries = self.entries
        size = 0
        for entry in self.archive.infolist():
            name = _entry_name(entry)
            parts = name.split("/")
            mode = entry.external_attr >> 16
            if entry.is_dir() or stat.S_ISDIR(mode):
                entries.folders.add(name.rstrip("/"))
                continue
            if name in entries.files:
                raise InstallFailed(f"the zip holds {name!r} twice")
            entries.files[name] = entry
            entries.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            size += entry.file_size
        both = sorted(set(entries.files) & entries.folders)
        if both:
            raise InstallFailed(f"the zip holds {both[0]!r} both as a file and as a folder")
        if size > self.max_unpacked:
            raise InstallFailed(f"the zip unpacks to {size} bytes; kuiperlite unpacks at most "
                                f"{self.max_unpacked}")
        return entries

    def read(self, entry: zipfile.ZipInfo) -> bytes:
        """A metadata file's bytes, when its size is within the bound."""
        if entry.file_size > self.max_metadata:
            raise InstallFailed(f"{entry.filename} has {entry.file_size} bytes; kuiperlite reads "
                                f"metadata files of at most {self.max_metadata}")
        try:
            with self.archive.open(entry) as data:
                return data.read(self.max_metadata + 1)
        except READ_ERRORS as err:
            raise InstallFailed(f"{entry.filename} cannot be read from the zip ({err})") from None

    def plugin_json(self) -> dict[str, Any]:
        """``<name>.json``, checked as eKuiper's installer checks it."""
        name = self.name
        entry = self.entries.file(f"{name}.json", " at the zip's root")
        try:
            info = orjson.loads(self.read(entry))
        except orjson.JSONDecodeError as err:
            raise InstallFailed(f"{name}.json is not valid JSON ({err})") from None
        if not isinstance(info, dict):
            raise InstallFailed(f"{name}.json must hold an object, not {describe_value(info)}")
        if info.get("name", name) != name:
            raise InstallFailed(f"{name}.json names the plugin {info.get('name')!r}, "
                                f"but the zip is {name}.zip")
        for key in ("language", "executable"):
            if not info.get(key):
                raise InstallFailed(f"{name}.json is missing {key!r}")
            if not isinstance(info[key], str):
                raise InstallFailed(f"{name}.json: {key!r} must be a string, "
                                    f"not {describe_value(info[key])}")
        if info["language"] != "python":
            raise InstallFailed(f"{name}.json has language {info['language']!r}; "
                                "kuiperlite installs python plugins")
        counts = {kind: symbol_names(info, kind.folder, f"{name}.json") for kind in KINDS}
        if not any(counts.values()):
            raise InstallFailed(f"{name}.json lists no sources, sinks or functions")
        self.info = info
        return info

    def required(self) -> list[str]:
        """The files eKuiper requires (the executable, each source's yaml), all present."""
        info = self.info
        required = [info["executable"]] + [layout.zip_metadata(SOURCE, s, ".yaml")
                                           for s in info.get(SOURCE.folder) or []]
        entries = self.entries
        missing = [r for r in required if r not in entries.files and r not in entries.folders]
        if missing:
            raise InstallFailed(f"missing required files: {', '.join(missing)}")
        for path in required:
            entries.file(path)
        return required

    def targets(self, base: Path) -> dict[str, Path]:
        """Where each file of the zip goes under ``base``, as eKuiper's installer puts it."""
        return {name: layout.installed_path(base, self.name, name) for name in self.entries.files}

    def unpack(self, base: Path) -> list[Path]:
        """Write every file to its place under ``base``; the paths written, in zip order."""
        written: list[Path] = []
        for name, target in self.targets(base).items():
            entry = self.entries.files[name]
            written.append(target)
            # zipfile never yields more than an entry's declared size, and
            # scan() refused a zip whose sizes add up to more than the bound.
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # A new file in place of what was there: never written through a
                # link (or a hard link) to a file elsewhere.
                target.unlink(missing_ok=True)
                with self.archive.open(entry) as data, open(target, "xb") as out:
                    shutil.copyfileobj(data, out, 1 << 20)
            except READ_ERRORS as err:
                raise InstallFailed(f"{entry.filename} cannot be read from the zip "
                                    f"({err})") from None
            except OSError as err:
                raise InstallFailed(f"cannot unpack {entry.filename}: {err}") from None
            mode = (entry.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)
        return written


def install_argv(script: Path, shell_paras: Sequence[str]) -> list[str]:
    """The command eKuiper runs install.sh with: ``/bin/sh install.sh PARAS...``."""
    return ["/bin/sh", str(script), *shell_paras]


def run_install_sh(plugin_dir: Path, shell_paras: Sequence[str],
                   timeout: float = INSTALL_TIMEOUT) -> Optional[float]:
    """Run the plugin's install.sh in its folder, as eKuiper does; None when there is none.

    Returns:
        The seconds it took.

    Raises:
        InstallFailed: it failed or did not finish within ``timeout``.
    """
    import time

    script = plugin_dir / "install.sh"
    if not script.exists():
        return None
    started = time.monotonic()
    try:
        result = proc.run(install_argv(script, shell_paras), cwd=str(plugin_dir),
                          timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InstallFailed(f"install.sh did not finish within {timeout:g} s; "
                            "it was stopped (--install-timeout sets the bound)") from None
    if result.code != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise InstallFailed(f"install.sh failed with exit code {result.code}:\n{tail}")
    return time.monotonic() - started


@dataclass
class Installed:
    """What :func:`install` wrote."""

    name: str
    info: dict[str, Any]
    plugin_dir: Path
    files: list[Path] = field(default_factory=list)
    install_seconds: Optional[float] = None


def installed_info(base: Path, name: str) -> Optional[dict[str, Any]]:
    """The plugin json of plugin ``name`` installed under ``base``, or None when there is none."""
    path = layout.plugin_json(base, name)
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None


def metadata_paths(base: Path, name: str) -> list[Path]:
    """The symbol metadata files under ``base/etc`` that plugin ``name``'s json lists."""
    info = installed_info(base, name) or {}
    paths = []
    for kind, suffixes in layout.SUFFIXES.items():
        names = info.get(kind.folder)
        for symbol in names if isinstance(names, list) else []:
            if isinstance(symbol, str) and not _bad_symbol(symbol):
                paths += [layout.metadata_file(base, kind, symbol, suffix)
                          for suffix in suffixes]
    return paths


def uninstall(base: Path, name: str) -> None:
    """Remove plugin ``name`` from ``base`` as eKuiper's delete does: the symbol metadata
    its json lists, then its folder (and the plugin's environment in it)."""
    for path in metadata_paths(base, name):
        path.unlink(missing_ok=True)
    remove_plugin_dir(layout.plugin_dir(base, name))


class SetAside:
    """An installed plugin moved out of the way of its upgrade, whole: its folder
    (environment included) and its symbol metadata go to ``plugins/.<name>.previous``.

    :meth:`put_back` restores it when the upgrade fails; :meth:`discard`
    removes it once the upgrade is in place. Nothing is copied: each is one
    rename, and a link is moved as a link.
    """

    def __init__(self, base: Path, name: str) -> None:
        self.folder = base / "plugins" / f".{name}.previous"
        remove_plugin_dir(self.folder)  # left by an upgrade that was killed
        self.moved: list[tuple[Path, Path]] = []
        try:
            for path in [*metadata_paths(base, name), layout.plugin_dir(base, name)]:
                if os.path.lexists(path):
                    aside = self.folder / path.relative_to(base)
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, aside)
                    self.moved.append((path, aside))
        except OSError as err:
            self.put_back()
            raise InstallFailed(f"cannot set the installed plugin {name} aside in "
                                f"{self.folder}: {err.strerror or err}") from None

    def put_back(self) -> None:
        for path, aside in self.moved:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(aside, path)
        remove_plugin_dir(self.folder)

    def discard(self) -> None:
        remove_plugin_dir(self.folder)


def remove_plugin_dir(plugin_dir: Path) -> None:
    """Remove what stands at ``plugin_dir`` as Go's ``os.RemoveAll`` does: a link or a
    file itself (never what a link points to), a folder with all it holds."""
    if plugin_dir.is_symlink() or not plugin_dir.is_dir():
        plugin_dir.unlink(missing_ok=True)
    else:
        shutil.rmtree(plugin_dir, ignore_errors=True)


def install(zip_path: str, base: str, *, shell_paras: Sequence[str] = (),
            run_script: bool = True, force: bool = False,
            install_timeout: float = INSTALL_TIMEOUT) -> Installed:
    """Install a plugin zip under ``base`` as eKuiper's installer does.

    Args:
        zip_path: the ``<name>.zip``.
        base: the folder standing for eKuiper's: ``plugins/``, ``etc/`` go in it.
        shell_paras: the arguments eKuiper's ``shellParas`` gives install.sh.
        run_script: run install.sh (off for offline machines).
        force: replace a plugin of that name already installed.
        install_timeout: seconds install.sh may run.

    Raises:
        InstallFailed: a check failed, the plugin exists without ``force``, or
            install.sh failed; nothing the install wrote is left behind, and a
            plugin it was to replace is back as it was.
    """
    root = Path(base).resolve()  # install.sh runs in the plugin folder: paths are absolute
    with PluginZip.open(Path(zip_path)) as plugin:
        plugin_dir = layout.plugin_dir(root, plugin.name)
        if os.path.lexists(plugin_dir) and not force:
            raise InstallFailed(f"plugin {plugin.name} is already installed in {plugin_dir}; "
                                "pass --force to replace it")
        plugin.scan()
        info = plugin.plugin_json()
        plugin.required()
        previous = SetAside(root, plugin.name) if force else None
        done = Installed(plugin.name, info, plugin_dir)
        try:
            try:
                plugin_dir.parent.mkdir(parents=True, exist_ok=True)
                plugin_dir.mkdir()
            except OSError as err:
                raise InstallFailed(f"cannot make the plugin folder {plugin_dir}: "
                                    f"{err.strerror or err}") from None
            try:
                done.files = plugin.unpack(root)
                if run_script:
                    done.install_seconds = run_install_sh(plugin_dir, shell_paras,
                                                          install_timeout)
            except BaseException:
                for path in done.files:
                    path.unlink(missing_ok=True)
                shutil.rmtree(plugin_dir, ignore_errors=True)
                raise
        except BaseException:
            if previous is not None:
                previous.put_back()
            raise
        if previous is not None:
            previous.discard()
    return done


def _entry_name(entry: zipfile.ZipInfo) -> str:
    """The entry's name, once it is a plain relative path eKuiper can unpack.

    Raises:
        InstallFailed: the name is absolute, leaves the folder, holds a NUL or a
            backslash, or the entry is a link or a special file.
    """
    raw = entry.orig_filename  # zipfile cuts filename at a NUL
    name = entry.filename
    if "\x00" in raw:
        raise InstallFailed(f"the zip holds a name with a NUL character: {raw!r}")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InstallFailed(f"the zip holds an absolute path {name!r}")
    if ".." in name.replace("\\", "/").split("/"):
        raise InstallFailed(f"the zip holds a path that leaves its folder: {name!r}")
    if "\\" in name:
        raise InstallFailed(f"the zip holds a name with a backslash: {name!r}; use '/' "
                            "between folders")
    kind = stat.S_IFMT(entry.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise InstallFailed(f"the zip holds a symbolic link {name!r}")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InstallFailed(f"the zip holds {name!r}, which is not a regular file or folder")
    return name


def symbol_names(info: dict[str, Any], kind: str, where: str) -> list[str]:
    """The plugin json's list of sources, sinks or functions, when it is one of names."""
    names = info.get(kind)
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InstallFailed(f"{where}: {kind!r} must be a list of names, not "
                            f"{describe_value(names)}")
    for symbol in names:
        if _bad_symbol(symbol):
            raise InstallFailed(f"{where} lists {kind} {symbol!r}; a symbol name must not "
                                "hold '/', '\\', '..', NUL or control characters")
    return names


def _bad_symbol(symbol: str) -> bool:
    """Whether a symbol name cannot become a file name in the zip and in eKuiper's
    folders (a backslash is refused too, for zips made on Windows)."""
    return layout.name_fault(symbol) is not None or "\\" in symbol
