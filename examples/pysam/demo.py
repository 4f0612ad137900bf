"""Run the pysam plugin end to end under kuiperlite's embedded host.

The host does what eKuiper does: it starts ``python -u pysam.py`` in the
plugin's folder, waits for the handshake, then starts each symbol, reads
what the source emits, pushes records into the sink and calls the function.
"""

import threading
from pathlib import Path

from kuiperlite.dev import Host, gowire

PLUGIN = Path(__file__).with_name("pysam.py")
_lock = threading.Lock()


def say(text: str) -> None:
    """Print whole lines: the plugin's output arrives on another thread."""
    with _lock:
        print(text, flush=True)


def main() -> None:
    with Host.launch(str(PLUGIN), on_output=lambda line: say(f"    plugin | {line}")) as host:
        say(f"host: plugin {host.name} is up (pid {host.pid})")

        with host.start_source("pyjson", datasource="demo", config={"interval": 0.1}) as src:
            for record in src.records(3):
                say(f"host: source pyjson emitted {record}")

        with host.start_sink("print", config={"requireAck": True}) as snk:
            for record in ({"name": "hello", "count": 5}, {"name": "world", "count": 10}):
                ack = snk.send(record)
                say(f"host: sink print acked {record} -> {'ok' if ack is None else ack}")

        with host.function("revert") as fn:
            for word in ("twelve", "eleven"):
                say(f"host: revert({word!r}) = {fn.call(word)!r}")
            refused = fn.validate(gowire.literal("a"), gowire.literal("b"))
            say(f"host: revert('a', 'b') is refused: {refused}")
    say("host: done; the plugin process has exited")


if __name__ == "__main__":
    main()
