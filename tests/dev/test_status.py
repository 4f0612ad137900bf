"""``status`` and ``undeploy``: against serve, and against an eKuiper stand-in with rules."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PLUGIN = '''
from typing import Any

from kuiperlite import Context, function, sink


@sink
def keep(ctx: Context, data: Any) -> None:
    """Keep nothing."""


@function
def add(a: int, b: int) -> int:
    """Add."""
    return a + b
'''


def kuiperlite(*args):
    return subprocess.run([sys.executable, "-m", "kuiperlite", *map(str, args)],
                          capture_output=True, text=True, timeout=180)


def test_status_and_undeploy_against_serve(local_ekuiper, write_plugin):
    server = local_ekuiper()
    path = write_plugin(PLUGIN)
    name = path.stem
    out = kuiperlite("deploy", path, "--url", server.url, "--shell-para", sys.executable)
    assert out.returncode == 0, out.stderr
    out = kuiperlite("status", name, "--url", server.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"plugin {name} v1.0.0 on {server.url}: running", "  sources: -", "  sinks: keep",
        "  functions: add", "  rules using it: none"]
    out = kuiperlite("undeploy", name, "--url", server.url)
    assert (out.returncode, out.stdout) == (0, f"portable plugin {name} is deleted\n")
    for command in ("status", "undeploy"):
        out = kuiperlite(command, name, "--url", server.url)
        assert (out.returncode, out.stderr) == (
            1, f"kuiperlite: eKuiper at {server.url} holds no portable plugin {name}\n")


@pytest.fixture
def ekuiper_with_rules():
    """A real HTTP server answering as an eKuiper holding plugin p and four rules:
    r1 runs one of its symbols, r2 calls its function, r3 uses none of it, r4 its sink.
    Its url, the paths it was asked to delete, and its answers by path (a test may
    change them)."""
    deleted = []
    answers = {
        "/plugins/portables/p": {"name": "p", "version": "2", "language": "python",
                                 "executable": "/x/p_main.py", "sources": None,
                                 "sinks": ["keep"], "functions": ["add"]},
        "/plugins/portables/p/status": {"refCount": {"r1": 1}, "status": "running",
                                        "errMsg": ""},
        "/rules": [{"id": r, "status": "running"} for r in ("r1", "r2", "r3", "r4")],
        "/rules/r2": {"id": "r2", "sql": "SELECT ADD (a, b) FROM s", "actions": [{"log": {}}]},
        "/rules/r3": {"id": "r3", "sql": "SELECT address(a) FROM s", "actions": [{"log": {}}]},
        "/rules/r4": {"id": "r4", "sql": "SELECT * FROM s", "actions": [{"keep": {}}]},
    }

    class Stand(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = answers.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body if body is not None else {
                "error": 1002, "message": "not found"}).encode())

        def do_DELETE(self):  # noqa: N802
            deleted.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"portable plugin p is deleted")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stand)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", deleted, answers
    httpd.shutdown()
    httpd.server_close()


def test_rules_using_a_plugin_come_from_its_status_and_the_rules(ekuiper_with_rules):
    url, deleted, _ = ekuiper_with_rules
    out = kuiperlite("status", "p", "--url", url)
    assert out.stdout.splitlines()[-1] == "  rules using it: r1, r2, r4"
    out = kuiperlite("undeploy", "p", "--url", url)
    assert (out.returncode, out.stderr) == (
        1, "kuiperlite: rules use plugin p: r1, r2, r4; stop or delete them first (or pass "
           "--force to delete it anyway)\n")
    assert deleted == []
    out = kuiperlite("undeploy", "p", "--url", url, "--force")
    assert (out.returncode, out.stdout) == (0, "portable plugin p is deleted\n")
    assert deleted == ["/plugins/portables/p"]


@pytest.mark.parametrize("path, key, value, message", [
    ("/plugins/portables/p", "sources", 5,
     "answered GET /plugins/portables/p with 'sources' being the number 5; expected a list of "
     "names"),
    ("/plugins/portables/p", "version", [2],
     "answered GET /plugins/portables/p with 'version' being a list; expected a string"),
    ("/plugins/portables/p/status", "refCount", 5,
     "answered GET /plugins/portables/p/status with 'refCount' being the number 5; expected "
     "an object of rule ids"),
    ("/plugins/portables/p/status", None, ["running"],
     "answered GET /plugins/portables/p/status with a list; expected an object"),
    ("/rules", None, {"r2": {}},
     "answered GET /rules with an object; expected a list of rules"),
    ("/rules", None, [{"id": "r2"}, 5],
     "answered GET /rules with the rule the number 5; expected rules as objects with a "
     "string 'id'"),
    ("/rules", None, [{"name": "r2"}],
     "answered GET /rules with a rule whose 'id' is null; expected rules as objects with a "
     "string 'id'"),
    ("/rules/r3", "sql", 5,
     "answered GET /rules/r3 with 'sql' being the number 5; expected a string"),
    ("/rules/r3", "actions", {"log": {}},
     "answered GET /rules/r3 with 'actions' being an object; expected a list of objects"),
    ("/rules/r3", "actions", ["log"],
     "answered GET /rules/r3 with 'actions' holding the string 'log'; expected a list of "
     "objects"),
])
def test_answers_of_the_wrong_shape_are_one_sentence(ekuiper_with_rules, path, key, value,
                                                     message):
    """Nothing is deleted on an answer kuiperlite cannot read as eKuiper's."""
    url, deleted, answers = ekuiper_with_rules
    if key is None:
        answers[path] = value
    else:
        answers[path] = dict(answers[path], **{key: value})
    for command in (["status"], ["undeploy", "--force"]):
        out = kuiperlite(*command, "p", "--url", url)
        assert (out.returncode, out.stderr) == (1, f"kuiperlite: eKuiper at {url} {message}\n")
    assert deleted == []
