"""The benchmark symbols hand-rolled on the protocol with bare pynng: no framework.

The floor of what Python does on this transport: a control loop with the
handshake and keepalive, one thread per source or sink instance, one per
function channel, orjson for the JSON. Like kuiperlite's, its sources wait
for a slow reader rather than end on the first send that times out.
"""

import os
import sys
import threading
from pathlib import Path

import orjson
import pynng

from records import make

stops: dict[str, threading.Event] = {}
NAME = Path(__file__).stem
FUNCTION = os.environ.get("BENCH_FUNCTION", "barerevert")


def dial(sock, url):
    for _ in range(50):
        try:
            sock.dial(url, block=True)
            return
        except pynng.NNGException:
            threading.Event().wait(0.1)
    raise SystemExit(f"cannot dial {url}")


def serve_requests(url, handle):
    sock = pynng.Req0(recv_timeout=5000, resend_time=0)
    dial(sock, url)
    sock.send(b"handshake")
    while True:
        try:
            msg = sock.recv()
        except pynng.NNGException:
            sock.send(b"handshake")
            continue
        sock.send(handle(msg))


def source(ctrl, stop):
    meta, conf = ctrl["meta"], ctrl.get("config") or {}
    sock = pynng.Push0(send_timeout=1000)
    dial(sock, f"ipc:///tmp/{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}.ipc")
    record = make(str(conf.get("size", "100")))
    try:
        for _ in range(int(conf.get("count", 1000))):
            message = orjson.dumps({"message": record, "meta": None})
            while True:  # a slow reader: wait on, as eKuiper reads every record in the end
                try:
                    sock.send(message)
                    break
                except pynng.Timeout:
                    if stop.is_set():
                        return
        stop.wait()
    finally:
        sock.close()


def sink(ctrl, stop, data):
    meta, conf = ctrl["meta"], ctrl.get("config") or {}
    ack = pynng.Push0(send_timeout=1000)
    dial(ack, f"ipc:///tmp/{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}_ack.ipc")
    require_ack, count, seen = conf.get("requireAck") is True, int(conf.get("count", 0)), 0
    while not stop.is_set():
        try:
            data.recv()
        except pynng.Timeout:
            continue
        if require_ack:
            ack.send(b"{}")
        seen += 1
        if seen == count:
            print("DONE", meta["ruleId"], flush=True)
    data.close()
    ack.close()


def revert(msg):
    request = orjson.loads(msg)
    if request["func"] == "Exec":
        return orjson.dumps({"state": True, "result": request["arg"][0][::-1]})
    if request["func"] == "IsAggregate":
        return b'{"state":true,"result":false}'
    return b'{"state":true,"result":""}'


def command(msg):
    cmd = orjson.loads(msg)
    ctrl = orjson.loads(cmd["arg"])
    if ctrl["pluginType"] == "func":
        if FUNCTION not in stops:
            stops[FUNCTION] = threading.Event()
            threading.Thread(target=serve_requests, daemon=True,
                             args=(f"ipc:///tmp/func_{FUNCTION}.ipc", revert)).start()
        return b"ok"
    meta = ctrl["meta"]
    key = f"{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}_{ctrl['symbolName']}"
    if cmd["cmd"] == "stop":
        stops.pop(key, threading.Event()).set()
        return b"ok"
    stop = stops[key] = threading.Event()
    if ctrl["pluginType"] == "source":
        threading.Thread(target=source, args=(ctrl, stop), daemon=True).start()
    else:
        data = pynng.Pull0(recv_timeout=200)
        data.listen(f"ipc:///tmp/{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}.ipc")
        threading.Thread(target=sink, args=(ctrl, stop, data), daemon=True).start()
    return b"ok"


if __name__ == "__main__":
    print(NAME, "serving", sys.argv[1:], flush=True)
    serve_requests(f"ipc:///tmp/plugin_{NAME}.ipc", command)
