"""The golden corpus in tests/golden: eKuiper 2.x's own answer to each input.

A corpus test takes one line as its ``case`` parameter (:func:`cases`), so
that ``test_golden_coverage.py`` can tell that every line of every file has
a test: a line added to a file and not taken by a test fails the suite.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = ("source_decode.jsonl", "sink_payload.jsonl", "command.jsonl", "ack.jsonl",
         "reply.jsonl", "validate_args.jsonl")


class Case(dict):  # type: ignore[type-arg]
    """One line of a corpus file, with ``file`` added: ``case``, ``input``, ``go``."""


def load(file: str) -> list[Case]:
    """Every line of ``file`` (one of :data:`FILES`)."""
    with open(GOLDEN / file, "rb") as f:
        return [Case(_loads(line), file=file) for line in f if line.strip()]


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:  # a lone surrogate escape (\ud800), which JSON allows
        return json.loads(line)


def cases(file: str) -> list[Any]:
    """``pytest.param`` for each line of ``file``, named by its case."""
    return [pytest.param(case, id=case["case"]) for case in load(file)]


def raw(fields: dict[str, Any], name: str) -> bytes:
    """The bytes of field ``name``: ``name_b64`` when there is one (bytes that
    are not UTF-8), else the text as UTF-8."""
    encoded = fields.get(f"{name}_b64")
    if encoded is not None:
        return base64.b64decode(encoded)
    return str(fields[name]).encode("utf-8", "surrogatepass")
