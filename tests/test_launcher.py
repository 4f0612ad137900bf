"""launcher: the executable of a packaged plugin serves the module beside it."""

import shutil
import sys

from kuiperlite import launcher
from kuiperlite.declare.kinds import LAUNCHER_SUFFIX


def test_a_copy_named_for_the_module_serves_it_as_ekuiper_runs_it(kuiperlite_host, copy_plugin):
    plugin = copy_plugin("launched", main=False)  # no run() line of its own
    executable = plugin.with_name(plugin.stem + LAUNCHER_SUFFIX)
    shutil.copy(launcher.__file__, executable)
    host = kuiperlite_host(executable, executable=True, name=plugin.stem)
    with host.function("first") as fn:
        assert fn.call(1) == ["first", 1]


def test_a_broken_environment_is_named_and_the_plugin_served_all_the_same(kuiperlite_host,
                                                                           copy_plugin):
    """An environment whose python is gone: one line says so, and the python eKuiper
    started serves the plugin."""
    plugin = copy_plugin("launched", main=False)
    executable = plugin.with_name(plugin.stem + LAUNCHER_SUFFIX)
    shutil.copy(launcher.__file__, executable)
    environment = plugin.parent / launcher.ENVIRONMENT
    (environment / "bin").mkdir(parents=True)
    (environment / "bin" / "python").symlink_to(plugin.parent / "gone")
    host = kuiperlite_host(executable, executable=True, name=plugin.stem)
    with host.function("first") as fn:
        assert fn.call(1) == ["first", 1]
    python = environment / "bin" / "python"
    assert host.process.printed(
        f"kuiperlite: the plugin's environment {environment} is broken ({python}: No such "
        f"file or directory); going on with {sys.executable}: rerun install.sh.")
