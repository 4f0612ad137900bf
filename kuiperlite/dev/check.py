"""``check``: install a plugin zip as eKuiper would and run every symbol once.

In a temporary folder it applies eKuiper's installer checks, unpacks the
zip the way the installer does, runs ``install.sh``, starts the plugin with
the interpreter, working folder and argv eKuiper uses, handshakes with the
embedded host, and starts and stops every symbol. Each step is reported in
plain words.

install.sh builds the plugin's environment (``.venv`` in its folder) with
the python given, as it will on eKuiper, from the zip alone: a module the
plugin imports that the zip does not provide fails the check, though the
python checking has it. A built environment is kept in a cache
(:func:`cache_dir`), found again by the hash of what made it (install.sh,
the requirements, the wheels and the python), so a second check of the
same requirements does not build it again; the cache holds at most
``MAX_CACHED`` environments.

A malformed zip is a FAIL line, never a traceback. Nothing in the zip is
read whole into memory but the metadata files, up to ``MAX_METADATA``
bytes each; files are unpacked as streams, up to ``MAX_UNPACKED`` bytes in
all; install.sh runs for at most ``INSTALL_TIMEOUT`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from .. import settings
from ..bundle.package import ENVIRONMENT
from ..declare.kinds import KINDS, SINK, SOURCE
from ..errors import KuiperliteError
from ..protocol import layout
from .host import Host, launch_argv
from .installer import (
    INSTALL_TIMEOUT,
    MAX_METADATA,
    MAX_UNPACKED,
    InstallFailed,
    PluginZip,
    run_install_sh,
)
from .proc import not_installed

# check's failures are the installer's: one class, so a failed step reads the same in both.
CheckFailed = InstallFailed
MAX_CACHED = 8  # environments kept in the cache; the least recently used go first
_MISSING = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


def cache_dir() -> Path:
    """Where check keeps the environments it built: ``$KUIPERLITE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kuiperlite``, else ``~/.cache/kuiperlite``; in ``environments/``."""
    base = settings.CACHE_DIR.read() or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kuiperlite")
    return Path(base) / "environments"


def environment_key(plugin_dir: Path, python: str) -> str:
    """The hash of what builds a plugin's environment: its install.sh, requirements
    and wheels, and the python (its real path and version)."""
    digest = hashlib.sha256()
    real = os.path.realpath(shutil.which(python) or python)
    digest.update(f"{real}\0{os.stat(real).st_mtime_ns}\0".encode())
    wheels = sorted((plugin_dir / "wheels").glob("*.whl"))
    for path in [plugin_dir / "install.sh", plugin_dir / "requirements.txt", *wheels]:
        digest.update(f"{path.relative_to(plugin_dir)}\0".encode())
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


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
    """Runs the steps, reporting each with ``report`` and counting failures.

    Args:
        max_metadata: bytes of one metadata file read into memory.
        max_unpacked: bytes unpacked in all.
        install_timeout: seconds install.sh may run.
    """

    def __init__(self, zip_path: str, *, python: str = sys.executable, install: bool = True,
                 cache: bool = True,
                 report: Callable[[str], None] = print, init_timeout: float = 60.0,
                 ekuiper: int = 2, install_timeout: float = INSTALL_TIMEOUT,
                 max_metadata: int = MAX_METADATA, max_unpacked: int = MAX_UNPACKED) -> None:
        self.zip_path = Path(zip_path)
        self.python = python
        self.install = install
        self.cache = cache
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
        with PluginZip.open(self.zip_path, max_metadata=self.max_metadata,
                            max_unpacked=self.max_unpacked) as plugin:
            entries = plugin.scan()
            self.ok(f"zip: {len(entries.files)} files, no absolute paths, no '..', no links, "
                    "no name twice")
            info = plugin.plugin_json()
            counts = {kind.folder: info.get(kind.folder) or [] for kind in KINDS}
            listed = ", ".join(f"{len(v)} {k}" for k, v in counts.items() if v)
            self.ok(f"{plugin.name}.json: version {info.get('version', '?')}, executable "
                    f"{info['executable']}, {listed}")
            required = plugin.required()
            self.ok(f"required files present: {', '.join(required)}")
            self._symbol_metadata(plugin)
            plugin.unpack(tmp)
            self.ok(f"unpacked as eKuiper does: code into plugins/portable/{plugin.name}/, "
                    "metadata into etc/")
        plugin_dir = layout.plugin_dir(tmp, plugin.name)
        self._install(plugin_dir)
        self._start(plugin.name, info, plugin_dir, tmp)

    def _symbol_metadata(self, plugin: PluginZip) -> None:
        entries = plugin.entries
        for kind in KINDS:
            for symbol in plugin.info.get(kind.folder) or []:
                path = layout.zip_metadata(kind, symbol)
                try:
                    meta = orjson.loads(plugin.read(entries.file(path)))
                except CheckFailed as err:
                    if path in entries.files or path in entries.folders:
                        self.fail(str(err))
                    else:
                        self.fail(f"{kind.word} {symbol}: no {path} to describe it in eKuiper's UI")
                    continue
                except orjson.JSONDecodeError as err:
                    self.fail(f"{path} is not valid JSON ({err})")
                    continue
                if not isinstance(meta, dict) or not isinstance(meta.get("about"), dict):
                    self.fail(f"{path} has no 'about' object; eKuiper rejects it")
                    continue
                self.ok(f"{path} describes {kind.word} {symbol}")

    def _install(self, plugin_dir: Path) -> None:
        if not (plugin_dir / "install.sh").exists():
            self.ok("no install.sh to run")
            return
        if not self.install:
            self.ok("install.sh skipped (--no-install)")
            return
        environment = plugin_dir / ENVIRONMENT
        cached = cache_dir() / environment_key(plugin_dir, self.python) if self.cache else None
        if cached is not None and (cached / "bin" / "python").exists():
            os.utime(cached)
            environment.symlink_to(cached, target_is_directory=True)
            self.ok(f"install.sh not run: its environment, built by an earlier check of the "
                    f"same requirements and wheels, is reused from {cached}")
            return
        seconds = run_install_sh(plugin_dir, [self.python], self.install_timeout)
        built = f" and built the plugin's environment {ENVIRONMENT}" \
            if environment.is_dir() else ""
        self.ok(f"install.sh finished in {seconds or 0:.1f} s{built}")
        if cached is not None and environment.is_dir() and not environment.is_symlink():
            _keep(environment, cached)

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
                missing = _missing_module(host)
                if missing == "kuiperlite":
                    environment = plugin_dir / ENVIRONMENT
                    python = str(environment / "bin" / "python") if environment.is_dir() \
                        else self.python
                    raise CheckFailed("the zip ships no kuiperlite, and " + not_installed(
                        python, f"plugins/portable/{name}")) from None
                if missing is not None:
                    raise CheckFailed(
                        f"the plugin imports {missing}, which its zip does not provide: name "
                        "it in the plugin's requirements (requirements.txt beside it, or "
                        "package --requirements) and package again") from None
                raise CheckFailed(f"the plugin did not start: {err}") from None
            self.ok(f"started python -u {info['executable']} in plugins/portable/{name}; "
                    f"handshake after {time.monotonic() - started:.2f} s")
            self._symbols(host, info, root)
        finally:
            host.close()

    def _symbols(self, host: Host, info: dict[str, Any], root: Path) -> None:
        for i, symbol in enumerate(info.get("sources") or []):
            with self.step(f"source {symbol}", "started and stopped with its default profile"):
                config = _field_defaults(layout.metadata_file(root, SOURCE, symbol))
                yaml = layout.metadata_file(root, SOURCE, symbol, ".yaml")
                config.update(read_profile(_text(yaml, self.max_metadata)))
                host.start_source(symbol, rule="kuiperlite_check", op="source", instance=i,
                                  config=config).stop()
        for i, symbol in enumerate(info.get("sinks") or []):
            with self.step(f"sink {symbol}", "started and stopped"):
                config = _field_defaults(layout.metadata_file(root, SINK, symbol))
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


def _missing_module(host: Host) -> Optional[str]:
    """The top-level module whose import failed in the plugin's output, or None."""
    process = host.process
    for line in list(process.output) if process is not None else []:
        found = _MISSING.search(line)
        if found:
            return found.group(1).split(".")[0]
    return None


def _keep(environment: Path, cached: Path) -> None:
    """Copy a built environment into the cache as ``cached``, whole or not at all, then
    drop the least recently used beyond :data:`MAX_CACHED`."""
    partial = cached.with_name(f".{cached.name}.{os.getpid()}")
    try:
        shutil.copytree(environment, partial, symlinks=True)
        partial.rename(cached)
    except OSError:  # another check kept it first, or the cache cannot be written
        shutil.rmtree(partial, ignore_errors=True)
        return
    kept = sorted((p for p in cached.parent.iterdir() if not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[MAX_CACHED:]:
        shutil.rmtree(old, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    """The environment without this interpreter's import path, as under eKuiper."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def check(zip_path: str, *, python: Optional[str] = None, install: bool = True,
          cache: bool = True, report: Callable[[str], None] = print, ekuiper: int = 2,
          install_timeout: float = INSTALL_TIMEOUT) -> bool:
    """Check a plugin zip; True when every step passed.

    Args:
        zip_path: the ``<name>.zip`` to check.
        python: the interpreter eKuiper runs (default: this one).
        install: run the zip's install.sh (off for offline machines).
        cache: reuse an environment an earlier check built from the same
            requirements and wheels, and keep the one this check builds.
        report: called with each line of the report.
        ekuiper: the eKuiper generation whose host to behave like, 2 or 1.
        install_timeout: seconds install.sh may run before it is stopped.
    """
    return Checker(zip_path, python=python or sys.executable, install=install, cache=cache,
                   report=report, ekuiper=ekuiper, install_timeout=install_timeout).run()
