"""``check``: install a plugin zip as eKuiper would and run every symbol once.

In a temporary folder it applies eKuiper's installer checks, unpacks the
zip the way the installer does, runs ``install.sh``, starts the plugin with
the interpreter, working folder and argv eKuiper uses, handshakes with the
embedded host, and starts and stops every symbol. Each step is reported in
plain words.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from .errors import KuiperliteError
from .host import Host, launch_argv
from .plugin import PLUGIN_NAME_PATTERN

META_FOLDERS = ("sources/", "sinks/", "functions/")
KINDS = (("sources", "source"), ("sinks", "sink"), ("functions", "function"))


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


class Checker:
    """Runs the steps, reporting each with ``report`` and counting failures."""

    def __init__(self, zip_path: str, *, python: str = sys.executable, install: bool = True,
                 report: Callable[[str], None] = print, init_timeout: float = 60.0,
                 ekuiper: int = 2) -> None:
        self.zip_path = Path(zip_path)
        self.python = python
        self.install = install
        self.report = report
        self.init_timeout = init_timeout
        self.ekuiper = ekuiper
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
        except zipfile.BadZipFile as err:
            raise CheckFailed(f"{self.zip_path.name} is not a zip file ({err})") from None
        with archive:
            names = self._entries(archive)
            info = self._plugin_json(archive, name)
            self._required(names, info)
            self._symbol_metadata(archive, info)
            root = self._unpack(archive, tmp, name)
        plugin_dir = root / "plugins" / "portable" / name
        self._install(plugin_dir)
        self._start(name, info, plugin_dir, root)

    def _entries(self, archive: zipfile.ZipFile) -> set[str]:
        names: set[str] = set()
        for entry in archive.infolist():
            name = entry.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
                raise CheckFailed(f"the zip holds an absolute path {name!r}")
            if ".." in parts:
                raise CheckFailed(f"the zip holds a path that leaves its folder: {name!r}")
            if stat.S_ISLNK(entry.external_attr >> 16):
                raise CheckFailed(f"the zip holds a symbolic link {name!r}")
            names.add(name)
        self.ok(f"zip: {len(names)} entries, no absolute paths, no '..', no links")
        return names

    def _plugin_json(self, archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
        try:
            info = orjson.loads(archive.read(f"{name}.json"))
        except KeyError:
            raise CheckFailed(f"missing {name}.json at the zip's root") from None
        except orjson.JSONDecodeError as err:
            raise CheckFailed(f"{name}.json is not valid JSON ({err})") from None
        if not isinstance(info, dict):
            raise CheckFailed(f"{name}.json must hold an object")
        if info.get("name", name) != name:
            raise CheckFailed(f"{name}.json names the plugin {info.get('name')!r}, "
                              f"but the zip is {name}.zip")
        for key in ("language", "executable"):
            if not info.get(key):
                raise CheckFailed(f"{name}.json is missing {key!r}")
        if info["language"] != "python":
            raise CheckFailed(f"{name}.json has language {info['language']!r}; "
                              "check runs python plugins")
        counts = {kind: info.get(kind) or [] for kind, _ in KINDS}
        if not any(counts.values()):
            raise CheckFailed(f"{name}.json lists no sources, sinks or functions")
        listed = ", ".join(f"{len(v)} {k}" for k, v in counts.items() if v)
        self.ok(f"{name}.json: version {info.get('version', '?')}, executable "
                f"{info['executable']}, {listed}")
        return info

    def _required(self, names: set[str], info: dict[str, Any]) -> None:
        required = [info["executable"]] + [f"sources/{s}.yaml" for s in info.get("sources") or []]
        missing = [r for r in required if r not in names]
        if missing:
            raise CheckFailed(f"missing required files: {', '.join(missing)}")
        self.ok(f"required files present: {', '.join(required)}")

    def _symbol_metadata(self, archive: zipfile.ZipFile, info: dict[str, Any]) -> None:
        for folder, word in KINDS:
            for symbol in info.get(folder) or []:
                path = f"{folder}/{symbol}.json"
                try:
                    meta = orjson.loads(archive.read(path))
                except KeyError:
                    self.fail(f"{word} {symbol}: no {path} to describe it in eKuiper's UI")
                    continue
                except orjson.JSONDecodeError as err:
                    self.fail(f"{path} is not valid JSON ({err})")
                    continue
                if not isinstance(meta, dict) or not isinstance(meta.get("about"), dict):
                    self.fail(f"{path} has no 'about' object; eKuiper rejects it")
                    continue
                self.ok(f"{path} describes {word} {symbol}")

    def _unpack(self, archive: zipfile.ZipFile, tmp: Path, name: str) -> Path:
        plugin_dir = tmp / "plugins" / "portable" / name
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            if entry.filename.startswith(META_FOLDERS):
                targets = [tmp / "etc" / entry.filename, tmp / "data" / entry.filename]
            else:
                targets = [plugin_dir / entry.filename]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(entry))
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
        result = subprocess.run(["/bin/sh", str(script), self.python], cwd=plugin_dir,
                                capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
            raise CheckFailed(f"install.sh failed with exit code {result.returncode}:\n{tail}")
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
        host = Host(name, ekuiper=self.ekuiper)
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
            config = _field_defaults(root / "etc" / "sources" / f"{symbol}.json")
            yaml = root / "etc" / "sources" / f"{symbol}.yaml"
            config.update(read_profile(yaml.read_text(encoding="utf-8")))
            with self.step(f"source {symbol}", "started and stopped with its default profile"):
                host.start_source(symbol, rule="kuiperlite_check", op="source", instance=i,
                                  config=config).stop()
        for i, symbol in enumerate(info.get("sinks") or []):
            config = _field_defaults(root / "etc" / "sinks" / f"{symbol}.json")
            with self.step(f"sink {symbol}", "started and stopped"):
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
        except KuiperliteError as err:
            self.fail(f"{subject}: {err}")
        else:
            self.ok(f"{subject}: {success}")


def _field_defaults(path: Path) -> dict[str, Any]:
    """Config from the UI metadata: every field at its default, as eKuiper's UI fills it."""
    try:
        meta = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
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
          report: Callable[[str], None] = print, ekuiper: int = 2) -> bool:
    """Check a plugin zip; True when every step passed.

    Args:
        zip_path: the ``<name>.zip`` to check.
        python: the interpreter eKuiper runs (default: this one).
        install: run the zip's install.sh (off for offline machines).
        report: called with each line of the report.
        ekuiper: the eKuiper generation whose host to behave like, 2 or 1.
    """
    return Checker(zip_path, python=python or sys.executable, install=install,
                   report=report, ekuiper=ekuiper).run()
