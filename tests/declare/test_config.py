"""Binding a start command's config to a symbol's keyword-only parameters."""

import logging

import pytest

from kuiperlite import ConfigError, source
from kuiperlite.declare.symbols import marks_of, read


@source
def ticker(ctx, *, interval: float = 1.0, count: int):
    yield {}


def spec():
    (mark,) = marks_of(ticker)
    return read(ticker, mark)


def test_a_misspelt_key_gets_a_did_you_mean_warning_and_ekuipers_keys_none(caplog):
    with caplog.at_level(logging.WARNING, logger="kuiperlite"):
        kwargs = spec().bind_config({"count": 3, "intervall": 2, "format": "json",
                                     "datasource": "x", "unrelated": 1, "excludeFields": ["a"],
                                     "hasHeader": True, "encProps": {}})
    assert kwargs == {"count": 3}
    assert [r.getMessage() for r in caplog.records] == [
        "config 'intervall' of the source 'ticker' is not one of its parameters, and is "
        "ignored; did you mean 'interval'?"]


def test_a_missing_or_wrong_value_is_one_sentence():
    with pytest.raises(ConfigError, match=r"^The source 'ticker' needs config 'count' "
                                          r"\(an integer\), but the rule did not set it\.$"):
        spec().bind_config({})
    with pytest.raises(ConfigError, match="Config 'interval' of the source 'ticker' must be a "
                                          "number, got the string 'fast'."):
        spec().bind_config({"count": 1, "interval": "fast"})
