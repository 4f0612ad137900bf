"""The embedded host: launching like eKuiper, restart and replay, exact bytes."""

import os
import signal
import subprocess
import sys
import tempfile
import threading

import pynng
import pytest

from kuiperlite.dev.host import Host, stream_options
from kuiperlite.errors import HostError
from kuiperlite.protocol import wire
from kuiperlite.protocol.wire import Control, Meta

from conftest import pid_alive, unique, wait_until


@pytest.mark.parametrize("executable", [False, True])
def test_launch_runs_the_plugin_as_ekuiper_does(kuiperlite_host, copy_plugin, executable):
    path = copy_plugin("launched")
    host = kuiperlite_host(path, executable=executable)
    served = [] if executable else ["-m", "kuiperlite", "run"]
    assert host.process.argv == [sys.executable, "-u", *served, str(path),
                                 '{"sendTimeout":1000}']
    wait_until(lambda: any(f"ARGV ['{{\"sendTimeout\":1000}}'] CWD {path.parent}" in line
                           for line in host.process.output), message="argv and cwd")


UNGUARDED = "import kuiperlite\nkuiperlite.run()\n"


@pytest.mark.parametrize(("ending", "executable"), [
    ("", False), ("guarded", False), (UNGUARDED, False),  # served, as packaged
    ("guarded", True), (UNGUARDED, True)])                 # the file is the program
def test_a_file_is_served_whatever_its_run_line(kuiperlite_host, copy_plugin, ending,
                                                 executable):
    path = copy_plugin("launched", main=ending == "guarded")
    if ending != "guarded":
        path.write_text(path.read_text() + ending)
    host = kuiperlite_host(path, executable=executable)
    with host.function("first") as fn:
        assert fn.call(1) == ["first", 1]


def test_a_dead_plugin_is_restarted_on_a_start_and_its_starts_replayed(kuiperlite_host,
                                                                       copy_plugin):
    host = kuiperlite_host(copy_plugin("launched"))
    src = host.start_source("pid", rule=unique("r"))
    snk = host.start_sink("show", rule=unique("k"), config={"requireAck": True})
    fn_first = host.function("first")
    fn_second = host.function("second")  # eKuiper replays only the last function started
    old = src.recv()[0]["pid"]  # the worker process that runs the user code

    os.kill(host.process.pid, signal.SIGKILL)  # as eKuiper kills a plugin
    wait_until(lambda: host.process.poll() is not None, message="the plugin to die")
    wait_until(lambda: not pid_alive(old), message="its worker to die with it")
    with pytest.raises(HostError, match="exited"):
        fn_first.call(1)  # as in eKuiper, a call does not restart the plugin
    again = host.start_source("pid", rule=unique("r"))  # a start does, replaying the others
    new = again.recv()[0]["pid"]
    assert fn_first.call(1) == ["first", 1]
    assert new != old and host.restarts == 1
    wait_until(lambda: src.recv()[0] == {"pid": new}, message="records from the new process")
    assert snk.send({"after": "restart"}) is None
    assert fn_second.call(2) == ["second", 2]


def test_launch_reports_a_plugin_that_exits_before_the_handshake(write_plugin):
    path = write_plugin("raise SystemExit('bad config file')\n", main=False)
    with pytest.raises(HostError) as info:
        Host.launch(str(path), init_timeout=30)
    assert "exited with code 1" in str(info.value)
    assert "bad config file" in str(info.value)


def test_launch_times_out_without_a_handshake(write_plugin):
    path = write_plugin("import time\nprint('no handshake', flush=True)\ntime.sleep(60)\n",
                        main=False)
    with pytest.raises(HostError, match="No handshake"):
        Host.launch(str(path), init_timeout=1)


@pytest.fixture
def fake_plugin():
    """A host and a bare REQ socket playing the plugin, handshake done."""
    name = unique("p")
    host = Host(name)
    req = pynng.Req0(recv_timeout=5000)
    req.dial(wire.control_address(name), block=True)
    req.send(wire.HANDSHAKE)
    host.wait_handshake(5)
    yield host, req
    req.close()
    host.close()


def answer_once(req, answer, received):
    """On a thread: take one command and answer it."""

    def run():
        received.append(req.recv())
        req.send(answer)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_commands_are_sent_with_go_encoding(fake_plugin):
    host, req = fake_plugin
    received = []
    thread = answer_once(req, b"ok", received)
    host.command("start", Control("s", "source", Meta("r", "o", 1), "t", {"b": 2.0, "a": "<x>"}))
    thread.join(5)
    assert received == [
        b'{"cmd":"start","arg":"{\\"symbolName\\":\\"s\\",\\"meta\\":{\\"ruleId\\":\\"r\\",'
        b'\\"opId\\":\\"o\\",\\"instanceId\\":1},\\"pluginType\\":\\"source\\",'
        b'\\"dataSource\\":\\"t\\",\\"config\\":{\\"a\\":\\"\\\\u003cx\\\\u003e\\",'
        b'\\"b\\":2}}"}']


def test_a_refused_sink_start_leaves_its_ack_listener_open_as_ekuiper_does(fake_plugin):
    # eKuiper 2.x's PortableSink.Connect returns on a refused start without
    # closing the ack listener it opened, so its retry finds the address taken.
    host, req = fake_plugin
    thread = answer_once(req, b"bad config", [])
    with pytest.raises(HostError, match="^bad config$"):
        host.start_sink("print", rule="r1")
    thread.join(5)
    assert [channel.closed for channel in host.leaked] == [False]
    with pytest.raises(HostError, match=r"Cannot listen on \S+r1_op1_0_ack\.ipc"):
        host.start_sink("print", rule="r1")


def test_an_error_answer_raises_with_the_plugins_text(fake_plugin):
    host, req = fake_plugin
    thread = answer_once(req, b"symbol not found", [])
    with pytest.raises(HostError, match="^symbol not found$"):
        host.command("start", Control("x", "func"))
    thread.join(5)


def test_close_ends_the_plugin_process(copy_plugin):
    host = Host.launch(str(copy_plugin("launched")))
    pid = host.process.pid
    host.start_source("pid", rule=unique("r"))
    host.close()
    assert not pid_alive(pid)
    assert host.process.poll() == 0  # SIGTERM: a clean exit


def test_attach_to_a_plugin_started_by_hand(copy_plugin):
    path = copy_plugin("launched")
    host = Host(path.stem)
    proc = subprocess.Popen([sys.executable, "-u", str(path)], stdout=subprocess.DEVNULL)
    try:
        host.wait_handshake(30)
        with host.function("first") as fn:
            assert fn.call("x") == ["first", "x"]
        with pytest.raises(HostError, match="did not launch its plugin"):
            host.restart()
    finally:
        host.close()
        proc.wait(10)


@pytest.mark.parametrize("ekuiper", [2, 1])
def test_source_controls_are_built_as_each_ekuiper_builds_them(ekuiper, tmp_path):
    with Host(unique("p"), ekuiper=ekuiper, ipc_dir=str(tmp_path)) as host:
        control = host.source_control("probe", Meta("r", "o", 0), "building-7",
                                      {"interval": 1, "format": "yaml-profile"}, format="CSV")
    options = {"format": "csv", "key": "", "delimiter": ""}  # the stream's, over the yaml's
    if ekuiper == 2:
        assert control.datasource == ""  # 2.x never fills the top-level dataSource
        options.update(datasource="building-7", schemaId="", retainSize=0,
                       strictValidation=False, timestamp="", timestampFormat="")
    else:
        assert control.datasource == "building-7"
    assert control.config == {"interval": 1, **options}
    with pytest.raises(ValueError, match="adds no stream option 'schemaId'"):
        stream_options(1, "x", schemaId="s")


@pytest.fixture
def ipc_dir():
    """A short socket folder of the test's own, empty again at its end."""
    folder = tempfile.mkdtemp(prefix="kl", dir="/tmp")
    yield folder
    wait_until(lambda: not os.listdir(folder), 5, message=f"{folder} to be empty")
    os.rmdir(folder)


def test_a_taken_address_is_a_sentence_saying_who_may_hold_it(ipc_dir):
    name = unique("p")
    with Host(name, ipc_dir=ipc_dir) as host:
        with pytest.raises(HostError) as info:
            Host(name, ipc_dir=ipc_dir)
        assert str(info.value) == (f"Cannot listen on {ipc_dir}/plugin_{name}.ipc: is eKuiper, "
                                   f"a serve or a test run already hosting plugin {name!r}?")
        with pynng.Pull0(listen=f"ipc://{ipc_dir}/r_o_0.ipc"), \
                pynng.Rep0(listen=f"ipc://{ipc_dir}/func_twice.ipc"):
            with pytest.raises(HostError) as info:
                host.start_source("counter", rule="r", op="o")
            assert str(info.value) == (f"Cannot listen on {ipc_dir}/r_o_0.ipc: is eKuiper, a "
                                       "serve or a test run already hosting rule 'r'?")
            with pytest.raises(HostError, match="already hosting function 'twice'"):
                host.function("twice")
    assert not os.listdir(ipc_dir)


def test_names_that_cannot_be_socket_files_are_refused_before_listening(ipc_dir):
    with pytest.raises(ValueError, match="'a/b'"):
        Host("a/b", ipc_dir=ipc_dir)
    path = f"{ipc_dir}/plugin_{'p' * 100}.ipc"
    with pytest.raises(ValueError) as info:
        Host("p" * 100, ipc_dir=ipc_dir)
    assert path in str(info.value)
    with Host(unique("p"), ipc_dir=ipc_dir) as host:
        with pytest.raises(ValueError, match="'a/b'"):
            host.start_source("counter", rule="a/b")
        with pytest.raises(ValueError, match=r"'\.\.'"):
            host.start_sink("keep", op="..")
        with pytest.raises(ValueError, match="107"):
            host.start_sink("keep", rule="r" * 90)
        with pytest.raises(ValueError, match="'x\\\\x00'"):
            host.function("x\x00")
        assert os.listdir(ipc_dir) == [f"plugin_{host.name}.ipc"]


def test_messages_name_the_instance_they_are_about(kuiperlite_host, copy_plugin):
    host = kuiperlite_host(copy_plugin("launched"))
    rule = unique("r")
    src = host.start_source("pid", rule=rule, op="op7", instance=3)
    snk = host.start_sink("show", rule=rule, op="op8")
    assert (src.described, snk.described) == (f"source 'pid' of rule {rule}/op7/3",
                                    f"sink 'show' of rule {rule}/op8/0")
    src.stop()
    snk.stop()
    with pytest.raises(HostError) as info:
        src.recv()
    assert str(info.value) == f"The source 'pid' of rule {rule}/op7/3 is stopped."
    with pytest.raises(HostError) as info:
        snk.send({"a": 1})
    assert str(info.value) == f"The sink 'show' of rule {rule}/op8/0 is stopped."
