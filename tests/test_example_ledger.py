"""examples/ledger: rules writing and reading one SQLite database share one connection."""

import json
import sqlite3
import sys

import pytest

from kuiperlite.bundle import metadata
from kuiperlite.declare.plugin import load
from kuiperlite.errors import HostError
from kuiperlite.testing import memory_state, run_sink, run_source

from conftest import EXAMPLES, unique, wait_until

LEDGER = EXAMPLES / "ledger" / "ledger.py"
sys.path.insert(0, str(LEDGER.parent))
import ledger  # noqa: E402


def test_the_sink_writes_rows_the_source_reads_back_and_resumes_after(tmp_path):
    path = str(tmp_path / "ledger.db")
    assert run_sink(ledger.record, [{"a": 1}, [{"b": 2}, {"c": 3}]],
                    config={"path": path}) == [None, None]
    state = memory_state()
    config = {"path": path, "interval": 0.01}
    assert run_source(ledger.entries, 2, config=config, state=state) == [
        {"id": 1, "data": {"a": 1}}, {"id": 2, "data": {"b": 2}}]
    assert run_source(ledger.entries, 1, config=config, state=state) == [
        {"id": 3, "data": {"c": 3}}]
    with sqlite3.connect(path) as conn:  # each run closed its connection: the file is whole
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (3,)


def opened(host):
    return sum("opened connection 'db' for" in line for line in list(host.process.output))


def test_twenty_rules_and_a_stream_on_one_file_open_it_once(kuiperlite_host, tmp_path):
    host = kuiperlite_host(LEDGER)
    path = str(tmp_path / "ledger.db")
    sinks = [host.start_sink("record", rule=unique("k"),
                             config={"path": path, "table": "events", "requireAck": True})
             for _ in range(20)]
    src = host.start_source("entries", rule=unique("r"),
                            config={"path": path, "table": "events", "interval": 0.01})
    for n, snk in enumerate(sinks):
        assert snk.send({"n": n}) is None
    assert sorted(src.recv()[0]["data"]["n"] for _ in range(20)) == list(range(20))
    assert opened(host) == 1
    other = str(tmp_path / "other.db")
    with host.start_sink("record", rule=unique("k"),
                         config={"path": other, "requireAck": True}) as snk:
        assert snk.send({"elsewhere": True}) is None
        assert opened(host) == 2  # another file, another connection
    for handle in [*sinks, src]:
        handle.stop()
    wait_until(lambda: sum("closed connection 'db'" in line
                           for line in list(host.process.output)) == 2,
               message="both connections to close")
    rule = unique("k")
    with pytest.raises(HostError) as info:
        host.start_sink("record", rule=rule,
                        config={"path": str(tmp_path / "missing" / "ledger.db")})
    assert "'db'" in str(info.value) and f"{rule}/op1/0" in str(info.value)


def test_the_connections_config_is_in_each_symbols_metadata():
    files = metadata.files(load(str(LEDGER)))
    fields = json.loads(files["sinks/record.json"])["properties"]
    assert [(f["name"], f["hint"]["en_US"]) for f in fields] == [
        ("table", "the table the rows go to; created when missing."),
        ("path", "the database file; created when missing."),
        ("timeout", "seconds to wait for a write lock that another process holds.")]
    source = json.loads(files["sources/entries.json"])["properties"]["default"]
    assert [f["name"] for f in source] == ["table", "interval", "path", "timeout"]
    assert files["sources/entries.yaml"] == (b'default:\n  table: "ledger"\n  interval: 0.5\n'
                                             b"  timeout: 5.0\n")
