"""kinds: the one place that says what a source, a sink and a function are."""

from kuiperlite.declare.kinds import BY_WIRE, FUNCTION, KINDS, SINK, SOURCE
from kuiperlite.protocol import wire


def test_each_kind_is_known_by_its_wire_name():
    assert [k.wire for k in KINDS] == ["source", "sink", "func"]
    assert all(BY_WIRE[k.wire] is k for k in KINDS)


def test_words_folders_and_lifetimes():
    assert [(k.word, k.folder, k.per_rule) for k in KINDS] == [
        ("source", "sources", True), ("sink", "sinks", True), ("function", "functions", False)]
    assert FUNCTION.described("revert") == "function 'revert'"


def test_a_control_names_its_kind():
    control = wire.Control("pyjson", "source", wire.Meta("r", "o", 0))
    assert control.kind is SOURCE and control.described == "source 'pyjson'"
    assert wire.Control("print", "sink").kind is SINK
