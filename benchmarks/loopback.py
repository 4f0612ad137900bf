"""Pure transport, no protocol: one process pushes messages to another over ipc.

``python loopback.py ADDRESS COUNT SIZE`` pushes COUNT messages of SIZE bytes
to ADDRESS, where the benchmark listens, then waits for stdin to close so
that closing its socket cannot drop messages still in flight.
"""

import sys

import pynng

address, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = pynng.Push0(send_timeout=10_000)
sock.dial(address, block=True)
payload = b"x" * size
for _ in range(count):
    sock.send(payload)
sys.stdin.read()
sock.close()
