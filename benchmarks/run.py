"""kuiperlite against the official SDK and bare pynng: one run, identical workloads.

    python benchmarks/run.py             # the full run (a few minutes)
    python benchmarks/run.py --quick     # a smoke run (seconds; CI runs it for --placement split)

Three plugins serve the same symbols (a source emitting N records as fast
as it can, a sink taking every record, a function reversing a string)
under kuiperlite's embedded host. Each figure is measured ``--repeats``
times, the systems interleaved within each repeat, and reported as median
(min-max); ratios are computed repeat by repeat, pair by pair. Beside each
rate, the cores the host kept busy meanwhile say whether the host or the
plugin set the pace. Results go to a table on stdout and JSON lines in
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import orjson
import pynng

import kuiperlite
from kuiperlite.dev import Host, gowire
from kuiperlite.dev.ends import nudge
from kuiperlite.protocol import transport, wire
from kuiperlite.protocol.channels import TICK

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins"
SYSTEMS = {"kuiperlite": ("klbench", "klrevert"), "sdk": ("sdkbench", "sdkrevert"),
           "bare": ("barebench", "barerevert")}
CLK_TCK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, str(PLUGINS))
from records import make  # noqa: E402

FULL = {"repeats": 3, "source": 100_000, "source4k": 20_000, "sink": 50_000, "calls": 20_000,
        "starts": 7, "scale": 100, "scale_each": 1000}
QUICK = {"repeats": 1, "source": 2_000, "source4k": 500, "sink": 1_000, "calls": 500,
         "starts": 2, "scale": 10, "scale_each": 50}

# (figure, unit, higher is better, [(ratio, target)])
FIGURES = [
    ("cold_start", "ms", False, [("kuiperlite/sdk", 1.1)]),
    ("memory_idle", "MB", False, []),
    ("source_100b", "records/s", True, [("kuiperlite/sdk", 1.0), ("kuiperlite/bare", 0.9)]),
    ("source_100b_cpu", "us/record", False, [("kuiperlite/sdk", 0.8)]),
    ("source_100b_host", "cores", False, []),
    ("source_100b_stood", "s", False, []),
    ("source_4k", "records/s", True, [("kuiperlite/sdk", 2.5)]),
    ("source_4k_cpu", "us/record", False, [("kuiperlite/sdk", 0.8)]),
    ("source_4k_host", "cores", False, []),
    ("source_4k_stood", "s", False, []),
    ("memory_after_10k", "MB", False, []),
    ("sink_ack", "records/s", True, [("kuiperlite/sdk", 1.0), ("kuiperlite/bare", 0.9)]),
    ("sink_ack_cpu", "us/record", False, [("kuiperlite/sdk", 1.0)]),
    ("sink_ack_host", "cores", False, []),
    ("sink_noack", "records/s", True, [("kuiperlite/sdk", 1.0), ("kuiperlite/bare", 0.9)]),
    ("sink_noack_cpu", "us/record", False, [("kuiperlite/sdk", 1.0)]),
    ("sink_noack_host", "cores", False, []),
    ("function", "calls/s", True, [("kuiperlite/sdk", 1.0), ("kuiperlite/bare", 0.9)]),
    ("function_p50", "us", False, []),
    ("function_p99", "us", False, []),
    ("function_cpu", "us/call", False, [("kuiperlite/sdk", 0.8)]),
    ("function_host", "cores", False, []),
    ("scale_sources", "records/s", True, [("kuiperlite/sdk", 1.0)]),
    ("scale_sources_fairness", "min/max", True, []),
    ("scale_sources_cpu", "us/record", False, []),
    ("scale_sources_host", "cores", False, []),
    ("scale_sources_complete", "received/sent", True, []),
    ("scale_sinks", "records/s", True, [("kuiperlite/sdk", 1.0)]),
    ("scale_sinks_fairness", "min/max", True, []),
    ("scale_sinks_cpu", "us/record", False, []),
    ("scale_sinks_host", "cores", False, []),
    ("scale_sinks_complete", "received/sent", True, []),
    ("socket_files_left", "files", False, []),
    ("transport_100b", "messages/s", True, []),
    ("transport_4k", "messages/s", True, []),
]


class Placement(NamedTuple):
    """Where the host (this process, eKuiper's part) and the plugin run.

    ``None`` is every core. Unpinned, figures depend on the scheduler's mood,
    so each placement a user meets is measured on its own.
    """

    name: str
    host: Optional[set[int]]
    plugin: Optional[set[int]]
    why: str


PIN = (os.cpu_count() or 1) >= 2  # with one core, every placement is "shared"
PLACEMENTS = {
    "split": Placement("split", {0}, {1}, "host and plugin on a core each, as on an edge "
                       "device with a core to spare"),
    "shared": Placement("shared", {0}, {0}, "host and plugin sharing one core, as on a "
                        "one-core gateway or under a container CPU limit"),
    "confined": Placement("confined", None, {1}, "the plugin confined to one core, the host "
                          "free to use every core"),
}
PLACEMENT = PLACEMENTS["split"]
# The interpreter plugins run with (eKuiper's portable.pythonBin); None: this one.
PYTHON: Optional[str] = None
EVERY_CORE = set(range(os.cpu_count() or 1))


def pin_host() -> None:
    """Pin every thread of this process (nng's included) to the placement's host cores."""
    if PIN:
        for tid in os.listdir(f"/proc/{os.getpid()}/task"):
            try:
                os.sched_setaffinity(int(tid), PLACEMENT.host or EVERY_CORE)
            except OSError:
                pass  # a thread that just ended


def pin_plugin() -> None:
    """Pin this thread to the plugin's cores: a process it starts inherits them."""
    if PIN:
        os.sched_setaffinity(0, PLACEMENT.plugin or EVERY_CORE)


RULES: dict[str, list[str]] = {}  # the rule ids each system's plugin was given


def rule(system: str = "") -> str:
    rule_id = f"b{uuid.uuid4().hex[:10]}"
    RULES.setdefault(system, []).append(rule_id)
    return rule_id


def socket_files_left(system: str) -> int:
    """Remove, and count, the data socket files the plugin left behind at exit."""
    left = 0
    for rule_id in RULES.pop(system, []):
        for path in Path("/tmp").glob(f"{rule_id}_*.ipc"):
            path.unlink()
            left += 1
    return left


# This run's plugins are copies named for the run alone: socket files live in
# /tmp, where eKuiper or another run may be hosting plugins of the same names.
RUN = uuid.uuid4().hex[:8]
COPIES = Path(tempfile.mkdtemp(prefix="kuiperlite-bench-"))


def plugin_copy(system: str) -> tuple[Path, str]:
    """The system's plugin file, copied under this run's names, and its function's name."""
    name, function = SYSTEMS[system]
    path = COPIES / f"{name}{RUN}.py"
    if not path.exists():
        for source in PLUGINS.glob("*.py"):
            shutil.copy(source, COPIES / (path.name if source.stem == name else source.name))
    return path, f"{function}{RUN}"


def tree(pid: int) -> list[int]:
    """A process and its descendants (a kuiperlite plugin runs user code in a child)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(child) for child in f.read().split()]
    except OSError:
        return [pid]
    return [pid] + [p for child in children for p in tree(child)]


class Plugin:
    """One benchmark plugin process under the embedded host."""

    def __init__(self, system: str) -> None:
        self.system = system
        path, self.function = plugin_copy(system)
        self.done: set[str] = set()
        self.done_changed = threading.Condition()
        pin_plugin()
        try:
            # kuiperlite's as its packaged launcher serves it; the others are programs.
            self.host = Host.launch(str(path), executable=system != "kuiperlite", timeout=60,
                                    python=PYTHON or sys.executable,
                                    on_output=self._line, ipc_dir="/tmp",
                                    env=dict(os.environ, BENCH_FUNCTION=self.function))
        finally:
            pin_host()
        self.pid = self.host.process.pid  # type: ignore[union-attr]

    def _line(self, line: str) -> None:
        if line.startswith("DONE "):
            with self.done_changed:
                self.done.add(line.split()[1])
                self.done_changed.notify_all()

    def wait_done(self, rule_id: str, timeout: float = 120) -> None:
        with self.done_changed:
            if not self.done_changed.wait_for(lambda: rule_id in self.done, timeout):
                raise TimeoutError(f"sink of {rule_id} did not finish")

    def cpu(self) -> float:
        """CPU seconds of the plugin's processes."""
        total = 0
        for pid in tree(self.pid):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def memory_mb(self) -> float:
        """The plugin's memory: the PSS of its processes, so pages they share count once."""
        kb = 0
        for pid in tree(self.pid):
            try:  # a worker giving way to a fresh one may be gone, or a zombie with no maps
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    kb += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
            except OSError:
                pass
        return kb / 1024

    def close(self) -> None:
        self.host.close()


def drain(sock: Optional[pynng.Socket], count: int, timeout: float = 120) -> float:
    """Receive ``count`` raw messages (the host decodes nothing, to stay out of the way).

    Returns:
        how long nothing came once the first message had, in whole receive
        timeouts (the host's sockets wait TICK): a flow that stood still,
        found without timing each message.
    """
    assert sock is not None, "the channel is closed"
    deadline = time.monotonic() + timeout
    received = idle = 0
    while received < count:
        try:
            transport.receive(sock)
            received += 1
        except transport.Timeout:
            idle += received > 0
            nudge()  # see kuiperlite.dev.ends.nudge: a stall of the host's, not the plugin's
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {received} of {count} records") from None
    return idle * TICK


class Span:
    """One measured stretch of a plugin's work, from its creation to :meth:`figures`."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        # process_time: this process's CPU, the host's nng threads included
        self.cpu0, self.host0, self.t0 = plugin.cpu(), time.process_time(), time.perf_counter()

    def figures(self, name: str, count: int) -> dict[str, float]:
        """``count`` records (or calls) per second, the plugin's CPU µs for each,
        and how many cores the host kept busy meanwhile: near 1.0 in a
        placement that gives the host one core, the host set the pace."""
        elapsed = time.perf_counter() - self.t0
        cpu, host = self.plugin.cpu() - self.cpu0, time.process_time() - self.host0
        return {name: count / elapsed, f"{name}_cpu": cpu / max(count, 1) * 1e6,
                f"{name}_host": host / elapsed}


def measure_source(plugin: Plugin, name: str, count: int, size: str) -> dict[str, float]:
    span = Span(plugin)
    handle = plugin.host.start_source("emit", rule=rule(plugin.system),
                                      config={"count": count, "size": size})
    stood = drain(handle.channel.sock, count)
    figures = dict(span.figures(name, count), **{f"{name}_stood": stood})
    handle.stop()
    return figures


def measure_sink(plugin: Plugin, name: str, count: int, require_ack: bool) -> dict[str, float]:
    rule_id = rule(plugin.system)
    handle = plugin.host.start_sink("ack", rule=rule_id,
                                    config={"count": count, "requireAck": require_ack})
    payload = orjson.dumps(make("100"))
    send, ack = handle.data.sock.send, handle.ack.sock.recv  # type: ignore[union-attr]
    span = Span(plugin)
    for _ in range(count):
        send(payload)
        if require_ack:
            ack()
    plugin.wait_done(rule_id)
    figures = span.figures(name, count)
    handle.stop()
    return figures


def measure_function(plugin: Plugin, calls: int) -> dict[str, float]:
    handle = plugin.host.function(plugin.function)
    meta = gowire.encode_func_meta(wire.FuncMeta("bench", "op1", 0, 0))
    request = gowire.encode_function_call("Exec", ["a string to revert", meta])
    call = handle.channel.request
    for _ in range(200):  # warm up, and past the first call's stale-handshake round trip
        call(request, 10)
    latencies = []
    span = Span(plugin)
    for _ in range(calls):
        started = time.perf_counter()
        call(request, 10)
        latencies.append(time.perf_counter() - started)
    figures = span.figures("function", calls)
    handle.close()
    latencies.sort()
    return dict(figures, function_p50=latencies[len(latencies) // 2] * 1e6,
                function_p99=latencies[int(len(latencies) * 0.99)] * 1e6)


# A sweep that moved nothing pauses this long, so that where host and plugin
# share a core the host gives it up rather than spin: far shorter than the
# plugin needs to fill an instance's queues (some 256 records).
PAUSE = 0.0002


class Flowed(NamedTuple):
    """What :func:`flow` saw: records moved, fairness (sources, sinks), share that arrived."""

    received: int
    fairness: tuple[float, float]
    complete: float


def fairness(rates: list[float]) -> float:
    """The slowest rate over the fastest: 0 if none moved a record, 1 if there are none."""
    if not rates:
        return 1.0
    fastest = max(rates)
    return min(rates) / fastest if fastest else 0.0


def flow(sources: list[Any], sinks: list[Any], each: int, timeout: float = 120,
         still: float = 10) -> Flowed:
    """Every source emits and every sink takes ``each`` records at once.

    One host thread sweeps every socket without waiting, as eKuiper's
    goroutines serve each instance; a Python thread per instance (taking
    turns at the GIL) makes the host, not the plugin, the limit: with 100
    sources on a slow machine, the host left sockets unread for more than a
    second, and a plugin whose sends give up after a second (the SDK's)
    lost its sources. A sweep takes one message from each source, as each
    of eKuiper's source goroutines takes one at a time: a sweep that took
    all a source had would serve first the sources that had most, and
    measure the host's fairness, not the plugin's. A sweep that moved
    nothing pauses (PAUSE); one that stood still for a whole TICK nudges
    (see kuiperlite.dev.ends.nudge). The flow ends after ``timeout``
    seconds, or once nothing moved for ``still`` seconds (instances that
    gave up: the SDK's sources end on a send that waited a second).
    """
    payload = orjson.dumps(make("100"))
    drains = [handle.channel.sock for handle in sources]
    feeds = [(handle.data.sock, handle.ack.sock) for handle in sinks]
    received = [0] * (len(sources) + len(sinks))
    finished = [0.0] * len(received)
    sent = [False] * len(sinks)  # a record is out, its ack not back yet
    flowing, feeding = set(range(len(sources))), set(range(len(sinks)))
    t0 = moved_at = nudged_at = time.perf_counter()
    deadline = t0 + timeout
    while (flowing or feeding) and time.perf_counter() < deadline:
        moved = False
        for i in list(flowing):
            try:
                if try_recv(drains[i]) is not None:
                    received[i] += 1
                    moved = True
            except transport.NNGException:  # a source whose channel closed
                flowing.discard(i)
            if received[i] >= each:
                finished[i] = time.perf_counter() - t0
                flowing.discard(i)
        for j in list(feeding):
            data, ack = feeds[j]
            try:
                if sent[j]:
                    if try_recv(ack) is None:
                        continue
                    sent[j] = False
                    moved = True
                    received[len(sources) + j] += 1
                    if received[len(sources) + j] >= each:
                        finished[len(sources) + j] = time.perf_counter() - t0
                        feeding.discard(j)
                        continue
                sent[j] = try_send(data, payload)
                moved = moved or sent[j]
            except transport.NNGException:  # a sink that stopped taking records
                feeding.discard(j)
        now = time.perf_counter()
        if moved:
            moved_at = nudged_at = now
            continue
        if now - moved_at >= still:
            break
        if now - nudged_at >= TICK:
            nudge()
            nudged_at = now
        time.sleep(PAUSE)
    elapsed = time.perf_counter() - t0
    for i in range(len(received)):
        finished[i] = finished[i] or elapsed  # an instance whose records stopped coming
    rates = [n / f for n, f in zip(received, finished)]
    # Within each kind: a source sends as fast as it is read, an acked sink's
    # rate is one record per round trip.
    return Flowed(sum(received), (fairness(rates[:len(sources)]), fairness(rates[len(sources):])),
                  sum(received) / max(len(received) * each, 1))


def try_recv(sock: pynng.Socket) -> Optional[bytes]:
    """A message if one waits, else None at once."""
    try:
        return transport.receive(sock, block=False)
    except transport.TryAgain:
        return None


def try_send(sock: pynng.Socket, payload: bytes) -> bool:
    """Send if the socket takes the message at once; False if it would wait."""
    try:
        sock.send(payload, block=False)
    except transport.TryAgain:
        return False
    return True


def measure_scale(plugin: Plugin, kind: str, instances: int, each: int) -> dict[str, float]:
    rules = [rule(plugin.system) for _ in range(instances)]
    handles: list[Any]
    if kind == "source":
        handles = [plugin.host.start_source("emit", rule=r, config={"count": each}) for r in rules]
        sources, sinks = handles, []
    else:
        handles = [plugin.host.start_sink("ack", rule=r, config={"count": each,
                                                                  "requireAck": True})
                   for r in rules]
        sources, sinks = [], handles
    span = Span(plugin)
    flowed = flow(sources, sinks, each)
    name = f"scale_{kind}s"
    figures = span.figures(name, flowed.received)
    for handle in handles:
        handle.stop()
    figures[f"{name}_fairness"] = min(flowed.fairness)
    figures[f"{name}_complete"] = flowed.complete
    return figures


def measure_transport(count: int, size: int) -> float:
    address = f"ipc:///tmp/{rule()}.ipc"
    with pynng.Pull0(recv_timeout=200) as sock:
        sock.listen(address)
        t0 = time.perf_counter()
        pusher = subprocess.Popen([sys.executable, str(HERE / "loopback.py"), address, str(count),
                                   str(size)], stdin=subprocess.PIPE,
                                  preexec_fn=pin_plugin)
        drain(sock, count)
        elapsed = time.perf_counter() - t0
        pusher.communicate(b"")
    return count / elapsed


def cold_start(system: str) -> float:
    t0 = time.perf_counter()
    plugin = Plugin(system)
    elapsed = time.perf_counter() - t0
    plugin.close()
    return elapsed * 1000


def run(sizes: dict[str, int], systems: list[str], log: Callable[[str], None]) -> dict:
    samples: dict[str, dict[str, list[float]]] = {f[0]: {} for f in FIGURES}

    def add(figure: str, system: str, value: float) -> None:
        samples[figure].setdefault(system, []).append(value)

    def add_all(system: str, figures: dict[str, float]) -> None:
        for figure, value in figures.items():
            add(figure, system, value)

    log("cold starts")
    for _ in range(sizes["starts"]):
        for system in systems:
            add("cold_start", system, cold_start(system))
    plugins = {system: Plugin(system) for system in systems}
    try:
        time.sleep(1.0)
        for system, plugin in plugins.items():
            add("memory_idle", system, plugin.memory_mb())
        for repeat in range(sizes["repeats"]):
            log(f"repeat {repeat + 1} of {sizes['repeats']}")
            for system, plugin in plugins.items():
                add_all(system, measure_source(plugin, "source_100b", sizes["source"], "100"))
                if repeat == 0:
                    add("memory_after_10k", system, plugin.memory_mb())
                add_all(system, measure_source(plugin, "source_4k", sizes["source4k"], "4k"))
                add_all(system, measure_sink(plugin, "sink_ack", sizes["sink"], True))
                add_all(system, measure_sink(plugin, "sink_noack", sizes["sink"], False))
                add_all(system, measure_function(plugin, sizes["calls"]))
                for kind in ("source", "sink"):
                    add_all(system, measure_scale(plugin, kind, sizes["scale"],
                                                  sizes["scale_each"]))
            add("transport_100b", "bare", measure_transport(sizes["source"], 100))
            add("transport_4k", "bare", measure_transport(sizes["source4k"], 4096))
    finally:
        for system, plugin in plugins.items():
            plugin.close()
            add("socket_files_left", system, socket_files_left(system))
    return samples


def summarise(samples: dict) -> list[dict[str, Any]]:
    """One row per figure and system, then one per ratio, with its target if it has one."""
    rows: list[dict[str, Any]] = []
    for figure, unit, higher, targets in FIGURES:
        for system, values in samples[figure].items():
            rows.append({"figure": figure, "system": system, "unit": unit,
                         "median": statistics.median(values), "min": min(values),
                         "max": max(values), "samples": values})
        for ratio, target in targets + [(r, None) for r in ("kuiperlite/sdk", "kuiperlite/bare")
                                        if r not in dict(targets)]:
            a, b = ratio.split("/")
            if a not in samples[figure] or b not in samples[figure]:
                continue
            pairs = [x / y for x, y in zip(samples[figure][a], samples[figure][b]) if y]
            if not pairs:
                continue
            row: dict[str, Any] = {"figure": figure, "ratio": ratio,
                                   "median": statistics.median(pairs), "min": min(pairs),
                                   "max": max(pairs), "samples": pairs}
            if target is not None:
                row["target"] = target
                row["met"] = row["median"] >= target if higher else row["median"] <= target
            rows.append(row)
    return rows


def _cell(row: Any) -> str:
    """``median (min-max)``, with the digits the size of the figure calls for."""
    if row is None:
        return ""
    digits = 0 if row["median"] >= 100 else 2
    return f"{row['median']:,.{digits}f} ({row['min']:,.{digits}f}-{row['max']:,.{digits}f})"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'figure':<28} {'kuiperlite':>24} {'sdk':>24} {'bare':>24}  "
             f"{'kl/sdk':>6} {'kl/bare':>7}  target"]
    for figure, unit, higher, _targets in FIGURES:
        values = {r["system"]: r for r in rows if r.get("figure") == figure and "system" in r}
        if not values:
            continue
        ratios = {r["ratio"]: r for r in rows if r.get("figure") == figure and "ratio" in r}
        shown = {name: f"{r['median']:.2f}" for name, r in ratios.items()}
        target = "; ".join(f"{name} {'>=' if higher else '<='} {r['target']} "
                           f"{'met' if r['met'] else 'MISSED'}"
                           for name, r in ratios.items() if "target" in r)
        lines.append(f"{figure + ' ' + unit:<28} {_cell(values.get('kuiperlite')):>24} "
                     f"{_cell(values.get('sdk')):>24} {_cell(values.get('bare')):>24}  "
                     f"{shown.get('kuiperlite/sdk', ''):>6} {shown.get('kuiperlite/bare', ''):>7}"
                     f"  {target}")
    return "\n".join(lines)


def describe_run(quick: bool, sizes: dict[str, int], **more: Any) -> dict[str, Any]:
    """What a results file says about the machine and the run."""
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "pinned": PIN, "pynng": pynng.__version__,
            "mode": "quick" if quick else "full", "sizes": sizes,
            "plugin_python": "given (--python)" if PYTHON else "this one", **more}


def write_results(output: str, prefix: str, environment: dict[str, Any],
                  rows: list[dict[str, Any]]) -> Path:
    """JSON lines in ``output``: the environment, then one row per figure."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    quick = "-quick" if environment["mode"] == "quick" else ""
    path = out / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}{quick}.jsonl"
    with open(path, "w") as f:
        f.write(json.dumps({"environment": environment}) + "\n")
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def positive(text: str) -> int:
    """A command-line count: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def add_python_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python", help="the interpreter plugins run with, as eKuiper's portable.pythonBin "
        "(default: this one). Give one where kuiperlite and ekuiper are installed as on a "
        "device, not editable: an editable install's import hook costs every plugin "
        "process some 11 ms and 1 MB at start that a deployed plugin does not pay.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, one repeat (CI)")
    parser.add_argument("--repeats", type=positive, help="repeats per figure (default 3)")
    parser.add_argument("--output", default=str(HERE / "results"), help="folder for JSON lines")
    parser.add_argument("--no-pin", action="store_true",
                        help="let host and plugins share every core")
    parser.add_argument("--placement", action="append", choices=list(PLACEMENTS),
                        help="measure only this placement (repeatable; default: all)")
    add_python_option(parser)
    args = parser.parse_args()
    global PIN, PLACEMENT, PYTHON
    PYTHON = args.python
    PIN = PIN and not args.no_pin
    placements = [PLACEMENTS[name] for name in args.placement or PLACEMENTS] if PIN else \
        [Placement("unpinned", None, None, "host and plugin on every core")]
    sizes = dict(QUICK if args.quick else FULL)
    if args.repeats:
        sizes["repeats"] = args.repeats
    # Deployed plugins run from cached bytecode after their first start (the
    # SDK's was compiled by pip); compile ours too, whatever PYTHONDONTWRITEBYTECODE says.
    for system in SYSTEMS:
        plugin_copy(system)
    for folder in (Path(kuiperlite.__file__).parent, COPIES):
        compileall.compile_dir(str(folder), quiet=1)
    started = time.time()
    rows: list[dict[str, Any]] = []
    try:
        for PLACEMENT in placements:
            pin_host()
            say = functools.partial(lambda name, line: print(f"# {name}: {line}", flush=True),
                                    PLACEMENT.name)
            samples = run(sizes, list(SYSTEMS), say)
            rows += [dict(row, placement=PLACEMENT.name) for row in summarise(samples)]
    finally:
        shutil.rmtree(COPIES, ignore_errors=True)
    environment = describe_run(args.quick, sizes,
                               placements={p.name: p.why for p in placements},
                               seconds=round(time.time() - started, 1))
    path = write_results(args.output, "", environment, rows)
    for placement in placements:
        print(f"\n## {placement.name}: {placement.why}")
        print(table([row for row in rows if row["placement"] == placement.name]))
    print(f"\n{environment}\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
