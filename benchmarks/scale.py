"""Thousands of rule instances in one plugin: start, memory, fairness, and the way back.

    python benchmarks/scale.py             # 1,000, 2,500, then 1,000 + 1,000 again (minutes)
    python benchmarks/scale.py --quick     # 50 + 50, 125 + 125, 50 + 50 (CI runs 10, 20, 10)
    python benchmarks/scale.py --counts 1000 --systems kuiperlite sdk

One plugin, confined to one core (the host on the other: ``run.py``'s
"split" placement), serves N sources (emitting nothing) and N sinks with
requireAck, started one after another as eKuiper starts rules. Then N more
sources each emit EACH records while every sink takes EACH, all at once,
and every instance stops.

- ``start_s``: seconds to start all 2N. Linear start: the largest count's
  time over the smallest's stays within the ratio of the counts (2.5 for
  1,000 and 2,500). The smallest count runs before and after the largest,
  and its time is the mean of the two: a machine whose speed drifts during
  the run (a shared VM's does, by half within minutes) moves both sides of
  the ratio alike, where one run of each would put the drift in the ratio.
  ``start_steps``: the seconds of each tenth of the
  starts, in order: a start that grows with the count shows as steps that
  grow, whatever the machine's speed that minute; ``start_steal_s``: CPU
  seconds the machine's hypervisor took from this one meanwhile (a slow
  step with steal is the machine's, not the plugin's).
- ``kb_per_instance``: the plugin's memory (PSS) once the 2N run, over the
  idle plugin's, per instance. Target: under 30 KB.
- ``fairness``: the slowest instance's rate over the fastest's, among the
  sources and among the sinks, the lower of the two (target at least 0.8);
  ``complete``: records received over records sent (1.0);
  ``plugin_busy``: the plugin's CPU seconds per second meanwhile (1.0: its
  core is saturated; less: the host is the limit).
- ``stop_s``: seconds the plugin takes to answer every stop, each after the
  host closed its ends as eKuiper does (that close is not counted: the
  embedded host's waits out nng 1.6's close hang, 25 ms a receiving socket,
  which eKuiper's Go sockets do not).
- ``threads_left`` and ``mb_left``: the plugin's threads and memory once all
  stopped and idle, over the idle plugin's before the start. A kuiperlite
  worker that grew gives way to a fresh one once idle for 30 s
  (``kuiperlite/serve/recycling.py``); memory is read once it is back within 1 MB
  of the idle figure, or after a minute (at once with ``--quick``), a second
  after the plugin answers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (pinning, plugin copies, the flow, results)

from kuiperlite.protocol.wire import STOP  # noqa: E402

# Each instance moves more records than the plugin's and the host's queues
# hold (256), or a source's records would be in the host before the clock starts.
# wait: seconds memory may take to come back after all stop (a kuiperlite
# worker gives way after 30 s idle); CI's quick run reads it at once.
FULL = {"counts": [1000, 2500, 1000], "each": 600, "wait": 60}
QUICK = {"counts": [50, 125, 50], "each": 20, "wait": 0}


def threads(plugin: bench.Plugin) -> int:
    """The threads of the plugin's processes."""
    return sum(len(os.listdir(f"/proc/{pid}/task")) for pid in bench.tree(plugin.pid))


def settle(plugin: bench.Plugin, baseline: int, timeout: float = 60) -> int:
    """The plugin's thread count, once back at ``baseline`` or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while threads(plugin) > baseline and time.monotonic() < deadline:
        time.sleep(0.5)
    return threads(plugin)


def settle_memory(plugin: bench.Plugin, baseline: float, control: Any,
                  timeout: float = 60) -> float:
    """The plugin's memory (MB) once within 1 MB of ``baseline``, or after ``timeout`` s.

    Read as the idle figure is, a second after the plugin answered: a fresh
    worker's memory is low until it serves, so a stop (``control``'s, long
    gone) is answered first.
    """
    deadline = time.monotonic() + timeout
    while plugin.memory_mb() > baseline + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    plugin.host.command(STOP, control)
    time.sleep(1.0)
    return plugin.memory_mb()


def steal() -> float:
    """CPU seconds the hypervisor has taken from this machine's CPUs since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal
    return int(fields[8]) / bench.CLK_TCK if len(fields) > 8 else 0.0


def measure(system: str, n: int, each: int, wait: float, log: Any) -> dict[str, Any]:
    plugin = bench.Plugin(system)
    try:
        time.sleep(1.0)
        idle_mb, idle_threads = plugin.memory_mb(), threads(plugin)
        resting, sinks = [], []
        steps: list[float] = []
        stolen, t0 = steal(), time.perf_counter()
        step_t0 = t0
        for i in range(n):  # sources that emit nothing: the start alone is timed
            resting.append(plugin.host.start_source("emit", rule=bench.rule(system),
                                                    config={"count": 0}))
            sinks.append(plugin.host.start_sink("ack", rule=bench.rule(system),
                                                config={"count": 0, "requireAck": True}))
            if (i + 1) * 10 // n > len(steps):
                now = time.perf_counter()
                steps.append(now - step_t0)
                step_t0 = now
        start_s = time.perf_counter() - t0
        stolen = steal() - stolen
        log(f"{system} {n}+{n}: started in {start_s:.1f} s, by tenths "
            f"{' '.join(f'{step:.2f}' for step in steps)}, {stolen:.1f} s stolen")
        started_mb = plugin.memory_mb()
        sources = [plugin.host.start_source("emit", rule=bench.rule(system),
                                            config={"count": each}) for _ in range(n)]
        cpu0, t0 = plugin.cpu(), time.perf_counter()
        # A deadline for a slow machine: a flow that stops moving ends sooner ('still').
        flowed = bench.flow(sources, sinks, each, timeout=600)
        elapsed = time.perf_counter() - t0
        plugin_busy = (plugin.cpu() - cpu0) / elapsed
        sources += resting
        stop_s = 0.0
        for handle in sources + sinks:
            handle.close()
            t0 = time.perf_counter()
            plugin.host.command(STOP, handle.control)
            stop_s += time.perf_counter() - t0
        threads_left = settle(plugin, idle_threads) - idle_threads
        mb_left = settle_memory(plugin, idle_mb, sinks[-1].control, wait) - idle_mb
        return {"start_s": start_s, "start_steps": steps, "start_steal_s": stolen,
                "kb_per_instance": (started_mb - idle_mb) * 1024 / (2 * n),
                "records_per_s": flowed.received / elapsed, "fairness": min(flowed.fairness),
                "fairness_sources": flowed.fairness[0], "fairness_sinks": flowed.fairness[1],
                "complete": flowed.complete,
                "plugin_busy": plugin_busy,
                "stop_s": stop_s, "threads_left": threads_left,
                "mb_left": mb_left, "idle_mb": idle_mb}
    finally:
        plugin.close()
        bench.socket_files_left(system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (CI)")
    parser.add_argument("--counts", type=bench.positive, nargs="+",
                        help="sources (and sinks) per run")
    parser.add_argument("--each", type=bench.positive, help="records per instance")
    parser.add_argument("--systems", nargs="+", default=["kuiperlite", "sdk"],
                        choices=list(bench.SYSTEMS))
    parser.add_argument("--output", default=str(HERE / "results"), help="folder for JSON lines")
    bench.add_python_option(parser)
    args = parser.parse_args()
    bench.PYTHON = args.python
    sizes: dict[str, Any] = dict(QUICK if args.quick else FULL)
    sizes["counts"] = args.counts or sizes["counts"]
    sizes["each"] = args.each or sizes["each"]
    bench.PLACEMENT = bench.PLACEMENTS["split"]
    bench.pin_host()
    rows: list[dict[str, Any]] = []

    def say(line: str) -> None:
        print(f"# {line}", flush=True)

    for n in sizes["counts"]:
        for system in args.systems:
            figures = measure(system, n, sizes["each"], sizes["wait"], say)
            rows.append({"system": system, "instances": 2 * n, **figures})
            say(f"{system} {n}+{n}: {figures}")
    environment = bench.describe_run(args.quick, sizes, placement="split")
    path = bench.write_results(args.output, "scale-", environment, rows)
    print(table(rows))
    print(f"\n{environment}\nresults: {path}")
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    columns = ["start_s", "kb_per_instance", "records_per_s", "fairness", "complete",
               "plugin_busy", "stop_s",
               "threads_left", "mb_left"]
    lines = [f"{'system':<12} {'instances':>9} " + " ".join(f"{c:>15}" for c in columns)]
    for row in rows:
        lines.append(f"{row['system']:<12} {row['instances']:>9} "
                     + " ".join(f"{row[c]:>15,.2f}" for c in columns))
    for system in sorted({row["system"] for row in rows}):
        ratios = start_ratio([r for r in rows if r["system"] == system])
        if ratios:
            count_ratio, time_ratio = ratios
            lines.append(f"{system}: {count_ratio:g}x the instances start in {time_ratio:.2f}x "
                         f"the time ({'linear' if time_ratio <= count_ratio else 'NOT linear'})")
    return "\n".join(lines)


def start_ratio(rows: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The largest count over the smallest, and its start time over theirs.

    Each count's time is the mean of its runs: the smallest count's runs
    before and after the largest's cancel a drift of the machine's speed.
    None with fewer than two counts.
    """
    by_count: dict[int, list[float]] = {}
    for row in rows:
        by_count.setdefault(row["instances"], []).append(row["start_s"])
    if len(by_count) < 2:
        return None
    small, large = min(by_count), max(by_count)
    return large / small, statistics.mean(by_count[large]) / statistics.mean(by_count[small])


if __name__ == "__main__":
    sys.exit(main())
