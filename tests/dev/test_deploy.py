"""``deploy --url``: against a real serve acting as eKuiper, over real HTTP."""

import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev.deploy import DeployFailed
from kuiperlite.dev.deploy_client import MAX_ANSWER, EKuiper

from conftest import free_port

V1 = '''
from collections.abc import Iterator
from typing import Any

from kuiperlite import Context, function, sink, source


@source
def ticks(ctx: Context) -> Iterator[dict]:
    """Count."""
    yield {"n": 1}


@sink
def keep(ctx: Context, data: Any) -> None:
    """Keep nothing."""


@function
def add(a: int, b: int) -> int:
    """Add."""
    return a + b
'''
# v2 drops the sink and gives add a third argument
V2 = '''
from collections.abc import Iterator

from kuiperlite import Context, function, source


@source
def ticks(ctx: Context) -> Iterator[dict]:
    """Count."""
    yield {"n": 1}


@function
def add(a: int, b: int, c: int) -> int:
    """Add."""
    return a + b + c
'''


def deploy(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kuiperlite", "deploy", *map(str, args),
                           "--shell-para", sys.executable],
                          capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, **(env or {})))


def one_sentence(out):
    """The error: one line on stderr, no traceback."""
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stderr.startswith("kuiperlite: ") and out.stderr.count("\n") == 1, out.stderr
    return out.stderr[len("kuiperlite: "):-1]


def test_deploy_installs_then_upgrades(local_ekuiper, write_plugin):
    server = local_ekuiper()
    path = write_plugin(V1)
    name = path.stem
    out = deploy(path, "--url", server.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"uploaded {name}.zip to /") and lines[0].endswith(
        f"/data/uploads/{name}.zip")
    assert lines[1:] == [f"portable plugin {name} is created",
                         f"plugin {name} installed and running on {server.url}: "
                         "sources ticks, sinks keep, functions add"]
    status, text = server.request("GET", f"/plugins/portables/{name}/status")
    assert json.loads(text)["status"] == "running"
    # the same symbols again: an upgrade breaks nothing, so it goes through with PUT
    out = deploy(path, "--url", server.url)
    assert out.returncode == 0, out.stderr
    assert f"portable plugin {name} is updated" in out.stdout
    assert f"plugin {name} upgraded and running on {server.url}" in out.stdout


def test_an_upgrade_that_breaks_rules_is_refused_unless_forced(local_ekuiper, write_plugin,
                                                               tmp_path):
    server = local_ekuiper()
    path = write_plugin(V1)
    name = path.stem
    assert deploy(path, "--url", server.url).returncode == 0
    newer = tmp_path / "v2"
    newer.mkdir()
    (newer / f"{name}.py").write_text(V2)
    out = deploy(newer / f"{name}.py", "--url", server.url)
    assert one_sentence(out) == (
        f"upgrading plugin {name} on {server.url} would break rules that use it: sink keep "
        "disappears; function add takes 3 arguments instead of 2; nothing was changed "
        "(pass --force to upgrade anyway)")
    status, text = server.request("GET", f"/plugins/portables/{name}")
    assert json.loads(text)["sinks"] == ["keep"]
    out = deploy(newer / f"{name}.py", "--url", server.url, "--force")
    assert out.returncode == 0, out.stderr
    status, text = server.request("GET", f"/plugins/portables/{name}")
    assert (json.loads(text)["sinks"], json.loads(text)["functions"]) == ([], ["add"])


def test_a_token_is_sent_when_given(local_ekuiper, write_plugin):
    server = local_ekuiper("--token", "s3cret")
    path = write_plugin(V1)
    out = deploy(path, "--url", server.url)
    assert one_sentence(out) == (
        f"eKuiper at {server.url} refused GET /plugins/portables/{path.stem} without a valid "
        "token (missing_token); pass --token or set KUIPERLITE_EKUIPER_TOKEN")
    assert "token is invalid" in one_sentence(deploy(path, "--url", server.url,
                                                     "--token", "wrong"))
    out = deploy(path, "--url", server.url, env={"KUIPERLITE_EKUIPER_TOKEN": "s3cret"})
    assert out.returncode == 0, out.stderr


def test_a_zip_failing_the_installer_checks_is_not_uploaded(local_ekuiper, write_plugin,
                                                            tmp_path):
    server = local_ekuiper()
    path = write_plugin(V1)
    good = package.build(load(str(path)), str(tmp_path / "good"))
    bad = tmp_path / good.name
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(bad, "w") as new:
        for entry in old.infolist():
            if not entry.filename.endswith("_main.py"):
                new.writestr(entry, old.read(entry))
    assert one_sentence(deploy(bad, "--url", server.url)) == (
        f"{bad.name} fails eKuiper's installer checks: missing required files: "
        f"{path.stem}_main.py")
    assert server.request("GET", "/config/uploads") == (200, "[]")


def test_a_plugin_that_does_not_start_is_reported(local_ekuiper, write_plugin, tmp_path):
    server = local_ekuiper()
    path = write_plugin(V1)
    name = path.stem
    good = package.build(load(str(path)), str(tmp_path / "good"))
    broken = tmp_path / good.name
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(broken, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename == f"{name}_main.py":
                data = b"import sys\nsys.exit(3)\n"
            new.writestr(entry, data)
    message = one_sentence(deploy(broken, "--url", server.url))
    assert message.startswith(f"eKuiper refused to install plugin {name} (400): portable plugin "
                              "create command error: fail to install plugin: plugin ")
    assert "control handshake error" in message
    assert server.request("GET", "/plugins/portables") == (200, "[]")


@pytest.fixture
def not_ekuiper():
    """A real HTTP server that answers every request with plain text."""

    class Text(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Text)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_wrong_addresses(write_plugin, not_ekuiper, tmp_path):
    path = write_plugin(V1)
    assert one_sentence(deploy(path, "--url", "localhost:9081")) == (
        "'localhost:9081' is not eKuiper's REST address; give one like http://127.0.0.1:9081")
    closed = f"http://127.0.0.1:{free_port()}"
    assert one_sentence(deploy(path, "--url", closed)) == (
        f"cannot reach eKuiper at {closed}: Connection refused; is it running there?")
    assert one_sentence(deploy(path, "--url", not_ekuiper)) == (
        f"{not_ekuiper} answered GET /plugins/portables/{path.stem} with something that is "
        "not JSON (b'<html>hello</html>'); is it eKuiper's REST address?")


def test_a_failed_upgrade_says_the_old_version_is_gone(local_ekuiper, write_plugin, tmp_path):
    server = local_ekuiper()
    path = write_plugin(V1)
    name = path.stem
    assert deploy(path, "--url", server.url).returncode == 0
    good = package.build(load(str(path)), str(tmp_path / "good"))
    broken = tmp_path / good.name
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(broken, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename == f"{name}_main.py":
                data = b"import sys\nsys.exit(3)\n"
            new.writestr(entry, data)
    message = one_sentence(deploy(broken, "--url", server.url))
    assert message.startswith(f"eKuiper refused to install plugin {name} (400): portable plugin "
                              "update command error: fail to install plugin: ")
    assert message.endswith(f"; eKuiper's update removes the old version first, so plugin "
                            f"{name} is not installed now")
    assert server.request("GET", "/plugins/portables") == (200, "[]")


def test_serve_takes_a_token_only_without_a_plugin_file(write_plugin):
    path = write_plugin(V1)
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "serve", str(path), "--token",
                          "t", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (
        2, "kuiperlite: --token guards the plugin management API, which serve offers without "
           "a plugin file; leave out the file or the token.\n")


def reply(handler, status, body=b"", headers=()):
    """Answer a request: status, headers, then the body (bytes, or JSON for anything else)."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    handler.send_response(status)
    for key, value in dict(headers).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def answering(status, body=b"", headers=()):
    return lambda handler: reply(handler, status, body, headers)


NOT_FOUND = answering(404, {"error": 1002, "message": "not found"})


class StandIn:
    """A real HTTP server standing in for eKuiper: ``routes`` maps "METHOD /path" to a
    function answering on the request handler (404 for anything else); each request is
    kept in ``seen`` as (method, path, its Authorization header)."""

    def __init__(self, routes, default=NOT_FOUND):
        self.routes = routes
        self.seen = []
        stand = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self):
                stand.seen.append((self.command, self.path, self.headers["Authorization"]))
                self.rfile.read(int(self.headers["Content-Length"] or 0))
                stand.routes.get(f"{self.command} {self.path}", default)(self)

            do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ekuiper(name):
    """The answers of an eKuiper holding no plugin ``name``, installing it and running it."""
    return {
        "POST /config/uploads": answering(201, f"/kuiper/data/uploads/{name}.zip".encode()),
        "POST /plugins/portables": answering(201, f"portable plugin {name} is created".encode()),
        f"GET /plugins/portables/{name}/status": answering(
            200, {"refCount": {}, "status": "running", "errMsg": ""}),
    }


@pytest.fixture
def stand_in():
    """Start StandIn servers (routes, default); each is stopped after the test."""
    started = []

    def start(*args):
        started.append(StandIn(*args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_a_redirect_to_another_host_is_refused_and_the_token_stays_home(stand_in, write_plugin):
    path = write_plugin(V1)
    name = path.stem
    other = stand_in(ekuiper(name))
    first = stand_in({}, lambda handler: reply(handler, 302, headers={
        "Location": other.url + handler.path}))
    out = deploy(path, "--url", first.url, "--token", "s3cret")
    assert one_sentence(out) == (
        f"eKuiper at {first.url} answered GET /plugins/portables/{name} with a redirect (302) "
        f"to {other.url}/plugins/portables/{name}; kuiperlite follows no redirect: give "
        "eKuiper's own REST address with --url")
    assert first.seen == [("GET", f"/plugins/portables/{name}", "s3cret")]
    assert other.seen == []


def test_a_redirect_on_register_is_a_failure(stand_in, write_plugin):
    path = write_plugin(V1)
    name = path.stem
    routes = ekuiper(name)
    routes["POST /plugins/portables"] = answering(303, headers={"Location": "/done"})
    routes["GET /done"] = answering(200, b"ok")
    server = stand_in(routes)
    out = deploy(path, "--url", server.url)
    assert one_sentence(out) == (
        f"eKuiper at {server.url} answered POST /plugins/portables with a redirect (303) to "
        "/done; kuiperlite follows no redirect: give eKuiper's own REST address with --url")
    assert [seen[:2] for seen in server.seen] == [
        ("GET", f"/plugins/portables/{name}"), ("POST", "/config/uploads"),
        ("POST", "/plugins/portables")]


def trickle(handler, size=40, every=0.2):
    """Announce ``size`` bytes of JSON, then send one byte every ``every`` seconds."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(size))
    handler.end_headers()
    pause = threading.Event()
    try:
        for byte in b"{}".rjust(size):
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            pause.wait(every)
    except OSError:  # the client gave up
        pass


def test_an_answer_that_trickles_is_cut_at_the_deadline(stand_in, write_plugin):
    path = write_plugin(V1)
    name = path.stem
    server = stand_in({f"GET /plugins/portables/{name}": trickle})
    started = time.monotonic()
    with pytest.raises(DeployFailed) as failed:
        EKuiper(server.url, timeout=1.0).plugin(name)
    assert time.monotonic() - started < 3  # the whole answer takes 8 s
    expected = (f"eKuiper at {server.url} did not answer GET /plugins/portables/{name} within "
                "1 s (--request-timeout sets the bound)")
    assert str(failed.value) == expected
    assert one_sentence(deploy(path, "--url", server.url, "--request-timeout", "1")) == expected
    assert one_sentence(deploy(path, "--url", server.url, "--request-timeout", "0")) == (
        "the request timeout (--request-timeout) must be a number of seconds above 0, not 0.0")


def flood(declared):
    """An answer of 256 MiB, sent as fast as the client takes it; its Content-Length
    ``declared`` (None: none, the answer ends when the connection closes). The bytes
    the client took are counted in ``flood.sent``."""
    def answer(handler):
        handler.send_response(200)
        if declared is not None:
            handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        chunk = b" " * (1 << 16)
        try:
            for _ in range(256 << 20 >> 16):
                handler.wfile.write(chunk)
                answer.sent += len(chunk)
        except OSError:  # the client gave up
            pass
        handler.close_connection = True

    answer.sent = 0
    return answer


@pytest.mark.parametrize("declared", [None, 3 << 29], ids=["undeclared", "1.5 GB declared"])
def test_an_oversized_answer_is_refused_without_reading_it_whole(stand_in, write_plugin,
                                                                 declared):
    """The client stops early: what the server could write bounds what it read and held."""
    path = write_plugin(V1)
    name = path.stem
    answer = flood(declared)
    server = stand_in({f"GET /plugins/portables/{name}": answer})
    assert one_sentence(deploy(path, "--url", server.url)) == (
        f"eKuiper at {server.url} answered GET /plugins/portables/{name} with more than "
        f"{MAX_ANSWER} bytes, the most kuiperlite reads of one answer; is that eKuiper's "
        "REST address?")
    assert answer.sent < MAX_ANSWER + (32 << 20)  # what socket buffers hold besides


@pytest.mark.parametrize("route, answer, message", [
    ("GET /plugins/portables/{name}", {"name": "{name}", "sources": 5},
     "answered GET /plugins/portables/{name} with 'sources' being the number 5; expected a "
     "list of names"),
    ("GET /plugins/portables/{name}", {"name": "{name}", "functions": ["add", 1]},
     "answered GET /plugins/portables/{name} with 'functions' holding the number 1; expected "
     "a list of names"),
    ("GET /plugins/portables/{name}/status", [],
     "answered GET /plugins/portables/{name}/status with a list; expected an object"),
    ("GET /plugins/portables/{name}/status", {"status": 7},
     "answered GET /plugins/portables/{name}/status with 'status' being the number 7; "
     "expected a string"),
    ("GET /plugins/portables/{name}/status", {"status": "running", "refCount": 5},
     "answered GET /plugins/portables/{name}/status with 'refCount' being the number 5; "
     "expected an object of rule ids"),
    ("POST /config/uploads", b"",
     "answered POST /config/uploads with b''; expected the path it saved {name}.zip at"),
])
def test_answers_of_the_wrong_shape_are_one_sentence(stand_in, write_plugin, route, answer,
                                                     message):
    path = write_plugin(V1)
    name = path.stem
    routes = ekuiper(name)
    if not isinstance(answer, bytes):
        answer = json.loads(json.dumps(answer).replace("{name}", name))
    status = 201 if route.startswith("POST") else 200
    routes[route.format(name=name)] = answering(status, answer)
    server = stand_in(routes)
    out = deploy(path, "--url", server.url, "--wait", "2")
    assert one_sentence(out) == f"eKuiper at {server.url} " + message.format(name=name)


def test_json_nested_too_deep_is_not_json_either(stand_in, write_plugin):
    path = write_plugin(V1)
    name = path.stem
    server = stand_in({f"GET /plugins/portables/{name}": answering(200, b"[" * 100_000)})
    assert one_sentence(deploy(path, "--url", server.url)) == (
        f"{server.url} answered GET /plugins/portables/{name} with something that is not JSON "
        f"({b'[' * 60!r}); is it eKuiper's REST address?")


def test_status_and_undeploy_work_on_a_folder_deploy_into_installed(write_plugin, tmp_path):
    path = write_plugin(V1)
    name = path.stem
    base = tmp_path / "ekuiper"
    assert deploy(path, "--into", base, "--no-install").returncode == 0

    def kuiperlite(*args):
        return subprocess.run([sys.executable, "-m", "kuiperlite", *args, name, "--into",
                               str(base)], capture_output=True, text=True, timeout=60)

    plugin_dir = base / "plugins" / "portable" / name
    out = kuiperlite("status")
    assert (out.returncode, out.stdout.splitlines()) == (0, [
        f"plugin {name} v1.0.0 in {plugin_dir}: installed",
        "  sources: ticks", "  sinks: keep", "  functions: add"])
    out = kuiperlite("undeploy")
    assert (out.returncode, out.stdout) == (0, f"portable plugin {name} is deleted from {base}\n")
    assert not plugin_dir.exists()
    assert [p for p in (base / "etc").rglob("*") if p.is_file()] == []
    assert one_sentence(kuiperlite("status")) == (
        f"{base} holds no installed portable plugin {name} (no {plugin_dir / name}.json)")
