"""The ``kuiperlite_host`` pytest fixture (registered through the pytest11 entry point)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from .host import Host


@pytest.fixture
def kuiperlite_host() -> Iterator[Callable[..., Host]]:
    """Launch plugins in real processes under the embedded host; closed after the test.

    ``host = kuiperlite_host("pysam.py")`` starts the plugin as eKuiper does and
    returns the :class:`~kuiperlite.host.Host`; ``env`` adds environment variables.
    """
    hosts: list[Host] = []

    def launch(path: Any, *, env: Optional[dict[str, str]] = None, **kwargs: Any) -> Host:
        host = Host.launch(str(path), env=dict(os.environ, **(env or {})), **kwargs)
        hosts.append(host)
        return host

    yield launch
    for host in hosts:
        host.close()
