"""``check``: install a plugin zip as eKuiper would and run every symbol once.

In a temporary folder it applies eKuiper's installer checks, unpacks the
zip the way the installer does, runs ``install.sh``, starts the plugin with
the interpreter, working folder and argv eKuiper uses, handshakes with the
embedded host, and starts and stops every symbol. Each step is reported in
plain words.

A malformed zip is a FAIL line, never a traceback. Nothing in the zip is
read whole into memory but the metadata files, up to ``MAX_METADATA``
bytes each; files are unpacked as streams, up to ``MAX_UNPACKED`` bytes in
all; install.sh runs for at most ``INSTALL_TIMEOUT`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from ..errors import KuiperliteError
from ..hints import describe_value
from ..plugin import PLUGIN_NAME_PATTERN
from . import proc
from .host import Host, launch_argv

META_FOLDERS = ("sources/", "sinks/", "functions/")
KINDS = (("sources", "source"), ("sinks", "sink"), ("functions", "function"))
MAX_METADATA = 64 << 20  # bytes of one json or yaml file read into memory
MAX_UNPACKED = 1 << 30  # bytes unpacked in all
INSTALL_TIMEOUT = 600.0
# What a zip entry's data may fail with: corrupt, encrypted, or an unknown method.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
               ValueError)
# A symbol name becomes a file name in the zip and in eKuiper's folders.
_BAD_SYMBOL = re.compile(r"[/\\\x00-\x1f\x7f]|\.\.")


class CheckFailed(KuiperliteError):
    """A step failed; the message says which and why."""


def read_profile(text: str) -> dict[str, Any]:
    """The ``default`` profile of a source yaml, for the simple shapes kuiperlite writes
    (``key: <JSON value>`` lines); anything else is kept as text."""
    profile: dict[str, Any] = {}
    inside = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith((" ", "\t")):
            inside = line.split(":", 1)[0].strip() == "default"
            continue
        if inside and ":" in line:
            key, value = line.strip().split(":", 1)
            try:
                profile[key.strip()] = orjson.loads(value.strip())
            except orjson.JSONDecodeError:
                profile[key.strip()] = value.strip()
    return profile


class Entries:
    """A zip's files by name, and the folders it holds or implies."""

    def __init__(self) -> None:
        self.files: dict[str, zipfile.ZipInfo] = {}
        self.folders: set[str] = set()

    def file(self, name: str, what: str = "") -> zipfile.ZipInfo:
        """The entry of a file eKuiper needs.

        Raises:
            CheckFailed: there is none, or only a folder of that name.
        """
        if name in self.files:
            return self.files[name]
        if name in self.folders:
            raise CheckFailed(f"{name} is a folder in the zip; eKuiper needs a file{what}")
        raise CheckFailed(f"missing {name}{what}")


class Checker:
    """Runs the steps, reporting each with ``report`` and counting failures.

    Args:
        max_metadata: bytes of one metadata file read into memory.
        max_unpacked: bytes unpacked in all.
        install_timeout: seconds install.sh may run.
    """

    def __init__(self, zip_path: str, *, python: str = sys.executable, install: bool = True,
                 report: Callable[[str], None] = print, init_timeout: float = 60.0,
                 ekuiper: int = 2, install_timeout: float = INSTALL_TIMEOUT,
                 max_metadata: int = MAX_METADATA, max_unpacked: int = MAX_UNPACKED) -> None:
        self.zip_path = Path(zip_path)
        self.python = python
        self.install = install
        self.report = report
        self.init_timeout = init_timeout
        self.ekuiper = ekuiper
        self.install_timeout = install_timeout
        self.max_metadata = max_metadata
        self.max_unpacked = max_unpacked
        self.failures = 0
        self.passed = 0

    def ok(self, text: str) -> None:
        self.passed += 1
        self.report(f"  ok    {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.report(f"  FAIL  {text}")

    def run(self) -> bool:
        """Run every step; True when all passed."""
        self.report(f"checking {self.zip_path}")
        try:
            with tempfile.TemporaryDirectory(prefix="kuiperlite-check-") as tmp:
                self._run(Path(tmp))
        except CheckFailed as err:
            self.fail(str(err))
        verdict = "passed" if not self.failures else f"FAILED ({self.failures} failed)"
        self.report(f"{self.zip_path.name}: {verdict}, {self.passed} checks passed")
        return not self.failures

    def _run(self, tmp: Path) -> None:
        name = self.zip_path.name[:-4] if self.zip_path.name.endswith(".zip") else ""
        if not name or not PLUGIN_NAME_PATTERN.match(name):
            raise CheckFailed(f"the zip must be named <plugin name>.zip with letters, digits, "
                              f"_ and - only; got {self.zip_path.name!r}")
        if not self.zip_path.is_file():
            raise CheckFailed(f"{self.zip_path} does not exist")
        try:
            archive = zipfile.ZipFile(self.zip_path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise CheckFailed(f"{self.zip_path.name} is not a zip file ({err})") from None
        with archive:
            entries = self._entries(archive)
            info = self._plugin_json(archive, entries, name)
            self._required(entries, info)
            self._symbol_metadata(archive, entries, info)
            root = self._unpack(archive, entries, tmp, name)
        plugin_dir = root / "plugins" / "portable" / name
        self._install(plugin_dir)
        self._start(name, info, plugin_dir, root)

    def _entries(self, archive: zipfile.ZipFile) -> Entries:
        entries = Entries()
        size = 0
        for entry in archive.infolist():
            name = _entry_name(entry)
            parts = name.split("/")
            mode = entry.external_attr >> 16
            if entry.is_dir() or stat.S_ISDIR(mode):
                entries.folders.add(name.rstrip("/"))
                continue
            if name in entries.files:
                raise CheckFailed(f"the zip holds {name!r} twice")
            entries.files[name] = entry
            entries.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            size += entry.file_size * (2 if name.startswith(META_FOLDERS) else 1)
        both = sorted(set(entries.files) & entries.folders)
        if both:
            raise CheckFailed(f"the zip holds {both[0]!r} both as a file and as a folder")
        if size > self.max_unpacked:
            raise CheckFailed(f"the zip unpacks to {size} bytes; check unpacks at most "
                              f"{self.max_unpacked}")
        self.ok(f"zip: {len(entries.files)} files, no absolute paths, no '..', no links, "
                "no name twice")
        return entries

    def _read(self, archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
        """A metadata file's bytes, when its size is within the bound."""
        if entry.file_size > self.max_metadata:
            raise CheckFailed(f"{entry.filename} has {entry.file_size} bytes; check reads "
                              f"metadata files of at most {self.max_metadata}")
        try:
            with archive.open(entry) as data:
                return data.read(self.max_metadata + 1)
        except READ_ERRORS as err:
            raise CheckFailed(f"{entry.filename} cannot be read from the zip ({err})") from None

    def _plugin_json(self, archive: zipfile.ZipFile, entries: Entries,
                     name: str) -> dict[str, Any]:
        entry = entries.file(f"{name}.json", " at the zip's root")
        try:
            info = orjson.loads(self._read(archive, entry))
        except orjson.JSONDecodeError as err:
            raise CheckFailed(f"{name}.json is not valid JSON ({err})") from None
        if not isinstance(info, dict):
            raise CheckFailed(f"{name}.json must hold an object, not {describe_value(info)}")
        if info.get("name", name) != name:
            raise CheckFailed(f"{name}.json names the plugin {info.get('name')!r}, "
                              f"but the zip is {name}.zip")
        for key in ("language", "executable"):
            if not info.get(key):
                raise CheckFailed(f"{name}.json is missing {key!r}")
            if not isinstance(info[key], str):
                raise CheckFailed(f"{name}.json: {key!r} must be a string, "
                                  f"not {describe_value(info[key])}")
        if info["language"] != "python":
            raise CheckFailed(f"{name}.json has language {info['language']!r}; "
                              "check runs python plugins")
        counts = {kind: _symbols(info, kind, f"{name}.json") for kind, _ in KINDS}
        if not any(counts.values()):
            raise CheckFailed(f"{name}.json lists no sources, sinks or functions")
        listed = ", ".join(f"{len(v)} {k}" for k, v in counts.items() if v)
        self.ok(f"{name}.json: version {info.get('version', '?')}, executable "
                f"{info['executable']}, {listed}")
        return info

    def _required(self, entries: Entries, info: dict[str, Any]) -> None:
        required = [info["executable"]] + [f"sources/{s}.yaml" for s in info.get("sources") or []]
        missing = [r for r in required if r not in entries.files and r not in entries.folders]
        if missing:
            raise CheckFailed(f"missing required files: {', '.join(missing)}")
        for path in required:
            entries.file(path)
        self.ok(f"required files present: {', '.join(required)}")

    def _symbol_metadata(self, archive: zipfile.ZipFile, entries: Entries,
                         info: dict[str, Any]) -> None:
        for folder, word in KINDS:
            for symbol in info.get(folder) or []:
                path = f"{folder}/{symbol}.json"
                try:
                    meta = orjson.loads(self._read(archive, entries.file(path)))
                except CheckFailed as err:
                    if path in entries.files or path in entries.folders:
                        self.fail(str(err))
                    else:
                        self.fail(f"{word} {symbol}: no {path} to describe it in eKuiper's UI")
                    continue
                except orjson.JSONDecodeError as err:
                    self.fail(f"{path} is not valid JSON ({err})")
                    continue
                if not isinstance(meta, dict) or not isinstance(meta.get("about"), dict):
                    self.fail(f"{path} has no 'about' object; eKuiper rejects it")
                    continue
                self.ok(f"{path} describes {word} {symbol}")

    def _unpack(self, archive: zipfile.ZipFile, entries: Entries, tmp: Path, name: str) -> Path:
        plugin_dir = tmp / "plugins" / "portable" / name
        for entry in entries.files.values():
            if entry.filename.startswith(META_FOLDERS):
                targets = [tmp / "etc" / entry.filename, tmp / "data" / entry.filename]
            else:
                targets = [plugin_dir / entry.filename]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                # zipfile never yields more than an entry's declared size, and
                # _entries refused a zip whose sizes add up to more than the bound.
                try:
                    with archive.open(entry) as data, open(target, "wb") as out:
                        shutil.copyfileobj(data, out, 1 << 20)
                except READ_ERRORS as err:
                    raise CheckFailed(f"{entry.filename} cannot be read from the zip "
                                      f"({err})") from None
                except OSError as err:
                    raise CheckFailed(f"cannot unpack {entry.filename}: {err}") from None
                mode = (entry.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)
        self.ok(f"unpacked as eKuiper does: code into plugins/portable/{name}/, "
                "metadata into etc/ and data/")
        return tmp

    def _install(self, plugin_dir: Path) -> None:
        script = plugin_dir / "install.sh"
        if not script.exists():
            self.ok("no install.sh to run")
            return
        if not self.install:
            self.ok("install.sh skipped (--no-install)")
            return
        started = time.monotonic()
        try:
            result = proc.run(["/bin/sh", str(script), self.python], cwd=str(plugin_dir),
                              timeout=self.install_timeout)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"install.sh did not finish within {self.install_timeout:g} s; "
                              "it was stopped (--install-timeout sets the bound)") from None
        if result.code != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise CheckFailed(f"install.sh failed with exit code {result.code}:\n{tail}")
        self.ok(f"install.sh finished in {time.monotonic() - started:.1f} s")

    def _start(self, name: str, info: dict[str, Any], plugin_dir: Path, root: Path) -> None:
        executable = plugin_dir / info["executable"]
        conda_env = None
        if info.get("virtualEnvType") == "conda":
            conda_env = str(info.get("env"))
            if shutil.which("conda") is None:
                raise CheckFailed(f"the plugin runs in conda env {conda_env!r}, "
                                  "but conda is not on this machine")
        argv = launch_argv(str(executable), self.python, conda_env)
        started = time.monotonic()
        try:
            host = Host(name, ekuiper=self.ekuiper)
        except (KuiperliteError, ValueError) as err:
            raise CheckFailed(f"the plugin did not start: {err}") from None
        try:
            try:
                host.spawn(argv, str(plugin_dir), _clean_env())
                host.wait_handshake(self.init_timeout)
            except KuiperliteError as err:
                raise CheckFailed(f"the plugin did not start: {err}") from None
            self.ok(f"started python -u {info['executable']} in plugins/portable/{name}; "
                    f"handshake after {time.monotonic() - started:.2f} s")
            self._symbols(host, info, root)
        finally:
            host.close()

    def _symbols(self, host: Host, info: dict[str, Any], root: Path) -> None:
        for i, symbol in enumerate(info.get("sources") or []):
            with self.step(f"source {symbol}", "started and stopped with its default profile"):
                config = _field_defaults(root / "etc" / "sources" / f"{symbol}.json")
                yaml = root / "etc" / "sources" / f"{symbol}.yaml"
                config.update(read_profile(_text(yaml, self.max_metadata)))
                host.start_source(symbol, rule="kuiperlite_check", op="source", instance=i,
                                  config=config).stop()
        for i, symbol in enumerate(info.get("sinks") or []):
            with self.step(f"sink {symbol}", "started and stopped"):
                config = _field_defaults(root / "etc" / "sinks" / f"{symbol}.json")
                host.start_sink(symbol, rule="kuiperlite_check", op="sink", instance=i,
                                config=config).stop()
        for symbol in info.get("functions") or []:
            with self.step(f"function {symbol}", "started, and its channel answers"), \
                    host.function(symbol) as fn:
                fn.is_aggregate()

    @contextlib.contextmanager
    def step(self, subject: str, success: str) -> Iterator[None]:
        """Report ``subject: success``, or the error that interrupted the block."""
        try:
            yield
        except (KuiperliteError, ValueError) as err:
            self.fail(f"{subject}: {err}")
        else:
            self.ok(f"{subject}: {success}")


def _entry_name(entry: zipfile.ZipInfo) -> str:
    """The entry's name, once it is a plain relative path eKuiper can unpack.

    Raises:
        CheckFailed: the name is absolute, leaves the folder, holds a NUL or a
            backslash, or the entry is a link or a special file.
    """
    raw = entry.orig_filename  # zipfile cuts filename at a NUL
    name = entry.filename
    if "\x00" in raw:
        raise CheckFailed(f"the zip holds a name with a NUL character: {raw!r}")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise CheckFailed(f"the zip holds an absolute path {name!r}")
    if ".." in name.replace("\\", "/").split("/"):
        raise CheckFailed(f"the zip holds a path that leaves its folder: {name!r}")
    if "\\" in name:
        raise CheckFailed(f"the zip holds a name with a backslash: {name!r}; use '/' "
                          "between folders")
    kind = stat.S_IFMT(entry.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise CheckFailed(f"the zip holds a symbolic link {name!r}")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise CheckFailed(f"the zip holds {name!r}, which is not a regular file or folder")
    return name


def _symbols(info: dict[str, Any], kind: str, where: str) -> list[str]:
    """The plugin json's list of sources, sinks or functions, when it is one of names."""
    names = info.get(kind)
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise CheckFailed(f"{where}: {kind!r} must be a list of names, not "
                          f"{describe_value(names)}")
    for symbol in names:
        if _BAD_SYMBOL.search(symbol):
            raise CheckFailed(f"{where} lists {kind} {symbol!r}; a symbol name must not hold "
                              "'/', '\\', '..', NUL or control characters")
    return names


def _text(path: Path, limit: int) -> str:
    """A file's text, when it is within ``limit`` bytes of UTF-8.

    Raises:
        CheckFailed: it is larger or not UTF-8.
    """
    try:
        size = path.stat().st_size
        if size > limit:
            raise CheckFailed(f"{path.name} has {size} bytes; check reads at most {limit}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CheckFailed(f"{path.name} is not UTF-8 text ({err.reason} at byte "
                          f"{err.start})") from None
    except OSError as err:
        raise CheckFailed(f"cannot read {path.name}: {err.strerror or err}") from None


def _field_defaults(path: Path) -> dict[str, Any]:
    """Config from the UI metadata: every field at its default, as eKuiper's UI fills it."""
    try:
        meta = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(meta, dict):
        return {}
    fields = meta.get("properties")
    if isinstance(fields, dict):
        fields = fields.get("default")
    if not isinstance(fields, list):
        return {}
    return {f["name"]: f.get("default") for f in fields
            if isinstance(f, dict) and isinstance(f.get("name"), str)}


def _clean_env() -> dict[str, str]:
    """The environment without this interpreter's import path, as under eKuiper."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def check(zip_path: str, *, python: Optional[str] = None, install: bool = True,
          report: Callable[[str], None] = print, ekuiper: int = 2,
          install_timeout: float = INSTALL_TIMEOUT) -> bool:
    """Check a plugin zip; True when every step passed.

    Args:
        zip_path: the ``<name>.zip`` to check.
        python: the interpreter eKuiper runs (default: this one).
        install: run the zip's install.sh (off for offline machines).
        report: called with each line of the report.
        ekuiper: the eKuiper generation whose host to behave like, 2 or 1.
        install_timeout: seconds install.sh may run before it is stopped.
    """
    return Checker(zip_path, python=python or sys.executable, install=install,
                   report=report, ekuiper=ekuiper, install_timeout=install_timeout).run()
