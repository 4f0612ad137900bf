"""examples/mirror, tested the way a plugin author would: helpers first, then end to end."""

import sys

import pytest

from kuiperlite import ArgumentError, ConfigError
from kuiperlite.errors import HostError
from kuiperlite.testing import call_function, run_sink, run_source

from conftest import EXAMPLES, unique, wait_until

sys.path.insert(0, str(EXAMPLES / "mirror"))
import mirror  # noqa: E402


def test_random_adds_up_to_seed_minus_one():
    records = run_source(mirror.random, 20, config={"pattern": {"count": 50, "tag": "x"},
                                                    "interval": 1, "seed": 3})
    assert {r["tag"] for r in records} == {"x"}
    assert {r["count"] for r in records} <= {50, 51, 52}


def test_random_deduplicates():
    records = run_source(mirror.random, None, timeout=1.0,
                         config={"pattern": {"a": 0}, "interval": 1, "seed": 2,
                                 "deduplicate": -1})
    assert sorted(r["a"] for r in records) == [0, 1]  # every later one is a duplicate


def test_random_needs_a_pattern_and_positive_numbers():
    with pytest.raises(ConfigError, match="'pattern'"):
        run_source(mirror.random)
    with pytest.raises(ValueError, match="interval and seed must be positive"):
        run_source(mirror.random, config={"pattern": {}, "interval": 0})


def test_file_sink_writes_each_payload_as_it_came(tmp_path):
    path = tmp_path / "out.txt"
    acks = run_sink(mirror.file, [{"a": 1}, [{"b": 2}], b"raw,csv"], config={"path": str(path)})
    assert acks == [None, None, None]
    assert path.read_bytes() == b'{"a":1}\n[{"b":2}]\nraw,csv\n'


def test_echo():
    assert call_function(mirror.echo, {"x": [1, 2.5]}) == {"x": [1, 2.5]}
    with pytest.raises(ArgumentError, match=r"echo\(\) takes exactly 1 argument"):
        call_function(mirror.echo, 1, 2)


def test_mirror_end_to_end(kuiperlite_host, tmp_path):
    host = kuiperlite_host(EXAMPLES / "mirror" / "mirror.py")
    with host.start_source("random", rule=unique("r"),
                           config={"pattern": {"count": 5}, "interval": 10}) as src:
        assert 5 <= src.recv()[0]["count"] <= 5
    path = tmp_path / "file.txt"
    with host.start_sink("file", rule=unique("r"),
                         config={"requireAck": True, "path": str(path), "interval": 0}) as snk:
        assert snk.send({"n": 1}) is None
        wait_until(lambda: path.exists() and path.read_bytes() == b'{"n":1}\n')
    with host.function("echo") as fn:
        assert fn.call("same") == "same"
    with pytest.raises(HostError, match="'pattern'"):
        host.start_source("random", rule=unique("r"))
