"""The benchmark's quick mode keeps working (no figure's size is asserted here)."""

import json
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs_and_writes_results(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                          "--placement", "split", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (results,) = tmp_path.glob("*-quick.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert rows[0]["environment"]["mode"] == "quick"
    figures = {(r["figure"], r.get("system") or r.get("ratio")) for r in rows[1:]}
    for figure in ("source_100b", "sink_ack", "function", "scale_sinks", "cold_start"):
        for who in ("kuiperlite", "sdk", "bare", "kuiperlite/sdk", "kuiperlite/bare"):
            assert (figure, who) in figures
    assert "kl/sdk" in out.stdout and "source_100b records/s" in out.stdout
    # Beside each rate, how busy the host was: the figure that says who set the pace.
    busy = {(r["figure"], r["system"]): r["median"] for r in rows[1:] if "system" in r}
    for figure in ("source_100b", "sink_ack", "function", "scale_sinks"):
        for system in ("kuiperlite", "sdk", "bare"):
            assert busy[(f"{figure}_host", system)] > 0
    # And how long a source's flow stood still: a stalled repeat is told from a slow one.
    for system in ("kuiperlite", "sdk", "bare"):
        assert busy[("source_100b_stood", system)] >= 0


def test_quick_scale_benchmark_runs_and_every_record_arrives(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--quick",
                          "--counts", "10", "20", "10", "--systems", "kuiperlite",
                          "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (results,) = tmp_path.glob("scale-*-quick.jsonl")
    environment, *rows = (json.loads(line) for line in results.read_text().splitlines())
    assert environment["environment"]["mode"] == "quick"
    assert [r["instances"] for r in rows] == [20, 40, 20]
    # The smaller count's two runs bracket the larger's: its time is their mean.
    small = (rows[0]["start_s"] + rows[2]["start_s"]) / 2
    assert f"2x the instances start in {rows[1]['start_s'] / small:.2f}x" in out.stdout
    row = rows[0]
    assert row["system"] == "kuiperlite"
    assert row["complete"] == 1.0  # every record of every instance arrived
    # The start by tenths, which add up to the whole start.
    assert len(row["start_steps"]) == 10
    assert abs(sum(row["start_steps"]) - row["start_s"]) < 0.1 * row["start_s"]
    assert row["start_steal_s"] >= 0
    assert row["threads_left"] <= 0  # the plugin's threads are back to their baseline


def test_a_count_below_one_is_refused_with_a_sentence():
    options = (("scale.py", "--counts"), ("scale.py", "--each"), ("run.py", "--repeats"))
    for script, option in options:
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), option, "0"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stdout + out.stderr
        assert f"argument {option}: expected a whole number of at least 1, got '0'" in out.stderr
        assert "Traceback" not in out.stderr
