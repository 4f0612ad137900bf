"""What ``ctx.state`` costs: store operations per second, and a source saving its offset.

    python benchmarks/state.py            # the full run (about a minute)
    python benchmarks/state.py --quick    # a smoke run (seconds), as CI does

1. ``get``, ``put`` and ``incr`` per second on each store, from one thread:
   SQLite (a file in a temporary folder, as a plugin's is) and Redis (a
   redis-server of this run's own on a unix socket, when one is installed).
2. One source emitting records as fast as the embedded host takes them, and
   the same source saving its offset in ``ctx.state`` after every record, in
   one plugin under the host, host and plugin on a core each (``run.py``'s
   "split" placement). Target: the saving source keeps at least half the plain rate
   on SQLite.

Each figure is a median over ``--repeats`` (min-max); results go to a table
on stdout and JSON lines in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from kuiperlite.declare.kinds import SOURCE
from kuiperlite.declare.state import Scope, State
from kuiperlite.dev import Host
from kuiperlite.serve.stores import Stores, open_store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (pinning, copies under this run's names, drain)

FULL = {"repeats": 3, "ops": 20_000, "records": 30_000}
QUICK = {"repeats": 1, "ops": 500, "records": 1_000}
TARGET = 0.5


@contextmanager
def redis_server() -> Iterator[Optional[str]]:
    """A private redis-server on a unix socket; None when none is installed."""
    server = shutil.which("redis-server")
    if server is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="klbench-redis-")
    path = os.path.join(folder, "redis.sock")
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", path, "--save", "",
                             "--appendonly", "no", "--dir", folder],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"unix://{path}"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def per_second(count: int, action: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - started)


def measure_store(place: dict[str, str], ops: int) -> dict[str, float]:
    stores = Stores(lambda: open_store(f"bench{bench.RUN}", **place))
    state = State(stores, Scope.of_instance(SOURCE, "bench", "rule", "op", 0))
    try:
        state.put("offset", 0)
        return {"put": per_second(ops, lambda i: state.put("offset", i)),
                "get": per_second(ops, lambda i: state.get("offset")),
                "incr": per_second(ops, lambda i: state.incr("count"))}
    finally:
        stores.get().clear()
        stores.close()


def measure_sources(host: Host, records: int) -> dict[str, float]:
    """Records per second of the plain source and of the one saving its offset."""
    rates = {}
    for symbol in ("plain", "saving"):
        started = time.perf_counter()
        handle = host.start_source(symbol, rule=bench.rule("state"), config={"count": records})
        bench.drain(handle.channel.sock, records)
        rates[symbol] = records / (time.perf_counter() - started)
        handle.stop()
    return rates


def launch(state_dir: str) -> Host:
    path = bench.COPIES / f"klstate{bench.RUN}.py"
    for source in bench.PLUGINS.glob("*.py"):
        shutil.copy(source, bench.COPIES / (path.name if source.stem == "klstate"
                                            else source.name))
    bench.pin_plugin()
    try:
        return Host.launch(str(path), timeout=60, ipc_dir="/tmp", state_dir=state_dir)
    finally:
        bench.pin_host()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repeat (CI)")
    parser.add_argument("--output", default=str(HERE / "results"), help="folder for JSON lines")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    bench.pin_host()
    samples: dict[str, list[float]] = {}
    state_dir = tempfile.mkdtemp(prefix="klbench-state-")
    try:
        with redis_server() as url:
            places = {"sqlite": {"directory": state_dir}}
            if url is not None:
                places["redis"] = {"url": url}
            host = launch(state_dir)
            try:
                for _ in range(sizes["repeats"]):
                    for store, place in places.items():
                        for op, rate in measure_store(place, sizes["ops"]).items():
                            samples.setdefault(f"{store} {op}/s", []).append(rate)
                    rates = measure_sources(host, sizes["records"])
                    samples.setdefault("source plain records/s", []).append(rates["plain"])
                    samples.setdefault("source saving offset records/s", []).append(
                        rates["saving"])
                    samples.setdefault("saving/plain", []).append(
                        rates["saving"] / rates["plain"])
            finally:
                host.close()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(bench.COPIES, ignore_errors=True)
        bench.socket_files_left("state")
    rows: list[dict[str, Any]] = [{"figure": name, **spread(values)}
                                  for name, values in samples.items()]
    ratio = next(row for row in rows if row["figure"] == "saving/plain")
    ratio["target"] = f">= {TARGET}"
    ratio["met"] = ratio["median"] >= TARGET
    environment = bench.describe_run(args.quick, sizes)
    path = bench.write_results(args.output, "state-", environment, rows)
    for row in rows:
        shown = f"{row['median']:.2f}" if row["median"] < 10 else f"{row['median']:,.0f}"
        low, high = (f"{row[k]:.2f}" if row[k] < 10 else f"{row[k]:,.0f}" for k in ("min", "max"))
        target = f"  target {row['target']}: {'met' if row['met'] else 'MISSED'}" \
            if "target" in row else ""
        print(f"{row['figure']:<34} {shown:>10}  ({low}-{high}){target}")
    print(f"\n{environment}\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
