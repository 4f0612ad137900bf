"""``check`` and the installed zip: eKuiper's installer rules, then the plugin running."""

import json
import os
import stat
import struct
import subprocess
import sys
import time
import venv
import warnings
import zipfile
from pathlib import Path

import pytest

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev.check import Checker, check, read_profile
from kuiperlite.dev.host import PORTABLE_CONFIG, Host
from kuiperlite.protocol import wire

from conftest import EXAMPLES, pid_alive, unique, wait_until
from wheels import with_wheels


@pytest.fixture(scope="module")
def pysam_zip(tmp_path_factory):
    return package.build(load(str(EXAMPLES / "pysam" / "pysam.py")),
                           str(tmp_path_factory.mktemp("pysam")))


def run_check(zip_path, *args):
    return subprocess.run([sys.executable, "-m", "kuiperlite", "check", str(zip_path), *args],
                          capture_output=True, text=True, timeout=120)


def test_check_passes_the_pysam_zip(pysam_zip):
    out = run_check(pysam_zip, "--no-install")
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert lines[0] == f"checking {pysam_zip}"
    assert "  ok    pysam.json: version v1.0.0, executable pysam_main.py, 1 sources, 1 sinks, " \
           "1 functions" in lines
    assert "  ok    source pyjson: started and stopped with its default profile" in lines
    assert "  ok    sink print: started and stopped" in lines
    assert "  ok    function revert: started, and its channel answers" in lines
    assert lines[-1].startswith("pysam.zip: passed, ")


def install_like_ekuiper(zip_path: Path, root: Path) -> Path:
    """Unpack as eKuiper's installer does; returns plugins/portable/<name>."""
    name = zip_path.stem
    with zipfile.ZipFile(zip_path) as archive:
        for entry in archive.infolist():
            if entry.filename.startswith(("sources/", "sinks/", "functions/")):
                targets = [root / "etc" / entry.filename, root / "data" / entry.filename]
            else:
                targets = [root / "plugins" / "portable" / name / entry.filename]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(entry))
                target.chmod((entry.external_attr >> 16) & 0o777 or 0o644)
    return root / "plugins" / "portable" / name


def test_the_installed_zip_runs_with_a_python_that_has_only_the_dependencies(tmp_path):
    zip_path = package.build(load(str(EXAMPLES / "sensors" / "sensors.py")),
                               str(tmp_path / "dist"), include=["calibration.json"], wheels=True)
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=True)  # no kuiperlite, no pynng: only what install.sh brings
    python = str(bare / "bin" / "python")
    plugin_dir = install_like_ekuiper(zip_path, tmp_path / "ekuiper")
    offline = dict(os.environ, PIP_INDEX_URL="http://127.0.0.1:9/offline")
    subprocess.run(["/bin/sh", "install.sh", python], cwd=plugin_dir, check=True, env=offline,
                   capture_output=True)
    executable = plugin_dir / json.loads((plugin_dir / "sensors.json").read_text())["executable"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    host = Host("sensors")
    try:
        host.spawn([python, "-u", str(executable), PORTABLE_CONFIG], str(plugin_dir), env)
        host.wait_handshake(60)
        assert host.process.argv[1:] == ["-u", str(executable), PORTABLE_CONFIG]
        with host.start_source("temperature", rule=unique("r"), datasource="b7",
                               config={"interval": 0.01, "sensors": ["lab"]}) as src:
            message, meta = src.recv()
            assert message["sensor"] == "lab" and meta == {"building": "b7"}
        with host.start_source("doors", rule=unique("r"), config={"interval": 0.01}) as src:
            assert set(src.recv()[0]) == {"door", "open"}
        with host.start_sink("alert", rule=unique("r"), config={"requireAck": True}) as snk:
            assert snk.send({"sensor": "lab", "value": 30}) is None
        out_file = tmp_path / "out" / "lab.jsonl"
        with host.start_sink("jsonl", rule=unique("r"), config={
                "requireAck": True, "path": str(tmp_path / "out" / "{{.sensor}}.jsonl")}) as snk:
            assert snk.send({"sensor": "lab", "température": 21.5}) is None
        wait_until(lambda: out_file.exists() and out_file.read_text(encoding="utf-8"))
        assert json.loads(out_file.read_text(encoding="utf-8")) == {"sensor": "lab",
                                                                    "température": 21.5}
        with host.function("celsius") as fn:
            assert fn.call(212, "F", "lab") == 99.75  # reads calibration.json beside it
        with host.function("spread") as fn:
            assert fn.is_aggregate() and fn.call([3, 9.5, 4]) == 6.5
        with host.function("epoch_ms") as fn:
            assert fn.call("2024-05-01T10:00:00Z") == 1714557600000  # python-dateutil
        with host.function("where") as fn:
            assert fn.call(5)["value"] == 5
        assert any("[alert" in line and "warning alert via log" in line
                   for line in host.process.output)
    finally:
        host.close()


def rezip(src: Path, dst: Path, drop=(), add=None, rename=None, links=(), infos=(),
          patch=None) -> Path:
    """A copy of a zip with entries dropped, replaced, renamed, or added as symlinks
    or as given ZipInfos, then with bytes of the zip file replaced."""
    add = dict(add or {})
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, and writes it
        for entry in old.infolist():
            if entry.filename in drop:
                continue
            name = (rename or {}).get(entry.filename, entry.filename)
            new.writestr(name, add.pop(entry.filename, old.read(entry)))
        for name, data in add.items():
            new.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            new.writestr(info, "/etc/passwd")
        for info, data in infos:
            new.writestr(info, data)
    if patch:
        data = dst.read_bytes()
        for old_bytes, new_bytes in patch.items():
            assert data.count(old_bytes) >= 1 and len(old_bytes) == len(new_bytes)
            data = data.replace(old_bytes, new_bytes)
        dst.write_bytes(data)
    return dst


def entry(name, data=b"", mode=stat.S_IFREG | 0o644, compress=zipfile.ZIP_STORED):
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = compress
    return info, data


def plugin_json(**changes) -> bytes:
    info = {"version": "v1.0.0", "language": "python", "executable": "pysam.py",
            "sources": ["pyjson"], "sinks": ["print"], "functions": ["revert"]}
    return json.dumps({**info, **changes}).encode()


def declare_size(data: bytes, name: bytes, size: int) -> bytes:
    """The zip with its central directory declaring ``size`` bytes for ``name``."""
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        length = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + length] == name:
            return data[:at + 24] + struct.pack("<I", size) + data[at + 28:]
        at += 46


@pytest.mark.parametrize(("change", "failure"), [
    (dict(add={"/abs/evil.py": b""}), "the zip holds an absolute path '/abs/evil.py'"),
    (dict(add={"lib/../../evil.py": b""}),
     "the zip holds a path that leaves its folder: 'lib/../../evil.py'"),
    (dict(links=["data/link"]), "the zip holds a symbolic link 'data/link'"),
    (dict(drop=["pysam.json"]), "missing pysam.json at the zip's root"),
    (dict(add={"pysam.json": b'{"name": "other", "language": "python", "executable": "x"}'}),
     "pysam.json names the plugin 'other', but the zip is pysam.zip"),
    (dict(add={"pysam.json": b'{"language": "python", "executable": "pysam.py"}'}),
     "pysam.json lists no sources, sinks or functions"),
    (dict(add={"pysam.json": b"{oops"}), "pysam.json is not valid JSON"),
    (dict(drop=["pysam_main.py"]), "missing required files: pysam_main.py"),
    (dict(drop=["sources/pyjson.yaml"]), "missing required files: sources/pyjson.yaml"),
    (dict(add={"sources/pyjson.json": b'{"libs": []}'}),
     "sources/pyjson.json has no 'about' object; eKuiper rejects it"),
    (dict(add={"pysam.py": b"raise SystemExit('cannot open the device')\n"}),
     "the plugin did not start: The plugin process"),
    (dict(add={"install.sh": b"echo 'no network here' >&2\nexit 3\n"}),
     "install.sh failed with exit code 3:\nno network here"),
    (dict(add={"sources/pyjson.yaml": b"default:\n  interval: \"soon\"\n"}),
     "source pyjson: Config 'interval' of the source 'pyjson' must be a number, got the "
     "string 'soon'."),
])
def test_check_reports_each_failure(pysam_zip, tmp_path, change, failure):
    bad = rezip(pysam_zip, tmp_path / "pysam.zip", **change)
    lines = []
    assert check(str(bad), report=lines.append) is False
    fails = [line for line in lines if line.startswith("  FAIL  ")]
    assert fails and fails[0].startswith(f"  FAIL  {failure}"), lines
    assert "FAILED" in lines[-1]
    assert not (tmp_path.parent / "evil.py").exists()


@pytest.mark.parametrize(("change", "failure"), [
    (dict(add={"pysam.json": plugin_json(executable=["pysam.py"])}),
     "pysam.json: 'executable' must be a string, not a list"),
    (dict(add={"pysam.json": plugin_json(executable={"file": "pysam.py"})}),
     "pysam.json: 'executable' must be a string, not an object"),
    (dict(add={"pysam.json": plugin_json(language=7)}),
     "pysam.json: 'language' must be a string, not the number 7"),
    (dict(add={"pysam.json": plugin_json(sources="pyjson")}),
     "pysam.json: 'sources' must be a list of names, not the string 'pyjson'"),
    (dict(add={"pysam.json": plugin_json(functions=[1])}),
     "pysam.json: 'functions' must be a list of names, not a list"),
    (dict(add={"pysam.json": plugin_json(sinks={"print": True})}),
     "pysam.json: 'sinks' must be a list of names, not an object"),
    (dict(add={"pysam.json": plugin_json(sources=["../../../etc/passwd"])}),
     "pysam.json lists sources '../../../etc/passwd'; a symbol name must not hold '/', '\\', "
     "'..', NUL or control characters"),
    (dict(add={"pysam.json": plugin_json(functions=["a\nb"])}),
     "pysam.json lists functions 'a\\nb'; a symbol name must not hold"),
    (dict(add={"pysam.json": b"[1, 2]"}), "pysam.json must hold an object, not a list"),
    (dict(add={"pysam.json": b'"pysam"'}),
     "pysam.json must hold an object, not the string 'pysam'"),
    (dict(add={"pysam.py/helper.py": b""}),
     "the zip holds 'pysam.py' both as a file and as a folder"),
    (dict(infos=[entry("sources/pyjson.yaml/x", b"")]),
     "the zip holds 'sources/pyjson.yaml' both as a file and as a folder"),
    (dict(infos=[entry("pysam.py", b"print('the other one')")]),
     "the zip holds 'pysam.py' twice"),
    (dict(add={"lib\\evil.py": b""}),
     "the zip holds a name with a backslash: 'lib\\\\evil.py'; use '/' between folders"),
    (dict(add={"nul#name.py": b""}, patch={b"nul#name": b"nul\x00name"}),
     "the zip holds a name with a NUL character: 'nul\\x00name.py'"),
    (dict(infos=[entry("fifo", mode=stat.S_IFIFO | 0o644)]),
     "the zip holds 'fifo', which is not a regular file or folder"),
    (dict(drop=["pysam_main.py"], infos=[entry("pysam_main.py/", mode=stat.S_IFDIR | 0o755)]),
     "pysam_main.py is a folder in the zip; eKuiper needs a file"),
    (dict(drop=["pysam.json"], infos=[entry("pysam.json/", mode=stat.S_IFDIR | 0o755)]),
     "pysam.json is a folder in the zip; eKuiper needs a file at the zip's root"),
    (dict(drop=["sources/pyjson.yaml"], infos=[entry("sources/pyjson.yaml",
                                                     mode=stat.S_IFDIR | 0o755)]),
     "sources/pyjson.yaml is a folder in the zip; eKuiper needs a file"),
    (dict(drop=["sources/pyjson.json"], infos=[entry("sources/pyjson.json/")]),
     "sources/pyjson.json is a folder in the zip; eKuiper needs a file"),
    (dict(add={"pysam.json": plugin_json(version="v-crc-marker")},
          patch={b"v-crc-marker": b"v-crc-markes"}),
     "pysam.json cannot be read from the zip (Bad CRC-32 for file 'pysam.json')"),
    (dict(add={"sources/pyjson.json": b"[]"}),
     "sources/pyjson.json has no 'about' object; eKuiper rejects it"),
    (dict(add={"sources/pyjson.yaml": b"default:\n  interval: \xff\n"}),
     "source pyjson: pyjson.yaml is not UTF-8 text (invalid start byte at byte 21)"),
    (dict(drop=["pysam.json"], infos=[entry("pysam.json", b"{" + b" " * (64 << 20) + b"}",
                                            compress=zipfile.ZIP_DEFLATED)]),
     f"pysam.json has {(64 << 20) + 2} bytes; kuiperlite reads metadata files of at most "
     f"{64 << 20}"),
])
def test_check_reports_a_malformed_zip_as_a_failure(pysam_zip, tmp_path, change, failure):
    bad = rezip(pysam_zip, tmp_path / "pysam.zip", **change)
    lines = []
    assert check(str(bad), install=False, report=lines.append) is False
    fails = [line for line in lines if line.startswith("  FAIL  ")]
    assert fails and fails[0].startswith(f"  FAIL  {failure}"), lines
    assert "FAILED" in lines[-1]


def test_check_stops_before_unpacking_more_than_its_bound(pysam_zip, tmp_path):
    bad = rezip(pysam_zip, tmp_path / "pysam.zip", add={"model.bin": b"\0" * (3 << 20)})
    lines = []
    assert Checker(str(bad), install=False, report=lines.append, max_unpacked=2 << 20).run() \
        is False
    assert any(line.startswith("  FAIL  the zip unpacks to ") and line.endswith(
        "bytes; kuiperlite unpacks at most 2097152") for line in lines), lines
    # a central directory claiming 2 GiB for one file: the default bound, nothing unpacked
    bad.write_bytes(declare_size(bad.read_bytes(), b"model.bin", 2 << 30))
    lines = []
    assert check(str(bad), install=False, report=lines.append) is False
    fails = [line for line in lines if line.startswith("  FAIL  ")]
    assert fails[0].startswith("  FAIL  the zip unpacks to ")
    assert fails[0].endswith(f" bytes; kuiperlite unpacks at most {1 << 30}"), lines


def test_an_install_sh_that_never_ends_is_stopped_with_what_it_started(pysam_zip, tmp_path):
    pid_file = tmp_path / "sleeper.pid"
    bad = rezip(pysam_zip, tmp_path / "pysam.zip", add={
        "install.sh": f"sleep 300 &\necho $! > {pid_file}\nwait\n".encode()})
    lines = []
    started = time.monotonic()
    assert check(str(bad), report=lines.append, install_timeout=1) is False
    assert time.monotonic() - started < 30
    assert "  FAIL  install.sh did not finish within 1 s; it was stopped (--install-timeout " \
           "sets the bound)" in lines
    sleeper = int(pid_file.read_text())
    wait_until(lambda: not pid_alive(sleeper), 5, message="the process install.sh started to end")


def test_a_plugin_another_host_holds_is_a_fail_line(pysam_zip):
    with Host("pysam"):  # as eKuiper hosting its own pysam would
        out = run_check(pysam_zip, "--no-install")
    assert out.returncode == 1, out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    address = wire.ipc_path(wire.control_address("pysam"))
    assert (f"  FAIL  the plugin did not start: Cannot listen on {address}: is eKuiper, a serve "
            "or a test run already hosting plugin 'pysam'?") in out.stdout.splitlines()


def test_check_command_exit_codes(pysam_zip, tmp_path):
    bad = rezip(pysam_zip, tmp_path / "pysam.zip", drop=["pysam_main.py"])
    assert run_check(bad, "--no-install").returncode == 1
    odd = tmp_path / "my plugin.zip"
    odd.write_bytes(pysam_zip.read_bytes())
    out = run_check(odd)
    assert out.returncode == 1 and "the zip must be named <plugin name>.zip" in out.stdout
    not_zip = tmp_path / "notzip.zip"
    not_zip.write_text("hello")
    assert "notzip.zip is not a zip file" in run_check(not_zip).stdout
    clash = rezip(pysam_zip, tmp_path / "pysam.zip", add={"pysam.py/x": b""})
    out = run_check(clash, "--no-install")
    assert out.returncode == 1 and out.stderr == ""
    assert "  FAIL  the zip holds 'pysam.py' both as a file and as a folder" in out.stdout


def test_read_profile():
    assert read_profile('default:\n  a: 1\n  b: ["x"]\n  c: plain text\nother:\n  a: 2\n') == {
        "a": 1, "b": ["x"], "c": "plain text"}
    assert read_profile("default:\n") == {}


def test_check_passes_the_sensors_zip(tmp_path):
    zip_path = package.build(load(str(EXAMPLES / "sensors" / "sensors.py")), str(tmp_path),
                               include=["calibration.json"])
    lines = []
    assert check(str(zip_path), install=False, report=lines.append), lines
    assert sum(line.startswith("  ok    ") for line in lines) == 22
    assert "  ok    function spread: started, and its channel answers" in lines


def test_check_fails_on_a_module_the_zip_does_not_provide(write_plugin, tmp_path,
                                                          runtime_wheels):
    """The plugin imports pytest, which the python checking has but the requirements do
    not name: the plugin's environment, built from the zip alone, has not."""
    path = write_plugin("import pytest\nfrom kuiperlite import function\n\n\n@function\n"
                        "def f(x: int) -> int:\n    return x\n", main=False)
    zip_path = with_wheels(package.build(load(str(path)), str(tmp_path / "dist")),
                           runtime_wheels)
    lines = []
    assert check(str(zip_path), report=lines.append) is False
    fails = [line for line in lines if line.startswith("  FAIL  ")]
    assert fails == ["  FAIL  the plugin imports pytest, which its zip does not provide: name "
                     "it in the plugin's requirements (requirements.txt beside it, or package "
                     "--requirements) and package again"], lines


def test_a_second_check_reuses_the_environment_the_first_built(pysam_zip, tmp_path,
                                                               runtime_wheels, monkeypatch):
    monkeypatch.setenv("KUIPERLITE_CACHE_DIR", str(tmp_path / "cache"))
    zip_path = with_wheels(rezip(pysam_zip, tmp_path / "pysam.zip"), runtime_wheels)
    first, second = [], []
    assert check(str(zip_path), report=first.append), first
    assert any(line.startswith("  ok    install.sh finished in ") and
               line.endswith(" s and built the plugin's environment .venv") for line in first)
    (cached,) = (tmp_path / "cache" / "environments").iterdir()
    started = time.monotonic()
    assert check(str(zip_path), report=second.append), second
    assert time.monotonic() - started < 10
    assert "  ok    install.sh not run: its environment, built by an earlier check of the same " \
           f"requirements and wheels, is reused from {cached}" in second
    assert [line for line in first if "source pyjson" in line] == \
        [line for line in second if "source pyjson" in line]


def test_a_zip_without_kuiperlite_on_a_python_without_it_names_kuiperlite(pysam_zip, tmp_path):
    """A zip made without kuiperlite's package command, checked with a Python that lacks it."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True,
                   timeout=60)
    python = str(bare / "bin" / "python")
    with zipfile.ZipFile(pysam_zip) as archive:
        own = [n for n in archive.namelist() if n.startswith("kuiperlite/")]
    zip_path = rezip(pysam_zip, tmp_path / "pysam.zip", drop=own)
    lines = []
    assert check(str(zip_path), python=python, install=False, report=lines.append) is False
    fails = [line for line in lines if line.startswith("  FAIL  ")]
    assert fails == [
        f"  FAIL  the zip ships no kuiperlite, and kuiperlite is not installed in the Python "
        f"at {python}, which loads plugins/portable/pysam; install it there: {python} -m pip "
        "install kuiperlite (or pip install -e with the path of a kuiperlite checkout)."], lines
