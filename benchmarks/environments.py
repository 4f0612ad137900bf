"""What a plugin's own environment costs: install time, disk, and the re-exec at start.

    python benchmarks/environments.py            # offline: the wheels are fetched once
    python benchmarks/environments.py --online   # also an install from the index

One zip of benchmarks/plugins/klbench.py is installed into a folder laid
out as eKuiper's, as eKuiper installs it (install.sh with the python given),
once from its bundled wheels and, with ``--online``, once from the index.
Then its cold start (the process started, to the handshake) is measured two
ways, interleaved ``--repeats`` times: launched by a bare python, which
re-executes it in the plugin's environment, as under eKuiper; and launched
by the environment's own python, which runs it at once, as a plugin ran
before it had an environment of its own. The difference is the re-exec's
cost (the target: at most 20 ms). Results go to stdout and JSON lines in
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import venv
from pathlib import Path

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev.host import PORTABLE_CONFIG, Host
from kuiperlite.dev.installer import install
from kuiperlite.launcher import ENVIRONMENT

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import describe_run, positive, write_results  # noqa: E402


def megabytes(folder: Path) -> float:
    """The bytes the files under ``folder`` take on disk, in MB (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(root, f)).st_blocks * 512 for f in files)
    return total / 1e6


def start_ms(plugin_dir: Path, python: str, executable: str) -> float:
    """Milliseconds from starting the plugin as eKuiper does to its handshake."""
    host = Host(plugin_dir.name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        started = time.perf_counter()
        host.spawn([python, "-u", str(plugin_dir / executable), PORTABLE_CONFIG],
                   str(plugin_dir), env)
        host.wait_handshake(60)
        return (time.perf_counter() - started) * 1000
    finally:
        host.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=15, help="starts of each way")
    parser.add_argument("--online", action="store_true", help="also install from the index")
    parser.add_argument("--output", default=str(HERE / "results"), help="folder for JSON lines")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kuiperlite-envbench-"))
    try:
        source = work / "src" / f"envbench{uuid.uuid4().hex[:8]}.py"
        source.parent.mkdir()
        shutil.copy(HERE / "plugins" / "klbench.py", source)
        for helper in ("records.py",):
            shutil.copy(HERE / "plugins" / helper, source.parent / helper)
        plugin = load(str(source))
        bare = work / "bare"
        venv.create(bare, with_pip=True)  # eKuiper's python: pip, nothing else
        python = str(bare / "bin" / "python")
        rows = []
        ways = [("wheels", True)] + ([("index", False)] if args.online else [])
        plugin_dir = Path()
        for way, wheels in ways:
            zip_path = package.build(plugin, str(work / way), wheels=wheels)
            done = install(str(zip_path), str(work / f"ekuiper-{way}"), shell_paras=[python])
            plugin_dir = done.plugin_dir
            rows.append({"figure": f"install_{way}", "unit": "s",
                         "median": round(done.install_seconds or 0, 2)})
            rows.append({"figure": f"disk_{way}", "unit": "MB",
                         "median": round(megabytes(plugin_dir / ENVIRONMENT), 1)})
        executable = f"{source.stem}_main.py"
        own = str(plugin_dir / ENVIRONMENT / "bin" / "python")
        starts: dict[str, list[float]] = {"reexec": [], "direct": []}
        for _ in range(args.repeats):
            starts["reexec"].append(start_ms(plugin_dir, python, executable))
            starts["direct"].append(start_ms(plugin_dir, own, executable))
        for way, values in starts.items():
            rows.append({"figure": f"cold_start_{way}", "unit": "ms",
                         "median": round(statistics.median(values), 1),
                         "min": round(min(values), 1), "max": round(max(values), 1)})
        costs = [a - b for a, b in zip(starts["reexec"], starts["direct"])]
        rows.append({"figure": "reexec_cost", "unit": "ms",
                     "median": round(statistics.median(costs), 1), "target": 20})
        for row in rows:
            print(f"{row['figure']:<20} {row['median']:>8} {row['unit']}")
        environment = describe_run(False, {"repeats": args.repeats}, online=args.online)
        print(f"results: {write_results(args.output, 'environments-', environment, rows)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
