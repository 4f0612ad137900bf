"""``python -m kuiperlite serve`` as a subprocess, driven over real HTTP."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pynng
import pytest

from kuiperlite.dev import Host
from kuiperlite.dev.server import (
    BodyTimeout,
    Forbidden,
    TooLarge,
    WrongMediaType,
    WrongMethod,
    status_of,
)
from kuiperlite.dev.session import (
    BadRequest,
    Conflict,
    LoadFailed,
    NotFound,
    PluginFailed,
    describe,
)
from kuiperlite.errors import HostError

from conftest import free_port, pid_alive, wait_until


def ipc_folder() -> str:
    """A short socket folder of one's own (socket paths hold at most 107 bytes)."""
    return tempfile.mkdtemp(prefix="kl", dir="/tmp")


class Serve:
    """A serve subprocess with its output collected line by line.

    Its sockets live in a folder of its own, so that it never meets another
    test run or a running eKuiper hosting symbols of the same names; the
    folder must be empty once serve stopped.
    """

    def __init__(self, *args, cwd=None, session=False):
        self.port = free_port()
        self.lines: list[str] = []
        self.ipc_dir = ipc_folder()
        self.env = dict(os.environ, KUIPERLITE_IPC_DIR=self.ipc_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kuiperlite", "serve", *map(str, args),
             "--port", str(self.port)], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=self.env, start_new_session=session)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def ready(self, timeout=30):
        wait_until(lambda: self.said("REST API on http://127.0.0.1:") or self.proc.poll()
                   is not None, timeout, message="serve to listen")
        assert self.proc.poll() is None, "\n".join(self.lines)
        return self

    def said(self, text):
        return any(text in line for line in self.lines)

    def request(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def raw(self, data: bytes, timeout=30):
        """Send bytes as they are; the status and JSON body of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            return parse_answer(read_all(sock))

    def stop(self, signum=signal.SIGTERM):
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signum)
            try:
                self.proc.wait(20)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
            if os.path.isdir(self.ipc_dir):
                tail = "\n".join(self.lines[-15:])
                wait_until(lambda: not os.listdir(self.ipc_dir), 5, message=(
                    f"serve (exit code {self.proc.returncode}) to remove its socket files "
                    f"{os.listdir(self.ipc_dir)}; its last output:\n{tail}"))
        finally:
            shutil.rmtree(self.ipc_dir, ignore_errors=True)


def read_all(sock) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def parse_answer(data: bytes):
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), data[:200]
    assert b"Content-Type: application/json" in head, head
    return int(head.split()[1]), json.loads(body)


def http_request(method, path, port, body=b"", **headers) -> bytes:
    """An HTTP/1.1 request with the given headers (Host: 127.0.0.1 unless given)."""
    headers = {"Host": f"127.0.0.1:{port}", **{k.replace("_", "-"): v
                                                for k, v in headers.items()}}
    if body and "Content-Length" not in headers:
        headers["Content-Length"] = str(len(body))
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()
                                            if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def plugin(copy_plugin):
    return copy_plugin("served")


@pytest.fixture
def serve(plugin):
    running = []

    def start(*args, path=None, **kwargs):
        server = Serve(path or plugin, *args, **kwargs)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


def start_body(symbol, kind, rule="rule1", **extra):
    return {"symbolName": symbol, "pluginType": kind,
            "meta": {"ruleId": rule, "opId": "op1" if kind != "sink" else "op2",
                     "instanceId": 1}, **extra}


def events(server, wait=5, **query):
    query = "&".join(f"{k}={v}" for k, v in {**query, "wait": wait}.items())
    status, body = server.request("GET", f"/symbol/output?{query}")
    assert status == 200
    return body["events"]


def at_least(server, count, **query):
    """Wait for ``count`` events matching the query; the first ``count`` of them."""
    found = wait_until(lambda: (lambda got: got if len(got) >= count else None)(
        events(server, **query)), message=f"{count} events like {query}")
    return found[:count]


def test_symbols_and_the_original_start_stop_api(serve, plugin):
    server = serve().ready()
    status, info = server.request("GET", "/symbols")
    assert status == 200
    assert info["plugin"] == plugin.stem and info["alive"] and pid_alive(info["pid"])
    assert info["symbols"] == {"sources": ["counter", "unplugged", "flaky"], "sinks": ["keep"],
                               "functions": ["shout", "broken"]}
    # the body eKuiper's plugin test server documents
    body = {"symbolName": "counter", "meta": {"ruleId": "rule1", "opId": "op1",
                                              "instanceId": 1},
            "pluginType": "source", "config": {"step": 2}}
    assert server.request("POST", "/symbol/start", body)[0] == 200
    records = at_least(server, 2, pluginType="source", kind="record")
    assert [e["data"]["i"] for e in records] == [0, 2]
    assert server.request("GET", "/symbols")[1]["running"] == [
        {"pluginType": "source", "symbolName": "counter",
         "meta": {"ruleId": "rule1", "opId": "op1", "instanceId": 1}, "status": "running"}]
    assert server.request("POST", "/symbol/stop", body)[0] == 200
    assert server.said("[source counter rule1] record {\"i\":0,")
    assert server.request("POST", "/symbol/stop", body) == (404, {
        "error": "source 'counter' is not running for rule rule1/op1/1."})


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("POST", "/symbol/start", b"{oops", 400, "Invalid body: not JSON"),
    ("POST", "/symbol/start", b"[1]", 400, "Invalid body: expected a JSON object."),
    ("POST", "/symbol/start", b'{"pluginType": "source"}', 400, "needs 'symbolName'"),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "widget"}', 400,
     "pluginType must be source, sink or func, got the string 'widget'."),
    ("POST", "/symbol/start", b'{"symbolName": "nope", "pluginType": "source"}', 404,
     "has no source named 'nope'; its sources: counter, unplugged, flaky."),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "source", '
                              b'"meta": {"ruleId": ""}}', 400,
     "meta.ruleId must be a non-empty string, got the string ''."),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "source", '
                              b'"config": {"step": "two"}}', 502,
     "Config 'step' of the source 'counter' must be an integer, got the string 'two'."),
    ("POST", "/symbol/send", b'{"symbolName": "keep", "data": 1}', 404, "is not running"),
    ("POST", "/symbol/send", b'{"symbolName": "keep"}', 400, "send needs 'data'"),
    ("POST", "/function/call", b'{"symbolName": "shout", "args": ["a", "b"]}', 400,
     "shout() takes exactly 1 argument (s) but got 2."),
    ("POST", "/function/call", b'{"symbolName": "shout", "args": [true]}', 400,
     "Argument 1 (s) of shout() must be a string, got true."),  # as shout(true) at creation
    ("POST", "/function/call", b'{"symbolName": "shout", "args": [["a"]]}', 502,
     "Argument 1 (s) of shout() must be a string, got a list."),  # a column's value, at Exec
    ("POST", "/function/call", b'{"symbolName": "broken", "args": [1]}', 502,
     "broken() raised RuntimeError: no luck"),
    ("POST", "/function/call", b'{"symbolName": "shout", "args": "x"}', 400,
     "'args' (a list)"),
    ("GET", "/nowhere", None, 404, "No endpoint /nowhere"),
    ("GET", "/symbol/start", None, 405, "/symbol/start takes POST, not GET."),
    ("GET", "/symbol/output?since=x", None, 400, "since must be an integer"),
])
def test_errors_are_json_with_the_right_status(serve, method, path, body, status, message):
    server = serve().ready()
    got_status, got = server.request(method, path, raw=body)
    assert got_status == status
    assert message in got["error"]


def test_conflicts_and_body_limit(serve):
    server = serve("--max-body", 200).ready()
    body = start_body("counter", "source")
    assert server.request("POST", "/symbol/start", body)[0] == 200
    status, err = server.request("POST", "/symbol/start", body)
    assert status == 409 and err["error"] == "[source counter rule1] is already running; " \
                                             "stop it first."
    clash = start_body("keep", "sink")
    clash["meta"]["opId"] = "op1"
    status, err = server.request("POST", "/symbol/start", clash)
    assert status == 409 and "already uses the data channel of rule rule1/op1/1" in err["error"]
    status, err = server.request("POST", "/symbol/send", raw=b" " * 500)
    assert status == 413 and err["error"] == "The body has 500 bytes; the limit is 200."


def test_sink_mock_feed_send_and_acks(serve):
    server = serve("--sink-data", '[{"name": "mock"}]', "--mock-interval", "0.1").ready()
    body = start_body("keep", "sink", config={"requireAck": True, "sendSingle": True})
    assert server.request("POST", "/symbol/start", body)[0] == 200
    acks = at_least(server, 1, kind="ack")
    assert acks[0]["data"]["payload"] == {"name": "mock"} and acks[0]["data"]["ack"] == "ok"
    status, got = server.request("POST", "/symbol/send", {**body, "data": {"fail": True}})
    assert status == 200 and got["ack"] == "OSError: disk full"
    status, got = server.request("POST", "/symbol/send", {**body, "data": [{"a": 1}, {"a": 2}]})
    assert status == 200 and got["ack"] == "ok" and len(got["messages"]) == 2
    assert wait_until(lambda: server.said("KEEP {'a': 2}"))
    assert server.said('[sink keep rule1] sent {"fail":true} -> ack OSError: disk full')


def test_send_feeds_the_sink_as_ekuiper_does(serve):
    server = serve().ready()
    body = start_body("keep", "sink", config={"requireAck": True})
    assert server.request("POST", "/symbol/start", body)[0] == 200
    # sendSingle is off by default: eKuiper sends a row as a one-element list
    assert server.request("POST", "/symbol/send", {**body, "data": {"fail": True}}) == (
        200, {"ack": "ok", "pending": 0,
              "messages": [{"data": '[{"fail":true}]', "sent": True, "ack": "ok"}]})
    assert wait_until(lambda: server.said("KEEP [{'fail': True}]"))
    status, err = server.request("POST", "/symbol/send", {**body, "data": [1, 2]})
    assert status == 400 and err["error"] == (
        "A rule output is a row (an object) or a collection (a list of objects), got a list.")

    templated = start_body("keep", "sink", rule="rule2", config={
        "sendSingle": True, "batchSize": 2, "topic": "{{.a.b}}"})
    assert server.request("POST", "/symbol/start", templated)[0] == 200
    assert server.request("POST", "/symbol/send", {**templated, "data": {"a": 1}}) == (
        200, {"ack": None, "pending": 0, "messages": [{
            "dropped": "fail to calculate props {{.a.b}} through data map[a:1] with "
                       "dataTemplate for error template: sink:1:4: executing \"sink\" at "
                       "<.a.b>: can't evaluate field b in type interface {}",
            "op": "keep_0_1_transform"}]})
    assert server.request("POST", "/symbol/send", {**templated, "data": {"a": {"b": 2}}}) == (
        200, {"ack": None, "pending": 0, "messages": [
            {"data": '[{"a":{"b":2}}]', "sent": True, "ack": None}]})
    assert wait_until(lambda: server.said("KEEP [{'a': {'b': 2}}]"))

    refused = start_body("keep", "sink", rule="rule3", config={"batchSize": -1})
    assert server.request("POST", "/symbol/start", refused)[0] == 200
    status, err = server.request("POST", "/symbol/send", {**refused, "data": {"a": 1}})
    assert status == 400 and err["error"] == ("eKuiper refuses a rule with this sink's "
                                              "properties: fail to parse sink configuration: "
                                              "invalid batchSize -1")


def test_running_sinks_and_functions_get_mock_data_only_when_asked(serve):
    server = serve("--mock-interval", "0.05").ready()
    sink = start_body("keep", "sink", config={"requireAck": True})
    assert server.request("POST", "/symbol/start", sink)[0] == 200
    assert server.request("POST", "/symbol/start", start_body("shout", "func"))[0] == 200
    # serve waits up to a second, on its side, for a mock send or call to show
    assert events(server, wait=1, kind="ack") == []
    assert events(server, wait=0, kind="result") == []
    assert not server.said("KEEP")

    asked = start_body("keep", "sink", rule="rule2", config={"requireAck": True}, mock=True)
    assert server.request("POST", "/symbol/start", asked)[0] == 200
    acks = at_least(server, 2, kind="ack")
    assert [(e["meta"]["ruleId"], e["data"]["payload"]) for e in acks] == [
        ("rule2", {"name": "hello", "count": 5}), ("rule2", {"name": "world", "count": 10})]
    called = start_body("shout", "func", rule="rule3", mock=[["a"], ["b"]])
    assert server.request("POST", "/symbol/start", called)[0] == 200
    results = at_least(server, 2, kind="result", ruleId="rule3")
    assert [e["data"]["result"] for e in results] == ["A!", "B!"]
    for body, message in [
        (start_body("keep", "sink", rule="r4", mock="yes"),
         "mock must be true, false or a list of payloads, got the string 'yes'."),
        (start_body("shout", "func", rule="r4", mock=["a"]),
         "mock must be true, false or a list of argument lists, got a list holding the "
         "string 'a'."),
        (start_body("counter", "source", rule="r4", mock=True),
         "mock feeds sinks and functions; a source makes its own records."),
    ]:
        assert server.request("POST", "/symbol/start", body) == (400, {"error": message})


def test_function_calls_and_mock_calls(serve, tmp_path):
    mock = tmp_path / "mock.json"
    mock.write_text(json.dumps({"function": {"shout": [["hey"], ["ho"]]}}))
    server = serve("--mock", mock, "--mock-interval", "0.1").ready()
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["kuiper"]}) \
        == (200, {"result": "KUIPER!"})
    assert server.request("POST", "/symbol/start", start_body("shout", "func"))[0] == 200
    results = at_least(server, 3, kind="result", symbolName="shout")
    assert [e["data"]["result"] for e in results] == ["KUIPER!", "HEY!", "HO!"]
    assert server.said('[function shout rule1] shout("hey") -> "HEY!"')


def running_status(server, symbol):
    """The entry GET /symbols gives a running symbol."""
    return next(r for r in server.request("GET", "/symbols")[1]["running"]
                if r["symbolName"] == symbol)


def test_a_source_that_only_fails_shows_its_error_and_that_it_failed(serve):
    server = serve().ready()
    assert server.request("POST", "/symbol/start", start_body("unplugged", "source"))[0] == 200
    [error] = at_least(server, 1, kind="error")
    assert error["data"] == "The source 'unplugged' failed: OSError: sensor unplugged"
    wait_until(lambda: server.said("[source unplugged rule1] failed: The source 'unplugged' "
                                   "failed: OSError: sensor unplugged"), message="the error line")
    assert running_status(server, "unplugged") == {
        "pluginType": "source", "symbolName": "unplugged",
        "meta": {"ruleId": "rule1", "opId": "op1", "instanceId": 1},
        "status": "failed", "error": "OSError: sensor unplugged"}


def test_a_failing_source_shows_as_retrying_until_its_records_flow(serve, tmp_path):
    server = serve().ready()
    gate = tmp_path / "gate"
    body = start_body("flaky", "source", config={"gate": str(gate)})
    assert server.request("POST", "/symbol/start", body)[0] == 200
    status = wait_until(lambda: (lambda r: r if r["status"] == "retrying" else None)(
        running_status(server, "flaky")), message="the retrying status")
    assert status["error"] == "OSError: sensor unplugged"
    assert 0 <= status["startsAgainIn"] <= 0.2
    assert abs(status["startsAgainAt"] - time.time()) < 5
    wait_until(lambda: server.said("[source flaky rule1] retrying: The source 'flaky' failed: "
                                   "OSError: sensor unplugged; it starts again in 0.2 s"),
               message="the retrying line")
    gate.write_text("")  # the sensor is back
    [record] = at_least(server, 1, kind="record", symbolName="flaky")
    assert record["data"] == {"up": True}
    assert running_status(server, "flaky")["status"] == "running"
    assert "error" not in running_status(server, "flaky")
    wait_until(lambda: server.said("[source flaky rule1] running again"),
               message="the running line")


def test_output_stream(serve):
    server = serve().ready()
    server.request("POST", "/symbol/start", start_body("counter", "source"))
    url = f"http://127.0.0.1:{server.port}/symbol/output?follow=1&kind=record"
    with urllib.request.urlopen(url, timeout=30) as stream:
        lines = [json.loads(stream.readline()) for _ in range(3)]
    assert [line["data"]["i"] for line in lines] == [0, 1, 2]


def test_a_dead_plugin_is_reported_and_restarted_on_the_next_start(serve):
    server = serve().ready()
    server.request("POST", "/symbol/start", start_body("counter", "source"))
    old = server.request("GET", "/symbols")[1]["pid"]
    wait_until(lambda: events(server, kind="record"))
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: server.said(f"plugin process {old} exited with code -9"),
               message="serve to report the death")
    assert server.said("it restarts on the next start request")
    assert server.request("POST", "/symbol/start", start_body("keep", "sink"))[0] == 200
    info = server.request("GET", "/symbols")[1]
    assert info["restarts"] == 1 and info["pid"] != old and len(info["running"]) == 2
    wait_until(lambda: [e for e in events(server, kind="record")
                        if e["data"]["pid"] == info["worker"]], message="replayed source records")


def test_reload_restarts_the_plugin_and_survives_a_broken_file(serve, plugin):
    server = serve("--reload").ready()
    server.request("POST", "/symbol/start", start_body("counter", "source"))
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]})[1] \
        == {"result": "A!"}
    source = plugin.read_text()
    plugin.write_text(source + "\ndef broken(:\n")
    assert server.request("GET", "/symbols")[1]["stale"] is False
    wait_until(lambda: server.said("the plugin does not start; fix it and save again"))
    assert server.said("SyntaxError")
    info = server.request("GET", "/symbols")[1]
    assert info["stale"] is True and "SyntaxError" in info["reload_error"]
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]})[1] \
        == {"result": "A!"}, "the old code keeps serving"
    plugin.write_text(source.replace('s.upper() + "!"', 's.upper() + "?"'))
    wait_until(lambda: server.said("1 running symbols replayed"), message="the reload")
    info = server.request("GET", "/symbols")[1]
    assert info["stale"] is False and info["reload_error"] is None
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]})[1] \
        == {"result": "A?"}
    worker = server.request("GET", "/symbols")[1]["worker"]
    wait_until(lambda: [e for e in events(server, kind="record") if e["data"]["pid"] == worker])


def test_attach_waits_for_a_plugin_started_by_hand(serve, plugin):
    server = serve("--attach")
    wait_until(lambda: server.said(f"waiting for plugin {plugin.stem}: start it with"))
    proc = subprocess.Popen([sys.executable, "-m", "kuiperlite", "run", str(plugin)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=server.env)
    try:
        server.ready()
        assert server.request("POST", "/function/call", {"symbolName": "shout",
                                                          "args": ["x"]})[1] == {"result": "X!"}
    finally:
        server.stop()
        proc.wait(15)  # the plugin notices its host went away and exits
    assert proc.returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_everything_cleanly(serve, signum):
    server = serve().ready()
    server.request("POST", "/symbol/start", start_body("counter", "source"))
    server.request("POST", "/symbol/start", start_body("keep", "sink"))
    pid = server.request("GET", "/symbols")[1]["pid"]
    started = time.monotonic()
    server.stop(signum)
    assert server.proc.returncode == 0
    assert time.monotonic() - started < 15
    assert not pid_alive(pid)
    assert server.said("[source counter rule1] stopped")
    assert server.said("[sink keep rule1] stopped")


def test_bursts_of_signals_to_the_whole_group_stop_everything_cleanly(serve):
    # Ctrl-C, or `timeout`, signals serve and the plugin it runs, often more than once.
    for round_ in range(5):
        server = serve(session=True).ready()
        server.request("POST", "/symbol/start", start_body("counter", "source"))
        pid = server.request("GET", "/symbols")[1]["pid"]
        for _ in range(50):
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.proc.pid, signum)
        server.proc.wait(20)
        output = "\n".join(server.lines)
        assert server.proc.returncode == 0, output
        assert "Traceback" not in output, output
        wait_until(lambda pid=pid: not pid_alive(pid), 15,
                   message=f"the plugin to exit after burst {round_}")
        server.stop()


def test_non_loopback_needs_an_explicit_flag(plugin):
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(plugin), "--host",
                          "0.0.0.0", "--port", str(free_port())], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0" in out.stdout and "--allow-remote" in out.stdout
    server = Serve(plugin, "--host", "0.0.0.0", "--allow-remote")
    try:
        wait_until(lambda: server.said("REST API on http://0.0.0.0:"))
        assert server.request("GET", "/symbols")[0] == 200
        # on all addresses, a request for any IP address is answered, but not for a name
        # (DNS rebinding), nor from a page of another site
        assert server.raw(http_request("GET", "/symbols", server.port,
                                       Host=f"192.0.2.7:{server.port}"))[0] == 200
        assert server.raw(http_request("GET", "/symbols", server.port,
                                       Host="evil.example"))[0] == 403
        assert server.raw(http_request("GET", "/symbols", server.port,
                                       Origin="http://192.0.2.66"))[0] == 403
    finally:
        server.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--mock-interval", "1", "--sink-data", "{bad"], "--sink-data is not JSON"),
    (["--function-args", "3"], "--function-args must be a list"),
    (["--mock", "/nonexistent.json"], "Cannot read mock data from /nonexistent.json"),
])
def test_bad_mock_options(plugin, args, message):
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(plugin), *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and message in out.stderr


def test_a_plugin_file_that_does_not_load(write_plugin):
    broken = write_plugin("import no_such_module_anywhere\n", main=False)
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(broken), "--port",
                          str(free_port())], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "does not load" in out.stdout and "No module named 'no_such_module_anywhere'" \
        in out.stdout


# ------------------------------------------------------------- hostile input

def no_traceback(server):
    assert not server.said("Traceback"), "\n".join(server.lines)
    assert server.proc.poll() is None


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"Host": "evil.example:33333"},
    {"Host": "127.0.0.1.evil.example"},
    {"Host": "user@127.0.0.1"},
    {"Host": None},
    {"Host": "127.0.0.1\r\nHost: evil.example"},
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost.evil.example:33333"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_requests_for_other_hosts_or_from_other_sites_are_refused(serve, headers):
    server = serve().ready()
    for method, path, body in (("GET", "/symbols", b""),
                               ("POST", "/symbol/start",
                                json.dumps(start_body("counter", "source")).encode())):
        status, answer = server.raw(http_request(method, path, server.port, body,
                                                 **{k.replace("-", "_"): v
                                                    for k, v in headers.items()}))
        assert status == 403
        assert answer["error"].startswith("serve ")
    assert server.request("GET", "/symbols")[1]["running"] == []
    no_traceback(server)


def test_loopback_hosts_and_origins_are_answered(serve):
    server = serve().ready()
    port = server.port
    for headers in ({"Host": "127.0.0.1"}, {"Host": f"localhost:{port}"},
                    {"Host": "LOCALHOST"}, {"Host": f"[::1]:{port}"},
                    {"Origin": "http://localhost:3000"}, {"Origin": f"http://127.0.0.1:{port}"},
                    {"Origin": "https://[::1]"}, {"Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "none"}):
        status, answer = server.raw(http_request("GET", "/symbols", port, **{
            k.replace("-", "_"): v for k, v in headers.items()}))
        assert status == 200 and answer["alive"], headers


def test_bodies_a_browser_sends_across_sites_are_refused(serve):
    server = serve().ready()
    call = json.dumps({"symbolName": "shout", "args": ["a"]}).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8",
                         "multipart/form-data; boundary=x"):
        status, answer = server.raw(http_request("POST", "/function/call", server.port, call,
                                                 Content_Type=content_type))
        assert status == 415, content_type
        assert answer["error"] == ("The body must be JSON sent as application/json (or with no "
                                   f"Content-Type), not as {content_type.split(';')[0]}.")
    for content_type in (None, "application/json", "application/json; charset=utf-8",
                         "application/x-www-form-urlencoded"):
        assert server.raw(http_request("POST", "/function/call", server.port, call,
                                       Content_Type=content_type)) == (200, {"result": "A!"})
    curl = shutil.which("curl")
    if curl:  # docs/host.md's way: curl -d sends the form type
        out = subprocess.run([curl, "-s", "-X", "POST", f"http://127.0.0.1:{server.port}"
                              "/function/call", "-d", '{"symbolName": "shout", "args": ["b"]}'],
                             capture_output=True, text=True, timeout=30)
        assert json.loads(out.stdout) == {"result": "B!"}


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", "0x10", " 5 5"])
def test_a_bad_content_length_is_refused_at_once(serve, length):
    server = serve().ready()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        # the connection stays open: the body's end is never seen
        sock.sendall(http_request("POST", "/symbol/start", server.port, b"{",
                                  Content_Length=length))
        status, answer = parse_answer(read_all(sock))
    assert status == 400
    assert answer["error"] == f"Content-Length must be a number of bytes, got {length.strip()!r}."
    assert time.monotonic() - started < 5  # well before the 10 s request timeout
    two = http_request("POST", "/symbol/start", server.port, b"{}", Content_Length="2")
    two = two.replace(b"Content-Length: 2\r\n", b"Content-Length: 2\r\nContent-Length: 9\r\n")
    assert server.raw(two) == (400, {"error": "The request has 2 Content-Length headers; "
                                              "send one."})
    no_traceback(server)


def test_slow_and_half_sent_requests_time_out(serve):
    server = serve("--request-timeout", "1").ready()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as headers_only, \
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as half_body:
        headers_only.sendall(b"POST /symbol/start HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        half_body.sendall(http_request("POST", "/function/call", server.port,
                                       b'{"symbolName": ', Content_Length="100"))
        # both wait for the rest while others are answered
        assert server.request("GET", "/symbols")[0] == 200
        started = time.monotonic()
        assert read_all(headers_only) == b""  # closed once the headers did not come
        status, answer = parse_answer(read_all(half_body))
        assert time.monotonic() - started < 10
    assert status == 408
    assert answer == {"error": "The body did not arrive within 1 s: Content-Length announced "
                               "100 bytes."}
    with socket.create_connection(("127.0.0.1", server.port), timeout=0.3) as trickle:
        # a byte at a time, each well within the timeout: the body as a whole is late
        trickle.sendall(http_request("POST", "/function/call", server.port,
                                     Content_Length="100"))
        answer, started = b"", time.monotonic()
        while not answer.endswith(b"}\n") and time.monotonic() - started < 15:
            try:
                chunk = trickle.recv(65536)
            except socket.timeout:
                trickle.sendall(b" ")
                continue
            if not chunk:
                break
            answer += chunk
        assert parse_answer(answer)[0] == 408
        assert time.monotonic() - started < 10
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as short:
        short.sendall(http_request("POST", "/function/call", server.port, b'{"symbolName": ',
                                   Content_Length="100"))
        short.shutdown(socket.SHUT_WR)  # the client gives up sending
        assert parse_answer(read_all(short)) == (400, {
            "error": "The body ended after 15 of the 100 bytes Content-Length announced."})
    no_traceback(server)


def test_the_output_stream_lives_longer_than_the_request_timeout(serve):
    server = serve("--request-timeout", "1").ready()
    url = f"http://127.0.0.1:{server.port}/symbol/output?follow=1&kind=result"
    with urllib.request.urlopen(url, timeout=30) as stream:
        time.sleep(2.5)  # the stream stays idle past the request timeout: that is the test
        assert server.request("POST", "/function/call",
                              {"symbolName": "shout", "args": ["late"]}) == (200,
                                                                             {"result": "LATE!"})
        assert json.loads(stream.readline())["data"] == {"args": ["late"], "result": "LATE!"}


def test_a_body_far_over_the_limit_gets_its_413_not_a_reset(serve):
    server = serve("--max-body", "200").ready()
    status, answer = server.request("POST", "/symbol/start", raw=b" " * (4 << 20))
    assert status == 413
    assert answer == {"error": f"The body has {4 << 20} bytes; the limit is 200."}
    no_traceback(server)


BAD_BODIES = [
    ({"symbolName": "counter", "pluginType": ["source"]}, 400,
     "pluginType must be source, sink or func, got a list."),
    ({"symbolName": "counter", "pluginType": {"source": 1}}, 400,
     "pluginType must be source, sink or func, got an object."),
    ({"symbolName": ["counter"], "pluginType": "source"}, 400,
     "The body needs 'symbolName', a non-empty string, got a list."),
    ({"symbolName": 7, "pluginType": "source"}, 400,
     "The body needs 'symbolName', a non-empty string, got the number 7."),
    ({"symbolName": "counter", "pluginType": "source", "meta": [1]}, 400,
     "meta must be an object with ruleId, opId and instanceId, got a list."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"ruleId": 5}}, 400,
     "meta.ruleId must be a non-empty string, got the number 5."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"opId": {}}}, 400,
     "meta.opId must be a non-empty string, got an object."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"instanceId": "1"}}, 400,
     "meta.instanceId must be a 64-bit integer, got the string '1'."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"instanceId": True}}, 400,
     "meta.instanceId must be a 64-bit integer, got true."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"instanceId": 1.5}}, 400,
     "meta.instanceId must be a 64-bit integer, got the number 1.5."),
    ({"symbolName": "counter", "pluginType": "source", "meta": {"instanceId": 1 << 63}}, 400,
     f"meta.instanceId must be a 64-bit integer, got the number {1 << 63}."),
    *[({"symbolName": "counter", "pluginType": kind, "meta": {key: value}}, 400,
       f"The {key} {value!r} cannot be part of a socket file name: it must not hold '/', '..', "
       "NUL or control characters.")
      for kind, key, value in (("source", "ruleId", "a/b"), ("source", "ruleId", ".."),
                               ("sink", "opId", "../../etc"), ("source", "ruleId", "a\x00b"),
                               ("source", "opId", "line\nbreak"), ("func", "ruleId", "x/y"))],
    ({"symbolName": "counter", "pluginType": "source", "meta": {"ruleId": "r" * 100}}, 400,
     "bytes long; a socket path holds at most 107 bytes. Use a shorter ruleId or opId."),
    ({"symbolName": "counter", "pluginType": "source", "config": []}, 400,
     "config must be an object, got a list."),
    ({"symbolName": "counter", "pluginType": "source", "config": "step=2"}, 400,
     "config must be an object, got the string 'step=2'."),
    ({"symbolName": "counter", "pluginType": "source", "dataSource": ["t"]}, 400,
     "dataSource must be a string, got a list."),
]


def test_every_bad_body_gets_its_json_error(serve):
    server = serve().ready()
    for body, status, message in BAD_BODIES:
        got_status, got = server.request("POST", "/symbol/start", body)
        assert got_status == status and message in got["error"], (body, got)
        if "meta" in body and "bytes long" not in message:  # stop listens on nothing
            got_status, got = server.request("POST", "/symbol/stop", body)
            assert got_status == status and message in got["error"], (body, got)
    for path, body, message in (
            ("/function/call", {"symbolName": "shout", "args": {"a": 1}},
             "call needs 'symbolName' (a string) and 'args' (a list)."),
            ("/function/call", {"symbolName": {"a": 1}, "args": []},
             "call needs 'symbolName' (a string) and 'args' (a list)."),
            ("/function/call", {"symbolName": "shout", "args": ["a"], "meta": "m"},
             "meta must be an object with ruleId, opId and instanceId, got the string 'm'."),
            ("/function/call", {"symbolName": "shout", "args": ["a"],
                                "meta": {"ruleId": "a/b"}}, "The ruleId 'a/b' cannot be part"),
            ("/symbol/send", {"symbolName": "keep", "data": 1, "meta": {"ruleId": ".."}},
             "The ruleId '..' cannot be part"),
            ("/symbol/send", {"symbolName": None, "data": 1},
             "The body needs 'symbolName', a non-empty string, got null.")):
        got_status, got = server.request("POST", path, body)
        assert got_status == 400 and message in got["error"], (path, body, got)
    # what http.server itself refuses is JSON too
    assert server.raw(b"nonsense\r\n\r\n") == (400, {"error": "Bad request syntax ('nonsense')."})
    assert server.raw(b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == (
        501, {"error": "Unsupported method ('BREW')."})
    assert server.raw(http_request("PUT", "/symbol/start", server.port, b"{}")) == (
        405, {"error": "/symbol/start takes POST, not PUT."})
    info = server.request("GET", "/symbols")[1]
    assert info["running"] == []
    assert os.listdir(server.ipc_dir) == [f"plugin_{info['plugin']}.ipc"]  # nothing else made
    no_traceback(server)


def test_concurrent_first_calls_of_one_function_share_its_channel(serve):
    server = serve().ready()
    barrier = threading.Barrier(8)
    answers = {}

    def call(i):
        barrier.wait()
        answers[i] = server.request("POST", "/function/call",
                                    {"symbolName": "shout", "args": [f"x{i}"]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == {i: (200, {"result": f"X{i}!"}) for i in range(8)}
    no_traceback(server)


def test_a_taken_socket_is_a_sentence_not_a_traceback(serve):
    server = serve().ready()
    body = start_body("counter", "source", rule="taken")
    with pynng.Pull0(listen=f"ipc://{server.ipc_dir}/taken_op1_1.ipc"), \
            pynng.Rep0(listen=f"ipc://{server.ipc_dir}/func_shout.ipc"):
        assert server.request("POST", "/symbol/start", body) == (502, {
            "error": f"Cannot listen on {server.ipc_dir}/taken_op1_1.ipc: is eKuiper, a serve "
                     "or a test run already hosting rule 'taken'?"})
        assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]}) \
            == (502, {"error": f"Cannot listen on {server.ipc_dir}/func_shout.ipc: is eKuiper, a "
                               "serve or a test run already hosting function 'shout'?"})
    assert server.request("POST", "/symbol/start", body)[0] == 200
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]}) == (
        200, {"result": "A!"})
    no_traceback(server)


def test_a_taken_control_channel_stops_serve_with_a_sentence(plugin):
    folder = ipc_folder()
    try:
        with Host(plugin.stem, ipc_dir=folder):
            out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(plugin),
                                  "--port", str(free_port())], capture_output=True, text=True,
                                 timeout=60, env=dict(os.environ, KUIPERLITE_IPC_DIR=folder))
        assert out.returncode == 2
        assert out.stdout.strip().endswith(
            f"Cannot listen on {folder}/plugin_{plugin.stem}.ipc: is eKuiper, a serve or a "
            f"test run already hosting plugin {plugin.stem!r}?")
        assert "Traceback" not in out.stdout + out.stderr
    finally:
        wait_until(lambda: not os.listdir(folder), 5, message="the socket files to go")
        os.rmdir(folder)


def test_a_plugin_that_hangs_while_loading_is_a_clear_error(copy_plugin, tmp_path,
                                                            monkeypatch):
    marker = tmp_path / "child.pid"
    monkeypatch.setenv("HANGS_MARKER", str(marker))
    hangs = copy_plugin("hangs")
    started = time.monotonic()
    with pytest.raises(LoadFailed) as info:
        describe(hangs, timeout=2)
    assert time.monotonic() - started < 20
    assert status_of(info.value) == 502
    assert str(info.value) == (f"{hangs.name} did not load within 2 s; does it wait for "
                               "something when it is imported?")
    child = int(marker.read_text())
    wait_until(lambda: not pid_alive(child), 5, message="the child it started to be killed")


def test_each_error_serve_raises_has_its_status():
    errors = {BadRequest: 400, Forbidden: 403, NotFound: 404, WrongMethod: 405,
              BodyTimeout: 408, Conflict: 409, TooLarge: 413, WrongMediaType: 415,
              PluginFailed: 502, LoadFailed: 502, HostError: 502}
    assert {cls: status_of(cls("why")) for cls in errors} == errors
    assert status_of(RuntimeError("a bug in serve")) == 500


@pytest.mark.parametrize("port", ["99999", "-1", "taken"])
def test_a_port_serve_cannot_listen_on_is_a_sentence(plugin, port):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        reason = "a port is a number from 0 to 65535"
        if port == "taken":
            port, reason = str(holder.getsockname()[1]), "Address already in use"
        out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(plugin),
                              "--port", port], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0] == f"kuiperlite: cannot listen on 127.0.0.1:{port}: {reason}."


def test_a_file_without_a_run_line_is_served(serve, copy_plugin):
    server = serve(path=copy_plugin("served", main=False)).ready()
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]})[1] \
        == {"result": "A!"}


def test_state_changes_show_in_the_live_view(serve, copy_plugin):
    server = serve(path=copy_plugin("stateful")).ready()
    server.request("POST", "/symbol/start", start_body("numbers", "source",
                                                       config={"count": 3}))
    wait_until(lambda: [e for e in events(server, kind="state")
                        if e["data"] == {"key": "next", "value": 3, "deleted": False}],
               message="the source's offset in the live view")
    change = events(server, kind="state")[0]
    assert change["pluginType"] == "source" and change["symbolName"] == "numbers"
    assert change["meta"] == {"ruleId": "rule1", "opId": "op1", "instanceId": 1}
    wait_until(lambda: server.said("[state source numbers rule1] next = 3"))
    assert server.request("POST", "/function/call", {
        "symbolName": "count_calls", "args": [],
        "meta": {"ruleId": "rule9", "opId": "op1", "instanceId": 0}})[1] == {"result": 1}
    wait_until(lambda: server.said("[state function count_calls rule9] calls = 1"))


def test_a_python_without_kuiperlite_is_named_as_the_cause(write_plugin, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True,
                   timeout=60)
    python = str(bare / "bin" / "python")
    plugin = write_plugin("import kuiperlite\n", main=False)
    with pytest.raises(LoadFailed) as info:
        describe(plugin, python=python)
    assert str(info.value) == (
        f"kuiperlite is not installed in the Python at {python}, which loads {plugin.name}; "
        f"install it there: {python} -m pip install kuiperlite (or pip install -e with the "
        "path of a kuiperlite checkout).")
