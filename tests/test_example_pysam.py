"""examples/pysam: what the kuiperlite version adds over the SDK's example."""

import sys

import pytest

from kuiperlite.dev import gowire
from kuiperlite.errors import HostError
from kuiperlite.testing import call_function, run_sink, run_source

from conftest import EXAMPLES, unique, wait_until

PYSAM = EXAMPLES / "pysam" / "pysam.py"
sys.path.insert(0, str(PYSAM.parent))
import pysam  # noqa: E402


def test_symbols_in_process(capsys):
    assert run_source(pysam.pyjson, 2, config={"interval": 0.001, "value": 1}) == [
        {"name": "pyjson", "value": 1}] * 2
    assert run_sink(pysam.print_sink, [{"a": 1}], config={"prefix": ">"}) == [None]
    assert capsys.readouterr().out == "> {'a': 1}\n"
    assert call_function(pysam.revert, "abc") == "cba"



def test_pyjson_config_and_datasource(kuiperlite_host):
    host = kuiperlite_host(PYSAM)
    rule = unique("r")
    with host.start_source("pyjson", rule=rule, datasource="demo/topic",
                           config={"interval": 0.01, "value": "7"}) as src:
        assert src.records(5) == [{"name": "pyjson", "value": 7}] * 5
    wait_until(lambda: host.process.printed(f"[pyjson {rule}/op1/0] opening with datasource "
                                     "'demo/topic'"), message="the prefixed log line")
    wait_until(lambda: host.process.printed(f"[pyjson {rule}/op1/0] closed"), message="teardown")


def test_pyjson_rejects_a_bad_interval(kuiperlite_host):
    host = kuiperlite_host(PYSAM)
    with pytest.raises(HostError, match="'interval'"):
        host.start_source("pyjson", rule=unique("r"), config={"interval": {}})


def test_print_sink_prefix(kuiperlite_host):
    host = kuiperlite_host(PYSAM)
    with host.start_sink("print", rule=unique("r"),
                         config={"requireAck": True, "prefix": "OUT"}) as snk:
        assert snk.send([{"a": 1}, {"a": 2}]) is None
    wait_until(lambda: host.process.printed("OUT [{'a': 1}, {'a': 2}]"),
               message="the batch printed with its prefix")


def test_revert_validates_its_arguments(kuiperlite_host):
    host = kuiperlite_host(PYSAM)
    with host.function("revert") as fn:
        assert fn.validate(gowire.literal("a"), gowire.literal("b")) == (
            "revert() takes exactly 1 argument (s) but got 2.")
        assert fn.validate(gowire.literal(True)) == (
            "Argument 1 (s) of revert() must be a string, got true.")
        assert fn.validate(gowire.field("col1")) is None
        with pytest.raises(HostError, match=r"Argument 1 \(s\) of revert\(\) must be a string, "
                                            "got a list."):
            fn.call(["x"])


def test_the_readme_demo_runs_end_to_end():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(EXAMPLES / "pysam" / "demo.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines.count("host: source pyjson emitted {'name': 'pyjson', 'value': 2021}") == 3
    assert "host: sink print acked {'name': 'hello', 'count': 5} -> ok" in lines
    assert "host: revert('twelve') = 'evlewt'" in lines
    assert "    plugin | receive: {'count': 10, 'name': 'world'}" in lines
    assert lines[-1] == "host: done; the plugin process has exited"
