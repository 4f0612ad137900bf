"""eKuiper's own parser, held to its corpus: each statement's IsAggregate and
Validate requests, byte for byte and in order, the parse error, and the
FuncId and FuncType of the first field's call (tests/golden/validate_args.jsonl).

The corpus's plugin answers IsAggregate with false and Validate as the case
says (by default ``{"state":true,...}``); each case starts with functions
that have not answered IsAggregate yet, as eKuiper's first rule does.
"""

import pytest

from kuiperlite.dev import gowire, sql

import golden_corpus

FILE = "validate_args.jsonl"

# (file, case): why the embedded host deliberately gives another answer.
DIFFERENCES: dict[tuple[str, str], str] = {}



def run(case):
    reply = case["input"].get("validate_reply")
    return sql.requests(case["input"]["sql"], ("gh3f", "gh3g"),
                        validate_reply=sql.ACCEPT if reply is None else reply.encode())


@pytest.mark.parametrize("case", golden_corpus.cases(FILE))
def test_the_parser_sends_what_ekuiper_sends(case):
    go = case["go"]
    outcome = run(case)
    assert outcome.error == go.get("parse_error")
    sent = [(r.function, r.func, r.raw) for r in outcome.requests]
    assert sent == [(r["function"], r["func"], golden_corpus.raw(r, "bytes"))
                    for r in go["requests"] or ()]
    for request, expected in zip(outcome.requests, go["requests"] or ()):
        if "arg_json" in expected:
            assert gowire.go_json(request.args or None) == expected["arg_json"].encode()
    if "call_funcid" in go:
        call = outcome.statement.fields[0]["Expr"]
        assert (call["FuncId"], call["FuncType"]) == (go["call_funcid"], go["call_functype"])


def test_the_differences_name_corpus_lines():
    names = {case["case"] for case in golden_corpus.load(FILE)}
    assert all(file == FILE and name in names for file, name in DIFFERENCES)
