"""The ``kuiperlite_host`` pytest fixture (registered through the pytest11 entry point)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest


@pytest.fixture
def kuiperlite_host() -> Iterator[Callable[..., Any]]:
    """Launch plugins in real processes under the embedded host; closed after the test.

    ``host = kuiperlite_host("pysam.py")`` starts the plugin as eKuiper does and
    returns the :class:`~kuiperlite.dev.host.Host`. Its socket files go to a folder
    of the test's own, so a running eKuiper or another test run hosting the
    same plugin is never disturbed; pass ``ipc_dir="/tmp"`` for a plugin that
    only knows eKuiper's folder (one written with the official SDK). ``env``
    adds environment variables; other keywords go to ``Host.launch``. The
    test fails when a socket file outlives the hosts.
    """
    from kuiperlite.dev import Host  # only tests that use the fixture pay for it

    hosts: list[Any] = []
    folders: list[str] = []

    def launch(path: Any, *, env: Optional[dict[str, str]] = None,
               ipc_dir: Optional[str] = None, **kwargs: Any) -> Host:
        if ipc_dir is None:
            ipc_dir = tempfile.mkdtemp(prefix="kl", dir="/tmp")  # short: socket paths are
            folders.append(ipc_dir)                              # limited to 107 bytes
        host = Host.launch(str(path), env=dict(os.environ, **(env or {})), ipc_dir=ipc_dir,
                           **kwargs)
        hosts.append(host)
        return host

    yield launch
    for host in hosts:
        host.close()
    left: list[str] = []
    deadline = time.monotonic() + 5.0
    for folder in folders:
        while os.listdir(folder) and time.monotonic() < deadline:
            time.sleep(0.02)
        left += [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
        shutil.rmtree(folder, ignore_errors=True)
    if left:
        pytest.fail(f"The plugin left socket files behind: {', '.join(left)}")
