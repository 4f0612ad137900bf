from pathlib import Path

import pytest

from kuiperlite.declare.kinds import FUNCTION, SINK, SOURCE
from kuiperlite.protocol import layout


def test_a_plugin_and_its_metadata_go_where_ekuipers_installer_puts_them():
    base = Path("/ek")
    assert layout.plugin_dir(base, "demo") == Path("/ek/plugins/portable/demo")
    assert layout.plugin_json(base, "demo") == Path("/ek/plugins/portable/demo/demo.json")
    assert layout.plugin_zip(base, "demo") == Path("/ek/plugins/portable/demo.zip")
    assert layout.metadata_file(base, SOURCE, "feed", ".yaml") == Path("/ek/etc/sources/feed.yaml")
    assert layout.metadata_file(base, FUNCTION, "f") == Path("/ek/etc/functions/f.json")
    assert layout.zip_metadata(SINK, "out") == "sinks/out.json"
    assert layout.installed_path(base, "demo", "sinks/out.json") == Path("/ek/etc/sinks/out.json")
    assert layout.installed_path(base, "demo", "lib/sinks/x.py") == Path(
        "/ek/plugins/portable/demo/lib/sinks/x.py")


@pytest.mark.parametrize("name", ["demo", "my_plugin-2"])
def test_plugin_names_ekuiper_keeps(name):
    assert layout.name_fault(name, kept=True) is None


@pytest.mark.parametrize("name", ["", "a.b", "a b", "x/y", "démo", "demo\n"])
def test_plugin_names_ekuiper_refuses(name):
    assert layout.name_fault(name, kept=True) == layout.PLUGIN_NAME_RULE


@pytest.mark.parametrize("name", ["rule1", "a.b", "règle 7"])
def test_names_that_may_become_file_names(name):
    assert layout.name_fault(name) is None


@pytest.mark.parametrize("name", ["a/b", "..", "a\x00b", "tab\t", "del\x7f", "c1\x85"])
def test_names_that_may_not_become_file_names(name):
    assert layout.name_fault(name) == layout.FILE_NAME_RULE


def test_the_base_of_a_plugin_folder_is_where_ekuiper_runs():
    base = Path("/var/lib/kuiper")
    assert layout.base_of(layout.plugin_dir(base, "pysam")) == base
    assert layout.base_of(base / "plugins" / "pysam") is None
    assert layout.base_of(Path("/")) is None
