"""eKuiper's sink pipeline in the host, held to eKuiper 2.x's own answers.

Every line of tests/golden/sink_payload.jsonl runs through the host's
pipeline (:class:`~kuiperlite.dev.sinkrule.SinkRule`).
"""

from __future__ import annotations

from typing import Any

import pytest

from kuiperlite.dev.sinkrule import RuleError, SinkRule

import golden_corpus

FILE = "sink_payload.jsonl"

# Corpus lines where the host deliberately gives another answer than eKuiper,
# and why; the test asserts that the answers differ. None today.
DIFFERENCES: dict[tuple[str, str], str] = {}

# Lines whose bytes need Go's float formatting in gowire.go_json (-0, 0.000001,
# integers from 1e20 on), which is being fixed separately.
GO_JSON_FLOATS = {"row_numbers", "row_num_1e20", "row_num_1e20_minus", "row_num_0.000001",
                  "row_num_2p63", "row_num_2p64", "prop_float_0.000001", "prop_float_1e20",
                  "prop_float_neg_zero", "prop_json_func_map"}


def expected_events(case: dict[str, Any]) -> list[dict[str, Any]]:
    """eKuiper's events for a line: what was sent (bytes, rendered props), dropped
    (error, log line), nothing for an output, rows left pending in a batch."""
    events = []
    for event in case["go"]["events"]:
        kind = event["event"]
        shown: dict[str, Any] = {"event": kind}
        if kind == "sent":
            shown["bytes"] = golden_corpus.raw(event, "bytes")
            shown["props"] = event.get("props_rendered", {})
        elif kind == "dropped":
            shown["error"], shown["logged"] = event["error"], event["logged"]
        elif kind == "pending":
            shown["rows"] = int(event["note"].split()[0])
        events.append(shown)
    return events


def host_events(rule: SinkRule, outputs: list[Any]) -> list[dict[str, Any]]:
    """The same events from the host's pipeline, output by output."""
    events: list[dict[str, Any]] = []
    for output in outputs:
        messages = rule.feed(output)
        if not messages and not rule.batch_size:
            events.append({"event": "nothing"})
        for m in messages:
            events.append({"event": "dropped", "error": m.error, "logged": m.logged}
                          if m.dropped else {"event": "sent", "bytes": m.data, "props": m.props})
    if rule.pending:
        events.append({"event": "pending", "rows": rule.pending})
    return events


def host_answer(case: dict[str, Any]) -> dict[str, Any]:
    try:
        rule = SinkRule(case["input"]["props"])
    except RuleError as err:
        return {"rule_error": err.text}
    return {"events": host_events(rule, case["input"]["outputs"]),
            "templates": sorted(rule.templates), "transform_op": rule.transform_op}


def ekuiper_answer(case: dict[str, Any]) -> dict[str, Any]:
    go = case["go"]
    if "rule_error" in go:
        return {"rule_error": go["rule_error"]}
    return {"events": expected_events(case), "templates": sorted(go["templates_found"] or []),
            "transform_op": go["transform_op"]}


@pytest.mark.parametrize("case", golden_corpus.cases(FILE))
def test_the_pipeline_gives_ekuipers_answer(case, request):
    if case["case"] in GO_JSON_FLOATS:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="go_json float formatting, fixed separately"))
    why = DIFFERENCES.get((FILE, case["case"]))
    if why is None:
        assert host_answer(case) == ekuiper_answer(case)
    else:
        assert host_answer(case) != ekuiper_answer(case), why
