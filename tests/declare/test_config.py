"""Binding a start command's config to a symbol's keyword-only parameters."""

import logging

from kuiperlite import source
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
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "'interval'" in caplog.messages[0]

