"""``python -m kuiperlite serve`` as a subprocess, driven over real HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import pid_alive, wait_until

PLUGIN = '''
import os
from kuiperlite import Context, function, sink, source

@source
def counter(ctx: Context, *, step: int = 1):
    i = 0
    while ctx.sleep(0.05):
        yield {"i": i, "pid": os.getpid()}
        i += step

@source
def unplugged(ctx: Context):
    raise OSError("sensor unplugged")

@sink
def keep(ctx: Context, data):
    if data == {"fail": True}:
        raise OSError("disk full")
    print("KEEP", data, flush=True)

@function
def shout(s: str) -> str:
    return s.upper() + "!"

@function
def broken(x):
    raise RuntimeError("no luck")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """A serve subprocess with its output collected line by line."""

    def __init__(self, *args, cwd=None):
        self.port = free_port()
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kuiperlite", "serve", *map(str, args),
             "--port", str(self.port)], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
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

    def stop(self, signum=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def plugin(write_plugin):
    return write_plugin(PLUGIN)


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
    assert info["symbols"] == {"sources": ["counter", "unplugged"], "sinks": ["keep"],
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
         "meta": {"ruleId": "rule1", "opId": "op1", "instanceId": 1}}]
    assert server.request("POST", "/symbol/stop", body)[0] == 200
    assert server.said("[source counter rule1] record {\"i\":0,")
    assert server.request("POST", "/symbol/stop", body) == (404, {
        "error": "source 'counter' is not running for rule rule1/op1/1."})


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("POST", "/symbol/start", b"{oops", 400, "Invalid body: not JSON"),
    ("POST", "/symbol/start", b"[1]", 400, "Invalid body: expected a JSON object."),
    ("POST", "/symbol/start", b'{"pluginType": "source"}', 400, "needs 'symbolName'"),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "widget"}', 400,
     "pluginType must be source, sink or func, got 'widget'."),
    ("POST", "/symbol/start", b'{"symbolName": "nope", "pluginType": "source"}', 404,
     "has no source named 'nope'; its sources: counter, unplugged."),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "source", '
                              b'"meta": {"ruleId": ""}}', 400, "must be non-empty strings"),
    ("POST", "/symbol/start", b'{"symbolName": "counter", "pluginType": "source", '
                              b'"config": {"step": "two"}}', 502,
     "Config 'step' of the source 'counter' must be an integer, got the string 'two'."),
    ("POST", "/symbol/send", b'{"symbolName": "keep", "data": 1}', 404, "is not running"),
    ("POST", "/symbol/send", b'{"symbolName": "keep"}', 400, "send needs 'data'"),
    ("POST", "/function/call", b'{"symbolName": "shout", "args": ["a", "b"]}', 400,
     "shout() takes exactly 1 argument (s) but got 2."),
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
    body = start_body("keep", "sink", config={"requireAck": True})
    assert server.request("POST", "/symbol/start", body)[0] == 200
    acks = at_least(server, 1, kind="ack")
    assert acks[0]["data"] == {"payload": {"name": "mock"}, "ack": "ok"}
    assert server.request("POST", "/symbol/send", {**body, "data": {"fail": True}}) == (
        200, {"ack": "OSError: disk full"})
    assert server.request("POST", "/symbol/send", {**body, "data": [1, 2]}) == (200, {"ack": "ok"})
    assert wait_until(lambda: server.said("KEEP [1, 2]"))
    assert server.said('[sink keep rule1] sent {"fail":true} -> ack OSError: disk full')


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


def test_a_source_that_only_fails_shows_its_error(serve):
    server = serve().ready()
    assert server.request("POST", "/symbol/start", start_body("unplugged", "source"))[0] == 200
    [error] = at_least(server, 1, kind="error")
    assert error["data"] == "The source 'unplugged' failed: OSError: sensor unplugged"
    wait_until(lambda: server.said("[source unplugged rule1] error: The source 'unplugged' "
                                   "failed: OSError: sensor unplugged"), message="the error line")


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
    wait_until(lambda: server.said("the plugin does not start; fix it and save again"))
    assert server.said("SyntaxError")
    plugin.write_text(source.replace('s.upper() + "!"', 's.upper() + "?"'))
    wait_until(lambda: server.said("1 running symbols replayed"), message="the reload")
    assert server.request("POST", "/function/call", {"symbolName": "shout", "args": ["a"]})[1] \
        == {"result": "A?"}
    worker = server.request("GET", "/symbols")[1]["worker"]
    wait_until(lambda: [e for e in events(server, kind="record") if e["data"]["pid"] == worker])


def test_attach_waits_for_a_plugin_started_by_hand(serve, plugin):
    server = serve("--attach")
    wait_until(lambda: server.said(f"waiting for plugin {plugin.stem}: start it with"))
    proc = subprocess.Popen([sys.executable, "-m", "kuiperlite", "run", str(plugin)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
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
