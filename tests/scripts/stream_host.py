"""A host in a process of its own, streaming a source into a sink of one plugin.

``python stream_host.py NAME PLUGIN_FILE LOG_FILE`` starts the plugin file
itself (its output to LOG_FILE), starts its ``tagged`` source and ``record``
sink (tests/plugins/faults.py), pipes each record into the sink, prints the
plugin's pid and waits to be killed. Used by tests/test_faults.py to kill a
host mid-stream.
"""

import subprocess
import sys
import threading

from kuiperlite.dev import Host


def main() -> None:
    name, path, log = sys.argv[1:4]
    host = Host(name)
    with open(log, "w") as out:
        plugin = subprocess.Popen([sys.executable, "-u", path], stdout=out,
                                  stderr=subprocess.STDOUT)
    host.wait_handshake(30)
    src = host.start_source("tagged", rule=name, config={"interval": 0.001})
    snk = host.start_sink("record", rule=name, op="op2", config={"requireAck": True})

    def stream() -> None:
        for i in range(10 ** 9):
            src.recv()
            snk.send({"n": i})

    threading.Thread(target=stream, daemon=True).start()
    print(plugin.pid, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
