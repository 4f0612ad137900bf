"""serve with no plugin file: eKuiper's plugin management API, over real HTTP."""

import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

from kuiperlite.bundle import metadata, package
from kuiperlite.declare.kinds import FUNCTION
from kuiperlite.declare.plugin import load
from kuiperlite.protocol import layout

from conftest import wait_until

PLUGIN = '''
from collections.abc import Iterator
from typing import Any

from kuiperlite import Context, function, sink, source


@source
def ticks(ctx: Context) -> Iterator[dict]:
    """Count."""
    n = 0
    while True:
        n += 1
        yield {"n": n}
        ctx.sleep(1)


@sink
def keep(ctx: Context, data: Any) -> None:
    """Keep nothing."""


@function
def add(a: int, b: int) -> int:
    """Add."""
    return a + b
'''
PARAS = [sys.executable]  # install.sh installs for this python: nothing to fetch


@pytest.fixture
def plugin_zip(write_plugin, tmp_path):
    path = write_plugin(PLUGIN)
    return package.build(load(str(path)), str(tmp_path / "zip"))


def uploaded(server, zip_path: Path) -> str:
    status, text = server.upload(zip_path)
    assert status == 201, text
    return text


def test_upload_register_status_describe_update_delete(local_ekuiper, plugin_zip):
    server = local_ekuiper()
    name = plugin_zip.stem
    path = uploaded(server, plugin_zip)
    base = Path(path).parents[2]
    assert path == str(base / "data" / "uploads" / plugin_zip.name)
    assert Path(path).read_bytes() == plugin_zip.read_bytes()
    assert server.request("GET", "/config/uploads") == (200, json.dumps([path]))

    body = {"name": name, "file": f"file://{path}", "shellParas": PARAS}
    assert server.request("POST", "/plugins/portables", body) == (
        201, f"portable plugin {name} is created")
    status, text = server.request("GET", f"/plugins/portables/{name}/status")
    assert (status, json.loads(text)) == (200, {"refCount": {}, "status": "running",
                                                "errMsg": ""})
    info = {"name": name, "version": "v1.0.0", "language": "python",
            "executable": str(base / "plugins/portable" / name / f"{name}_main.py"),
            "sources": ["ticks"], "sinks": ["keep"], "functions": ["add"]}
    status, text = server.request("GET", f"/plugins/portables/{name}")
    assert (status, json.loads(text)) == (200, info)
    assert json.loads(server.request("GET", "/plugins/portables")[1]) == [info]
    assert (base / "etc/functions/add.json").is_file()
    assert (base / "etc/sources/ticks.yaml").is_file()

    status, text = server.request("POST", "/plugins/portables", body)
    assert (status, json.loads(text)) == (400, {
        "error": 1000,
        "message": f"portable plugin create command error: invalid name {name}: duplicate"})
    assert server.request("PUT", f"/plugins/portables/{name}", body) == (
        200, f"portable plugin {name} is updated")
    assert json.loads(server.request("GET", f"/plugins/portables/{name}/status")[1])[
        "status"] == "running"

    assert server.request("DELETE", f"/plugins/portables/{name}") == (
        200, f"portable plugin {name} is deleted")
    assert not (base / "plugins/portable" / name).exists()
    assert not (base / "etc/functions/add.json").exists()
    status, text = server.request("GET", f"/plugins/portables/{name}")
    assert (status, json.loads(text)) == (404, {
        "error": 1002, "message": f"describe portable plugin {name} error: not found"})
    assert json.loads(server.request("GET", f"/plugins/portables/{name}/status")[1])[
        "status"] == "stop"
    status, text = server.request("DELETE", f"/plugins/portables/{name}")
    assert (status, json.loads(text)["message"]) == (
        400, f"delete portable plugin {name} error: plugin {name} not found")
    assert server.request("GET", "/plugins/portables") == (200, "[]")


def test_only_uploaded_zips_are_installed(local_ekuiper, plugin_zip):
    server = local_ekuiper()
    name = plugin_zip.stem
    for uri, why in [
        (f"file://{plugin_zip}", "fail to download file file://"),
        ("http://127.0.0.1:1/x.zip", "serve installs only file:// zips uploaded with POST "
                                     "/config/uploads"),
        ("file:///nowhere.txt", "invalid uri file:///nowhere.txt"),
    ]:
        status, text = server.request("POST", "/plugins/portables",
                                      {"name": name, "file": uri})
        assert status == 400 and why in json.loads(text)["message"], text
    status, text = server.request("GET", f"/plugins/portables/{name}/status")
    assert (status, json.loads(text)["error"]) == (404, 1002)


def test_a_bad_zip_is_refused_with_ekuipers_words_and_leaves_nothing(local_ekuiper, plugin_zip,
                                                                     tmp_path):
    server = local_ekuiper()
    name = plugin_zip.stem
    bad = tmp_path / plugin_zip.name
    with zipfile.ZipFile(plugin_zip) as old, zipfile.ZipFile(bad, "w") as new:
        for entry in old.infolist():
            if entry.filename != f"{name}_main.py":
                new.writestr(entry, old.read(entry))
    path = uploaded(server, bad)
    status, text = server.request("POST", "/plugins/portables",
                                  {"name": name, "file": f"file://{path}"})
    assert (status, json.loads(text)) == (400, {
        "error": 1000, "message": "portable plugin create command error: fail to install "
                                  f"plugin: missing required files: {name}_main.py"})
    assert not (Path(path).parents[2] / "plugins/portable" / name).exists()


def test_a_plugin_that_does_not_start_is_an_error_status(local_ekuiper, plugin_zip, tmp_path):
    server = local_ekuiper()
    name = plugin_zip.stem
    broken = tmp_path / plugin_zip.name
    with zipfile.ZipFile(plugin_zip) as old, zipfile.ZipFile(broken, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename == f"{name}_main.py":
                data = b"import sys\nprint('cannot start', flush=True)\nsys.exit(3)\n"
            new.writestr(entry, data)
    path = uploaded(server, broken)
    status, text = server.request("POST", "/plugins/portables",
                                  {"name": name, "file": f"file://{path}", "shellParas": PARAS})
    message = json.loads(text)["message"]
    assert status == 400
    assert message.startswith("portable plugin create command error: fail to install plugin: "
                              f"plugin {Path(path).parents[2]}/plugins/portable/{name}/"
                              f"{name}_main.py control handshake error: ")
    status, text = server.request("GET", f"/plugins/portables/{name}/status")
    got = json.loads(text)
    assert (status, got["status"]) == (200, "error") and "control handshake error" in got[
        "errMsg"]
    assert server.request("GET", "/plugins/portables") == (200, "[]")


def test_requests_eKuiper_does_not_take(local_ekuiper, tmp_path):
    server = local_ekuiper()
    status, text = server.request("PATCH", "/plugins/portables")
    assert status == 405 and "takes GET or POST, not PATCH" in json.loads(text)["message"]
    status, text = server.request("GET", "/symbols")
    assert status == 404 and json.loads(text)["error"] == 1002
    status, text = server.request("POST", "/config/uploads", {"name": "x"})
    assert status == 400 and "multipart/form-data" in json.loads(text)["message"]
    (tmp_path / "x.zip").write_bytes(b"zip")
    status, text = server.upload(tmp_path / "x.zip", field="file")
    assert (status, json.loads(text)["message"]) == (
        400, "Error Retrieving the File: http: no such file")
    status, text = server.request("POST", "/plugins/portables", data=b"{")
    assert status == 400 and json.loads(text)["message"].startswith("Invalid body")


def test_serve_with_a_plugin_file_shows_it_read_only(local_ekuiper, write_plugin):
    import subprocess

    path = write_plugin(PLUGIN)
    name = path.stem
    server = local_ekuiper(str(path), "--mock-interval", "0", ready="REST API on")
    status, text = server.request("GET", "/plugins/portables")
    assert (status, json.loads(text)) == (200, [{
        "name": name, "version": "v1.0.0", "language": "python", "executable": str(path),
        "sources": ["ticks"], "sinks": ["keep"], "functions": ["add"]}])
    start = {"symbolName": "keep", "meta": {"ruleId": "r9", "opId": "op1", "instanceId": 1},
             "pluginType": "sink", "config": {}}
    assert server.request("POST", "/symbol/start", start)[0] == 200
    status, text = server.request("GET", f"/plugins/portables/{name}/status")
    assert (status, json.loads(text)) == (200, {"refCount": {"r9": 1}, "status": "running",
                                                "errMsg": ""})
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "status", name, "--url",
                          server.url], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[-1] == "  rules using it: r9"
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "undeploy", name, "--url",
                          server.url, "--force"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr) == (
        1, f"kuiperlite: eKuiper refused to delete plugin {name} (400): serve hosts plugin "
           f"{name} from its file; start serve without a plugin file to install plugins\n")
    assert server.request("POST", "/symbol/stop", start)[0] == 200
    status, text = server.request("GET", "/plugins/portables/other/status")
    assert (status, json.loads(text)["error"]) == (404, 1002)


def test_serve_with_a_plugin_file_lists_its_version_and_functions(local_ekuiper, write_plugin):
    about = 'import kuiperlite\nABOUT = kuiperlite.About(version="v0.1.0")\n'
    path = write_plugin(about + PLUGIN)
    server = local_ekuiper(str(path), "--mock-interval", "0", ready="REST API on")
    status, text = server.request("GET", "/plugins/portables")
    assert (status, [p["version"] for p in json.loads(text)]) == (200, ["v0.1.0"])
    files = metadata.files(load(str(path)))
    status, text = server.request("GET", "/metadata/functions")
    assert (status, json.loads(text)) == (
        200, [json.loads(files[layout.zip_metadata(FUNCTION, "add")])])


RULE = "a plugin name holds only letters, digits, _ and -"


def post_form(server, filename, chunks, size, *, field="uploadFile", tail=None, timeout=60):
    """POST a multipart form with one file part whose bytes come from ``chunks`` (``size``
    in all), streamed as they are made; the status and text of the answer."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/zip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode() if tail is None else tail
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.putrequest("POST", "/config/uploads")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        for chunk in chunks:
            conn.send(chunk)
        conn.send(tail)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def refusal(answer):
    """The message of an eKuiper error answer, once it is one."""
    status, text = answer
    assert 400 <= status < 500, answer
    body = json.loads(text)
    assert body["error"] == 1000, body
    return body["message"]


def test_plugin_names_are_checked_before_anything_is_written(local_ekuiper, plugin_zip,
                                                             tmp_path):
    server = local_ekuiper()
    path = uploaded(server, plugin_zip)
    victim = tmp_path / "victim.zip"
    victim.write_bytes(b"precious")
    outside = tmp_path / "made"
    for name in [str(tmp_path / "victim"), "../" * 12 + f"{outside}/x", "a\x00b", "a b",
                 "a.b", "\tx"]:
        body = {"name": name, "file": f"file://{path}", "shellParas": PARAS}
        for method, target in [("POST", "/plugins/portables"),
                               ("PUT", "/plugins/portables/ok")]:
            message = refusal(server.request(method, target, body))
            action = "create" if method == "POST" else "update"
            assert message == (f"portable plugin {action} command error: invalid name "
                               f"{name!r}: {RULE}"), message
    for method in ("GET", "DELETE", "PUT"):
        message = refusal(server.request(method, "/plugins/portables/..%2Fx", {}))
        assert message.endswith(f"invalid name '../x': {RULE}"), message
    assert victim.read_bytes() == b"precious"
    assert not outside.exists()
    base = Path(path).parents[2]
    assert sorted(str(p.relative_to(base)) for p in base.rglob("*")) == [
        "data", "data/uploads", f"data/uploads/{plugin_zip.name}"]
    assert server.request("GET", "/plugins/portables") == (200, "[]")


def test_a_name_the_file_system_refuses_is_answered_in_json(local_ekuiper, plugin_zip):
    server = local_ekuiper()
    path = uploaded(server, plugin_zip)
    message = refusal(server.request("POST", "/plugins/portables", {
        "name": "a" * 300, "file": f"file://{path}", "shellParas": PARAS}))
    assert message.startswith(f"portable plugin create command error: fail to download file "
                              f"file://{path}: ") and message.endswith("File name too long"), \
        message
    assert server.request("GET", "/plugins/portables") == (200, "[]")


def test_upload_file_system_errors_are_answered_in_json(local_ekuiper, plugin_zip):
    server = local_ekuiper()
    uploads = Path(uploaded(server, plugin_zip)).parent
    message = refusal(post_form(server, "a" * 300 + ".zip", [b"zip"], 3))
    assert message == f"Error saving the file: {uploads / ('a' * 300 + '.zip')}: File name " \
                      "too long", message
    (uploads / "folder.zip").mkdir()
    message = refusal(post_form(server, "folder.zip", [b"zip"], 3))
    assert message == f"Error saving the file: {uploads / 'folder.zip'}: Is a directory", \
        message
    assert sorted(p.name for p in uploads.iterdir()) == ["folder.zip", plugin_zip.name]
    assert sorted(p.name for p in uploads.parent.iterdir()) == ["uploads"]


def test_upload_file_names_as_ekuiper_takes_them(local_ekuiper, tmp_path):
    server = local_ekuiper()
    status, text = post_form(server, "../../up/x.zip", [b"zip"], 3)
    assert status == 201 and text.endswith("/data/uploads/x.zip"), (status, text)
    assert Path(text).read_bytes() == b"zip"
    for name in ["..", ".", "/", "a\x00b.zip"]:
        message = refusal(post_form(server, name, [b"zip"], 3))
        assert message.startswith("Error saving the file: invalid file name "), message
    assert json.loads(server.request("GET", "/config/uploads")[1]) == [text]


def vm_hwm(pid: int) -> int:
    """The peak resident memory of process ``pid``, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) << 10


def test_an_upload_streams_to_disk_in_bounded_memory(local_ekuiper):
    server = local_ekuiper()
    status, text = post_form(server, "warm.zip", [b"zip"], 3)
    assert status == 201, text
    before = vm_hwm(server.proc.pid)
    # Short lines: the shape that cost a whole-body parse the most.
    line = b"x" * 30 + b"\r\n"
    chunk = line * (1 << 15)  # 1 MiB
    count = 64
    status, text = post_form(server, "big.zip", (chunk for _ in range(count)),
                             len(chunk) * count)
    assert status == 201, text
    assert Path(text).stat().st_size == len(chunk) * count
    grown = vm_hwm(server.proc.pid) - before
    assert grown < 16 << 20, f"serve's peak memory grew by {grown >> 20} MiB"


def test_an_upload_over_the_limit_or_cut_short_keeps_nothing(local_ekuiper):
    server = local_ekuiper("--max-upload", "1000")
    status, text = post_form(server, "big.zip", [b"x" * 2000], 2000)
    message = json.loads(text)["message"]
    assert status == 413 and message.startswith("The body has ") \
        and message.endswith(" bytes; the limit is 1000 (--max-upload)."), text
    status, text = post_form(server, "short.zip", [b"x" * 100], 100, tail=b"\r\n--nope--\r\n")
    assert status == 400 and json.loads(text)["message"].startswith(
        "Error parse the multi part form: "), text
    assert server.request("GET", "/config/uploads") == (200, "[]")


INSTALL_WAITS = b"""#!/bin/sh
touch "$1.running"
i=0
while [ ! -e "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
"""


def test_reads_are_answered_while_install_sh_runs(local_ekuiper, plugin_zip, tmp_path):
    server = local_ekuiper()
    slow = tmp_path / "slow" / plugin_zip.name
    slow.parent.mkdir()
    with zipfile.ZipFile(plugin_zip) as old, zipfile.ZipFile(slow, "w") as new:
        for entry in old.infolist():
            new.writestr(entry, INSTALL_WAITS if entry.filename == "install.sh"
                         else old.read(entry))
    path = uploaded(server, slow)
    flag = tmp_path / "go"
    answers = []
    body = {"name": plugin_zip.stem, "file": f"file://{path}", "shellParas": [str(flag)]}
    install = threading.Thread(target=lambda: answers.append(
        server.request("POST", "/plugins/portables", body)))
    install.start()
    try:
        wait_until(lambda: Path(f"{flag}.running").exists(), 30, message="install.sh to run")
        for _ in range(3):
            started = time.monotonic()
            for route in ("/plugins/portables", "/config/uploads",
                          f"/plugins/portables/{plugin_zip.stem}"):
                try:
                    with urllib.request.urlopen(server.url + route, timeout=5) as resp:
                        assert resp.status == 200
                except urllib.error.HTTPError as err:
                    assert err.code == 404, route
            assert time.monotonic() - started < 5
            assert install.is_alive()
    finally:
        flag.touch()
        install.join(60)
    assert answers == [(201, f"portable plugin {plugin_zip.stem} is created")]
