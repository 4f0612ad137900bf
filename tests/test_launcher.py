"""launcher: the executable of a packaged plugin serves the module beside it."""

import shutil

from kuiperlite import launcher


def test_a_copy_named_for_the_module_serves_it_as_ekuiper_runs_it(kuiperlite_host, copy_plugin):
    plugin = copy_plugin("launched", main=False)  # no run() line of its own
    executable = plugin.with_name(plugin.stem + launcher.SUFFIX)
    shutil.copy(launcher.__file__, executable)
    host = kuiperlite_host(executable, executable=True, name=plugin.stem)
    with host.function("first") as fn:
        assert fn.call(1) == ["first", 1]
