"""The installable zip: metadata, code, kuiperlite itself and an install.sh.

The zip holds at its root what eKuiper's installer expects: ``<name>.json``,
the executable, ``sources/``, ``sinks/`` and ``functions/``. Beside them go
the plugin's local modules (found by following its imports), data files
chosen with include globs, a copy of kuiperlite (pure Python, so the plugin
runs with a python that has only pynng, orjson and attrs), the
requirements, optionally their wheels, and an ``install.sh`` that installs
them for the python eKuiper runs.

Nothing outside the plugin's folder goes in: a file to ship that is, or
lies in, a symbolic link leading out of the folder is refused with a
PluginError (a link to a file inside the folder is shipped under its own
name). Refusing, rather than skipping, keeps a plugin from being shipped
without a file it needs; ``--exclude`` leaves such a file out on purpose.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from .. import settings
from ..declare.plugin import Plugin
from ..errors import PluginError
from . import metadata


def runtime_requirements() -> list[str]:
    """kuiperlite's own dependencies, as its installed metadata (pyproject.toml) lists them."""
    import importlib.metadata

    try:
        listed = importlib.metadata.requires("kuiperlite") or []
    except importlib.metadata.PackageNotFoundError:
        raise PluginError("kuiperlite is not installed, so its requirements are unknown; "
                          "install it (pip install .) before packaging.") from None
    return [r for r in listed if ";" not in r]


KUIPERLITE = Path(__file__).resolve().parents[1]
LAUNCHER = KUIPERLITE / "launcher.py"
SKIP_PARTS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", ".mypy_cache",
              ".pytest_cache", ".ruff_cache", ".tox", "node_modules"}
# Fixed timestamps and modes make the zip a function of its contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)



def _launcher_constant(name: str) -> str:
    """A string constant of the launcher's, read from its file: the zip ships the
    launcher as a file, and the build tools never import it."""
    for node in ast.parse(LAUNCHER.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [name]:
            return str(ast.literal_eval(node.value))
    raise LookupError(f"{LAUNCHER} assigns no {name}")


ENVIRONMENT = _launcher_constant("ENVIRONMENT")  # the plugin's environment, in its folder

# The variables install.sh reads, by their names in the settings table.
_VARIABLES = {"python": settings.PYTHON.name, "pip_args": settings.PIP_ARGS.name}
# Every value of the plugin's goes in through shlex.quote, so nothing in it runs.
INSTALL_SH_HEAD = '''\
#!/bin/sh
# eKuiper runs this script from the plugin's folder when it installs the zip.
# Usage: install.sh [PYTHON]   (default: ${python}, else python, else python3)
# Extra pip options: {pip_args}.
set -e
PLUGIN={name}
cd "$(dirname "$0")"
PYTHON="${{1:-${{{python}:-python}}}}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then PYTHON=python3; fi
'''
INSTALL_SH_REQUIREMENTS = '''\
if [ -d wheels ]; then
  echo "installing the requirements of $PLUGIN from the bundled wheels (offline)"
  pip_run install --disable-pip-version-check ${pip_args} --no-index \\
    --find-links wheels -r requirements.txt
else
  echo "installing the requirements of $PLUGIN with pip"
  pip_run install --disable-pip-version-check ${pip_args} -r requirements.txt
fi
'''
# The plugin's conda env (virtualEnvType) takes the requirements, as eKuiper documents.
INSTALL_SH_CONDA = INSTALL_SH_HEAD + '''\
# Installs the requirements of the plugin PLUGIN into its conda env.
pip_run() {{ conda run -n {env} "$PYTHON" -m pip "$@"; }}
''' + INSTALL_SH_REQUIREMENTS
# Otherwise the plugin gets a virtual environment of its own in its folder,
# made with PYTHON (which it leaves as it was) and swapped in only once
# complete; the plugin's executable re-enters it when it starts. pip
# installs into it from PYTHON's pip when that pip can (--python, pip 22.3),
# else from a pip of its own that ensurepip brings (offline).
INSTALL_SH_VENV = INSTALL_SH_HEAD + '''\
# Builds the environment of the plugin PLUGIN: a virtual environment ENV in this
# folder, with the plugin's requirements; the python eKuiper runs is left as it was.
ENV={env}
NEW="$ENV.new"
rm -rf "$NEW"
trap 'rm -rf "$NEW"' EXIT
echo "building the environment of $PLUGIN in $(pwd)/$ENV with $PYTHON"
"$PYTHON" -m venv --without-pip "$NEW"
if "$PYTHON" -m pip --python "$NEW/bin/python" --version >/dev/null 2>&1; then
  pip_run() {{ "$PYTHON" -m pip --python "$NEW/bin/python" "$@"; }}
elif "$NEW/bin/python" -m ensurepip --default-pip >/dev/null 2>&1; then
  pip_run() {{ "$NEW/bin/python" -m pip "$@"; }}
else
  echo "$PYTHON has no pip that installs into another python (pip 22.3 or later) and" \\
    "no ensurepip to make one: install pip for it (e.g. python3-pip) and run again" >&2
  exit 1
fi
''' + INSTALL_SH_REQUIREMENTS + '''\
rm -rf "$ENV.old"
if [ -d "$ENV" ]; then mv "$ENV" "$ENV.old"; fi
mv "$NEW" "$ENV"
rm -rf "$ENV.old"
echo "the environment of $PLUGIN is ready in $(pwd)/$ENV"
'''


def install_sh(plugin: Plugin) -> str:
    """The zip's install.sh: the requirements (from the bundled wheels when there are
    some) go into a virtual environment in the plugin's folder, or into the plugin's
    conda env when it names one."""
    name = shlex.quote(plugin.name)
    env = plugin.about.conda_env
    if env:
        return INSTALL_SH_CONDA.format(name=name, env=shlex.quote(env), **_VARIABLES)
    return INSTALL_SH_VENV.format(name=name, env=shlex.quote(ENVIRONMENT), **_VARIABLES)


def local_modules(entry: Path) -> list[Path]:
    """The modules and packages under ``entry``'s folder that it imports, transitively.

    The paths are in the folder; one may be a link leading out of it, which
    :func:`contents` refuses to ship.
    """
    root = entry.parent
    found: list[Path] = []
    pending = [entry]
    while pending:
        path = pending.pop()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for name in _imported_names(tree):
            top = name.split(".")[0]
            for candidate in (root / f"{top}.py", root / top / "__init__.py"):
                if candidate.is_file() and candidate != entry:
                    files = [candidate] if candidate.name != "__init__.py" else sorted(
                        p for p in candidate.parent.rglob("*.py") if not _skipped(p, root))
                    for file in files:
                        if file not in found:
                            found.append(file)
                            pending.append(file)
    return sorted(found)


def _imported_names(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _skipped(path: Path, root: Path) -> bool:
    return any(part in SKIP_PARTS for part in path.relative_to(root).parts)


def _globbed(root: Path, patterns: Iterable[str]) -> list[Path]:
    out: set[Path] = set()
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise PluginError(f"--include {pattern!r} must stay inside the plugin's folder "
                              f"{root}: give a glob relative to it, without '..'.")
        matches = [p for p in root.glob(pattern) if p.is_file() and not _skipped(p, root)]
        if not matches:
            raise PluginError(f"--include {pattern!r} matches no file under {root}.")
        out.update(matches)
    return sorted(out)


def _inside(path: Path, name: str, root: Path) -> None:
    """Refuse a file whose real path is not in the plugin's folder ``root`` (resolved)."""
    target = path.resolve()
    if not target.is_relative_to(root):
        raise PluginError(f"{name} leads outside the plugin's folder {root}, to {target}; "
                          "package follows no link out of the folder: copy the file in, or "
                          "leave it out with --exclude.")


def _requirements(plugin_file: Path, requirements: Optional[str]) -> list[str]:
    path = Path(requirements) if requirements else plugin_file.with_name("requirements.txt")
    lines: list[str] = []
    if requirements and not path.is_file():
        raise PluginError(f"The requirements file {requirements} does not exist.")
    if path.is_file():
        for number, line in requirement_lines(path.read_text(encoding="utf-8")):
            option = _OPTION.match(line)
            if option and option.group(1) in _INCLUDES:
                raise PluginError(f"{path}, line {number}: {line!r} names another file, which "
                                  "the zip would not hold; write its lines into this file "
                                  "instead.")
            if line not in lines:
                lines.append(line)
    taken = {project_of(line) for line in lines}
    return lines + [r for r in runtime_requirements() if project_of(r) not in taken]


# A requirements file as pip reads it (pip's own parser is not a dependency of ours).
_COMMENT = re.compile(r"(^|\s)#.*")  # a '#' inside a URL (#sha256=, #egg=) is not one
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508
_AFTER_NAME = ("", "[", "(", "<", ">", "=", "!", "~", ";", "@")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_ARCHIVE = re.compile(r"\.(whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)\Z", re.IGNORECASE)
_EGG = re.compile(r"[#&]egg=([^&]*)")
_OPTION = re.compile(r"(--[A-Za-z0-9-]+|-[A-Za-z])[=\s]*(.*)", re.DOTALL)
_INCLUDES = ("-r", "--requirement", "-c", "--constraint")
_EDITABLE = ("-e", "--editable")


def requirement_lines(text: str) -> list[tuple[int, str]]:
    """The lines of a requirements file as pip reads them, each with the number it starts on.

    A line ending in a backslash goes on on the next; a ``#`` at the start of
    a line or after whitespace starts a comment, but not one inside a URL
    (``#sha256=...``, ``#egg=...``); blank lines go.
    """
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for number, line in enumerate([*text.splitlines(), ""], 1):
        if not parts:
            first = number
        comment = line.lstrip().startswith("#")
        if line.endswith("\\") and not comment:
            parts.append(line[:-1])
            continue
        parts.append(" " + line if comment else line)
        joined = _COMMENT.sub("", "".join(parts)).strip()
        parts = []
        if joined:
            out.append((first, joined))
    return out


def project_of(line: str) -> Optional[str]:
    """The project a requirement line installs, its name normalized (PEP 503), or None.

    Reads ``name``, ``name[extras] ...``, ``name @ url``, a URL or an editable
    (``-e``) with ``#egg=name``, and a wheel's URL or path. None for another
    option line and for a link whose project pip learns only by building it.
    """
    option = _OPTION.match(line)
    if option:
        return _link_project(option.group(2)) if option.group(1) in _EDITABLE else None
    name = _NAME.match(line)
    if name and not _URL.match(line) and not _names_a_file(line) \
            and line[name.end():].lstrip()[:1] in _AFTER_NAME:
        return _normalized(name.group())
    return _link_project(line)


def _names_a_file(line: str) -> bool:
    """Whether pip takes the line for an archive's path: its text before a marker,
    less extras at its very end, ends like one (``pkg.tar.gz``, ``x.zip[a]``), and
    is not ``name @ url`` (an ``@`` after something that does not look like a path)."""
    text = re.sub(r"\[[^\]]+\]\Z", "", line.split(";", 1)[0])
    if not _ARCHIVE.search(text):
        return False
    before, at, _ = text.partition("@")
    return not at or before.startswith(".") or "/" in before


def _link_project(link: str) -> Optional[str]:
    words = link.split()
    link = words[0] if words else ""
    egg = _EGG.search(link)
    if egg:
        name = _NAME.match(egg.group(1))
        return _normalized(name.group()) if name else None
    file = link.split("#")[0].split("?")[0].rsplit("/", 1)[-1]
    if file.lower().endswith(".whl") and file.count("-") >= 4:  # name-version-...-platform.whl
        return _normalized(file.split("-")[0])
    return None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# The part of kuiperlite a plugin runs: these packages, every module in each
# one's folder, and these modules of the top level. Not the build tools,
# eKuiper's side or the test helpers; the launcher goes in as the executable.
SHIPPED = ("kuiperlite.declare", "kuiperlite.protocol", "kuiperlite.serve",
           "kuiperlite.serve.stores")
SHIPPED_MODULES = ("kuiperlite", "kuiperlite.__main__", "kuiperlite.cli", "kuiperlite.errors",
                   "kuiperlite.settings")


def _kuiperlite_files() -> list[tuple[str, Path]]:
    """The files of :data:`SHIPPED` and :data:`SHIPPED_MODULES`, by their name in the zip."""
    root = KUIPERLITE.parent
    files = []
    for name in SHIPPED_MODULES:
        path = root / name.replace(".", "/")
        files.append(path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))
    for package in SHIPPED:
        files += (root / package.replace(".", "/")).glob("*.py")
    return sorted((path.relative_to(root).as_posix(), path) for path in files)


_LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
_MANYLINUX = re.compile(r"(manylinux_2_(\d+)|manylinux2014|manylinux2010|manylinux1)_(\w+)")


def platform_tags(platform: str) -> list[str]:
    """The pip platform tags a target accepts, newest first.

    pip matches ``--platform`` exactly, but a ``manylinux_2_28_aarch64``
    device also runs older manylinux wheels (orjson ships manylinux2014 while
    pynng ships manylinux_2_28), so a manylinux tag brings its older ones.
    """
    match = _MANYLINUX.fullmatch(platform)
    if match is None:
        return [platform]
    newest = int(match.group(2)) if match.group(2) else _LEGACY_MANYLINUX[match.group(1)]
    arch = match.group(3)
    legacy = {minor: name for name, minor in _LEGACY_MANYLINUX.items()}
    tags = []
    for minor in range(newest, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy:
            tags.append(f"{legacy[minor]}_{arch}")
    return tags


def download_wheels(requirements: list[str], folder: Path, platform: Optional[str],
                    python_version: Optional[str]) -> list[Path]:
    """Download wheels for the requirements (and their dependencies) into ``folder``."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(requirements) + "\n")
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(folder), "-r", req.name]
    for tag in platform_tags(platform) if platform else []:
        command += ["--platform", tag]
    if python_version:
        command += ["--python-version", python_version]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        os.unlink(req.name)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PluginError(f"Cannot download wheels for {platform or 'this platform'}: {detail}")
    return sorted(folder.glob("*.whl"))


def contents(plugin: Plugin, *, include: Iterable[str] = (), exclude: Iterable[str] = (),
             requirements: Optional[str] = None, wheels_dir: Optional[Path] = None
             ) -> dict[str, bytes]:
    """Every file of the zip by its name in the zip, in a fixed order.

    Raises:
        PluginError: a requirements file or include glob points at nothing, or a
            file to ship leads outside the plugin's folder.
        DefinitionError: the metadata cannot express a symbol.
    """
    if plugin.path is None:
        raise PluginError(f"Plugin {plugin.name!r} has no file to package.")
    entry = Path(plugin.path).resolve()
    root = entry.parent
    files: dict[str, bytes] = dict(metadata.files(plugin))
    executable = metadata.executable(plugin)
    code = [entry, *local_modules(entry), *_globbed(root, include)]
    for path in code:
        name = path.relative_to(root).as_posix()
        if not any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
            _inside(path, name, root)
            files.setdefault(name, path.read_bytes())
    if entry.name not in files:
        raise PluginError(f"--exclude removed the plugin file {entry.name} itself.")
    files[executable] = LAUNCHER.read_bytes()
    for name, path in _kuiperlite_files():
        files[name] = path.read_bytes()
    files["requirements.txt"] = ("\n".join(_requirements(entry, requirements)) + "\n").encode()
    files["install.sh"] = install_sh(plugin).encode()
    if wheels_dir is not None:
        for wheel in sorted(wheels_dir.glob("*.whl")):
            files[f"wheels/{wheel.name}"] = wheel.read_bytes()
    return files


def build(plugin: Plugin, out_dir: str, *, include: Iterable[str] = (),
          exclude: Iterable[str] = (), requirements: Optional[str] = None,
          wheels: bool = False, platform: Optional[str] = None,
          python_version: Optional[str] = None) -> Path:
    """Write ``<out_dir>/<name>.zip`` and return its path.

    Args:
        plugin: the collected plugin.
        out_dir: the folder the zip goes to (created if missing).
        include: globs, relative to the plugin's folder, of more files to ship.
        exclude: globs of files not to ship.
        requirements: the requirements file (default: requirements.txt beside the plugin).
        wheels: bundle the dependencies as wheels, so install.sh works offline.
        platform: the target's pip platform tag for the wheels, e.g. manylinux2014_aarch64.
        python_version: the target's Python version for the wheels, e.g. 3.11.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wheels_dir = None
        if wheels or platform or python_version:
            wheels_dir = Path(tmp)
            requirements_text = _requirements(Path(plugin.path or "."), requirements)
            download_wheels(requirements_text, wheels_dir, platform, python_version)
        files = contents(plugin, include=include, exclude=exclude, requirements=requirements,
                         wheels_dir=wheels_dir)
        out = Path(out_dir).resolve()
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{plugin.name}.zip"
        executable = metadata.executable(plugin)
        partial = target.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                _check_name(name)
                info = zipfile.ZipInfo(name, _EPOCH)
                mode = 0o755 if name in ("install.sh", executable) else 0o644
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name])
        partial.replace(target)
    return target


def _check_name(name: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or "" in parts or "\\" in name:
        raise PluginError(f"Refusing to write {name!r} into the zip: not a plain relative path.")
