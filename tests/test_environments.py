"""Every plugin in an environment of its own, end to end: packaged, deployed into a
folder laid out as eKuiper's, and launched as eKuiper launches it."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev.host import PORTABLE_CONFIG, Host
from kuiperlite.launcher import ENVIRONMENT

from conftest import unique, wait_until
from wheels import tiny_wheel, with_wheels

# kltpin is imported when called: package imports the plugin where kltpin is not.
# eKuiper names a function across all plugins: each plugin's has a name of its own.
PINNED = '''\
from kuiperlite import function


@function(name="pinned_{tag}")
def pinned() -> str:
    """The version of kltpin this plugin runs with."""
    import kltpin

    return kltpin.VERSION
'''


def pinned_zip(folder: Path, version: str, *wheel_folders: Path) -> Path:
    """A plugin, named uniquely, whose requirements pin kltpin to ``version``, packaged
    with the wheels of ``wheel_folders``."""
    folder.mkdir(parents=True)
    path = folder / f"{unique('pin')}.py"
    path.write_text(PINNED.replace("{tag}", version.replace(".", "_")))
    (folder / "requirements.txt").write_text(f"kltpin=={version}\n")
    return with_wheels(package.build(load(str(path)), str(folder / "dist")), *wheel_folders)


def deploy_into(zip_path: Path, base: Path, python: str, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kuiperlite", "deploy", str(zip_path),
                           "--into", str(base), "--shell-para", python, *more],
                          capture_output=True, text=True, timeout=120)


def launch(plugin_dir: Path, python: str) -> Host:
    """Start the installed plugin as eKuiper does: ``python -u <executable> '<conf>'`` in
    its folder, with nothing of this interpreter's on the import path."""
    name = plugin_dir.name
    info = json.loads((plugin_dir / f"{name}.json").read_text())
    host = Host(name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    host.spawn([python, "-u", str(plugin_dir / info["executable"]), PORTABLE_CONFIG],
               str(plugin_dir), env)
    return host


def imports(python: str, module: str, cwd: Path) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], cwd=cwd, capture_output=True,
                          timeout=30).returncode == 0


def documented(topic: str) -> list[str]:
    """The lines of the block docs/environments.md shows for ``topic``."""
    page = (Path(__file__).parents[1] / "docs" / "environments.md").read_text()
    return page.split(f"<!-- not run: {topic}, held to this by tests/test_environments.py -->"
                      "\n```\n")[1].split("```")[0].splitlines()


def holds_to_the_documented_layout(plugin_dir: Path, python: str) -> None:
    """Each file the page lists is there, nested as indented; ``[x]`` is optional."""
    name, parents = plugin_dir.name, {0: plugin_dir.parents[2]}
    for line in documented("an installed plugin's folder"):
        depth = len(line) - len(line.lstrip())
        listed, link, _ = re.split(r" {3,}", line.strip())[0].partition(" -> ")
        for entry in listed.split():
            if not entry.startswith("["):
                glob = entry.replace("myplugin", name).replace("3.X", "3.*").rstrip("/")
                found = sorted(parents[depth].glob(glob))
                assert found, f"{glob} is not in {parents[depth]}"
                parents[depth + 2] = found[0]
        if link:  # made from eKuiper's python: the same installation underneath
            assert base_prefix(str(parents[depth + 2])) == base_prefix(python), line


def base_prefix(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(sys.base_prefix)"],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def holds_to_the_documented_log(plugin_dir: Path, python: str) -> None:
    """install.sh, run again as eKuiper runs it, prints the lines the page shows in order;
    ``...`` stands for pip's lines and the folder above the plugins."""
    out = subprocess.run(["bash", "install.sh", python], cwd=plugin_dir, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    shown = [".*" if line == "...pip's lines..." else
             re.escape(line).replace(r"\.\.\.", ".*").replace("myplugin", plugin_dir.name)
             .replace("python3", re.escape(python)) for line in documented("install.sh's output")]
    assert re.fullmatch("\n".join(shown) + "\n", out.stdout, re.DOTALL), out.stdout


def test_two_plugins_pinning_one_package_each_run_with_their_own(
        tmp_path, runtime_wheels, bare_python):
    pins = tmp_path / "pins"
    tiny_wheel(pins, "kltpin", "1.0")
    tiny_wheel(pins, "kltpin", "2.0")
    alpha = pinned_zip(tmp_path / "alpha", "1.0", runtime_wheels, pins)
    beta = pinned_zip(tmp_path / "beta", "2.0", runtime_wheels, pins)
    base = tmp_path / "ekuiper"
    for zip_path in (alpha, beta):
        out = deploy_into(zip_path, base, bare_python)
        assert out.returncode == 0, out.stdout + out.stderr
    dirs = [base / "plugins" / "portable" / z.stem for z in (alpha, beta)]
    holds_to_the_documented_layout(dirs[0], bare_python)
    holds_to_the_documented_log(dirs[0], bare_python)
    hosts = [launch(plugin_dir, bare_python) for plugin_dir in dirs]  # both at once
    try:
        for host, plugin_dir, version in zip(hosts, dirs, ("1.0", "2.0")):
            host.wait_handshake(60)
            with host.function(f"pinned_{version.replace('.', '_')}") as fn:
                assert fn.call() == version
            # The process eKuiper started (the same pid) now runs the plugin's own python.
            with open(f"/proc/{host.pid}/cmdline") as f:
                assert f.read().split("\0")[0] == str(plugin_dir / ENVIRONMENT / "bin" / "python")
    finally:
        for host in hosts:
            host.close()
    assert not imports(bare_python, "kltpin", tmp_path)
    assert not imports(bare_python, "kuiperlite", tmp_path)
    assert not imports(bare_python, "pynng", tmp_path)


def test_without_an_environment_the_executable_says_so_and_goes_on(tmp_path):
    """Run with --no-install, the plugin has no environment: the launcher says so in one
    line and serves the plugin with the python that started it."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    path = folder / f"{unique('bare')}.py"
    path.write_text(textwrap.dedent('''\
        from kuiperlite import function


        @function
        def one() -> int:
            return 1
        '''))
    base = tmp_path / "ekuiper"
    zip_path = package.build(load(str(path)), str(folder / "dist"))
    out = deploy_into(zip_path, base, sys.executable, "--no-install")
    assert out.returncode == 0, out.stderr
    plugin_dir = base / "plugins" / "portable" / path.stem
    host = launch(plugin_dir, sys.executable)
    try:
        host.wait_handshake(60)
        with host.function("one") as fn:
            assert fn.call() == 1
        said = (f"kuiperlite: the plugin has no environment at {plugin_dir / ENVIRONMENT} "
                f"(install.sh has not built it); going on with {sys.executable}.")
        wait_until(lambda: host.process.printed(said), message="the launcher's sentence")
    finally:
        host.close()
