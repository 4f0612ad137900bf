"""Supervised or alone: decided in one place, from the settings."""

import logging

from kuiperlite.serve import start, supervisor


def test_supervise_0_serves_the_plugin_alone(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("runtime"), env={"KUIPERLITE_SUPERVISE": "0"})
    with host.function("revert") as fn:
        assert fn.call("abc") == "cba"
    assert host.process.printed("runs unsupervised: KUIPERLITE_SUPERVISE=0")


def test_a_plugin_is_supervised_unless_told_or_unable(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("runtime"))
    with host.function("revert") as fn:
        assert fn.call("abc") == "cba"
    assert not host.process.printed("runs unsupervised")


def test_a_supervise_value_that_is_not_0_or_1_is_a_warning_and_supervision(monkeypatch,
                                                                           caplog):
    monkeypatch.setenv("KUIPERLITE_SUPERVISE", "no")
    with caplog.at_level(logging.WARNING, logger="kuiperlite"):
        assert start.why_alone() == supervisor.can_fork()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "KUIPERLITE_SUPERVISE='no'" in caplog.messages[0]
    monkeypatch.setenv("KUIPERLITE_SUPERVISE", "0")
    assert start.why_alone() == "KUIPERLITE_SUPERVISE=0"
