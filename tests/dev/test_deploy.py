"""``deploy --url``: against a real serve acting as eKuiper, over real HTTP."""

import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kuiperlite import packaging
from kuiperlite.plugin import load

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
    good = packaging.build(load(str(path)), str(tmp_path / "good"))
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
    good = packaging.build(load(str(path)), str(tmp_path / "good"))
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
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
    good = packaging.build(load(str(path)), str(tmp_path / "good"))
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
