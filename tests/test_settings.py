"""The table of environment variables: each read falls back to its default with a
warning, and what the docs and the command line say comes from the table."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from kuiperlite import settings
from kuiperlite.settings import Setting

README = Path(__file__).parents[1] / "README.md"
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
    assert caplog.messages == [f"KL_TEST_SETTING={bad!r} is not what it takes; using fallback"]


def test_an_unset_variable_is_the_default_without_a_word(caplog):
    with caplog.at_level(logging.DEBUG, logger="kuiperlite"):
        assert settings.KEEPALIVE.read({}) == 5.0
        assert settings.STATE_DIR.read({}) is None
    assert caplog.messages == []


def test_a_number_s_default_is_said_as_the_docs_say_it(caplog):
    assert settings.KEEPALIVE.read({"KUIPERLITE_KEEPALIVE": "soon"}) == 5.0
    assert caplog.messages == ["KUIPERLITE_KEEPALIVE='soon' is not a positive number of "
                               "seconds; using 5"]


def test_every_variable_the_package_names_is_in_the_table():
    named = set()
    for path in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"KUIPERLITE_[A-Z_]+", path.read_text()))
    assert named == {s.name for s in settings.ALL}


def test_the_readme_table_is_the_one_the_settings_render():
    text = README.read_text()
    rows = [line + "\n" for line in text.splitlines() if line.startswith("| `KUIPERLITE_")]
    header = settings.table().splitlines(keepends=True)[:2]
    assert "".join(header + rows) == settings.table()
    assert settings.table() in text
