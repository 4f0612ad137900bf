"""The table of environment variables: each read falls back to its default with a
warning, and what the docs and the command line say comes from the table."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from kuiperlite import launcher, settings
from kuiperlite.settings import Setting

RUNNING = Path(__file__).parents[1] / "docs" / "running.md"
PACKAGE = Path(settings.__file__).parent


@pytest.mark.parametrize("parse, good, value", [
    (settings.seconds, "2.5", 2.5), (settings.number, "0", 0.0), (settings.text, "", ""),
    (settings.folder, "/x", "/x"), (settings.flag, "0", False), (settings.flag, "1", True),
    (settings.generation, "1", 1), (settings.level, " debug", "DEBUG"),
])
def test_each_parser_takes_its_values(parse, good, value):
    assert parse(good) == value


@pytest.mark.parametrize("parse, bad", [
    (settings.seconds, "soon"), (settings.seconds, "0"), (settings.seconds, "-1"),
    (settings.seconds, "inf"), (settings.seconds, "nan"), (settings.number, "-0.5"),
    (settings.number, "many"), (settings.folder, ""), (settings.flag, "yes"),
    (settings.generation, "3"), (settings.generation, "two"), (settings.level, "LOUD"),
])
def test_a_value_that_does_not_parse_is_a_warning_and_the_default(caplog, parse, bad):
    setting = Setting("KL_TEST_SETTING", "fallback", parse, "what it takes", "a test")
    with caplog.at_level(logging.WARNING, logger="kuiperlite"):
        assert setting.read({"KL_TEST_SETTING": bad}) == "fallback"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"KL_TEST_SETTING={bad!r}" in caplog.messages[0]


def test_an_unset_variable_is_the_default_without_a_word(caplog):
    with caplog.at_level(logging.DEBUG, logger="kuiperlite"):
        assert settings.KEEPALIVE.read({}) == 5.0
        assert settings.STATE_DIR.read({}) is None
    assert caplog.messages == []


def test_every_variable_the_package_names_is_in_the_table():
    named = set()
    for path in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"KUIPERLITE_[A-Z_]+", path.read_text()))
    # The executable's mark across its re-exec is its own, never set by a user.
    assert named - {launcher.REENTERED} == {s.name for s in settings.ALL}


def test_the_documented_table_is_the_one_the_settings_render():
    text = RUNNING.read_text()
    rows = [line + "\n" for line in text.splitlines() if line.startswith("| `KUIPERLITE_")]
    header = settings.table().splitlines(keepends=True)[:2]
    assert "".join(header + rows) == settings.table()
    assert settings.table() in text


def test_the_command_line_s_defaults_are_the_settings_and_constants_it_stands_for():
    from kuiperlite import cli
    from kuiperlite.dev import deploy, installer, server

    deployed = cli.parse_args(["deploy", "p.zip", "--into", "d"])
    assert (deployed.request_timeout, deployed.wait, deployed.install_timeout) == (
        deploy.REQUEST_TIMEOUT, deploy.STATUS_WAIT, installer.INSTALL_TIMEOUT)
    served = cli.parse_args(["serve", "p.py"])
    assert (served.max_body, served.request_timeout, served.max_upload) == (
        server.MAX_BODY, server.REQUEST_TIMEOUT, server.MAX_UPLOAD)
    assert cli.parse_args(["check", "p.zip"]).install_timeout == installer.INSTALL_TIMEOUT
    assert cli.parse_args(["status", "p", "--url", "u"]).request_timeout == deploy.REQUEST_TIMEOUT


def test_the_command_line_s_help_says_the_defaults_and_the_variables_from_their_homes(capsys):
    from kuiperlite import cli
    from kuiperlite.dev import deploy

    helped = {}
    for command in ("deploy", "serve", "status", "state"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        helped[command] = " ".join(capsys.readouterr().out.split())
    assert f"(default: {deploy.REQUEST_TIMEOUT:g})" in helped["deploy"]
    assert "(default: 1 MiB)" in helped["serve"] and "(default: 1 GiB;" in helped["serve"]
    assert f"(default: {settings.EKUIPER_TOKEN.name})" in helped["status"]
    assert settings.STATE_DIR.name in helped["state"]
    assert settings.STATE_URL.name in helped["state"]


def test_a_plugin_s_run_imports_no_tooling_module_for_its_defaults():
    import subprocess
    import sys

    code = ("import sys; from kuiperlite import cli; cli.parse_args(['run', 'p.py', '--name', "
            "'x']); print(sorted(m for m in sys.modules if m.startswith('kuiperlite.dev')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout == "[]\n"
