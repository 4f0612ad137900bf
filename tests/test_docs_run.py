"""Every code block in README.md and docs/ runs as the page says, or says why not.

The line before each block is a comment that tells the suite what to do with it:

- ``<!-- file: NAME.py -->``: the block is that file. Later blocks of the page
  find it beside them. A ``test_*.py`` file runs with pytest; any other is a
  plugin, and ``kuiperlite meta`` must read it.
- ``<!-- run -->``: run the block (Python with ``python -``, shell with bash),
  in a copy of the repository, with the suite's python first on ``PATH``.
- ``<!-- run in a fresh venv -->``: the same, with a new venv's pip and python.
- ``<!-- run until it serves -->``: a server; it must listen, then stop on SIGTERM.
- ``<!-- run beside: COMMAND -->``: the server COMMAND listens while the block runs.
- ``<!-- not run: WHY -->``.

Two things are changed as a block runs, so that it runs on a shared machine:
the ports 9081 (eKuiper) and 33333 (serve) become free ones, and
``/path/to/kuiperlite`` becomes the copy of the repository.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from conftest import free_port, wait_until

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^(?P<indent> *)(?:<!-- (?P<marker>[^\n]*?) -->\n(?P=indent))?"
                   r"```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```$", re.MULTILINE | re.DOTALL)
KINDS = ("file", "run", "run in a fresh venv", "run until it serves", "run beside", "not run")
PORTS = (9081, 33333)  # eKuiper's REST port, serve's port
COPIED = ("kuiperlite", "examples", "pyproject.toml", "README.md")
SHELL_PRELUDE = r"""set -eo pipefail
kl_wait_port() {  # a background server's port, polled for 30 s
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1
  done; echo "nothing listens on port $1" >&2; return 1
}
curl() {  # an error status fails the block; a live stream is read for 3 s
  if [[ "$*" == *follow=1* ]]; then command curl -sS -f --max-time 3 "$@" || [ $? = 28 ]
  else command curl -sS -f --max-time 30 "$@"; fi
}
"""


class Block(NamedTuple):
    page: Path
    line: int
    marker: Optional[str]
    lang: str
    body: str

    @property
    def kind(self) -> str:
        kind = (self.marker or "").partition(":")[0].strip()
        return kind if kind in KINDS else ""

    @property
    def argument(self) -> str:
        return (self.marker or "").partition(":")[2].strip()

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            indent = len(m["indent"])
            body = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
            line = text.count("\n", 0, m.start()) + 1 + (m["marker"] is not None)
            found.append(Block(page, line, m["marker"], m["lang"], body))
    return found


BLOCKS = blocks()
RUN = [b for b in BLOCKS if b.kind not in ("", "not run")]


def test_every_block_says_how_the_suite_runs_it():
    silent = [f"{b}" for b in BLOCKS if not b.kind or (b.kind != "file" and not b.lang
                                                         and b.kind != "not run")]
    assert not silent, ("put one of <!-- file: NAME -->, <!-- run -->, <!-- run in a fresh "
                        f"venv -->, <!-- run until it serves -->, <!-- run beside: COMMAND -->"
                        f" or <!-- not run: WHY --> before the blocks at {silent}")
    assert all(b.argument for b in BLOCKS if b.kind in ("file", "run beside", "not run"))


def localise(text: str, ports: dict[int, int], workspace: Path) -> str:
    """The block as it runs here: free ports, and the copy of the repository."""
    text = re.sub(r"kuiperlite serve(?![^\n]*--port)", "kuiperlite serve --port 33333", text)
    for documented, port in ports.items():
        text = re.sub(rf"(127\.0\.0\.1:|--port ){documented}\b", rf"\g<1>{port}", text)
    text = re.sub(r"^(.*--port (\d+).*) &$", r"\1 & kl_wait_port \2", text, flags=re.MULTILINE)
    return text.replace("/path/to/kuiperlite", str(workspace))


class Workspace:
    """A copy of the repository, the files of the page's earlier blocks, and the
    processes a block started, all stopped at the end."""

    def __init__(self, folder: Path, block: Block) -> None:
        self.root = folder / "repo"
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.root / name, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.egg-info", "build", "dist"))
            else:
                shutil.copy2(source, self.root / name)
        for earlier in BLOCKS:
            if earlier.page == block.page and earlier.line < block.line \
                    and earlier.kind == "file":
                (self.root / earlier.argument).write_text(earlier.body)
        self.ports = {documented: free_port() for documented in PORTS}
        # Socket files of their own: another run may host plugins named like these.
        self.ipc_dir = tempfile.mkdtemp(prefix="kl", dir="/tmp")
        self.env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                        KUIPERLITE_IPC_DIR=self.ipc_dir)
        self.groups: list[subprocess.Popen[bytes]] = []
        self.logs = folder / "logs"
        self.logs.mkdir()

    def fresh_venv(self) -> None:
        folder = self.root.parent / "fresh"
        venv.create(folder, with_pip=True)
        self.env["PATH"] = f"{folder / 'bin'}:{self.env['PATH']}"
        self.env.pop("VIRTUAL_ENV", None)

    def start(self, program: list[str], text: str) -> subprocess.Popen[bytes]:
        """A process group of its own, its output in a log file."""
        log = open(self.logs / f"{len(self.groups)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([*program, text], cwd=self.root, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.groups.append(proc)
        return proc

    def shell(self, text: str) -> subprocess.Popen[bytes]:
        return self.start(["bash", "-c"], SHELL_PRELUDE + localise(text, self.ports, self.root))

    def listening(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        def up() -> bool:
            assert proc.poll() is None, f"it exited before listening on {port}:\n{self.output()}"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(up, message=f"a server on port {port}")

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-4000:]
                         for log in sorted(self.logs.iterdir()))

    def stop(self) -> None:
        """SIGTERM to every group; each must be gone within 30 s, or all are killed."""
        try:
            for proc in self.groups:
                signal_group(proc, signal.SIGTERM)
            for proc in self.groups:
                wait_until(lambda proc=proc: not group_alive(proc), 30,
                           message=f"process group {proc.pid} to end on SIGTERM")
        except pytest.fail.Exception:
            for proc in self.groups:
                signal_group(proc, signal.SIGKILL)
            raise
        finally:
            shutil.rmtree(self.ipc_dir, ignore_errors=True)


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


def finished(proc: subprocess.Popen[bytes], workspace: Workspace, timeout: float = 240) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout:.0f} s:\n{workspace.output()}")
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{workspace.output()}"
    assert "Traceback" not in workspace.output(), workspace.output()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("block", RUN, ids=str)
def test_the_block_runs_as_the_page_says(block, tmp_path):
    ws = Workspace(tmp_path, block)
    try:
        if block.kind == "run in a fresh venv":
            ws.fresh_venv()
        if block.kind == "run beside":
            command = localise(block.argument, ws.ports, ws.root)
            ws.listening(int(re.findall(r"--port (\d+)", command)[0]),
                         ws.start(["bash", "-c"], f"exec {command}"))
        if block.kind == "file":
            (ws.root / block.argument).write_text(block.body)
            if block.argument.startswith("test_"):
                program = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           block.argument]
            else:
                program = ["python", "-m", "kuiperlite", "meta", block.argument, "-o", "meta"]
            finished(ws.start(["bash", "-c"], " ".join(program)), ws)
        elif block.lang == "python":
            finished(ws.start(["python", "-c"], block.body), ws)
        elif block.kind == "run until it serves":
            ws.listening(ws.ports[33333], ws.shell(block.body))
        else:
            finished(ws.shell(block.body), ws)
    finally:
        ws.stop()
    assert "Traceback" not in ws.output(), ws.output()
    tested = subprocess.run([sys.executable, "-I", "-c", "import kuiperlite; print(kuiperlite)"],
                            capture_output=True, text=True, timeout=60).stdout
    assert str(ROOT / "kuiperlite") in tested, f"the block installed over kuiperlite: {tested}"
